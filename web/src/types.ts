// The Confab wire types the page uses (README "The WebSocket protocol", docs/asyncapi.yaml). The
// frames come from @confab/client; the page's own shapes below accept what its HTTP helpers
// return (nullable fields included) and add the page's marks (a deleted attachment, ...).

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
  client_msg_id?: string | null;
  thread_ts?: Uuid | null;
  edited_at?: number | null;
  deleted?: boolean;
  reactions?: Record<string, Uuid[]>;
  also_in_channel?: boolean;
  pinned?: boolean;
  thread?: ThreadSummary | null;
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
  members?: Uuid[] | null;
  created_by?: Uuid;
  created_at?: number;
  last_read_seq?: number | null;
  unread_count?: number | null;
  mention_count?: number | null;
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
  channel_name?: string | null;
  user_id: Uuid;
  ts: number;
  text: string;
  thread_ts?: Uuid | null;
  score: number;
  /** HTML-escaped text with the matches wrapped in <em>. */
  highlight: string;
}

export interface SearchResult {
  total: number;
  messages: SearchHit[];
  next_offset?: number | null;
}

/** The frames, from @confab/client (generated from docs/asyncapi.yaml). */
export type { ClientFrame, ServerFrame, ResumeGap } from "@confab/client";
