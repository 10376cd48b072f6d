//! Ports: what each component needs from the outside world. Two adapter sets implement them:
//! distributed (Kafka, Cassandra, Redis: this crate) and embedded (fjall, in-process:
//! `confab-embedded`). Components see only these traits, and one conformance suite runs
//! against both sets.

use async_trait::async_trait;
use uuid::Uuid;

use crate::command::{Command, Reply};
use crate::event::Event;
use crate::protocol::MessageView;

/// A failure of the outside world (a server down, a disk error), as text for logs and health.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);

impl PortError {
    pub fn of(e: impl std::fmt::Display) -> Self {
        PortError(e.to_string())
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// Gateway -> ingest: append a command to the commands log, keyed by workspace:channel.
#[async_trait]
pub trait CommandSink: Send + Sync {
    async fn send(&self, cmd: &Command) -> PortResult<()>;
    /// Checks the log is reachable (for `/healthz`).
    async fn ping(&self) -> PortResult<()>;
}

/// Ingest -> this gateway: replies to commands this gateway sent, once their events are
/// committed to the log.
#[async_trait]
pub trait ReplySource: Send {
    async fn next(&mut self) -> PortResult<Reply>;
}

/// A command read by the sequencer (`command` is `None` when it could not be decoded).
#[derive(Debug)]
pub struct CommandRecord {
    pub partition: i32,
    pub offset: i64,
    pub command: Option<Command>,
}

/// The sequencer's view of the log: read commands, read a partition's events, and commit
/// events + replies + consumed offsets atomically.
#[async_trait]
pub trait SequencerLog: Send {
    /// Waits for at least one command, then returns up to `max`.
    async fn next_batch(&mut self, max: usize) -> PortResult<Vec<CommandRecord>>;
    /// Every committed event of one partition, in order (to rebuild the sequencer's state).
    async fn load_partition(&mut self, partition: i32) -> PortResult<Vec<Event>>;
    /// Atomically appends the events (each to the given partition) and the replies, and marks
    /// the commands up to these offsets (exclusive) consumed.
    async fn commit(
        &mut self,
        events: Vec<(i32, Event)>,
        replies: Vec<Reply>,
        offsets: Vec<(i32, i64)>,
    ) -> PortResult<()>;
    /// Partitions taken away since the last call (their state must be reloaded if they return).
    fn take_revoked(&mut self) -> Vec<i32>;
}

/// Where a replay starts reading the events log.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayFrom {
    /// Where the previous replay of this projection stopped (the beginning, the first time).
    Resume,
    Earliest,
    /// The first event at or after this Unix millisecond, in every partition.
    Timestamp(i64),
    /// Given offsets (`partition:offset,...`); partitions not named start at the beginning.
    Offsets(std::collections::HashMap<i32, i64>),
}

impl ReplayFrom {
    /// `earliest`, a Unix-millisecond or RFC 3339 timestamp, or `0:120,1:98`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "earliest" {
            return Ok(ReplayFrom::Earliest);
        }
        if s.contains(':') && !s.contains('T') {
            let mut m = std::collections::HashMap::new();
            for part in s.split(',') {
                let (p, o) = part.split_once(':').ok_or_else(|| format!("`{part}` is not partition:offset"))?;
                let (p, o) = (
                    p.trim().parse::<i32>().map_err(|_| format!("bad partition in `{part}`"))?,
                    o.trim().parse::<i64>().map_err(|_| format!("bad offset in `{part}`"))?,
                );
                if p < 0 || o < 0 {
                    return Err(format!("`{part}`: partitions and offsets are not negative"));
                }
                m.insert(p, o);
            }
            return Ok(ReplayFrom::Offsets(m));
        }
        if let Ok(ms) = s.parse::<i64>() {
            return Ok(ReplayFrom::Timestamp(ms));
        }
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| ReplayFrom::Timestamp(t.timestamp_millis()))
            .map_err(|_| format!("`{s}`: expected earliest, a timestamp (Unix ms or RFC 3339) or partition:offset,..."))
    }
}

/// An event read by a projector (`event` is `Err` when it could not be decoded).
#[derive(Debug)]
pub struct EventRecord {
    pub partition: i32,
    pub offset: i64,
    pub event: Result<Event, String>,
}

