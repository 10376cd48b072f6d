// The HTTP API's bodies (the OpenAPI document each gateway serves at GET /api/openapi.json, and
// README's HTTP table), and the client's own types built on the generated frames (frames.ts).
// Written by hand: the HTTP contract is generated from the server's handlers, not checked in.

import type { Attachment, ChannelKind, PresenceStatus, ResumeDoneFrame, Thread, Uuid } from "./frames.js";

/** An attachment as history shows it: `deleted` once its file was deleted. */
export interface AttachmentView extends Attachment {
  deleted?: boolean;
}

/** A message as history, replies and pins return it (`MessageView`). */
export interface MessageView {
  workspace_id: Uuid;
  channel_id: Uuid;
  message_id: Uuid;
  seq: number;
  user_id: Uuid;
  text: string;
  /** Unix milliseconds. */
  ts: number;
  client_msg_id?: string | null;
  thread_ts?: Uuid | null;
  /** Unix milliseconds of the last edit. */
  edited_at?: number | null;
  deleted?: boolean;
  reactions?: Record<string, Uuid[]>;
  also_in_channel?: boolean;
  pinned?: boolean;
  attachments?: AttachmentView[];
  /** On a thread's parent: its replies so far. */
  thread?: Thread | null;
}

/** `GET /api/me`. */
export interface Me {
  user_id: Uuid;
  name?: string;
  workspace_id: Uuid;
  workspace_name?: string;
  /** The channels the user is a member of. */
  channels: Uuid[];
}

/** `GET /api/users`: someone in the workspace. */
export interface User {
  user_id: Uuid;
  name: string;
}

/** A channel in `GET /api/channels` (`ChannelSummary`): the read state only on the caller's own. */
export interface ChannelSummary {
  channel_id: Uuid;
  name: string;
  kind: ChannelKind;
  is_private: boolean;
  archived: boolean;
  created_by: Uuid;
  /** Unix milliseconds. */
  created_at: number;
  member_count: number;
  is_member: boolean;
  /** The seq of the channel's latest event the timeline has applied (name it in `resume`). */
  last_seq: number;
  /** A DM's members. */
  members?: Uuid[] | null;
  last_read_seq?: number | null;
  unread_count?: number | null;
  mention_count?: number | null;
  /** More unread messages than counted (show "n+"). */
  more_unread?: boolean | null;
}

/** `GET /api/channels`: one page (follow `next_after`). */
export interface ChannelPage {
  channels: ChannelSummary[];
  next_after?: Uuid | null;
}

/** `GET /api/channels/{id}`: the channel and its members. */
export interface ChannelDetail {
  channel_id: Uuid;
  name: string;
  kind: ChannelKind;
  is_private: boolean;
  archived: boolean;
  created_by: Uuid;
  created_at: number;
  members: Uuid[];
}

/** `GET /api/channels/{id}/messages`: newest first (`next_cursor` for older pages), or with
 * `after` oldest first (`next_after` for newer ones), or `around` a message. */
export interface HistoryPage {
  messages: MessageView[];
  next_cursor?: Uuid | null;
  next_after?: Uuid | null;
}

/** `GET /api/channels/{id}/messages/{message_id}/replies`: a thread, oldest first. */
export interface RepliesPage {
  parent: MessageView;
  replies: MessageView[];
  next_after?: Uuid | null;
}

/** A search hit (`highlight` is HTML-escaped with the matches in `<em>`: safe as HTML). */
export interface SearchHit {
  message_id: Uuid;
  channel_id: Uuid;
  channel_name?: string | null;
  user_id: Uuid;
  ts: number;
  text: string;
  thread_ts?: Uuid | null;
  score: number;
  highlight: string;
}

/** `GET /api/search`. */
export interface SearchResult {
  total: number;
  messages: SearchHit[];
  next_offset?: number | null;
}

/** `GET /api/presence`. */
export interface PresenceLookup {
  users: Record<Uuid, PresenceStatus>;
  online_count: number;
}

/** `POST /api/files`: where and how to upload the bytes (`expires_at` in Unix ms). */
export interface UploadGrant {
  file_id: Uuid;
  upload: { url: string; method: string; headers: Record<string, string> };
  upload_token: string;
  expires_at: number;
}

/** `POST /api/files/{id}/complete`. */
export interface FileShared {
  file: Attachment;
  channel_id: Uuid;
  seq: number;
}

/** `GET /api/files/{id}`: the file and a short-lived download URL. */
export interface FileDownload extends Attachment {
  channel_id: Uuid;
  uploader: Uuid;
  created_at: number;
  url: string;
  expires_at: number;
}

/** A range of a channel's events a resume did not replay: fetch it over HTTP. */
export type ResumeGap = ResumeDoneFrame["gaps"][number];

/** Where the connection is. `unauthorized` and `closed` are final. */
export type ConnectionStatus = "idle" | "connecting" | "online" | "reconnecting" | "unauthorized" | "closed";

/** After a connection is caught up: `hello` on a first (or unresumed) connection, or the end of
 * a resume. `resumed`: the server replayed what was missed (`gaps` it could not); `failed`: it
 * could not resume at all (what was missed must come over HTTP). */
export interface SyncInfo {
  resumed: boolean;
  failed: boolean;
  gaps: ResumeGap[];
  notMembers: Uuid[];
  /** Messages the client fetched over HTTP for the gaps (with `fillGaps`), delivered as
   * `message:new` frames before this. */
  filled: number;
}

/** Why a connection ended (before the client reconnects, unless `reconnecting` is false). */
export interface DisconnectInfo {
  code: number;
  reason: string;
  reconnecting: boolean;
}
