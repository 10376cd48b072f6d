// The WebSocket client: one connection kept alive (heartbeats, reconnects with jittered backoff),
// lossless resume after a drop, commands retried until answered, and the server's events as
// typed frames to listeners. Works with the browser's WebSocket and fetch, and in Node.js with
// its global WebSocket (22+) or an injected constructor (e.g. the `ws` package's).
//
// Guarantees, as the protocol gives them (docs/asyncapi.yaml):
// - every channel event is delivered at most once per (channel_id, seq), in order per channel:
//   the client keeps, per channel, the highest seq it delivered (or that the caller said it has
//   seen, `advance`), and drops anything at or below it;
// - after a drop it reconnects with `?resume=1` and sends `resume` with those positions (and the
//   `last_seq` of every member channel read over HTTP at the first connect, so channels quiet on
//   the socket are resumed too); the server replays what came after them, then `resume:done`,
//   whose `gaps` (what it could not replay) the client fetches over HTTP
//   (`GET /api/channels/{id}/messages?after=<message_id>`) and delivers in order (`fillGaps`);
// - `send` generates a `client_msg_id` and resends the same frame (same id) after a drop, an
//   unanswered attempt or `rate_limited` until the `message:ack` comes: the server turns a
//   retried send into the original message, never a second one.

import {
  CLOSE_TOKEN_EXPIRED,
  CLOSE_TOKEN_REVOKED,
  ConfabAuthError,
  ConfabClosedError,
  ConfabConnectionError,
  ConfabError,
  ConfabTimeoutError,
} from "./errors.js";
import type {
  ChannelArchiveFrame,
  ChannelCreateFrame,
  ChannelInviteFrame,
  ChannelJoinFrame,
  ChannelKickFrame,
  ChannelLeaveFrame,
  ChannelMarkFrame,
  ChannelRenameFrame,
  ClientFrame,
  DmOpenFrame,
  ErrorFrame,
  HelloFrame,
  Message,
  MessageAckFrame,
  MessageDeleteFrame,
  MessageEditFrame,
  MessageNewFrame,
  MessagePinFrame,
  MessageSendFrame,
  OkFrame,
  ReactionAddFrame,
  ResumeDoneFrame,
  ServerFrame,
  ServerFrameByType,
  ServerFrameType,
  Uuid,
} from "./frames.js";
import { ConfabHttp, httpBaseUrl, type FetchLike } from "./http.js";
import type { ConnectionStatus, DisconnectInfo, MessageView, ResumeGap, SyncInfo } from "./types.js";

/** Reconnect delays in milliseconds, one per failed attempt in a row (the last one repeats); each
 * is jittered to between half and all of it so that many clients do not come back at once. */
export const DEFAULT_RECONNECT_DELAYS_MS: readonly number[] = [250, 500, 1000, 2000, 3000, 5000];
/** Channels one `resume` may name (the server refuses more). */
export const MAX_RESUME_CHANNELS = 2000;
/** The largest frame the server reads without `frame_too_large`. */
export const MAX_FRAME_BYTES = 256 * 1024;
/** Codes after which a command is sent again (they never reach the event log). */
const RESEND_CODES = new Set(["rate_limited", "unavailable"]);
/** How many (seq, message_id) pairs per channel are kept to start `after=` fetches from. */
const ANCHORS_PER_CHANNEL = 64;
const OPEN = 1;

/** What the client needs of a WebSocket: the browser's, Node's global one and `ws`'s all fit. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** `ws`: closes the TCP connection at once (used to drop a dead connection). */
  terminate?: () => void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface Logger {
  debug?(msg: string, ...args: unknown[]): void;
  info?(msg: string, ...args: unknown[]): void;
  warn?(msg: string, ...args: unknown[]): void;
}

export interface ClientOptions {
  /** The server: `http(s)://host[:port]` or its `ws(s)://` form (default: the page's origin). */
  url?: string;
  token: string;
  /** Called for a new token when the server refuses the current one (HTTP 401, close
   * 4001/4003); without it such a refusal ends the client (status `unauthorized`). */
  tokenProvider?: () => Promise<string>;
  /** The WebSocket constructor (default: the global one; in Node.js 20 pass `ws`'s). */
  WebSocket?: WebSocketConstructor;
  /** The fetch function for the HTTP API (default: the global one). */
  fetch?: FetchLike;
  /** Overrides `hello.heartbeat_interval` (which is in seconds). */
  heartbeatIntervalMs?: number;
  /** A ping unanswered this long means the connection is dead (default 10,000). */
  pongTimeoutMs?: number;
  /** One attempt of a command waits this long for its answer before the client reconnects and,
   * for sends, tries again (default 10,000). */
  answerTimeoutMs?: number;
  /** A command gives up (ConfabTimeoutError) after this long in all (default 60,000; 0: never). */
  requestTimeoutMs?: number;
  /** `connect()` gives up after this long (default 30,000; 0: it keeps trying). */
  connectTimeoutMs?: number;
  /** Bound on a socket opening and saying hello (default 15,000). */
  helloTimeoutMs?: number;
  /** Bound on waiting for `resume:done` before reconnecting (default 30,000). */
  resumeTimeoutMs?: number;
  reconnectDelaysMs?: readonly number[];
  /** Resend commands refused with `rate_limited`/`unavailable` after a backoff (default true). */
  retryRateLimited?: boolean;
  /** At the first connect, read every member channel's `last_seq` over HTTP so that a later
   * resume covers channels that had no event on the socket (default true). */
  seedPositions?: boolean;
  /** After a resume, fetch its gaps over HTTP and deliver them as `message:new` frames in seq
   * order, holding back later frames meanwhile (default true). Off: the caller fetches them
   * (`fetchGap`) after `synced`, and replayed frames are delivered as they come. */
  fillGaps?: boolean;
  /** Bound on each HTTP request (default 15,000). */
  httpTimeoutMs?: number;
  logger?: Logger;
}

