//! The embedded event log. Keys are `partition (u32 BE) | offset (u64 BE)`, so a partition is a
//! contiguous, ordered range; positions are `group/topic/partition -> next offset`.
//!
//! Commands are kept in memory only, per partition, from the send until ingest has committed
//! past them; their offsets continue from ingest's committed position across restarts. A
//! command is not acknowledged before ingest commits its event, so one lost with the process
//! was never acknowledged, and the client's retry (same `client_msg_id`) makes it exactly one
//! message. Writing them to fjall as well (they are never read again once ingest has committed)
//! was about a quarter of the bytes its memtable flushes handled at 12,000 msg/s.

use async_trait::async_trait;
use confab_core::avro::EventCodec;
use confab_core::command::{Command, Reply};
use confab_core::event::Event;
use confab_core::ports::{
    CommandRecord, CommandSink, DeadRecord, EventRecord, EventSource, PortError, PortResult, ReplySource, SequencerLog,
};
use fjall::{Database, Keyspace, PersistMode};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

use crate::disk::DiskWatermark;
use crate::error::{corrupt, port};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Topic {
    Commands,
    Events,
}

impl Topic {
    fn name(self) -> &'static str {
        match self {
            Topic::Commands => "commands",
            Topic::Events => "events",
        }
    }
}

fn key(partition: i32, offset: i64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&(partition as u32).to_be_bytes());
    k[4..].copy_from_slice(&(offset as u64).to_be_bytes());
    k
}

fn offset_of(k: &[u8]) -> i64 {
    u64::from_be_bytes(k[4..12].try_into().expect("12-byte log key")) as i64
}

/// FNV-1a: a stable partitioner (the same key always lands in the same partition).
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % partitions as u32) as i32
}

/// A stored consumer position (`0` when none was stored).
fn read_position(positions: &Keyspace, key: &str) -> PortResult<i64> {
    Ok(match positions.get(key).map_err(port)? {
        Some(v) => i64::from_be_bytes(v.as_ref().try_into().map_err(|_| corrupt(format!("position {key}")))?),
        None => 0,
    })
}

/// Commands sent but not yet committed past by ingest, in all: beyond this many, or this many
/// bytes (as JSON), sends are refused (ingest is not keeping up, or not running) instead of
/// growing without bound.
pub const MAX_PENDING_COMMANDS: usize = 200_000;
pub const MAX_PENDING_COMMAND_BYTES: usize = 128 << 20;

/// The commands ingest has not committed past: per partition (offset, command, its size), and
/// the totals the bounds apply to.
#[derive(Default)]
struct PendingCommands {
    queues: Vec<VecDeque<(i64, Command, usize)>>,
    count: usize,
    bytes: usize,
}

/// A command's size as JSON, without building the JSON.
fn encoded_len(cmd: &Command) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, cmd).expect("a command serializes");
    counter.0
}

/// A record no projector could decode, as kept in the dead letters.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct DeadLetter {
    pub reader: String,
    pub partition: i32,
    pub offset: i64,
    pub error: String,
    /// The record's bytes, base64.
    pub payload: String,
}

pub struct Log {
    db: Database,
    commands: Mutex<PendingCommands>,
    /// Sends are refused while the data directory's disk is nearly full.
    disk: DiskWatermark,
    events: Keyspace,
    positions: Keyspace,
    /// Records no projector could decode: `reader/partition/offset` -> [`DeadLetter`] (JSON).
    dead_letters: Keyspace,
    partitions: i32,
    next: Mutex<HashMap<(Topic, i32), i64>>,
    commands_written: watch::Sender<u64>,
    events_written: watch::Sender<u64>,
    replies: broadcast::Sender<Reply>,
    codec: EventCodec,
}

