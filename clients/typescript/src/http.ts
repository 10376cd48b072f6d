// Confab's user HTTP API (README's HTTP table; the OpenAPI document at GET /api/openapi.json)
// with the bearer token: the caller, users, presence, channels (every page), history in all three
// directions, threads, pins, search and files. Every error answer (`{"error":{"code","message"}}`)
// rejects with a ConfabError carrying the server's code and the HTTP status.

import { ConfabConnectionError, ConfabError, ConfabTimeoutError } from "./errors.js";
import type { PresenceStatus, Uuid } from "./frames.js";
import type {
  AttachmentView,
  ChannelDetail,
  ChannelPage,
  ChannelSummary,
  FileDownload,
  FileShared,
  HistoryPage,
  Me,
  MessageView,
  PresenceLookup,
  RepliesPage,
  SearchResult,
  UploadGrant,
  User,
} from "./types.js";

/** Pages `channels()` follows at most (the server looks at up to 1,000 channels per page). */
export const MAX_CHANNEL_PAGES = 100;
/** Users one `GET /api/presence` may name. */
export const MAX_PRESENCE_USERS = 500;

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;
type Query = Record<string, string | number | boolean | undefined | null>;

/** `http(s)://host[:port][/prefix]` from an HTTP or WebSocket URL (a trailing `/ws` is dropped). */
export function httpBaseUrl(baseUrl: string): string {
  let url = baseUrl.trim().replace(/\/+$/, "");
  if (url.startsWith("ws://")) url = "http://" + url.slice(5);
  else if (url.startsWith("wss://")) url = "https://" + url.slice(6);
  if (url.endsWith("/ws")) url = url.slice(0, -3);
  if (!/^https?:\/\//.test(url)) throw new TypeError(`the URL must be http(s):// or ws(s)://, got ${JSON.stringify(baseUrl)}`);
  return url;
}

export interface HttpOptions {
  /** The `fetch` to use (default: the global one). */
  fetch?: FetchLike;
  /** Bound on each request, in milliseconds (default 15,000; 0: none). */
  timeoutMs?: number;
}

export interface HistoryOptions {
  /** 1-200 (the server's default is 50). */
  limit?: number;
  /** Older than this message (a page's `next_cursor`). */
  cursor?: Uuid;
  /** Newer than this message, oldest first (a page's `next_after`). */
  after?: Uuid;
  /** This message with `limit / 2` on each side, oldest first. */
  around?: Uuid;
}

/** The HTTP API as one user (the token's). */
export class ConfabHttp {
  readonly baseUrl: string;
  token: string;
  private readonly fetchImpl: FetchLike;
  private readonly timeoutMs: number;

  constructor(baseUrl: string, token: string, opts: HttpOptions = {}) {
    this.baseUrl = httpBaseUrl(baseUrl);
    this.token = token;
    const f = opts.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (!f) throw new TypeError("no fetch: pass one as the `fetch` option");
    this.fetchImpl = (input, init) => f(input, init); // unbound: window.fetch needs its this
    this.timeoutMs = opts.timeoutMs ?? 15_000;
  }

  /** One call of the API; the decoded JSON answer (undefined for an empty body). Parameters that
   * are undefined or null are left out. */
  async request<T>(method: string, path: string, params?: Query, body?: unknown): Promise<T> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined && v !== null) q.set(k, String(v));
    const qs = q.toString();
    const url = `${this.baseUrl}${path}${qs ? `?${qs}` : ""}`;
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    const init: RequestInit = { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" };
    const timeout = this.timeoutMs > 0 ? new AbortController() : undefined;
    const timer = timeout ? setTimeout(() => timeout.abort(), this.timeoutMs) : undefined;
    if (timeout) init.signal = timeout.signal;
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(url, init);
      text = await res.text();
    } catch (e) {
      if (timeout?.signal.aborted) throw new ConfabTimeoutError(`${method} ${path} took longer than ${this.timeoutMs} ms`, { cause: e, status: 0 });
      throw new ConfabConnectionError(`cannot reach the server (${(e as Error)?.message ?? e})`, { code: "network", status: 0, cause: e });
    } finally {
      clearTimeout(timer);
    }
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = undefined;
    }
    if (!res.ok) throw ConfabError.fromHttp(res.status, data, res.statusText || `HTTP ${res.status}`);
    return data as T;
  }

  get<T>(path: string, params?: Query): Promise<T> {
    return this.request("GET", path, params);
  }

  // ---- the caller and the workspace ----

  /** The token's user, workspace and channel ids. */
  me(): Promise<Me> {
    return this.get("/api/me");
  }

  /** Everyone in the workspace, by name. */
  async users(): Promise<User[]> {
    return (await this.get<{ users: User[] }>("/api/users")).users ?? [];
  }

  /** user_id -> `active`, `away` or `offline` (asked 500 at a time). */
  async presence(userIds: Iterable<Uuid>): Promise<Record<Uuid, PresenceStatus>> {
    const ids = [...new Set(userIds)];
    const out: Record<Uuid, PresenceStatus> = {};
    for (let i = 0; i < ids.length; i += MAX_PRESENCE_USERS) {
      const r = await this.get<PresenceLookup>("/api/presence", { user_ids: ids.slice(i, i + MAX_PRESENCE_USERS).join(",") });
      Object.assign(out, r.users);
    }
    return out;
  }

  // ---- channels ----

  /** One page of the channel list: the server looks at `limit` channels of the workspace (500,
   * at most 1,000) and returns those the caller can see, with `next_after` while there are more. */
  channelPage(opts: { limit?: number; after?: Uuid } = {}): Promise<ChannelPage> {
    return this.get("/api/channels", { limit: opts.limit, after: opts.after });
  }

  /** Every channel the caller can see (public ones and their own), following `next_after` page
   * by page (at most MAX_CHANNEL_PAGES), sorted by name. */
  async channels(opts: { pageSize?: number } = {}): Promise<ChannelSummary[]> {
    const all: ChannelSummary[] = [];
    let after: Uuid | undefined;
    for (let page = 0; page < MAX_CHANNEL_PAGES; page++) {
      const r = await this.channelPage({ limit: opts.pageSize, after });
      all.push(...(r.channels ?? []));
      if (!r.next_after) break;
      after = r.next_after;
    }
    return all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** One channel with its members (`channel_not_found` for a private one you are not in). */
  channel(channelId: Uuid): Promise<ChannelDetail> {
    return this.get(`/api/channels/${encodeURIComponent(channelId)}`);
  }

  // ---- messages ----

  /** One page of a channel's messages (thread-only replies left out): by default the newest,
   * newest first; see HistoryOptions for the other directions. */
  history(channelId: Uuid, opts: HistoryOptions = {}): Promise<HistoryPage> {
    const given = (["cursor", "after", "around"] as const).filter((k) => opts[k]);
    if (given.length > 1) throw new TypeError(`give at most one of cursor, after and around (got ${given.join(", ")})`);
    return this.get(`/api/channels/${encodeURIComponent(channelId)}/messages`, {
      limit: opts.limit,
      cursor: opts.cursor,
      after: opts.after,
      around: opts.around,
    });
  }

  /** Every message of a channel: newest to oldest following `next_cursor`, or, with `after`,
   * the newer ones oldest to newest following `next_after`. */
  async *iterHistory(channelId: Uuid, opts: { pageSize?: number; after?: Uuid } = {}): AsyncGenerator<MessageView> {
    const limit = opts.pageSize ?? 100;
    if (opts.after !== undefined) {
      let after: Uuid | null | undefined = opts.after;
      while (after) {
        const page: HistoryPage = await this.history(channelId, { limit, after });
        yield* page.messages;
        after = page.messages.length ? page.next_after : null;
      }
      return;
    }
    let cursor: Uuid | undefined;
    for (;;) {
      const page: HistoryPage = await this.history(channelId, { limit, cursor });
      yield* page.messages;
      if (!page.next_cursor || !page.messages.length) return;
      cursor = page.next_cursor;
    }
  }

  /** A thread: the parent (with its summary) and replies, oldest first (`next_after` pages). */
  replies(channelId: Uuid, parentId: Uuid, opts: { limit?: number; after?: Uuid } = {}): Promise<RepliesPage> {
    return this.get(`/api/channels/${encodeURIComponent(channelId)}/messages/${encodeURIComponent(parentId)}/replies`, {
      limit: opts.limit,
      after: opts.after,
    });
  }

  /** Pinned messages of a channel, newest first. */
  async pins(channelId: Uuid): Promise<MessageView[]> {
    return (await this.get<{ messages: MessageView[] }>(`/api/channels/${encodeURIComponent(channelId)}/pins`)).messages ?? [];
  }

  /** Full-text search of the messages you can read (`in:#channel`, `from:@name`, `"phrases"`,
   * `before:`/`after:`/`on:` dates in `tz` minutes from UTC, `has:link`, `has:file`,
   * `is:thread`). Near-real-time: a message is found shortly after its ack, not at once. */
  search(q: string, opts: { limit?: number; offset?: number; tz?: number } = {}): Promise<SearchResult> {
    return this.get("/api/search", { q, limit: opts.limit, offset: opts.offset, tz: opts.tz });
  }

  // ---- files ----

  /** Asks to upload a file to a channel: 413, 415 and 400 refuse it before any byte is sent.
   * PUT the bytes to `upload.url` with exactly `upload.headers`, then `completeUpload`. */
  grantUpload(channelId: Uuid, file: { name: string; size: number; content_type: string }): Promise<UploadGrant> {
    return this.request("POST", "/api/files", undefined, { channel_id: channelId, ...file });
  }

  /** After the bytes are up: the file is shared in its channel (409 `upload_incomplete` if not). */
  async completeUpload(fileId: Uuid, uploadToken: string): Promise<AttachmentView> {
    return (await this.request<FileShared>("POST", `/api/files/${encodeURIComponent(fileId)}/complete`, undefined, { upload_token: uploadToken })).file;
  }

  /** A file's metadata and a short-lived download URL (404 not a member, 410 deleted). */
  file(fileId: Uuid, expiresInSecs?: number): Promise<FileDownload> {
    return this.get(`/api/files/${encodeURIComponent(fileId)}`, { expires_in: expiresInSecs });
  }

  /** Deletes a file (its uploader only: 403 otherwise). */
  async deleteFile(fileId: Uuid): Promise<void> {
    await this.request("DELETE", `/api/files/${encodeURIComponent(fileId)}`);
  }
}