export interface SendOptions {
  /** Reply in this message's thread. */
  threadTs?: Uuid;
  /** A thread reply shown in the channel too. */
  alsoSendToChannel?: boolean;
  /** Files shared in the channel (POST /api/files, then complete); `text` may then be empty. */
  fileIds?: Uuid[];
  /** The id to send with (default: a new one). Pass the same id to send the same message again. */
  clientMsgId?: string;
}

export interface RequestOptions {
  /** Overrides `requestTimeoutMs` (0: no deadline). */
  timeoutMs?: number;
  /** Stops the retries (the promise rejects with ConfabClosedError code `aborted`). */
  signal?: AbortSignal;
  /** Send the command again when the connection drops before its answer (default: true for
   * sends and commands whose repetition is harmless). */
  resendWhenOutcomeUnknown?: boolean;
}

/** Commands answered by `ok` (they carry a `client_msg_id`). */
export type CommandFrame =
  | ChannelJoinFrame
  | MessageEditFrame
  | MessageDeleteFrame
  | ReactionAddFrame
  | ChannelCreateFrame
  | DmOpenFrame
  | ChannelRenameFrame
  | ChannelArchiveFrame
  | ChannelLeaveFrame
  | ChannelInviteFrame
  | ChannelKickFrame
  | MessagePinFrame
  | ChannelMarkFrame;

/** Commands whose repetition changes nothing: resent after a drop by default. */
const IDEMPOTENT: ReadonlySet<string> = new Set([
  "message:send",
  "message:edit",
  "reaction:add",
  "reaction:remove",
  "channel:mark",
  "channel:join",
  "dm:open",
  "channel:rename",
  "channel:archive",
  "message:pin",
]);

/** What listeners get: every server frame type, and the client's own events. */
export type ClientEventMap = ServerFrameByType & {
  /** Every frame delivered (channel events once per seq), `hello` on every connection,
   * `resume:done`, unanswered `error`s; not pongs, nor the answers a request waits for. */
  frame: ServerFrame;
  status: ConnectionStatus;
  synced: SyncInfo;
  disconnected: DisconnectInfo;
};

type Listener<T> = (value: T) => void;
type Outcome = { kind: "answer"; frame: MessageAckFrame | OkFrame | ErrorFrame } | { kind: "lost" } | { kind: "timeout" };
interface Waiter {
  settle(o: Outcome): void;
}
interface Resuming {
  ws: WebSocketLike;
  positions: Record<Uuid, number>;
  buffer: ServerFrame[];
  timer: ReturnType<typeof setTimeout>;
}

/** `ws(s)://host[:port][/prefix]/ws` from the server's HTTP (or WebSocket) base URL. */
export function websocketUrl(baseUrl: string): string {
  const http = httpBaseUrl(baseUrl);
  return (http.startsWith("https://") ? "wss://" + http.slice(8) : "ws://" + http.slice(7)) + "/ws";
}

/** A fresh `client_msg_id` (a v4 UUID: 36 bytes, within the protocol's 1-64). */
export function newClientMsgId(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c?.randomUUID) {
    try {
      return c.randomUUID(); // secure contexts only in browsers
    } catch {
      /* fall through */
    }
  }
  const b = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The channel and seq of an event, if it is one of a channel's events. Answers (acks, oks,
 * errors) and read markers carry a seq but are not the channel's events. */
export function eventPosition(f: ServerFrame): [Uuid, number] | null {
  if (f.type === "message:new") return [f.message.channel_id, f.message.seq];
  if (f.type === "message:ack" || f.type === "channel:marked" || f.type === "ok" || f.type === "error") return null;
  const any = f as { channel_id?: Uuid; seq?: number };
  return typeof any.channel_id === "string" && typeof any.seq === "number" ? [any.channel_id, any.seq] : null;
}

/** A history message as the `message:new` frame the socket would have delivered. */
export function messageNewFrame(m: MessageView): MessageNewFrame {
  const message: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) if (v !== null && v !== undefined) message[k] = v;
  return { type: "message:new", message: message as unknown as Message };
}

const report: (e: unknown) => void =
  typeof (globalThis as { reportError?: (e: unknown) => void }).reportError === "function"
    ? (e) => (globalThis as unknown as { reportError: (e: unknown) => void }).reportError(e)
    : (e) => console.error("a Confab client listener threw:", e);

export class ConfabClient {
  /** The HTTP API as the same user (same token). */
  readonly http: ConfabHttp;
  readonly websocketUrl: string;
  /** The latest connection's `hello` (undefined before the first). */
  hello: HelloFrame | undefined;
  /** The latest `resume:done` (undefined until a reconnect resumed). */
  lastResume: ResumeDoneFrame | undefined;
  /** How often a connection said hello, and how many duplicate events were dropped. */
  connectionCount = 0;
  duplicatesDropped = 0;

  private readonly opts: Required<Omit<ClientOptions, "url" | "token" | "tokenProvider" | "WebSocket" | "fetch" | "heartbeatIntervalMs" | "logger">> &
    Pick<ClientOptions, "tokenProvider" | "heartbeatIntervalMs" | "logger">;
  private readonly WS: WebSocketConstructor;
  private tokenValue: string;
  private statusValue: ConnectionStatus = "idle";
  private ws: WebSocketLike | null = null;
  private everConnected = false;
  private stopped = false;
  private fatal: ConfabError | undefined;
  private failedAttempts = 0;
  private refreshedToken = false;
  /** channel -> highest seq delivered or said seen (dedupe and resume), most recent last. */
  private readonly seen = new Map<Uuid, number>();
  /** channel -> seq a resume may start from although nothing up to it was delivered (seeded). */
  private readonly floor = new Map<Uuid, number>();
  /** channel -> known (seq, message_id) pairs, ascending: where `after=` fetches start. */
  private readonly anchors = new Map<Uuid, [number, Uuid][]>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly listeners = new Map<string, Set<Listener<never>>>();
  private readonly statusWaiters = new Set<() => void>();
  private resuming: Resuming | null = null;
  /** Frames held while a resume's gaps are fetched. */
  private holding: ServerFrame[] | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private helloTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;
  private pingId = 0;
  private heartbeatEvery: number | undefined;
  private awaitedPong: number | undefined;
  private connecting: Promise<HelloFrame> | undefined;

