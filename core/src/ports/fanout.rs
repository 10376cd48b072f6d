//! The real-time fanout port: per-workspace streams of frames that every gateway reads, and the
//! membership index. Redis streams (`confab-distributed`) and in-process streams
//! (`confab-embedded`) implement it.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Backlog, BacklogLimits, PortResult};

/// One entry to publish: a pre-serialized server frame for `topic_id` at `seq`, plus users that
/// became members with it.
///
/// A topic is what sockets subscribe to: a channel (its id), a user's own stream (the user's
/// id: read markers from their other devices) or the workspace (its id: presence). `seq` is the
/// topic's own gap-free sequence (0 for entries that are not events).
#[derive(Debug, Clone)]
pub struct FanoutItem {
    pub workspace_id: Uuid,
    pub topic_id: Uuid,
    pub seq: i64,
    /// The frame's `type` (`message:new`, ...), so readers need not parse the frame.
    pub frame_type: String,
    pub frame_json: String,
    pub add_members: Vec<Uuid>,
    /// Users who stop being members with it (after receiving this frame).
    pub remove_members: Vec<Uuid>,
    /// Unix milliseconds the event occurred (for the delivery-latency histogram).
    pub ts: i64,
}

/// One entry read back by a gateway.
#[derive(Debug, Clone)]
pub struct FanoutEntry {
    pub workspace_id: Uuid,
    /// The entry's position in its workspace's stream (read on after it).
    pub position: String,
    pub topic_id: Uuid,
    pub seq: i64,
    /// The frame's `type`; empty for entries written before it was recorded.
    pub frame_type: String,
    pub frame_json: String,
    pub add_members: Vec<Uuid>,
    pub remove_members: Vec<Uuid>,
    pub ts: i64,
    /// Ephemeral entries (typing, presence) are not events: no seq, never in the log, never
    /// replayed by a resume, and never delivered to this user's own connections. They live in a
    /// short stream of their own, so a burst of them cannot push events out of the resume window.
    pub ephemeral_from: Option<Uuid>,
}

/// Stream entries that carry erased text: frames of `frame_types` whose JSON names `needle`,
/// with a seq below `before_seq`, published from `since_ms` on (where to start looking).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamErasure {
    pub needle: String,
    pub frame_types: Vec<&'static str>,
    pub before_seq: i64,
    pub since_ms: i64,
}

impl StreamErasure {
    /// A message's texts: its `message:new` and its `message:edited` frames (a thread reply's
    /// frame names its parent only as `thread_ts`).
    pub fn message_texts(message_id: &Uuid, before_seq: i64, since_ms: i64) -> Self {
        let needle = format!("\"message_id\":\"{message_id}\"");
        StreamErasure { needle, frame_types: vec!["message:new", "message:edited"], before_seq, since_ms }
    }

    /// A file's name: its `file:shared` frame and the `message:new` frame that attached it.
    pub fn file_name(file_id: &Uuid, before_seq: i64) -> Self {
        let needle = format!("\"file_id\":\"{file_id}\"");
        StreamErasure { needle, frame_types: vec!["file:shared", "message:new"], before_seq, since_ms: 0 }
    }

    pub fn matches(&self, frame_type: &str, frame_json: &str, seq: i64) -> bool {
        seq < self.before_seq && self.frame_types.contains(&frame_type) && frame_json.contains(&self.needle)
    }
}

/// Real-time fanout: per-workspace streams of frames, and the membership index.
#[async_trait]
pub trait Fanout: Send + Sync {
    /// Publishes items; an item whose `(topic, seq)` was already published is skipped.
    /// Returns how many were new.
    async fn publish(&self, items: &[FanoutItem]) -> PortResult<usize>;
    async fn user_channels(&self, ws: &Uuid, user: &Uuid) -> PortResult<Vec<Uuid>>;
    async fn is_member(&self, ws: &Uuid, ch: &Uuid, user: &Uuid) -> PortResult<bool>;
    /// Publishes an ephemeral frame (typing) from `from` to the channel's other connected
    /// members; it never enters the log and is not deduplicated.
    async fn publish_ephemeral(
        &self,
        ws: &Uuid,
        ch: &Uuid,
        from: &Uuid,
        frame_type: &str,
        frame_json: &str,
    ) -> PortResult<()>;
    /// Entries of the given topics after the given seqs, oldest first (for a resume), and
    /// `(topic, from_seq, to_seq)` for missed events it does not replay: no longer in the
    /// stream, beyond `limits`, or older than the retention. Scans through a [`BacklogScan`].
    async fn backlog(&self, ws: &Uuid, after: &[(Uuid, i64)], limits: BacklogLimits) -> PortResult<Backlog>;
    /// Removes from `topic`'s entries in the stream those `erasure` names: what a delete or an
    /// edit erased must not stay readable in the resume window. A resume meets the hole as a
    /// gap, which the client fills from history. Returns how many were removed.
    async fn erase(&self, ws: &Uuid, topic: &Uuid, erasure: &StreamErasure) -> PortResult<usize>;
    /// Removes every stream, membership and position of a deleted workspace. Idempotent.
    async fn delete_workspace(&self, ws: &Uuid) -> PortResult<()>;
    /// The position of the newest entry of a workspace's stream (`0-0` when empty).
    async fn last_id(&self, ws: &Uuid) -> PortResult<String>;
    async fn ping(&self) -> PortResult<()>;
    /// A reader for a gateway (it may hold a connection of its own).
    async fn reader(&self) -> PortResult<Box<dyn FanoutStream>>;
}

#[async_trait]
pub trait FanoutStream: Send {
    /// Entries after the given positions, per workspace, waiting up to `block_ms` for the first.
    async fn read(&mut self, from: &[(Uuid, String)], block_ms: usize, count: usize) -> PortResult<Vec<FanoutEntry>>;
}