impl Log {
    pub fn open(
        db: Database,
        events: Keyspace,
        positions: Keyspace,
        dead_letters: Keyspace,
        partitions: i32,
        codec: EventCodec,
        disk: DiskWatermark,
    ) -> PortResult<Self> {
        let mut next = HashMap::new();
        for p in 0..partitions {
            let last = events.range(key(p, 0)..=key(p, i64::MAX)).next_back();
            let n = match last {
                Some(g) => offset_of(&g.key().map_err(port)?) + 1,
                None => 0,
            };
            next.insert((Topic::Events, p), n);
            // commands continue from where ingest committed
            let committed = read_position(&positions, &Self::position_key("ingest", Topic::Commands, p))?;
            next.insert((Topic::Commands, p), committed);
        }
        Ok(Self {
            db,
            commands: Mutex::new(PendingCommands {
                queues: vec![VecDeque::new(); partitions as usize],
                ..Default::default()
            }),
            disk,
            events,
            positions,
            dead_letters,
            partitions,
            next: Mutex::new(next),
            commands_written: watch::channel(0).0,
            events_written: watch::channel(0).0,
            replies: broadcast::channel(65_536).0,
            codec,
        })
    }

    /// Every dead letter, oldest first per reader and partition (for operators and tests).
    pub fn dead_letters(&self) -> PortResult<Vec<DeadLetter>> {
        let mut out = Vec::new();
        for g in self.dead_letters.iter() {
            let v = g.value().map_err(port)?;
            out.push(serde_json::from_slice(&v).map_err(|e| corrupt(format!("dead letter: {e}")))?);
        }
        Ok(out)
    }

    fn position_key(group: &str, t: Topic, p: i32) -> String {
        format!("{group}/{}/{p}", t.name())
    }

    fn position(&self, group: &str, t: Topic, p: i32) -> PortResult<i64> {
        read_position(&self.positions, &Self::position_key(group, t, p))
    }

    fn end(&self, t: Topic, p: i32) -> i64 {
        self.next.lock().expect("log lock")[&(t, p)]
    }

    /// Reads up to `max` commands from the given positions, partition by partition.
    fn read_commands(&self, from: &mut [i64], max: usize) -> Vec<CommandRecord> {
        let pending = self.commands.lock().expect("commands lock");
        let mut out = Vec::new();
        for (p, queue) in pending.queues.iter().enumerate() {
            if out.len() >= max {
                break;
            }
            // offsets in a queue ascend by one from its front
            let skip = match queue.front() {
                Some((first, _, _)) => (from[p] - first).max(0) as usize,
                None => continue,
            };
            for (o, cmd, _) in queue.iter().skip(skip).take(max - out.len()) {
                out.push(CommandRecord { partition: p as i32, offset: *o, command: Ok(cmd.clone()) });
                from[p] = o + 1;
            }
        }
        out
    }

    /// Forgets the commands ingest has committed past.
    fn forget_commands(&self, committed: &[(i32, i64)]) {
        let mut pending = self.commands.lock().expect("commands lock");
        let PendingCommands { queues, count, bytes } = &mut *pending;
        for (p, o) in committed {
            let queue = &mut queues[*p as usize];
            while queue.front().is_some_and(|(first, _, _)| first < o) {
                let (_, _, size) = queue.pop_front().expect("a front");
                *count -= 1;
                *bytes -= size;
            }
        }
    }

    /// Reads up to `max` events from the given positions, round-robin over partitions.
    fn read(&self, t: Topic, from: &mut [i64], max: usize) -> PortResult<Vec<(i32, i64, fjall::Slice)>> {
        let mut out = Vec::new();
        for p in 0..self.partitions {
            if out.len() >= max {
                break;
            }
            let start = from[p as usize];
            if start >= self.end(t, p) {
                continue;
            }
            for g in self.events.range(key(p, start)..=key(p, i64::MAX)).take(max - out.len()) {
                let (k, v) = g.into_inner().map_err(port)?;
                let o = offset_of(&k);
                out.push((p, o, v));
                from[p as usize] = o + 1;
            }
        }
        Ok(out)
    }

    /// A consumer of the commands for the sequencer (group `ingest`).
    pub fn sequencer(self: &Arc<Self>) -> PortResult<Box<dyn SequencerLog>> {
        let pos = (0..self.partitions)
            .map(|p| self.position("ingest", Topic::Commands, p))
            .collect::<PortResult<Vec<_>>>()?;
        Ok(Box::new(EmbeddedSequencerLog { log: self.clone(), pos, wake: self.commands_written.subscribe() }))
    }