  constructor(options: ClientOptions) {
    const url = options.url ?? (globalThis as { location?: { origin?: string } }).location?.origin;
    if (!url) throw new TypeError("no server URL: pass `url`");
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError("no WebSocket: this runtime has none; pass one as the `WebSocket` option (e.g. `ws`'s)");
    this.WS = WS;
    this.tokenValue = options.token;
    this.websocketUrl = websocketUrl(url);
    this.opts = {
      tokenProvider: options.tokenProvider,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      logger: options.logger,
      pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
      answerTimeoutMs: options.answerTimeoutMs ?? 10_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
      helloTimeoutMs: options.helloTimeoutMs ?? 15_000,
      resumeTimeoutMs: options.resumeTimeoutMs ?? 30_000,
      reconnectDelaysMs: options.reconnectDelaysMs?.length ? options.reconnectDelaysMs : DEFAULT_RECONNECT_DELAYS_MS,
      retryRateLimited: options.retryRateLimited ?? true,
      seedPositions: options.seedPositions ?? true,
      fillGaps: options.fillGaps ?? true,
      httpTimeoutMs: options.httpTimeoutMs ?? 15_000,
    };
    this.http = new ConfabHttp(url, options.token, { fetch: options.fetch, timeoutMs: this.opts.httpTimeoutMs });
  }

  // ---- state ----

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  /** Connected and caught up: frames can be sent. */
  get online(): boolean {
    return this.statusValue === "online" && this.ws !== null && this.ws.readyState === OPEN;
  }

  get userId(): Uuid | undefined {
    return this.hello?.user_id;
  }

  get workspaceId(): Uuid | undefined {
    return this.hello?.workspace_id;
  }

  /** Milliseconds between the pings of the current connection (from `hello.heartbeat_interval`,
   * which is in seconds, unless overridden). */
  get heartbeatMs(): number | undefined {
    return this.heartbeatEvery;
  }

  get token(): string {
    return this.tokenValue;
  }

  /** Uses another token from now on (the next connection, and HTTP at once). */
  setToken(token: string): void {
    this.tokenValue = token;
    this.http.token = token;
  }

  // ---- events ----

