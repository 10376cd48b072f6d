//! The timeline and directory port: messages, threads, pins, channels, read markers, files,
//! workspaces and users. Cassandra (`confab-distributed`) and fjall (`confab-embedded`)
//! implement it.

use async_trait::async_trait;
use std::collections::BTreeMap;
use uuid::Uuid;

use super::PortResult;
use crate::event::ChannelKind;
use crate::files::{Attachment, FileRecord};
use crate::unread::RecentActivity;

/// A message as the timeline stores it: one row per `message_id`, rewritten whole by replays.
/// The gateway turns rows into the wire type (`protocol::MessageView`); the two are separate so
/// the storage layout and the client contract can change independently. Its JSON form is what
/// the embedded store keeps on disk: change field names only with a migration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredMessage {
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    pub message_id: Uuid,
    pub seq: i64,
    pub user_id: Uuid,
    pub text: String,
    /// Unix milliseconds.
    pub ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// Set on thread replies: the parent's message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<Uuid>,
    /// A thread reply that is shown in the channel too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub also_in_channel: bool,
    /// On a thread's parent: its replies so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadSummary>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
    /// Unix milliseconds of the last edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// A tombstone: the text is erased.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Emoji -> users reacting with it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reactions: BTreeMap<String, Vec<Uuid>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// A thread's state as stored on its parent.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ThreadSummary {
    pub reply_count: i32,
    pub reply_users: Vec<Uuid>,
    /// Unix milliseconds of the newest reply.
    pub last_reply_at: i64,
}

/// A change to a stored message.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageUpdate {
    Edit {
        text: String,
        edited_at: i64,
    },
    /// The text is erased, reactions dropped, `deleted` set.
    Delete,
    /// Everyone reacting with `emoji` now (empty: the emoji is gone).
    Reactions {
        emoji: String,
        users: Vec<Uuid>,
    },
    Pin {
        pinned: bool,
    },
    /// The message's thread after a reply (on the parent).
    Thread(ThreadSummary),
}

/// The longest retention a workspace may have: 20 years, the most Cassandra stores as a TTL.
pub const MAX_RETENTION_SECS: i32 = 630_720_000;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Workspace {
    pub workspace_id: Uuid,
    pub name: String,
    /// Messages expire after this many seconds (0: never; at most [`MAX_RETENTION_SECS`]).
    pub retention_secs: i32,
    /// Largest file its users may upload, in bytes (0: the configured `files.max_bytes`).
    #[serde(default)]
    pub max_file_bytes: i64,
    /// Content types its users may upload (empty: the configured `files.allowed_types`).
    #[serde(default)]
    pub file_types: Vec<String>,
    /// Bytes of shared files it may hold at once (0: the configured
    /// `files.workspace_quota_bytes`).
    #[serde(default)]
    pub storage_quota_bytes: i64,
}

/// A channel as the timeline knows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelInfo {
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    pub name: String,
    pub kind: ChannelKind,
    pub archived: bool,
    pub created_by: Uuid,
    /// Unix milliseconds.
    pub created_at: i64,
    pub members: Vec<Uuid>,
    /// The seq of the channel's latest event the timeline has applied (what a client that has
    /// seen everything would name in `resume`).
    #[serde(default)]
    pub last_seq: i64,
}

/// Every token of a user issued at or before `revoked_before` (Unix seconds) stops working;
/// a deactivation (or reactivation) of the user travels the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRevocation {
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub revoked_before: i64,
    /// When it was recorded (Unix ms): gateways follow revocations by this.
    pub at_ms: i64,
    /// `Some(true)`: the user was deactivated (no token of theirs works, whenever issued);
    /// `Some(false)`: reactivated; `None`: a plain revocation.
    pub deactivated: Option<bool>,
}

/// A deactivated user, as the directory keeps it until reactivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deactivation {
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    /// When it was recorded (Unix ms).
    pub at_ms: i64,
}

