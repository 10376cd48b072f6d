// The Confab wire types the page uses (README "The WebSocket protocol", docs/asyncapi.yaml).

export type Uuid = string;
export type ChannelKind = "public" | "private" | "dm" | "group_dm";
export type PresenceStatus = "active" | "away" | "offline";

/** A file attached to a message (rendered by attachments.ts). */
export interface Attachment {
  file_id: Uuid;
  name: string;
  size: number;
  content_type: string;
  /** Page-side: the file was revoked (`file:deleted`, or 410 when asked for its URL). */
  deleted?: boolean;
}

/** `POST /api/files`: where and how to upload the bytes. */
export interface UploadGrant {
  file_id: Uuid;
  upload: { url: string; method: string; headers: Record<string, string> };
  upload_token: string;
  expires_at: number;
}

/** `GET /api/files/{id}`: the file and a short-lived download URL (`expires_at` in seconds). */
export interface FileInfo extends Attachment {
  channel_id: Uuid;
  uploader: Uuid;
  created_at: number;
  url: string;
  expires_at: number;
}

export interface ThreadSummary {
  reply_count: number;
  reply_users: Uuid[];
  last_reply_at?: number;
}

export interface Message {
  workspace_id?: Uuid;
  channel_id: Uuid;
  message_id: Uuid;
  seq: number;
  user_id: Uuid;
  text: string;
  ts: number;
  client_msg_id?: string;
  thread_ts?: Uuid | null;
  edited_at?: number;
  deleted?: boolean;
  reactions?: Record<string, Uuid[]>;
  also_in_channel?: boolean;
  pinned?: boolean;
  thread?: ThreadSummary;
  attachments?: Attachment[];
}

export interface Channel {
  channel_id: Uuid;
  name: string;
  kind: ChannelKind;
  is_private: boolean;
  archived: boolean;
  is_member: boolean;
  member_count: number;
  members?: Uuid[];
  created_by?: Uuid;
  created_at?: number;
  last_read_seq?: number;
  unread_count?: number;
  mention_count?: number;
  /** The channel's newest event seq (see web/API-NOTES.md); used when present. */
  last_seq?: number;
}

export interface User {
  user_id: Uuid;
  name: string;
}

export interface Me {
  user_id: Uuid;
  workspace_id: Uuid;
  channels: Uuid[];
}

export interface HistoryPage {
  messages: Message[];
  next_cursor?: string | null;
  next_after?: string | null;
}

export interface RepliesPage {
  parent: Message;
  replies: Message[];
  next_after?: string | null;
}

export interface SearchHit {
  message_id: Uuid;
  channel_id: Uuid;
  channel_name: string;
  user_id: Uuid;
  ts: number;
  text: string;
  thread_ts: Uuid | null;
  score: number;
  /** HTML-escaped text with the matches wrapped in <em>. */
  highlight: string;
}

export interface SearchResult {
  total: number;
  messages: SearchHit[];
  next_offset: number | null;
}

export interface ResumeGap {
  channel_id: Uuid;
  from_seq: number;
  to_seq: number;
}

/** Frames the server sends (only the fields the page reads). */
export type ServerFrame =
  | { type: "hello"; conn_id: string; heartbeat_interval: number; user_id: Uuid; workspace_id: Uuid }
  | { type: "pong" }
  | { type: "message:ack"; client_msg_id: string; channel_id: Uuid; message_id: Uuid; seq: number; ts: number }
  | { type: "message:new"; message: Message }
  | { type: "message:edited"; channel_id: Uuid; message_id: Uuid; text: string; edited_at: number; seq: number; user_id: Uuid }
  | { type: "message:deleted"; channel_id: Uuid; message_id: Uuid; seq: number }
  | { type: "reaction:added" | "reaction:removed"; channel_id: Uuid; message_id: Uuid; emoji: string; user_id: Uuid; users: Uuid[]; seq: number }
  | { type: "message:pinned"; channel_id: Uuid; message_id: Uuid; pinned: boolean; seq: number }
  | { type: "typing"; channel_id: Uuid; user_id: Uuid; expires_in_ms: number }
  | { type: "channel:created"; channel_id: Uuid; name: string; is_private: boolean; kind: ChannelKind; members: Uuid[]; member_count: number; seq: number }
  | { type: "channel:joined"; channel_id: Uuid; user_id: Uuid; by?: Uuid; seq: number }
  | { type: "channel:left"; channel_id: Uuid; user_id: Uuid; by?: Uuid; seq: number }
  | { type: "channel:renamed"; channel_id: Uuid; name: string; seq: number }
  | { type: "channel:archived"; channel_id: Uuid; archived: boolean; seq: number }
  | { type: "channel:marked"; channel_id: Uuid; seq: number }
  | { type: "file:shared"; channel_id: Uuid; file: Attachment; user_id: Uuid; seq: number }
  | { type: "file:deleted"; channel_id: Uuid; file_id: Uuid; user_id: Uuid; seq: number }
  | { type: "presence:change"; users: { user_id: Uuid; status: PresenceStatus }[] }
  | { type: "resume:done"; replayed: number; channels: Record<Uuid, number>; gaps: ResumeGap[]; not_members: Uuid[] }
  | { type: "ok"; client_msg_id?: string; channel_id?: Uuid; seq?: number }
  | { type: "error"; code: string; message: string; client_msg_id?: string };

export type ClientFrame = { type: string; [key: string]: unknown };
