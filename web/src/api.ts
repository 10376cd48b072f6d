// The HTTP API (README: the HTTP table; files: grant, complete, download URL, delete). Every call
// carries the bearer token. The bytes of an upload go elsewhere (files.ts).

import type { Attachment, Channel, FileInfo, HistoryPage, Me, PresenceStatus, RepliesPage, SearchResult, UploadGrant, User, Uuid } from "./types";

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export class Api {
  constructor(private readonly token: string, private readonly base = "") {}

  private get<T>(path: string, params?: Record<string, string | number | undefined>): Promise<T> {
    return this.request("GET", path, params);
  }

  private async request<T>(method: string, path: string, params?: Record<string, string | number | undefined>, body?: unknown): Promise<T> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined) q.set(k, String(v));
    const url = `${this.base}${path}${q.size ? `?${q}` : ""}`;
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, "network", `cannot reach the server (${(e as Error).message})`);
    }
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      const err = data?.error ?? {};
      throw new ApiError(res.status, err.code ?? "http_" + res.status, err.message ?? res.statusText);
    }
    return data as T;
  }

  me(): Promise<Me> {
    return this.get("/api/me");
  }

  /** Every channel the caller can see: the server looks at a bounded number of channels per
   * call, so this follows `next_after` page by page (at most 100 pages), then sorts by name. */
  async channels(): Promise<Channel[]> {
    const all: Channel[] = [];
    let after: string | undefined;
    for (let page = 0; page < 100; page++) {
      const r = await this.get<{ channels: Channel[]; next_after?: string | null }>("/api/channels", { after });
      all.push(...r.channels);
      if (!r.next_after) break;
      after = r.next_after;
    }
    return all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  channel(id: Uuid): Promise<Channel & { members: Uuid[] }> {
    return this.get(`/api/channels/${id}`);
  }

  async users(): Promise<User[]> {
    return (await this.get<{ users: User[] }>("/api/users")).users;
  }

  /** Newest first; pass `cursor` (a message_id) for the page before it. */
  history(channelId: Uuid, opts: { limit?: number; cursor?: string; after?: string; around?: string } = {}): Promise<HistoryPage> {
    return this.get(`/api/channels/${channelId}/messages`, { limit: opts.limit ?? 50, cursor: opts.cursor, after: opts.after, around: opts.around });
  }

  replies(channelId: Uuid, parentId: Uuid, after?: string): Promise<RepliesPage> {
    return this.get(`/api/channels/${channelId}/messages/${parentId}/replies`, { limit: 200, after });
  }

  search(q: string, offset = 0): Promise<SearchResult> {
    return this.get("/api/search", { q, limit: 20, offset, tz: -new Date().getTimezoneOffset() });
  }

  async presence(userIds: Uuid[]): Promise<Record<Uuid, PresenceStatus>> {
    if (userIds.length === 0) return {};
    return (await this.get<{ users: Record<Uuid, PresenceStatus> }>("/api/presence", { user_ids: userIds.slice(0, 500).join(",") })).users;
  }

  /** Asks to upload a file to a channel: 413, 415 and 400 refuse it before any byte is sent. */
  grantUpload(channelId: Uuid, file: { name: string; size: number; content_type: string }): Promise<UploadGrant> {
    return this.request("POST", "/api/files", undefined, { channel_id: channelId, ...file });
  }

  /** After the bytes are up: the file is shared in its channel (409 `upload_incomplete` if not). */
  async completeUpload(fileId: Uuid, uploadToken: string): Promise<Attachment> {
    return (await this.request<{ file: Attachment }>("POST", `/api/files/${fileId}/complete`, undefined, { upload_token: uploadToken })).file;
  }

  /** A file's metadata and a short-lived download URL (404 not a member, 410 deleted). */
  file(fileId: Uuid, expiresIn?: number): Promise<FileInfo> {
    return this.get(`/api/files/${fileId}`, { expires_in: expiresIn });
  }

  /** Uploader only (403 otherwise). */
  async deleteFile(fileId: Uuid): Promise<void> {
    await this.request("DELETE", `/api/files/${fileId}`);
  }
}
