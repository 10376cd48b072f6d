// @confab/client: Confab's client for browsers and Node.js (>= 20). ConfabClient keeps one
// WebSocket alive and resumes it losslessly; ConfabHttp is the HTTP API; frames.ts holds the
// types of every frame, generated from docs/asyncapi.yaml; errors are ConfabErrors with codes.

export * from "./frames.js";
export * from "./errors.js";
export * from "./types.js";
export { ConfabHttp, httpBaseUrl, MAX_CHANNEL_PAGES, MAX_PRESENCE_USERS, type FetchLike, type HistoryOptions, type HttpOptions } from "./http.js";
export {
  ConfabClient,
  DEFAULT_RECONNECT_DELAYS_MS,
  MAX_FRAME_BYTES,
  MAX_RESUME_CHANNELS,
  eventPosition,
  messageNewFrame,
  newClientMsgId,
  websocketUrl,
  type ClientEventMap,
  type ClientOptions,
  type CommandFrame,
  type Logger,
  type RequestOptions,
  type SendOptions,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./client.js";