    /// A consumer of the events for one projector, from its committed position.
    pub fn event_source(self: &Arc<Self>, group: &str) -> PortResult<Box<dyn EventSource>> {
        let pos =
            (0..self.partitions).map(|p| self.position(group, Topic::Events, p)).collect::<PortResult<Vec<_>>>()?;
        Ok(self.source_at(group, pos))
    }

    fn source_at(self: &Arc<Self>, group: &str, pos: Vec<i64>) -> Box<dyn EventSource> {
        Box::new(EmbeddedEventSource {
            log: self.clone(),
            group: group.to_string(),
            acked: pos.clone(),
            pos,
            wake: self.events_written.subscribe(),
        })
    }

    /// A consumer of the events for a replay, from where `from` says.
    pub async fn event_source_from(
        self: &Arc<Self>,
        group: &str,
        from: confab_core::ports::ReplayFrom,
    ) -> PortResult<Box<dyn EventSource>> {
        use confab_core::ports::ReplayFrom;
        let mut pos = Vec::with_capacity(self.partitions as usize);
        for p in 0..self.partitions {
            pos.push(match &from {
                ReplayFrom::Resume => self.position(group, Topic::Events, p)?,
                ReplayFrom::Earliest => 0,
                ReplayFrom::Offsets(m) => m.get(&p).copied().unwrap_or(0),
                // offsets are positions in the partition: the first event at or after the time
                ReplayFrom::Timestamp(ms) => {
                    let events = self.partition_events(p).await?;
                    events.iter().position(|e| e.occurred_at >= *ms).unwrap_or(events.len()) as i64
                }
            });
        }
        Ok(self.source_at(group, pos))
    }

    /// This gateway's replies.
    pub fn reply_source(&self, gateway_id: &str) -> Box<dyn ReplySource> {
        Box::new(EmbeddedReplySource { rx: self.replies.subscribe(), gateway_id: gateway_id.to_string() })
    }

