//! The log ports: gateways append commands and hear replies, ingest reads commands and commits
//! events, projectors read events. Kafka (`confab-distributed`) and the fjall log
//! (`confab-embedded`) implement them.

use async_trait::async_trait;

use super::{PortError, PortResult};
use crate::command::{Command, Reply};
use crate::event::Event;

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

/// A command read by the sequencer, or why it is not one the sequencer may act on.
#[derive(Debug)]
pub struct CommandRecord {
    pub partition: i32,
    pub offset: i64,
    pub command: Result<Command, UnacceptedCommand>,
}

/// Why a record of the commands log is skipped (each is counted under its own label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnacceptedCommand {
    /// Not a command this version can decode.
    Undecodable,
    /// No gateway signature, or one that does not verify: not written by a gateway.
    Forged,
    /// Sealed under a transit key that is gone: its workspace was deleted, or the command
    /// waited past its workspace's retention. The client's retry sends it again, sealed anew.
    Erased,
}

impl UnacceptedCommand {
    /// The metric label and log word.
    pub fn label(self) -> &'static str {
        match self {
            Self::Undecodable => "undecodable",
            Self::Forged => "forged",
            Self::Erased => "erased",
        }
    }
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

/// An event read by a projector. `event` is `Err` only for a record that can never be decoded
/// (not Avro in the Confluent framing, a schema id the registry does not know, data that does
/// not match its schema): adapters wait out what may recover by itself (the registry being
/// unreachable) and return the records before it, so a projector never skips an event that a
/// later read could decode.
#[derive(Debug)]
pub struct EventRecord {
    pub partition: i32,
    pub offset: i64,
    pub event: Result<Event, DeadRecord>,
}

/// What goes to the dead letters: a record that can never be decoded (its bytes, as read), or
/// an event a projection refused for good (its description; the event itself stays in the log
/// at the dead letter's source partition and offset).
#[derive(Debug)]
pub struct DeadRecord {
    pub error: PortError,
    pub payload: Vec<u8>,
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
    /// Whether the log answered at the adapter's last look, for readiness while no events come
    /// (a consumer waiting on a broker that is away sees no error: librdkafka reconnects
    /// quietly). An embedded log is always there.
    fn reachable(&self) -> Result<(), String> {
        Ok(())
    }
    /// Keeps a record that can never be decoded, or an event that can never be applied, where
    /// operators can inspect it and replay its source (Kafka:
    /// `<ns>.events.dead-letter`, with the source partition, offset, projector and error in
    /// headers); the projector goes on once this succeeded.
    async fn dead_letter(&mut self, partition: i32, offset: i64, record: &DeadRecord) -> PortResult<()>;
}