/// A change to a channel's record; each is idempotent.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelChange {
    Created(ChannelInfo),
    Renamed(String),
    Archived(bool),
    Joined(Uuid),
    Left(Uuid),
    /// The channel's events up to this seq are applied (written once per batch, in log order).
    LastSeq(i64),
}

/// Which page of a channel's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HistoryPage {
    /// The newest messages, newest first.
    Latest,
    /// Messages older than this one, newest first.
    Before(Uuid),
    /// Messages newer than this one, oldest first.
    After(Uuid),
}

/// The timeline (messages, threads, pins, channels, read markers) and the directory
/// (workspaces, users).
#[async_trait]
pub trait Store: Send + Sync {
    /// Upserts a message keyed by `message_id` (replays write the same row); a thread reply is
    /// indexed under its parent too.
    async fn insert_message(&self, m: &StoredMessage, ttl_secs: i32) -> PortResult<()>;
    /// A page of the channel's history: top-level messages and replies also sent to the
    /// channel (not thread-only replies), expired ones left out.
    async fn history(&self, ws: Uuid, ch: Uuid, page: HistoryPage, limit: i32) -> PortResult<Vec<StoredMessage>>;
    async fn message(&self, ws: Uuid, ch: Uuid, message_id: Uuid) -> PortResult<Option<StoredMessage>>;
    /// A thread's replies, oldest first, after `after` when given (the seed's LOAD_THREAD_REPLIES).
    async fn thread(
        &self,
        ws: Uuid,
        ch: Uuid,
        parent: Uuid,
        after: Option<Uuid>,
        limit: i32,
    ) -> PortResult<Vec<StoredMessage>>;
    /// Pinned messages, newest first.
    async fn pins(&self, ws: Uuid, ch: Uuid) -> PortResult<Vec<StoredMessage>>;
    async fn change_channel(&self, ws: Uuid, ch: Uuid, change: &ChannelChange) -> PortResult<()>;
    async fn channel(&self, ws: Uuid, ch: Uuid) -> PortResult<Option<ChannelInfo>>;
    /// Every channel of a workspace (callers filter what a user may see).
    async fn channels(&self, ws: Uuid) -> PortResult<Vec<ChannelInfo>>;
    /// At most `limit` channels of a workspace, in the store's channel-id order, after `after`
    /// (from the first when `None`): a listing whose work per call is bounded.
    async fn channels_page(&self, ws: Uuid, after: Option<Uuid>, limit: usize) -> PortResult<Vec<ChannelInfo>>;
    /// `user` read `ch` up to `seq` (last write wins: marking unread moves it back).
    async fn set_read_marker(&self, ws: Uuid, user: Uuid, ch: Uuid, seq: i64) -> PortResult<()>;
    async fn read_markers(&self, ws: Uuid, user: Uuid) -> PortResult<Vec<(Uuid, i64)>>;
    /// The channels' summaries for unread and mention counts (channels without one are left
    /// out); adapters answer in batches, not a read per channel.
    async fn recent_activity(&self, ws: Uuid, channels: &[Uuid]) -> PortResult<Vec<(Uuid, RecentActivity)>>;
    /// Replaces a channel's summary (written by the timeline projector, once per batch).
    async fn set_recent_activity(&self, ws: Uuid, ch: Uuid, activity: &RecentActivity) -> PortResult<()>;
    /// Records a revocation durably before returning; kept `keep_secs` (the longest a token
    /// may live: after that, every token it covers has expired anyway).
    async fn revoke_tokens(&self, revocation: &TokenRevocation, keep_secs: i64) -> PortResult<()>;
    /// Revocations recorded at or after `since_ms`, oldest first.
    async fn token_revocations_since(&self, since_ms: i64) -> PortResult<Vec<TokenRevocation>>;
    /// Marks a user deactivated (`Some`) or active again (`None`), durably, for good: unlike a
    /// revocation it is kept until changed.
    async fn set_user_deactivated(&self, ws: Uuid, user: Uuid, deactivation: Option<Deactivation>) -> PortResult<()>;
    /// Whether the user is deactivated.
    async fn user_deactivated(&self, ws: Uuid, user: Uuid) -> PortResult<bool>;
    /// Every deactivated user of every workspace (gateways load them when they start).
    async fn deactivated_users(&self) -> PortResult<Vec<Deactivation>>;
    async fn insert_workspace(&self, w: &Workspace) -> PortResult<()>;
    /// Removes the workspace's directory: its record and its users (a deleted workspace). The
    /// deactivation marker that keeps its tokens refused stays.
    async fn delete_directory(&self, ws: Uuid) -> PortResult<()>;
    /// Removes everything the timeline projection holds of the workspace: channels, messages,
    /// threads, pins, read markers, summaries, file records and its storage ledger. Idempotent.
    async fn delete_timeline(&self, ws: Uuid) -> PortResult<()>;
    /// Changes a workspace's retention (the rest of its record stays).
    async fn set_workspace_retention(&self, ws: Uuid, retention_secs: i32) -> PortResult<()>;
    async fn workspace(&self, ws: Uuid) -> PortResult<Option<Workspace>>;
    async fn insert_user(&self, ws: Uuid, user: Uuid, name: &str) -> PortResult<()>;
    async fn user_exists(&self, ws: Uuid, user: Uuid) -> PortResult<bool>;
    /// Those of `users` not in the workspace (adapters answer in batches, not a read each).
    async fn missing_users(&self, ws: Uuid, users: &[Uuid]) -> PortResult<Vec<Uuid>> {
        let mut missing = Vec::new();
        for user in users {
            if !self.user_exists(ws, *user).await? {
                missing.push(*user);
            }
        }
        Ok(missing)
    }
    /// A user's name, if the user is in the workspace.
    async fn user_name(&self, ws: Uuid, user: Uuid) -> PortResult<Option<String>>;
    /// Every user of a workspace: (id, name).
    async fn users(&self, ws: Uuid) -> PortResult<Vec<(Uuid, String)>>;
    /// Applies an edit, a deletion (tombstone), a reaction change, a pin or a thread summary
    /// to a stored message; idempotent (each update carries the resulting state).
    async fn update_message(
        &self,
        ws: Uuid,
        ch: Uuid,
        message_id: Uuid,
        update: &MessageUpdate,
        ttl_secs: i32,
    ) -> PortResult<()>;
    /// Records a shared file (replays write the same row; a deleted file stays deleted).
    async fn insert_file(&self, f: &FileRecord) -> PortResult<()>;
    async fn file(&self, ws: Uuid, file_id: Uuid) -> PortResult<Option<FileRecord>>;
    /// Marks a file deleted: no URL is issued for it any more.
    async fn delete_file(&self, ws: Uuid, file_id: Uuid) -> PortResult<()>;
    /// Deletes every message, thread index, pin, channel, read marker and file record (the
    /// timeline projection), for a rebuild from the log. The storage ledger is not a
    /// projection and stays.
    async fn truncate_timeline(&self) -> PortResult<()>;
    /// Counts file `file_id` (`bytes` long) against its workspace's storage when the total stays
    /// within `quota`; returns whether it is counted. A file counted already is not counted
    /// twice (a retried completion): it returns true. Atomic against concurrent calls.
    async fn reserve_storage(&self, ws: Uuid, file_id: Uuid, bytes: i64, quota: i64) -> PortResult<bool>;
    /// Stops counting file `file_id` (deleted, or refused after its reservation); a file not
    /// counted is left alone, so replays and retries are harmless.
    async fn release_storage(&self, ws: Uuid, file_id: Uuid) -> PortResult<()>;
    /// The bytes a workspace's shared files take now.
    async fn storage_used(&self, ws: Uuid) -> PortResult<i64>;
}