    /// Events of one partition, decoded (for replays and tests).
    pub async fn partition_events(&self, p: i32) -> PortResult<Vec<Event>> {
        let mut out = Vec::new();
        let raw: Vec<fjall::Slice> = self
            .events
            .range(key(p, 0)..=key(p, i64::MAX))
            .map(|g| g.value().map_err(port))
            .collect::<PortResult<_>>()?;
        for v in raw {
            out.push(self.codec.decode(&v).await.map_err(port)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl CommandSink for Log {
    async fn send(&self, cmd: &Command) -> PortResult<()> {
        let p = partition_for(&cmd.key(), self.partitions);
        self.disk.check()?;
        let size = encoded_len(cmd);
        {
            // offsets are handed out and queued under one lock, so each queue stays in order
            let mut next = self.next.lock().expect("log lock");
            let mut pending = self.commands.lock().expect("commands lock");
            if pending.count >= MAX_PENDING_COMMANDS || pending.bytes + size > MAX_PENDING_COMMAND_BYTES {
                return Err(PortError::transient(format!(
                    "command log full ({} commands, {} bytes not yet sequenced)",
                    pending.count, pending.bytes
                )));
            }
            let o = next[&(Topic::Commands, p)];
            // in memory only: an unacknowledged command may be lost in a crash, and the client retries
            pending.queues[p as usize].push_back((o, cmd.clone(), size));
            pending.count += 1;
            pending.bytes += size;
            next.insert((Topic::Commands, p), o + 1);
        }
        self.commands_written.send_modify(|n| *n += 1);
        Ok(())
    }

    async fn ping(&self) -> PortResult<()> {
        Ok(())
    }
}

struct EmbeddedSequencerLog {
    log: Arc<Log>,
    pos: Vec<i64>,
    wake: watch::Receiver<u64>,
}

#[async_trait]
impl SequencerLog for EmbeddedSequencerLog {
    async fn next_batch(&mut self, max: usize) -> PortResult<Vec<CommandRecord>> {
        loop {
            self.wake.borrow_and_update();
            let batch = self.log.read_commands(&mut self.pos, max);
            if !batch.is_empty() {
                return Ok(batch);
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.changed()).await;
        }
    }

    async fn load_partition(&mut self, partition: i32) -> PortResult<Vec<Event>> {
        self.log.partition_events(partition).await
    }

    async fn commit(
        &mut self,
        events: Vec<(i32, Event)>,
        replies: Vec<Reply>,
        offsets: Vec<(i32, i64)>,
    ) -> PortResult<()> {
        let encoded: Vec<(i32, Vec<u8>)> =
            events.iter().map(|(p, e)| Ok((*p, self.log.codec.encode(e).map_err(port)?))).collect::<PortResult<_>>()?;
        // The commit waits for fsync, so it runs off the async workers, which serve every
        // socket and projector of this process, and without the offsets lock, which command
        // sends and every reader take: only ingest appends events, so no one else moves the
        // events' offsets in between.
        let log = self.log.clone();
        let offsets_done = offsets.clone();
        tokio::task::spawn_blocking(move || {
            let mut staged: HashMap<i32, i64> = HashMap::new();
            {
                let next = log.next.lock().expect("log lock");
                for (p, _) in &encoded {
                    staged.entry(*p).or_insert(next[&(Topic::Events, *p)]);
                }
            }
            let mut batch = log.db.batch().durability(Some(PersistMode::SyncAll));
            for (p, bytes) in encoded {
                let o = staged.get_mut(&p).expect("staged above");
                batch.insert(&log.events, key(p, *o).to_vec(), bytes);
                *o += 1;
            }
            for (p, o) in &offsets {
                batch.insert(
                    &log.positions,
                    Log::position_key("ingest", Topic::Commands, *p),
                    o.to_be_bytes().to_vec(),
                );
            }
            batch.commit().map_err(port)?;
            let mut next = log.next.lock().expect("log lock");
            for (p, o) in staged {
                next.insert((Topic::Events, p), o);
            }
            PortResult::Ok(())
        })
        .await
        .map_err(PortError::from)??;
        self.log.forget_commands(&offsets_done);
        self.log.events_written.send_modify(|n| *n += 1);
        for r in replies {
            // no receiver (no gateway running) is fine: the events are committed
            let _ = self.log.replies.send(r);
        }
        Ok(())
    }

    fn take_revoked(&mut self) -> Vec<i32> {
        vec![]
    }
}

struct EmbeddedEventSource {
    log: Arc<Log>,
    group: String,
    pos: Vec<i64>,
    acked: Vec<i64>,
    wake: watch::Receiver<u64>,
}

impl EmbeddedEventSource {
    /// Decodes what was read. A record that cannot be decoded yet (a transient error) ends the
    /// batch: the positions go back to it and to what was read after it, so it is read again.
    async fn records(&mut self, raw: Vec<(i32, i64, fjall::Slice)>) -> PortResult<Vec<EventRecord>> {
        let mut out = Vec::with_capacity(raw.len());
        let mut raw = raw.into_iter();
        while let Some((partition, offset, v)) = raw.next() {
            let event = match self.log.codec.decode(&v).await.map_err(PortError::from) {
                Ok(event) => Ok(event),
                Err(e) if e.is_transient() => {
                    self.pos[partition as usize] = offset;
                    for (p, o, _) in raw {
                        self.pos[p as usize] = self.pos[p as usize].min(o);
                    }
                    return if out.is_empty() { Err(e.context("decoding an event")) } else { Ok(out) };
                }
                Err(error) => Err(DeadRecord { error, payload: v.to_vec() }),
            };
            out.push(EventRecord { partition, offset, event });
        }
        Ok(out)
    }
}

#[async_trait]
impl EventSource for EmbeddedEventSource {
    async fn next_batch(&mut self, max: usize, wait: Option<Duration>) -> PortResult<Vec<EventRecord>> {
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        loop {
            self.wake.borrow_and_update();
            let raw = self.log.read(Topic::Events, &mut self.pos, max)?;
            if !raw.is_empty() {
                return self.records(raw).await;
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Ok(vec![]);
            }
            let step = deadline
                .map(|d| d.saturating_duration_since(tokio::time::Instant::now()))
                .unwrap_or(Duration::from_secs(1));
            let _ = tokio::time::timeout(step.min(Duration::from_secs(1)), self.wake.changed()).await;
        }
    }

    async fn positions(&mut self) -> PortResult<Vec<(i32, i64)>> {
        Ok(self.pos.iter().enumerate().map(|(p, o)| (p as i32, *o)).collect())
    }

    async fn end_offsets(&mut self) -> PortResult<Vec<(i32, i64)>> {
        Ok((0..self.log.partitions).map(|p| (p, self.log.end(Topic::Events, p))).collect())
    }

    fn ack_returned(&mut self) -> PortResult<()> {
        self.acked.clone_from(&self.pos);
        Ok(())
    }

    async fn commit(&mut self, _wait: bool) -> PortResult<()> {
        let mut batch = self.log.db.batch();
        for (p, o) in self.acked.iter().enumerate() {
            batch.insert(
                &self.log.positions,
                Log::position_key(&self.group, Topic::Events, p as i32),
                o.to_be_bytes().to_vec(),
            );
        }
        batch.commit().map_err(port)
    }

    async fn lag(&mut self) -> Option<i64> {
        Some((0..self.log.partitions).map(|p| (self.log.end(Topic::Events, p) - self.acked[p as usize]).max(0)).sum())
    }

    async fn dead_letter(&mut self, partition: i32, offset: i64, record: &DeadRecord) -> PortResult<()> {
        use base64::Engine;
        let dead = DeadLetter {
            reader: self.group.clone(),
            partition,
            offset,
            error: record.error.to_string(),
            payload: base64::engine::general_purpose::STANDARD.encode(&record.payload),
        };
        let key = format!("{}/{partition:010}/{offset:020}", self.group);
        self.log.dead_letters.insert(key, serde_json::to_vec(&dead).expect("dead letter serializes")).map_err(port)?;
        self.log.db.persist(PersistMode::SyncAll).map_err(port)
    }
}

struct EmbeddedReplySource {
    rx: broadcast::Receiver<Reply>,
    gateway_id: String,
}

#[async_trait]
impl ReplySource for EmbeddedReplySource {
    async fn next(&mut self) -> PortResult<Reply> {
        loop {
            match self.rx.recv().await {
                Ok(r) if r.reply_to.gateway_id == self.gateway_id => return Ok(r),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::error!(missed = n, "gateway fell behind on replies; those clients will retry");
                }
                Err(broadcast::error::RecvError::Closed) => return Err(PortError::fatal("log closed")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::command::{CommandBody, ReplyTo};
    use confab_core::ports::SchemaSource;
    use uuid::Uuid;

    async fn open(dir: &std::path::Path) -> Arc<Log> {
        let registry = Arc::new(confab_registry::SchemaStore::open(None).unwrap());
        let codec = EventCodec::register_with(registry as Arc<dyn SchemaSource>, "t-events").await.unwrap();
        let db = Database::builder(dir).open().unwrap();
        let ks = |n: &str| db.keyspace(n, fjall::KeyspaceCreateOptions::default).unwrap();
        let disk = DiskWatermark::new(std::env::temp_dir(), 0);
        Arc::new(Log::open(db.clone(), ks("events"), ks("positions"), ks("dead"), 4, codec, disk).unwrap())
    }

    fn command(ws: Uuid, ch: Uuid, n: i64) -> Command {
        Command {
            command_id: Uuid::new_v4(),
            workspace_id: ws,
            user_id: Uuid::new_v4(),
            channel_id: ch,
            reply_to: ReplyTo { gateway_id: "g".into(), conn_id: 1 },
            issued_at: 0,
            client_msg_id: None,
            // the command's number rides in a pin's message id
            body: CommandBody::Pin { message_id: Uuid::from_u128(n as u128), pinned: true },
            sealed: Vec::new(),
        }
    }

    fn seqs(batch: &[CommandRecord]) -> Vec<i64> {
        batch
            .iter()
            .map(|r| match r.command.as_ref().unwrap().body {
                CommandBody::Pin { message_id, .. } => message_id.as_u128() as i64,
                _ => unreachable!(),
            })
            .collect()
    }

    #[tokio::test]
    async fn commands_are_read_in_order_forgotten_once_committed_and_numbered_on_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (ws, ch) = (Uuid::new_v4(), Uuid::new_v4());
        let p = partition_for(&command(ws, ch, 0).key(), 4);
        {
            let log = open(dir.path()).await;
            for n in 0..5 {
                log.send(&command(ws, ch, n)).await.unwrap();
            }
            let mut seq = log.sequencer().unwrap();
            let first = seq.next_batch(3).await.unwrap();
            assert_eq!(seqs(&first), [0, 1, 2]);
            assert_eq!(first.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 1, 2]);
            // a session that fails before committing starts again from the committed position
            let mut again = log.sequencer().unwrap();
            assert_eq!(seqs(&again.next_batch(10).await.unwrap()), [0, 1, 2, 3, 4]);
            seq.commit(vec![], vec![], vec![(p, 3)]).await.unwrap();
            assert_eq!(log.commands.lock().unwrap().queues[p as usize].len(), 2, "the committed three are forgotten");
            assert_eq!(seqs(&seq.next_batch(10).await.unwrap()), [3, 4]);
        }
        // after a restart (the uncommitted two were lost with the process: never acknowledged),
        // offsets go on from ingest's committed position
        let log = open(dir.path()).await;
        log.send(&command(ws, ch, 7)).await.unwrap();
        let batch = log.sequencer().unwrap().next_batch(10).await.unwrap();
        assert_eq!(batch.iter().map(|r| (r.partition, r.offset)).collect::<Vec<_>>(), [(p, 3)]);
        assert_eq!(seqs(&batch), [7]);
    }

    #[tokio::test]
    async fn ingest_opens_a_sealed_command_and_destroys_its_transit_key_once_committed() {
        use confab_core::keyring::{Keyring, SealingLog, SealingSink};
        use confab_core::ports::UnacceptedCommand;
        use confab_core::sealing::LocalMasterKey;
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir.path().join("log")).await;
        let keys = crate::keys::tests::open_keys(&dir.path().join("keys"));
        let keyring =
            || Arc::new(Keyring::new(keys.clone(), Arc::new(LocalMasterKey::from_secret(crate::keys::tests::MASTER))));
        let (ws, ch) = (Uuid::new_v4(), Uuid::new_v4());
        let body = CommandBody::SendMessage {
            text: "a secret".into(),
            thread_ts: None,
            also_in_channel: false,
            file_ids: vec![],
        };
        let sent = Command { body, ..command(ws, ch, 0) };
        SealingSink::new(log.clone(), keyring()).send(&sent).await.unwrap();

        // the log holds it sealed
        let held = log.sequencer().unwrap().next_batch(10).await.unwrap().remove(0);
        let held_command = held.command.unwrap();
        assert!(!serde_json::to_string(&held_command).unwrap().contains("secret"));
        // ingest reads it opened, and once the batch is committed its key is gone
        let mut ingest = SealingLog::new(log.sequencer().unwrap(), keyring());
        let batch = ingest.next_batch(10).await.unwrap();
        assert_eq!(batch[0].command.as_ref().unwrap(), &sent);
        assert!(reopened(keyring(), held_command.clone()).await.is_ok(), "the key lives until the commit");
        ingest.commit(vec![], vec![], vec![(held.partition, held.offset + 1)]).await.unwrap();
        // the destruction runs beside the next batch: within moments
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut verdict = reopened(keyring(), held_command.clone()).await;
        while verdict.is_ok() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
            verdict = reopened(keyring(), held_command.clone()).await;
        }
        assert_eq!(verdict.unwrap_err(), UnacceptedCommand::Erased);
    }

    /// The log's copy of a command as a fresh reader opens it.
    async fn reopened(
        keyring: Arc<confab_core::keyring::Keyring>,
        held: Command,
    ) -> Result<Command, confab_core::ports::UnacceptedCommand> {
        let mut batch = vec![CommandRecord { partition: 0, offset: 0, command: Ok(held) }];
        keyring.open_commands(&mut batch).await.unwrap();
        batch.remove(0).command
    }

    #[tokio::test]
    async fn a_full_command_log_refuses_sends_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path()).await;
        let (ws, ch) = (Uuid::new_v4(), Uuid::new_v4());
        for n in 0..MAX_PENDING_COMMANDS as i64 {
            log.send(&command(ws, ch, n)).await.unwrap();
        }
        let e = log.send(&command(ws, ch, -1)).await.unwrap_err();
        assert!(e.to_string().contains("command log full"), "{e}");
        // once ingest commits past some, sends are taken again
        let p = partition_for(&command(ws, ch, 0).key(), 4);
        let mut seq = log.sequencer().unwrap();
        seq.commit(vec![], vec![], vec![(p, 10)]).await.unwrap();
        log.send(&command(ws, ch, -2)).await.unwrap();
    }

    #[tokio::test]
    async fn the_command_log_is_bounded_in_bytes_not_only_in_count() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path()).await;
        let (ws, ch) = (Uuid::new_v4(), Uuid::new_v4());
        let big = |n: usize| Command {
            client_msg_id: Some(format!("big-{n:06}")),
            body: CommandBody::SendMessage {
                text: "x".repeat(40_000),
                thread_ts: None,
                also_in_channel: false,
                file_ids: vec![],
            },
            sealed: Vec::new(),
            ..command(ws, ch, 0)
        };
        let size = encoded_len(&big(0));
        let fits = MAX_PENDING_COMMAND_BYTES / size;
        for n in 0..fits {
            log.send(&big(n)).await.unwrap();
        }
        // far below the count bound (a count-only bound held 200,000 of these: 8 GB)
        let e = log.send(&big(fits)).await.unwrap_err();
        assert!(e.to_string().contains("command log full"), "{e}");
        assert!(log.commands.lock().unwrap().bytes <= MAX_PENDING_COMMAND_BYTES);
        let p = partition_for(&big(0).key(), 4);
        log.sequencer().unwrap().commit(vec![], vec![], vec![(p, 10)]).await.unwrap();
        log.send(&big(fits)).await.unwrap();
        assert_eq!(log.commands.lock().unwrap().count, fits + 1 - 10, "what was committed past is forgotten");
    }

    #[tokio::test]
    async fn sends_are_refused_while_the_disk_is_under_the_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path()).await;
        let free = fs4::available_space(dir.path()).unwrap();
        let mut low = Log::open(
            log.db.clone(),
            log.events.clone(),
            log.positions.clone(),
            log.dead_letters.clone(),
            4,
            log.codec.clone(),
            DiskWatermark::new(dir.path().to_path_buf(), free + (1 << 40)),
        )
        .unwrap();
        let e = low.send(&command(Uuid::new_v4(), Uuid::new_v4(), 1)).await.unwrap_err();
        assert!(e.to_string().contains("min_free_disk_mb"), "{e}");
        low.disk = DiskWatermark::new(dir.path().to_path_buf(), 1);
        low.send(&command(Uuid::new_v4(), Uuid::new_v4(), 1)).await.unwrap();
    }

    /// Appends raw bytes to a partition of the events (what a foreign writer could leave).
    fn append_raw(log: &Log, partition: i32, bytes: &[u8]) {
        let mut next = log.next.lock().unwrap();
        let o = next[&(Topic::Events, partition)];
        log.events.insert(key(partition, o), bytes.to_vec()).unwrap();
        next.insert((Topic::Events, partition), o + 1);
    }

    #[tokio::test]
    async fn an_undecodable_event_is_returned_whole_and_kept_as_a_dead_letter() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path()).await;
        append_raw(&log, 2, b"\x00\x00\x00\x00\x63not avro");
        let mut source = log.event_source("timeline").unwrap();
        let batch = source.next_batch(10, Some(Duration::from_millis(100))).await.unwrap();
        assert_eq!(batch.len(), 1);
        let Err(dead) = &batch[0].event else { panic!("decoded garbage") };
        assert!(!dead.error.is_transient(), "{}", dead.error);
        source.dead_letter(batch[0].partition, batch[0].offset, dead).await.unwrap();
        let kept = log.dead_letters().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].reader.as_str(), kept[0].partition, kept[0].offset), ("timeline", 2, 0));
        use base64::Engine;
        let payload = base64::engine::general_purpose::STANDARD.decode(&kept[0].payload).unwrap();
        assert_eq!(payload, b"\x00\x00\x00\x00\x63not avro");
    }
}