/// A projector's view of the events log, with a consumer position per projector.
#[async_trait]
pub trait EventSource: Send {
    /// Waits for at least one event (at most `wait`, if given: then the batch may be empty),
    /// and returns up to `max`.
    async fn next_batch(&mut self, max: usize, wait: Option<std::time::Duration>) -> PortResult<Vec<EventRecord>>;
    /// The next offset this consumer will read, per partition.
    async fn positions(&mut self) -> PortResult<Vec<(i32, i64)>>;
    /// The current end (next offset to be written) of every partition.
    async fn end_offsets(&mut self) -> PortResult<Vec<(i32, i64)>>;
    /// Marks everything `next_batch` has returned so far as applied (call it after the
    /// projection's write succeeded). Adapters store their read position, which may be past
    /// records that are not events (Kafka transaction markers).
    fn ack_returned(&mut self) -> PortResult<()>;
    /// Makes the acknowledged positions durable: periodically with `wait = false` (may return
    /// before the commit completes, must not stall the projector), on shutdown with `wait = true`.
    async fn commit(&mut self, wait: bool) -> PortResult<()>;
    /// Events not yet applied, summed over this consumer's partitions.
    async fn lag(&mut self) -> Option<i64>;
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
    Thread(crate::protocol::ThreadView),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Workspace {
    pub workspace_id: Uuid,
    pub name: String,
    /// Messages expire after this many seconds (0: never).
    pub retention_secs: i32,
    /// Largest file its users may upload, in bytes (0: the configured `files.max_bytes`).
    #[serde(default)]
    pub max_file_bytes: i64,
    /// Content types its users may upload (empty: the configured `files.allowed_types`).
    #[serde(default)]
    pub file_types: Vec<String>,
}

/// A channel as the timeline knows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelInfo {
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    pub name: String,
    pub kind: crate::event::ChannelKind,
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
    async fn insert_message(&self, m: &MessageView, ttl_secs: i32) -> PortResult<()>;
    /// A page of the channel's history: top-level messages and replies also sent to the
    /// channel (not thread-only replies), expired ones left out.
    async fn history(&self, ws: Uuid, ch: Uuid, page: HistoryPage, limit: i32) -> PortResult<Vec<MessageView>>;
    async fn message(&self, ws: Uuid, ch: Uuid, message_id: Uuid) -> PortResult<Option<MessageView>>;
    /// A thread's replies, oldest first, after `after` when given (the seed's LOAD_THREAD_REPLIES).
    async fn thread(
        &self,
        ws: Uuid,
        ch: Uuid,
        parent: Uuid,
        after: Option<Uuid>,
        limit: i32,
    ) -> PortResult<Vec<MessageView>>;
    /// Pinned messages, newest first.
    async fn pins(&self, ws: Uuid, ch: Uuid) -> PortResult<Vec<MessageView>>;
    async fn change_channel(&self, ws: Uuid, ch: Uuid, change: &ChannelChange) -> PortResult<()>;
    async fn channel(&self, ws: Uuid, ch: Uuid) -> PortResult<Option<ChannelInfo>>;
    /// Every channel of a workspace (callers filter what a user may see).
    async fn channels(&self, ws: Uuid) -> PortResult<Vec<ChannelInfo>>;
    /// `user` read `ch` up to `seq` (last write wins: marking unread moves it back).
    async fn set_read_marker(&self, ws: Uuid, user: Uuid, ch: Uuid, seq: i64) -> PortResult<()>;
    async fn read_markers(&self, ws: Uuid, user: Uuid) -> PortResult<Vec<(Uuid, i64)>>;
    async fn insert_workspace(&self, w: &Workspace) -> PortResult<()>;
    async fn workspace(&self, ws: Uuid) -> PortResult<Option<Workspace>>;
    async fn insert_user(&self, ws: Uuid, user: Uuid, name: &str) -> PortResult<()>;
    async fn user_exists(&self, ws: Uuid, user: Uuid) -> PortResult<bool>;
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
    async fn insert_file(&self, f: &crate::files::FileRecord) -> PortResult<()>;
    async fn file(&self, ws: Uuid, file_id: Uuid) -> PortResult<Option<crate::files::FileRecord>>;
    /// Marks a file deleted: no URL is issued for it any more.
    async fn delete_file(&self, ws: Uuid, file_id: Uuid) -> PortResult<()>;
    /// Deletes every message, thread index, pin, channel, read marker and file record (the
    /// timeline projection), for a rebuild from the log.
    async fn truncate_timeline(&self) -> PortResult<()>;
}

