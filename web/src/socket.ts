// The WebSocket connection: heartbeat, reconnect with backoff, lossless resume and dedupe.
//
// Every event that carries a channel seq is delivered at most once per (channel_id, seq): the
// socket keeps, per channel, the highest seq it has handed on (or that the page told it it has
// already seen through HTTP history). After a drop it reconnects with `?resume=1` and sends
// `resume` with those positions; the server replays what came after them, then `resume:done`.

import type { ClientFrame, ResumeGap, ServerFrame, Uuid } from "./types";

export type SocketStatus = "connecting" | "online" | "reconnecting" | "unauthorized";

export interface SocketHandlers {
  /** An event, deduplicated by (channel_id, seq). */
  onFrame(frame: ServerFrame): void;
  onStatus(status: SocketStatus): void;
  /** After `resume:done` (reconnect) or `hello` (first connect): the socket is caught up. */
  onSynced(info: { resumed: boolean; gaps: ResumeGap[]; notMembers: Uuid[]; failed: boolean }): void;
  /** The socket was refused, or closed for its token: is the token still good? (false: stop) */
  checkAuth(): Promise<boolean>;
}

const BACKOFF_MS = [250, 500, 1000, 2000, 3000, 5000];
const PONG_TIMEOUT_MS = 10_000;
/** Close codes the server uses when the token stops being good (docs/asyncapi.yaml). */
const CLOSE_TOKEN_EXPIRED = 4001;
const CLOSE_TOKEN_REVOKED = 4003;

/** Channel and seq of an event, if it has them. */
function seqOf(f: ServerFrame): [Uuid, number] | null {
  if (f.type === "message:new") return [f.message.channel_id, f.message.seq];
  // acks, oks and read markers carry a seq but are answers, not the channel's events: the
  // event itself (message:new, ...) follows and must not be taken for a duplicate
  if (f.type === "message:ack" || f.type === "channel:marked" || f.type === "ok" || f.type === "error") return null;
  const any = f as { channel_id?: Uuid; seq?: number };
  return any.channel_id && typeof any.seq === "number" ? [any.channel_id, any.seq] : null;
}

export class Socket {
  private ws: WebSocket | null = null;
  private readonly positions = new Map<Uuid, number>();
  private attempt = 0;
  private everConnected = false;
  private resuming = false;
  private heartbeat: number | undefined;
  private pongDeadline: number | undefined;
  private retryTimer: number | undefined;
  private stopped = false;
  status: SocketStatus = "connecting";

  constructor(private readonly url: string, private readonly token: string, private readonly h: SocketHandlers) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.clearHeartbeat();
    this.ws?.close(1000);
    this.ws = null;
  }

  /** The page has seen `channel` up to `seq` (from HTTP): resume from at least there. */
  advance(channel: Uuid, seq: number): void {
    if (seq > (this.positions.get(channel) ?? -1)) this.positions.set(channel, seq);
  }

  forget(channel: Uuid): void {
    this.positions.delete(channel);
  }

  position(channel: Uuid): number | undefined {
    return this.positions.get(channel);
  }

  get online(): boolean {
    return this.status === "online";
  }

  /** Sends a frame if the socket is open; false otherwise (the caller decides what to do). */
  send(frame: ClientFrame): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.status !== "online") return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  private setStatus(s: SocketStatus): void {
    if (this.status === s) return;
    this.status = s;
    this.h.onStatus(s);
  }

  private connect(): void {
    if (this.stopped) return;
    const resume = this.everConnected && this.positions.size > 0;
    // the token rides in Sec-WebSocket-Protocol, so it stays out of URLs and access logs
    const url = resume ? `${this.url}?resume=1` : this.url;
    const ws = new WebSocket(url, ["confab", `bearer.${this.token}`]);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      this.receive(frame, resume);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.clearHeartbeat();
      if (this.stopped) return;
      this.resuming = false;
      if (!opened || ev.code === CLOSE_TOKEN_EXPIRED || ev.code === CLOSE_TOKEN_REVOKED) {
        // refused before the upgrade (a bad token gets 401, which the browser does not show us),
        // or closed because the token expired or was revoked
        this.h.checkAuth().then((ok) => (ok ? this.retry() : this.setStatus("unauthorized")), () => this.retry());
      } else {
        this.retry();
      }
    };
  }

  private retry(): void {
    if (this.stopped) return;
    this.setStatus(this.everConnected ? "reconnecting" : "connecting");
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt++;
    const delay = base / 2 + Math.random() * base / 2;
    this.retryTimer = window.setTimeout(() => this.connect(), delay);
  }

  private receive(frame: ServerFrame, resume: boolean): void {
    switch (frame.type) {
      case "hello": {
        this.attempt = 0;
        this.startHeartbeat(frame.heartbeat_interval);
        if (resume) {
          this.resuming = true;
          this.ws?.send(JSON.stringify({ type: "resume", channels: Object.fromEntries([...this.positions].slice(0, 2000)) }));
          this.h.onFrame(frame);
        } else {
          this.everConnected = true;
          this.setStatus("online");
          this.h.onFrame(frame);
          this.h.onSynced({ resumed: false, gaps: [], notMembers: [], failed: false });
        }
        return;
      }
      case "pong":
        clearTimeout(this.pongDeadline);
        return;
      case "resume:done":
        for (const [ch, seq] of Object.entries(frame.channels)) this.advance(ch, seq);
        for (const ch of frame.not_members) this.positions.delete(ch);
        this.finishResume({ resumed: true, gaps: frame.gaps, notMembers: frame.not_members, failed: false });
        return;
      case "error":
        if (this.resuming && !frame.client_msg_id) {
          // the server could not replay: the page refetches over HTTP instead
          this.finishResume({ resumed: false, gaps: [], notMembers: [], failed: true });
          return;
        }
        break;
    }
    const at = seqOf(frame);
    if (at) {
      const [ch, seq] = at;
      if (seq <= (this.positions.get(ch) ?? 0)) return; // seen already
      this.positions.set(ch, seq);
    }
    this.h.onFrame(frame);
  }

  private finishResume(info: { resumed: boolean; gaps: ResumeGap[]; notMembers: Uuid[]; failed: boolean }): void {
    this.resuming = false;
    this.everConnected = true;
    this.setStatus("online");
    this.h.onSynced(info);
  }

  private startHeartbeat(intervalSecs: number): void {
    this.clearHeartbeat();
    const every = Math.max(5, intervalSecs || 30) * 1000;
    this.heartbeat = window.setInterval(() => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify({ type: "ping" }));
      clearTimeout(this.pongDeadline);
      // no pong: the connection is dead even if the browser has not noticed
      this.pongDeadline = window.setTimeout(() => this.abandon(ws), PONG_TIMEOUT_MS);
    }, every);
  }

  /** Gives up on a socket that stopped answering, without waiting for its close handshake. */
  private abandon(ws: WebSocket): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.resuming = false;
    this.clearHeartbeat();
    ws.close(4000, "no pong");
    this.retry();
  }

  private clearHeartbeat(): void {
    clearInterval(this.heartbeat);
    clearTimeout(this.pongDeadline);
  }
}
