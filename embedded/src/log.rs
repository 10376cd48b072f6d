//! The embedded event log. Keys are `partition (u32 BE) | offset (u64 BE)`, so a partition is a
//! contiguous, ordered range; positions are `group/topic/partition -> next offset`.

use async_trait::async_trait;
use confab_core::avro::EventCodec;
use confab_core::command::{Command, Reply};
use confab_core::event::Event;
use confab_core::ports::{CommandRecord, CommandSink, EventRecord, EventSource, PortError, PortResult, ReplySource, SequencerLog};
use fjall::{Database, Keyspace, PersistMode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

use crate::EmbeddedError;

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

fn port<E: std::fmt::Display>(e: E) -> PortError {
    PortError::of(e)
}

pub struct Log {
    db: Database,
    commands: Keyspace,
    events: Keyspace,
    positions: Keyspace,
    partitions: i32,
    next: Mutex<HashMap<(Topic, i32), i64>>,
    commands_written: watch::Sender<u64>,
    events_written: watch::Sender<u64>,
    replies: broadcast::Sender<Reply>,
    codec: EventCodec,
}

impl Log {
    pub fn open(db: Database, commands: Keyspace, events: Keyspace, positions: Keyspace, partitions: i32, codec: EventCodec) -> Result<Self, EmbeddedError> {
        let mut next = HashMap::new();
        for (topic, ks) in [(Topic::Commands, &commands), (Topic::Events, &events)] {
            for p in 0..partitions {
                let last = ks.range(key(p, 0)..=key(p, i64::MAX)).next_back();
                let n = match last {
                    Some(g) => offset_of(&g.key()?) + 1,
                    None => 0,
                };
                next.insert((topic, p), n);
            }
        }
        Ok(Self {
            db,
            commands,
            events,
            positions,
            partitions,
            next: Mutex::new(next),
            commands_written: watch::channel(0).0,
            events_written: watch::channel(0).0,
            replies: broadcast::channel(65_536).0,
            codec,
        })
    }

    fn keyspace(&self, t: Topic) -> &Keyspace {
        match t {
            Topic::Commands => &self.commands,
            Topic::Events => &self.events,
        }
    }

    fn position_key(group: &str, t: Topic, p: i32) -> String {
        format!("{group}/{}/{p}", t.name())
    }

    fn position(&self, group: &str, t: Topic, p: i32) -> PortResult<i64> {
        Ok(match self.positions.get(Self::position_key(group, t, p)).map_err(port)? {
            Some(v) => i64::from_be_bytes(v.as_ref().try_into().map_err(|_| PortError("corrupt position".into()))?),
            None => 0,
        })
    }

    fn end(&self, t: Topic, p: i32) -> i64 {
        self.next.lock().expect("log lock")[&(t, p)]
    }

    /// Reads up to `max` records of `t` from the given positions, round-robin over partitions.
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
            for g in self.keyspace(t).range(key(p, start)..=key(p, i64::MAX)).take(max - out.len()) {
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
        let pos = (0..self.partitions).map(|p| self.position("ingest", Topic::Commands, p)).collect::<PortResult<Vec<_>>>()?;
        Ok(Box::new(EmbeddedSequencerLog { log: self.clone(), pos, wake: self.commands_written.subscribe() }))
    }

    /// A consumer of the events for one projector, from its committed position.
    pub fn event_source(self: &Arc<Self>, group: &str) -> PortResult<Box<dyn EventSource>> {
        let pos = (0..self.partitions).map(|p| self.position(group, Topic::Events, p)).collect::<PortResult<Vec<_>>>()?;
        Ok(self.source_at(group, pos))
    }

    fn source_at(self: &Arc<Self>, group: &str, pos: Vec<i64>) -> Box<dyn EventSource> {
        Box::new(EmbeddedEventSource { log: self.clone(), group: group.to_string(), acked: pos.clone(), pos, wake: self.events_written.subscribe() })
    }

    /// A consumer of the events for a replay, from where `from` says.
    pub async fn event_source_from(self: &Arc<Self>, group: &str, from: confab_core::ports::ReplayFrom) -> PortResult<Box<dyn EventSource>> {
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
        let raw: Vec<fjall::Slice> =
            self.events.range(key(p, 0)..=key(p, i64::MAX)).map(|g| g.value().map_err(port)).collect::<PortResult<_>>()?;
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
        let payload = serde_json::to_vec(cmd).expect("command serializes");
        {
            let mut next = self.next.lock().expect("log lock");
            let o = next[&(Topic::Commands, p)];
            // not fsynced: an unacknowledged command may be lost in a crash, and the client retries
            self.commands.insert(key(p, o), payload).map_err(port)?;
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
            let raw = self.log.read(Topic::Commands, &mut self.pos, max)?;
            if !raw.is_empty() {
                return Ok(raw
                    .into_iter()
                    .map(|(partition, offset, v)| CommandRecord { partition, offset, command: serde_json::from_slice(&v).ok() })
                    .collect());
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.changed()).await;
        }
    }

    async fn load_partition(&mut self, partition: i32) -> PortResult<Vec<Event>> {
        self.log.partition_events(partition).await
    }

    async fn commit(&mut self, events: Vec<(i32, Event)>, replies: Vec<Reply>, offsets: Vec<(i32, i64)>) -> PortResult<()> {
        let encoded: Vec<(i32, Vec<u8>)> =
            events.iter().map(|(p, e)| Ok((*p, self.log.codec.encode(e).map_err(port)?))).collect::<PortResult<_>>()?;
        // The commit waits for fsync, so it runs off the async workers, which serve every
        // socket and projector of this process, and without the offsets lock, which command
        // sends and every reader take: only ingest appends events, so no one else moves the
        // events' offsets in between.
        let log = self.log.clone();
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
                batch.insert(&log.positions, Log::position_key("ingest", Topic::Commands, *p), o.to_be_bytes().to_vec());
            }
            batch.commit().map_err(port)?;
            let mut next = log.next.lock().expect("log lock");
            for (p, o) in staged {
                next.insert((Topic::Events, p), o);
            }
            PortResult::Ok(())
        })
        .await
        .map_err(|e| PortError(format!("log commit task: {e}")))??;
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

#[async_trait]
impl EventSource for EmbeddedEventSource {
    async fn next_batch(&mut self, max: usize, wait: Option<Duration>) -> PortResult<Vec<EventRecord>> {
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        loop {
            self.wake.borrow_and_update();
            let raw = self.log.read(Topic::Events, &mut self.pos, max)?;
            if !raw.is_empty() {
                let mut out = Vec::with_capacity(raw.len());
                for (partition, offset, v) in raw {
                    out.push(EventRecord { partition, offset, event: self.log.codec.decode(&v).await.map_err(|e| e.to_string()) });
                }
                return Ok(out);
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Ok(vec![]);
            }
            let step = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now())).unwrap_or(Duration::from_secs(1));
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
            batch.insert(&self.log.positions, Log::position_key(&self.group, Topic::Events, p as i32), o.to_be_bytes().to_vec());
        }
        batch.commit().map_err(port)
    }

    async fn lag(&mut self) -> Option<i64> {
        Some((0..self.log.partitions).map(|p| (self.log.end(Topic::Events, p) - self.acked[p as usize]).max(0)).sum())
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
                Err(broadcast::error::RecvError::Closed) => return Err(PortError("log closed".into())),
            }
        }
    }
}