/// One entry to publish: a pre-serialized server frame for channel `channel_id` at `seq`, plus
/// users that became members with it.
#[derive(Debug, Clone)]
pub struct FanoutItem {
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    pub seq: i64,
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
    pub stream_id: String,
    pub channel_id: Uuid,
    pub seq: i64,
    pub frame_json: String,
    pub add_members: Vec<Uuid>,
    pub remove_members: Vec<Uuid>,
    pub ts: i64,
    /// Ephemeral entries (typing) are not events: no seq, never in the log, and never delivered
    /// to this user's own connections.
    pub ephemeral_from: Option<Uuid>,
}

/// Real-time fanout: per-workspace streams of frames, and the membership index.
#[async_trait]
pub trait Fanout: Send + Sync {
    /// Publishes items; an item whose `(channel, seq)` was already published is skipped.
    /// Returns how many were new.
    async fn publish(&self, items: &[FanoutItem]) -> PortResult<usize>;
    async fn user_channels(&self, ws: &Uuid, user: &Uuid) -> PortResult<Vec<Uuid>>;
    async fn is_member(&self, ws: &Uuid, ch: &Uuid, user: &Uuid) -> PortResult<bool>;
    /// Publishes an ephemeral frame (typing) from `from` to the channel's other connected
    /// members; it never enters the log and is not deduplicated.
    async fn publish_ephemeral(&self, ws: &Uuid, ch: &Uuid, from: &Uuid, frame_json: &str) -> PortResult<()>;
    /// Entries of the given channels after the given seqs, oldest first (for a resume), and
    /// `(channel, from_seq, to_seq)` for missed events the stream no longer holds.
    async fn backlog(&self, ws: &Uuid, after: &[(Uuid, i64)]) -> PortResult<Backlog>;
    /// The id of the newest entry of a workspace's stream (`0-0` when empty).
    async fn last_id(&self, ws: &Uuid) -> PortResult<String>;
    async fn ping(&self) -> PortResult<()>;
    /// A reader for a gateway (it may hold a connection of its own).
    async fn reader(&self) -> PortResult<Box<dyn FanoutStream>>;
}

/// What a resume replays.
#[derive(Debug, Clone, Default)]
pub struct Backlog {
    pub entries: Vec<FanoutEntry>,
    pub gaps: Vec<(Uuid, i64, i64)>,
}

impl Backlog {
    /// Builds a backlog from entries scanned newest first (`newest_first`) and each channel's
    /// current seq: keeps the channels' entries after their positions, in stream order, and
    /// reports what is missing at the old end as gaps.
    pub fn from_scan(
        after: &[(Uuid, i64)],
        now: &std::collections::HashMap<Uuid, i64>,
        newest_first: Vec<FanoutEntry>,
    ) -> Backlog {
        let from: std::collections::HashMap<Uuid, i64> = after.iter().copied().collect();
        let mut lowest: std::collections::HashMap<Uuid, i64> = std::collections::HashMap::new();
        let mut entries = Vec::new();
        for e in newest_first {
            if e.ephemeral_from.is_some() {
                continue;
            }
            if let Some(last) = from.get(&e.channel_id) {
                if e.seq > *last {
                    lowest.insert(e.channel_id, e.seq);
                    entries.push(e);
                }
            }
        }
        entries.reverse();
        let mut gaps = Vec::new();
        for (ch, last) in after {
            let now = now.get(ch).copied().unwrap_or(0);
            if now <= *last {
                continue;
            }
            let first_held = lowest.get(ch).copied().unwrap_or(now + 1);
            if first_held > last + 1 {
                gaps.push((*ch, last + 1, first_held - 1));
            }
        }
        Backlog { entries, gaps }
    }

    /// Whether a scan newest first can stop: every channel has reached its position.
    pub fn covered(
        after: &[(Uuid, i64)],
        now: &std::collections::HashMap<Uuid, i64>,
        lowest_seen: &std::collections::HashMap<Uuid, i64>,
    ) -> bool {
        after.iter().all(|(ch, last)| {
            now.get(ch).copied().unwrap_or(0) <= *last || lowest_seen.get(ch).is_some_and(|s| *s <= last + 1)
        })
    }
}

#[async_trait]
pub trait FanoutStream: Send {
    /// Entries after the given ids, waiting up to `block_ms` for the first.
    async fn read(&mut self, from: &[(Uuid, String)], block_ms: usize, count: usize) -> PortResult<Vec<FanoutEntry>>;
}

/// Where Avro schemas are registered and looked up (a Confluent registry over HTTP, or the
/// embedded one in process).
#[async_trait]
pub trait SchemaSource: Send + Sync {
    async fn register(&self, subject: &str, schema: &str) -> PortResult<u32>;
    async fn schema(&self, id: u32) -> PortResult<String>;
}