  /** Calls `fn` for each event of a kind (a frame `type`, or `frame`, `status`, `synced`,
   * `disconnected`); returns the function that stops it. */
  on<K extends keyof ClientEventMap>(event: K, fn: Listener<ClientEventMap[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => void set.delete(fn as Listener<never>);
  }

  /** The next event of a kind that `accept` takes, within `timeoutMs` (ConfabTimeoutError). */
  next<K extends keyof ClientEventMap>(event: K, accept: (value: ClientEventMap[K]) => boolean = () => true, timeoutMs = 30_000): Promise<ClientEventMap[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new ConfabTimeoutError(`no ${String(event)} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on(event, (v) => {
        if (!accept(v)) return;
        clearTimeout(timer);
        off();
        resolve(v);
      });
    });
  }

  private emit<K extends keyof ClientEventMap>(event: K, value: ClientEventMap[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<ClientEventMap[K]>)(value);
      } catch (e) {
        report(e);
      }
    }
  }

  private setStatus(s: ConnectionStatus): void {
    if (this.statusValue === s) return;
    this.statusValue = s;
    for (const w of [...this.statusWaiters]) w();
    this.emit("status", s);
  }

  // ---- positions (lossless resume) ----

  /** The caller has seen `channelId` up to `seq` otherwise (e.g. HTTP history): events up to it
   * are not delivered again, and a resume starts from at least there. */
  advance(channelId: Uuid, seq: number): void {
    if (seq > (this.seen.get(channelId) ?? -1)) {
      this.seen.delete(channelId);
      this.seen.set(channelId, seq);
    }
  }

  /** Stops tracking a channel (it is no longer named in `resume`). */
  forget(channelId: Uuid): void {
    this.seen.delete(channelId);
    this.floor.delete(channelId);
    this.anchors.delete(channelId);
  }

  /** The seq a resume would start after, for one channel. */
  position(channelId: Uuid): number | undefined {
    const a = this.seen.get(channelId);
    const b = this.floor.get(channelId);
    return a === undefined ? b : b === undefined ? a : Math.max(a, b);
  }

  /** channel_id -> the seq a resume would start after (at most MAX_RESUME_CHANNELS, the most
   * recently active kept). */
  positions(): Record<Uuid, number> {
    const merged = new Map<Uuid, number>();
    for (const [c, s] of this.floor) if (!this.seen.has(c)) merged.set(c, s);
    for (const [c, s] of this.seen) merged.set(c, Math.max(s, this.floor.get(c) ?? 0));
    let entries = [...merged];
    if (entries.length > MAX_RESUME_CHANNELS) {
      this.log("warn", `resuming only the ${MAX_RESUME_CHANNELS} most active of ${entries.length} channels`);
      entries = entries.slice(-MAX_RESUME_CHANNELS);
    }
    return Object.fromEntries(entries);
  }

  private remember(channelId: Uuid, seq: number, messageId: Uuid): void {
    let list = this.anchors.get(channelId);
    if (!list) this.anchors.set(channelId, (list = []));
    if (list.some(([s]) => s === seq)) return;
    list.push([seq, messageId]);
    list.sort((a, b) => a[0] - b[0]);
    if (list.length > ANCHORS_PER_CHANNEL) list.splice(0, list.length - ANCHORS_PER_CHANNEL);
  }

  /** The messages of `channelId` with `afterSeq < seq <= upToSeq` (no upper bound when
   * undefined), oldest first, over HTTP history: forward with `after=` from the newest message
   * the client knows at or before `afterSeq`, or backwards from the newest when it knows none.
   * History holds messages only (in their latest state), not reactions or other events, and
   * leaves out thread-only replies. */
  async fetchMissed(channelId: Uuid, afterSeq: number, upToSeq?: number, maxMessages = 10_000): Promise<MessageView[]> {
    const found = new Map<number, MessageView>();
    const anchor = [...(this.anchors.get(channelId) ?? [])].reverse().find(([s]) => s <= afterSeq);
    let seenCount = 0;
    if (anchor) {
      for await (const m of this.http.iterHistory(channelId, { after: anchor[1], pageSize: 200 })) {
        if ((upToSeq !== undefined && m.seq > upToSeq) || ++seenCount > maxMessages) break;
        if (m.seq > afterSeq) found.set(m.seq, m);
      }
    } else {
      for await (const m of this.http.iterHistory(channelId, { pageSize: 200 })) {
        if (m.seq <= afterSeq || ++seenCount > maxMessages) break;
        if (upToSeq === undefined || m.seq <= upToSeq) found.set(m.seq, m);
      }
    }
    return [...found.keys()].sort((a, b) => a - b).map((s) => found.get(s)!);
  }

  /** The messages of a `resume:done` gap (see fetchMissed for what history holds). */
  fetchGap(gap: ResumeGap): Promise<MessageView[]> {
    return this.fetchMissed(gap.channel_id, gap.from_seq - 1, gap.to_seq);
  }

  // ---- lifecycle ----

  /** Opens the connection and waits for its `hello` (and, with `seedPositions`, the channel
   * positions); rejects with ConfabAuthError for a refused token, ConfabTimeoutError after
   * `connectTimeoutMs`. Later drops are reconnected by themselves. Calling it again returns the
   * same promise. */
  connect(): Promise<HelloFrame> {
    if (this.connecting) return this.connecting;
    if (this.stopped) return Promise.reject(this.fatal ?? new ConfabClosedError());
    this.connecting = new Promise<HelloFrame>((resolve, reject) => {
      const timer = this.opts.connectTimeoutMs > 0 ? setTimeout(() => {
        done();
        const e = new ConfabTimeoutError(`could not connect to ${this.websocketUrl} within ${this.opts.connectTimeoutMs} ms`);
        this.shutdown(e);
        reject(e);
      }, this.opts.connectTimeoutMs) : undefined;
      const check = () => {
        if (this.statusValue === "online" && this.hello) {
          done();
          resolve(this.hello);
        } else if (this.stopped) {
          done();
          reject(this.fatal ?? new ConfabClosedError());
        }
      };
      const done = () => {
        clearTimeout(timer);
        this.statusWaiters.delete(check);
      };
      this.statusWaiters.add(check);
    });
    this.connecting.catch(() => {}); // the caller has it; no unhandled rejection from the copy
    this.setStatus("connecting");
    this.open();
    return this.connecting;
  }

  /** Closes the connection (1000); pending requests reject with ConfabClosedError. Safe twice. */
  close(): void {
    this.shutdown(undefined);
  }

  /** Drops the current connection at once, as a network failure would (no close handshake with
   * `ws`; a 4000 close with the browser's WebSocket); the client reconnects and resumes. */
  dropConnection(): void {
    if (this.ws) this.abandon(this.ws, "dropped on request");
  }

  private shutdown(error: ConfabError | undefined): void {
    if (this.stopped) return;
    this.stopped = true;
    this.fatal = error;
    clearTimeout(this.retryTimer);
    this.clearConnectionTimers();
    if (this.resuming) clearTimeout(this.resuming.timer);
    this.resuming = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try {
        ws.close(1000, "client closing");
      } catch {
        /* already closed */
      }
    }
    this.settleAll({ kind: "lost" });
    this.setStatus(error instanceof ConfabAuthError ? "unauthorized" : "closed");
    for (const w of [...this.statusWaiters]) w();
  }

  private log(level: "debug" | "info" | "warn", msg: string): void {
    this.opts.logger?.[level]?.(`confab: ${msg}`);
  }

  private open(): void {
    if (this.stopped) return;
    const positions = this.positions();
    const resume = this.everConnected && Object.keys(positions).length > 0;
    // the token rides in Sec-WebSocket-Protocol, so it stays out of URLs and access logs
    const url = resume ? `${this.websocketUrl}?resume=1` : this.websocketUrl;
    let ws: WebSocketLike;
    try {
      ws = new this.WS(url, ["confab", `bearer.${this.tokenValue}`]);
    } catch (e) {
      this.log("warn", `cannot open a WebSocket: ${(e as Error).message}`);
      this.retry();
      return;
    }
    this.ws = ws;
    let opened = false;
    this.helloTimer = setTimeout(() => this.abandon(ws, "no hello in time", opened), this.opts.helloTimeoutMs);
    ws.onopen = () => {
      opened = true;
    };
    ws.onerror = () => {
      // a close should follow, but some WebSockets (Node 20's undici after a refused upgrade)
      // never send it: give it a moment, then take the connection as gone
      setTimeout(() => this.ws === ws && this.abandon(ws, opened ? "socket error" : "refused", opened), opened ? 2000 : 50);
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (this.ws !== ws) return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(ev.data));
      } catch {
        this.log("warn", `ignoring a frame that is not JSON: ${String(ev.data).slice(0, 200)}`);
        return;
      }
      if (!frame || typeof frame !== "object" || typeof frame.type !== "string") return;
      this.receive(frame, ws, resume);
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (this.ws !== ws) return;
      this.ended(ws, opened, ev.code ?? 1006, ev.reason ?? "");
    };
  }

  /** Gives up on a connection without waiting for its close handshake. */
  private abandon(ws: WebSocketLike, reason: string, opened = true): void {
    if (this.ws !== ws) return;
    this.log("info", `dropping the connection: ${reason}`);
    try {
      if (typeof ws.terminate === "function") ws.terminate();
      else ws.close(4000, reason.slice(0, 100));
    } catch {
      /* already closing */
    }
    this.ended(ws, opened, opened ? 4000 : 1006, reason);
  }

  private clearConnectionTimers(): void {
    clearTimeout(this.helloTimer);
    clearInterval(this.heartbeat);
    clearTimeout(this.pongTimer);
    this.awaitedPong = undefined;
  }

  /** A connection ended: requests on it are lost, then reconnect (after checking the token when
   * it was refused or closed for it). */
  private ended(ws: WebSocketLike, opened: boolean, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.clearConnectionTimers();
    if (this.resuming?.ws === ws) {
      clearTimeout(this.resuming.timer);
      this.resuming = null; // its buffered replay was not delivered: the next resume replays it
    }
    this.settleAll({ kind: "lost" });
    if (this.stopped) return;
    const tokenClosed = code === CLOSE_TOKEN_EXPIRED || code === CLOSE_TOKEN_REVOKED;
    this.log("info", `connection closed (${code} ${reason || "no reason"})`);
    const final = tokenClosed && !this.opts.tokenProvider;
    this.emit("disconnected", { code, reason, reconnecting: !final });
    this.setStatus(this.everConnected ? "reconnecting" : "connecting");
    if (!opened || tokenClosed) {
      // refused before the upgrade (a browser does not show us the 401), or closed because the
      // token expired or was revoked: ask HTTP whether the token still works
      const closedFor = tokenClosed ? new ConfabAuthError(code === CLOSE_TOKEN_EXPIRED ? "token_expired" : "token_revoked", `the server closed the socket (${code} ${reason})`) : undefined;
      void this.checkAuth(closedFor).then((refusal) => (refusal ? this.shutdown(refusal) : this.retry()));
    } else {
      this.retry();
    }
  }

  /** Whether to give up: the refusal when the token does not work and no new one could be had,
   * undefined to try again (the token works, a new one was had, or the server is down). */
  private async checkAuth(closedFor: ConfabAuthError | undefined): Promise<ConfabAuthError | undefined> {
    let refusal = closedFor;
    if (!refusal) {
      try {
        await this.http.me();
        return undefined;
      } catch (e) {
        if (!(e instanceof ConfabAuthError)) return undefined; // the server is down: try again
        refusal = e;
      }
    }
    if (!this.opts.tokenProvider || this.refreshedToken) return refusal;
    try {
      this.refreshedToken = true;
      this.setToken(await this.opts.tokenProvider());
      return undefined;
    } catch (e) {
      this.log("warn", `the token provider failed: ${(e as Error)?.message ?? e}`);
      return refusal;
    }
  }

  private retry(): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const delays = this.opts.reconnectDelaysMs;
    const base = delays[Math.min(this.failedAttempts, delays.length - 1)]!;
    this.failedAttempts++;
    this.retryTimer = setTimeout(() => this.open(), base / 2 + (Math.random() * base) / 2);
  }

  private transmit(ws: WebSocketLike, frame: ClientFrame): boolean {
    if (ws.readyState !== OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  // ---- receiving ----

  private receive(frame: ServerFrame, ws: WebSocketLike, resume: boolean): void {
    switch (frame.type) {
      case "hello":
        this.onHello(frame, ws, resume);
        return;
      case "pong":
        if (frame.id === undefined || frame.id === this.awaitedPong) {
          clearTimeout(this.pongTimer);
          this.awaitedPong = undefined;
        }
        return;
      case "resume:done":
        if (this.resuming?.ws === ws) void this.finishResume(this.resuming, frame, false);
        return;
      case "message:ack":
      case "ok": {
        if (frame.type === "message:ack") this.remember(frame.channel_id, frame.seq, frame.message_id);
        if (this.settle(frame.client_msg_id, { kind: "answer", frame })) return;
        break;
      }
      case "error":
        if (frame.client_msg_id !== undefined && this.settle(frame.client_msg_id, { kind: "answer", frame })) return;
        if (frame.client_msg_id === undefined && this.resuming?.ws === ws) {
          // the resume frame has no client_msg_id: an id-less error now answers it
          this.log("warn", `the server could not resume (${frame.code}: ${frame.message})`);
          void this.finishResume(this.resuming, undefined, true);
          return;
        }
        break;
    }
    this.deliver(frame);
  }

  private onHello(frame: HelloFrame, ws: WebSocketLike, resume: boolean): void {
    clearTimeout(this.helloTimer);
    const first = !this.everConnected;
    this.hello = frame;
    this.connectionCount++;
    this.failedAttempts = 0;
    this.refreshedToken = false;
    this.startHeartbeat(ws, frame.heartbeat_interval);
    if (resume) {
      const positions = this.positions();
      this.resuming = {
        ws,
        positions,
        buffer: [],
        timer: setTimeout(() => this.abandon(ws, "no resume:done in time"), this.opts.resumeTimeoutMs),
      };
      this.transmit(ws, { type: "resume", channels: positions });
      this.log("info", `reconnected; resuming ${Object.keys(positions).length} channels`);
      this.emitFrame(frame);
      return;
    }
    this.emitFrame(frame);
    const online = () => {
      if (this.ws !== ws) return;
      this.everConnected = true;
      this.setStatus("online");
      this.emit("synced", { resumed: false, failed: false, gaps: [], notMembers: [], filled: 0 });
    };
    if (first && this.opts.seedPositions) void this.seedPositions().then(online);
    else online();
  }

  /** Every member channel's `last_seq`, so a later resume names channels that had no event on
   * the socket yet. */
  private async seedPositions(): Promise<void> {
    try {
      for (const c of await this.http.channels()) {
        if (c.is_member && typeof c.last_seq === "number" && c.last_seq > (this.floor.get(c.channel_id) ?? -1)) this.floor.set(c.channel_id, c.last_seq);
      }
    } catch (e) {
      this.log("warn", `cannot list channels to resume them later: ${(e as Error)?.message ?? e}`);
    }
  }

  private startHeartbeat(ws: WebSocketLike, intervalSecs: number): void {
    clearInterval(this.heartbeat);
    let ms = this.opts.heartbeatIntervalMs;
    if (ms === undefined) {
      let secs = Number(intervalSecs) || 30;
      if (secs >= 1000) secs /= 1000; // the contract says seconds; a value this large is milliseconds
      ms = Math.max(1, secs) * 1000;
    }
    this.heartbeatEvery = ms;
    this.heartbeat = setInterval(() => {
      if (this.ws !== ws || ws.readyState !== OPEN) return;
      if (this.awaitedPong !== undefined) return; // the previous ping's deadline is running
      this.awaitedPong = ++this.pingId;
      this.transmit(ws, { type: "ping", id: this.pingId });
      // no pong: the connection is dead even if the socket has not noticed
      this.pongTimer = setTimeout(() => this.abandon(ws, "no pong"), this.opts.pongTimeoutMs);
    }, ms);
  }

  private async finishResume(r: Resuming, done: ResumeDoneFrame | undefined, failed: boolean): Promise<void> {
    clearTimeout(r.timer);
    if (this.resuming === r) this.resuming = null;
    let gaps: ResumeGap[] = done?.gaps ?? [];
    let filled = 0;
    if (done) this.lastResume = done;
    if (this.opts.fillGaps) {
      // hold what comes next until the gaps are in: the replay and the gaps' messages go out in
      // seq order per channel, then the held live frames
      const own = !this.holding;
      if (own) this.holding = [];
      const fill: ResumeGap[] = failed ? Object.entries(r.positions).map(([channel_id, s]) => ({ channel_id, from_seq: s + 1, to_seq: Number.MAX_SAFE_INTEGER })) : gaps;
      const extra: ServerFrame[] = [];
      for (const g of fill) {
        try {
          const msgs = await this.fetchMissed(g.channel_id, g.from_seq - 1, g.to_seq === Number.MAX_SAFE_INTEGER ? undefined : g.to_seq);
          for (const m of msgs) extra.push(messageNewFrame(m));
        } catch (e) {
          this.log("warn", `cannot fetch the gap ${g.from_seq}-${g.to_seq} of ${g.channel_id}: ${(e as Error)?.message ?? e}`);
        }
      }
      const fromHttp = new Set(extra);
      for (const f of orderBySeq([...r.buffer, ...extra])) if (this.deliverNow(f) && fromHttp.has(f)) filled++;
      if (failed) gaps = [];
      this.afterResume(done);
      if (this.ws === r.ws) {
        this.everConnected = true;
        this.setStatus("online");
      }
      this.emit("synced", { resumed: !failed, failed, gaps, notMembers: done?.not_members ?? [], filled });
      if (own) {
        const held = this.holding ?? [];
        this.holding = null;
        for (const f of held) this.deliver(f);
      }
      return;
    }
    this.afterResume(done);
    if (this.ws === r.ws) {
      this.everConnected = true;
      this.setStatus("online");
    }
    this.emit("synced", { resumed: !failed, failed, gaps, notMembers: done?.not_members ?? [], filled: 0 });
  }

  private afterResume(done: ResumeDoneFrame | undefined): void {
    if (!done) return;
    for (const [ch, seq] of Object.entries(done.channels ?? {})) this.advance(ch, seq);
    for (const ch of done.not_members ?? []) this.forget(ch);
    if (done.gaps?.length) this.log(this.opts.fillGaps ? "info" : "warn", `resume left ${done.gaps.length} gap(s)`);
  }

  /** Delivers a frame now, or keeps it while a resume's replay is buffered or gaps are filled. */
  private deliver(frame: ServerFrame): void {
    if (this.opts.fillGaps && this.resuming) {
      this.resuming.buffer.push(frame);
      return;
    }
    if (this.holding) {
      this.holding.push(frame);
      return;
    }
    this.deliverNow(frame);
  }

  /** Hands a frame to the listeners unless it is a channel event delivered already. */
  private deliverNow(frame: ServerFrame): boolean {
    const at = eventPosition(frame);
    if (at) {
      const [ch, seq] = at;
      if (seq <= (this.seen.get(ch) ?? 0)) {
        this.duplicatesDropped++;
        return false;
      }
      this.seen.delete(ch); // re-inserted last: most recently active
      this.seen.set(ch, seq);
      if (frame.type === "message:new") this.remember(ch, seq, frame.message.message_id);
    }
    this.emitFrame(frame);
    if (frame.type === "channel:left" && frame.user_id === this.userId) this.forget(frame.channel_id);
    return true;
  }

  private emitFrame(frame: ServerFrame): void {
    this.emit("frame", frame);
    this.emit(frame.type as ServerFrameType, frame as never);
  }

  // ---- requests ----

  private settle(clientMsgId: string, outcome: Outcome): boolean {
    const set = this.waiters.get(clientMsgId);
    if (!set?.size) return false;
    for (const w of [...set]) w.settle(outcome);
    return true;
  }

  private settleAll(outcome: Outcome): void {
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w.settle(outcome);
  }

  /** Sends a frame as it is if online (no answer awaited): typing, presence, read markers.
   * False when not online (nothing sent). */
  sendFrame(frame: ClientFrame): boolean {
    return this.online && this.transmit(this.ws!, frame);
  }

  /** Posts a message; resolves with its `message:ack` (message_id, seq, ts) once committed.
   * Retried with the same `client_msg_id` after a drop, an unanswered attempt or
   * `rate_limited`: the message exists once whatever happens. Rejects with a ConfabError with
   * the server's code (`not_a_member`, `empty_text`, ...), or ConfabTimeoutError. */
  send(channelId: Uuid, text: string, opts: SendOptions & RequestOptions = {}): Promise<MessageAckFrame> {
    const frame: MessageSendFrame = { type: "message:send", channel_id: channelId, text, client_msg_id: opts.clientMsgId ?? newClientMsgId() };
    if (opts.threadTs) {
      frame.thread_ts = opts.threadTs;
      if (opts.alsoSendToChannel !== undefined) frame.also_send_to_channel = opts.alsoSendToChannel;
    }
    if (opts.fileIds?.length) frame.file_ids = [...opts.fileIds];
    return this.request(frame, opts) as Promise<MessageAckFrame>;
  }

  /** Sends a command and resolves with its `ok` (a `client_msg_id` is added if it has none). */
  command(frame: CommandFrame, opts: RequestOptions = {}): Promise<OkFrame> {
    const withId = { ...frame, client_msg_id: frame.client_msg_id ?? newClientMsgId() } as CommandFrame & { client_msg_id: string };
    return this.request(withId, opts) as Promise<OkFrame>;
  }

  /** Replaces the text of your own message (`message:edited` to every member). */
  edit(channelId: Uuid, messageId: Uuid, text: string, opts?: RequestOptions): Promise<OkFrame> {
    return this.command({ type: "message:edit", channel_id: channelId, message_id: messageId, text }, opts);
  }

  /** Deletes your own message (a tombstone stays). Not resent after a drop unless asked. */
  deleteMessage(channelId: Uuid, messageId: Uuid, opts?: RequestOptions): Promise<OkFrame> {
    return this.command({ type: "message:delete", channel_id: channelId, message_id: messageId }, opts);
  }

  /** Adds (or with `remove`, takes back) your reaction; `emoji` is a name without spaces or colons. */
  react(channelId: Uuid, messageId: Uuid, emoji: string, remove = false, opts?: RequestOptions): Promise<OkFrame> {
    return this.command({ type: remove ? "reaction:remove" : "reaction:add", channel_id: channelId, message_id: messageId, emoji }, opts);
  }

  /** You have read `channelId` up to `seq` (your other connections get `channel:marked`). */
  markRead(channelId: Uuid, seq: number, opts?: RequestOptions): Promise<OkFrame> {
    return this.command({ type: "channel:mark", channel_id: channelId, seq }, opts);
  }

  /** Joins a public channel. */
  join(channelId: Uuid, opts?: RequestOptions): Promise<OkFrame> {
    return this.command({ type: "channel:join", channel_id: channelId }, opts);
  }

  /** Creates a channel you are in; the answer's `channel_id` is the new channel's. */
  createChannel(name: string, o: { isPrivate?: boolean; members?: Uuid[] } & RequestOptions = {}): Promise<OkFrame> {
    return this.command({ type: "channel:create", name, is_private: o.isPrivate ?? false, members: o.members ?? [] }, o);
  }

  /** Opens (or finds) the DM with 1-7 other people; the answer's `channel_id` is the DM's. */
  openDm(userIds: Uuid[], opts?: RequestOptions): Promise<OkFrame> {
    return this.command({ type: "dm:open", user_ids: userIds }, opts);
  }

  renameChannel(channelId: Uuid, name: string, opts?: RequestOptions): Promise<OkFrame> {
    return this.command({ type: "channel:rename", channel_id: channelId, name }, opts);
  }

  /** Archives (read-only) or, with `archived` false, restores a channel. */
  archiveChannel(channelId: Uuid, archived = true, opts?: RequestOptions): Promise<OkFrame> {
    return this.command({ type: "channel:archive", channel_id: channelId, archived }, opts);
  }

  leaveChannel(channelId: Uuid, opts?: RequestOptions): Promise<OkFrame> {
    return this.command({ type: "channel:leave", channel_id: channelId }, opts);
  }

  invite(channelId: Uuid, userId: Uuid, opts?: RequestOptions): Promise<OkFrame> {
    return this.command({ type: "channel:invite", channel_id: channelId, user_id: userId }, opts);
  }

  /** Removes someone from a channel (its creator only). */
  kick(channelId: Uuid, userId: Uuid, opts?: RequestOptions): Promise<OkFrame> {
    return this.command({ type: "channel:kick", channel_id: channelId, user_id: userId }, opts);
  }

  pin(channelId: Uuid, messageId: Uuid, pinned = true, opts?: RequestOptions): Promise<OkFrame> {
    return this.command({ type: "message:pin", channel_id: channelId, message_id: messageId, pinned }, opts);
  }

  /** Says you are typing in `channelId` (repeat every few seconds while typing). Never answered;
   * false when not online. */
  typing(channelId: Uuid): boolean {
    return this.sendFrame({ type: "typing:start", channel_id: channelId });
  }

  /** `away` or `active` on this device (disconnecting is `offline`). Never answered. */
  setPresence(status: "active" | "away"): boolean {
    return this.sendFrame({ type: "presence:set", status });
  }

  /** Sends `frame` until it is answered (ack or ok), refused (error), or the deadline passes.
   * Resends after `rate_limited`/`unavailable` (which never reach the log) with a backoff and,
   * when the outcome is unknown (a drop, no answer in time), if `resendWhenOutcomeUnknown`. */
  private async request(frame: (MessageSendFrame | CommandFrame) & { client_msg_id: string }, opts: RequestOptions): Promise<MessageAckFrame | OkFrame> {
    const id = frame.client_msg_id;
    const resend = opts.resendWhenOutcomeUnknown ?? IDEMPOTENT.has(frame.type);
    const timeoutMs = opts.timeoutMs ?? this.opts.requestTimeoutMs;
    const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Infinity;
    const bytes = new TextEncoder().encode(JSON.stringify(frame)).length;
    if (bytes > MAX_FRAME_BYTES) {
      // the server's frame_too_large would not name the client_msg_id: refuse it here
      throw new ConfabError("frame_too_large", `the frame is ${bytes} bytes; the limit is ${MAX_FRAME_BYTES}`, { clientMsgId: id, retryable: false });
    }
    let backoff = 250;
    for (;;) {
      const ws = await this.waitOnline(deadline, opts.signal, frame.type);
      const outcome = await this.attempt(ws, frame, Math.min(this.opts.answerTimeoutMs, deadline - Date.now()), opts.signal);
      if (outcome.kind === "lost") {
        if (this.stopped) throw this.fatal ?? new ConfabClosedError();
        if (!resend) throw new ConfabConnectionError(`the connection dropped before ${frame.type} was answered; it may or may not have been applied`, { clientMsgId: id });
        this.log("info", `connection lost before the answer to ${frame.type} ${id}; resending after reconnect`);
        continue;
      }
      if (outcome.kind === "timeout") {
        if (Date.now() >= deadline) throw new ConfabTimeoutError(`no answer to ${frame.type} in time`, { clientMsgId: id });
        this.log("warn", `no answer to ${frame.type} ${id} within ${this.opts.answerTimeoutMs} ms; reconnecting`);
        this.abandon(ws, "a request went unanswered");
        if (!resend) throw new ConfabTimeoutError(`no answer to ${frame.type}; it may or may not have been applied`, { clientMsgId: id });
        continue;
      }
      const answer = outcome.frame;
      if (answer.type === "error") {
        const err = ConfabError.fromFrame(answer);
        if (RESEND_CODES.has(answer.code) && this.opts.retryRateLimited) {
          const delay = backoff * (0.5 + Math.random() / 2);
          if (Date.now() + delay >= deadline) throw err;
          this.log("info", `${frame.type} ${id} refused with ${answer.code}; resending in ${Math.round(delay)} ms`);
          await sleep(delay, opts.signal);
          backoff = Math.min(backoff * 2, 5000);
          continue;
        }
        throw err;
      }
      return answer;
    }
  }

  /** One attempt: registers for the answer, sends, waits for the answer, a drop or the time. */
  private attempt(ws: WebSocketLike, frame: ClientFrame & { client_msg_id: string }, waitMs: number, signal?: AbortSignal): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      const id = frame.client_msg_id;
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      const waiter: Waiter = {
        settle: (o) => {
          finish();
          resolve(o);
        },
      };
      const onAbort = () => {
        finish();
        reject(new ConfabClosedError("the request was aborted", { code: "aborted", clientMsgId: id }));
      };
      const timer = setTimeout(() => waiter.settle({ kind: "timeout" }), Math.max(1, waitMs));
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        set!.delete(waiter);
        if (!set!.size && this.waiters.get(id) === set) this.waiters.delete(id);
      };
      set.add(waiter);
      signal?.addEventListener("abort", onAbort);
      if (!this.transmit(ws, frame)) waiter.settle({ kind: "lost" });
    });
  }

  /** The open socket once online; rejects at the deadline, on close, or when aborted. */
  private waitOnline(deadline: number, signal: AbortSignal | undefined, what: string): Promise<WebSocketLike> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = () => {
        clearTimeout(timer);
        this.statusWaiters.delete(check);
        signal?.removeEventListener("abort", check);
      };
      const check = () => {
        if (signal?.aborted) {
          finish();
          reject(new ConfabClosedError("the request was aborted", { code: "aborted" }));
        } else if (this.stopped) {
          finish();
          reject(this.fatal ?? new ConfabClosedError());
        } else if (this.online) {
          finish();
          resolve(this.ws!);
        } else if (Date.now() >= deadline) {
          finish();
          reject(new ConfabTimeoutError(`not connected in time to send ${what}`));
        }
      };
      this.statusWaiters.add(check);
      signal?.addEventListener("abort", check);
      if (deadline !== Infinity) timer = setTimeout(check, Math.max(0, deadline - Date.now()) + 1);
      check();
    });
  }
}

/** Channel frames in seq order per channel (channels in order of first appearance), then the
 * others in their order. */
function orderBySeq(frames: ServerFrame[]): ServerFrame[] {
  const channelOrder = new Map<Uuid, number>();
  const withSeq: { f: ServerFrame; ch: number; seq: number; i: number }[] = [];
  const rest: ServerFrame[] = [];
  frames.forEach((f, i) => {
    const at = eventPosition(f);
    if (!at) return void rest.push(f);
    if (!channelOrder.has(at[0])) channelOrder.set(at[0], channelOrder.size);
    withSeq.push({ f, ch: channelOrder.get(at[0])!, seq: at[1], i });
  });
  withSeq.sort((a, b) => a.ch - b.ch || a.seq - b.seq || a.i - b.i);
  return [...withSeq.map((x) => x.f), ...rest];
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new ConfabClosedError("the request was aborted", { code: "aborted" }));
    const onAbort = () => {
      clearTimeout(t);
      reject(new ConfabClosedError("the request was aborted", { code: "aborted" }));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
