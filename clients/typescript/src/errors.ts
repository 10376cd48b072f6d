// Typed errors: every refusal from Confab (an `error` frame, an HTTP error body
// `{"error":{"code","message"}}`) becomes a ConfabError carrying the server's `code`; failures on
// the client's side (the network, a deadline, a closed client, a refused token) are subclasses
// with codes of their own. `retryable` says whether the same request may succeed later.

import type { ErrorCode, ErrorFrame } from "./frames.js";

/** Codes whose command never reached the event log, so sending it again is safe and may work
 * later: `rate_limited` (slow down first) and `unavailable` (the log could not be written). */
export const RETRYABLE_CODES: ReadonlySet<string> = new Set(["rate_limited", "unavailable", "resume_unavailable", "too_many_connections"]);

/** Codes that mean the token no longer works: get a new one before connecting again. */
export const AUTH_CODES: ReadonlySet<string> = new Set(["unauthorized", "token_expired", "token_revoked", "user_deactivated", "workspace_deleted"]);

/** WebSocket close codes the server uses when the token stops working (docs/asyncapi.yaml). */
export const CLOSE_TOKEN_EXPIRED = 4001;
export const CLOSE_TOKEN_REVOKED = 4003;

/** The client's own codes, beside the server's `ErrorCode`s. */
export type ClientErrorCode = "network" | "connection_lost" | "timeout" | "closed" | "aborted" | `http_${number}`;

export interface ConfabErrorOptions {
  /** The HTTP status, for an HTTP answer (0: the server could not be reached). */
  status?: number;
  /** The `client_msg_id` of the command this answers. */
  clientMsgId?: string;
  /** Overrides the default (`RETRYABLE_CODES`, or an HTTP status of 500 and above). */
  retryable?: boolean;
  cause?: unknown;
}

/** An error Confab answered with, or one of the client's own (see the subclasses).
 * `message` is the server's text as it is, maybe empty (the code is in `code`; `toString()`
 * shows both). */
export class ConfabError extends Error {
  override name = "ConfabError";
  readonly code: ErrorCode | ClientErrorCode | (string & {});
  readonly status: number | undefined;
  readonly clientMsgId: string | undefined;
  private readonly explicitRetryable: boolean | undefined;

  constructor(code: string, message = "", opts: ConfabErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.status = opts.status;
    this.clientMsgId = opts.clientMsgId;
    this.explicitRetryable = opts.retryable;
  }

  /** Whether repeating the same request may succeed. */
  get retryable(): boolean {
    if (this.explicitRetryable !== undefined) return this.explicitRetryable;
    return RETRYABLE_CODES.has(this.code) || (this.status !== undefined && this.status >= 500);
  }

  override toString(): string {
    return `${this.name}: ${this.code}${this.message ? `: ${this.message}` : ""}`;
  }

  /** An `error` frame (`{"type":"error","code","message","client_msg_id"}`). */
  static fromFrame(frame: Pick<ErrorFrame, "code" | "message" | "client_msg_id">): ConfabError {
    const code = String(frame.code ?? "internal");
    const message = String(frame.message ?? "");
    const opts = { clientMsgId: frame.client_msg_id };
    return AUTH_CODES.has(code) ? new ConfabAuthError(code, message, opts) : new ConfabError(code, message, opts);
  }

  /** An HTTP error answer: `{"error":{"code","message"}}`, or whatever came instead. */
  static fromHttp(status: number, body: unknown, fallbackMessage = ""): ConfabError {
    const err = body && typeof body === "object" ? (body as { error?: unknown }).error : undefined;
    let code = `http_${status}`;
    let message = fallbackMessage;
    if (err && typeof err === "object" && "code" in err) {
      code = String((err as { code: unknown }).code);
      message = String((err as { message?: unknown }).message ?? "");
    }
    if (status === 401 || AUTH_CODES.has(code)) return new ConfabAuthError(code, message, { status });
    return new ConfabError(code, message, { status });
  }
}

/** The token was refused, expired or revoked (HTTP 401, close 4001/4003): not retryable with
 * the same token. */
export class ConfabAuthError extends ConfabError {
  override name = "ConfabAuthError";
  override get retryable(): boolean {
    return false;
  }
}

/** The server could not be reached (`network`, HTTP), or the connection dropped before an
 * answer came (`connection_lost`). For a command other than `message:send` (which the server
 * deduplicates by `client_msg_id`) the outcome is then unknown: it may or may not have been
 * applied. */
export class ConfabConnectionError extends ConfabError {
  override name = "ConfabConnectionError";
  constructor(message: string, opts: ConfabErrorOptions & { code?: "network" | "connection_lost" } = {}) {
    super(opts.code ?? "connection_lost", message, { ...opts, retryable: true });
  }
}

/** No answer (or no connection) within the deadline. */
export class ConfabTimeoutError extends ConfabError {
  override name = "ConfabTimeoutError";
  constructor(message: string, opts: ConfabErrorOptions = {}) {
    super("timeout", message, { ...opts, retryable: true });
  }
}

/** The client was closed (`close()`), or the request's AbortSignal fired (`aborted`). */
export class ConfabClosedError extends ConfabError {
  override name = "ConfabClosedError";
  constructor(message = "the client is closed", opts: ConfabErrorOptions & { code?: "closed" | "aborted" } = {}) {
    super(opts.code ?? "closed", message, { ...opts, retryable: false });
  }
}
