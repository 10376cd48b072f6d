// The HTTP read API (README: the HTTP table). Every call carries the bearer token.

import type { Channel, HistoryPage, Me, PresenceStatus, RepliesPage, SearchResult, User, Uuid } from "./types";

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export class Api {
  constructor(private readonly token: string, private readonly base = "") {}

  private async get<T>(path: string, params?: Record<string, string | number | undefined>): Promise<T> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined) q.set(k, String(v));
    const url = `${this.base}${path}${q.size ? `?${q}` : ""}`;
    let res: Response;
    try {
      res = await fetch(url, { headers: { Authorization: `Bearer ${this.token}` }, cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, "network", `cannot reach the server (${(e as Error).message})`);
    }
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const err = body?.error ?? {};
      throw new ApiError(res.status, err.code ?? "http_" + res.status, err.message ?? res.statusText);
    }
    return body as T;
  }

  me(): Promise<Me> {
    return this.get("/api/me");
  }

  async channels(): Promise<Channel[]> {
    return (await this.get<{ channels: Channel[] }>("/api/channels")).channels;
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
}
