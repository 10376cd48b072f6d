//! A projector's consumer of `<ns>.events`: group `<ns>-projector-<name>`, static membership,
//! `read_committed`. Offsets are stored only when acknowledged (after the projector's write) and
//! auto-committed every second, on revoke, and by `commit` on shutdown.
//!
//! A record that cannot be decoded *yet* (the registry is unreachable for its writer schema)
//! ends the batch before it: the consumer seeks back to it and, if it came first, the read
//! fails as transient, so the runner waits and reads it again. Only a record that can never be
//! decoded is returned as such, for the dead-letter topic.
//!
//! A static member that could not reach its group coordinator for a whole session (the broker
//! that coordinates the group was lost, and the group moved) rejoins, and the broker then fences
//! its old membership: librdkafka reports that as fatal and the client is finished. The source
//! then makes a new consumer with the same identity, which takes the partitions back from the
//! committed offsets, and reports the failure as transient: the runner reads again, and what
//! it applies twice it applies idempotently.

use async_trait::async_trait;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use confab_core::avro::EventCodec;
use confab_core::config::Config;
use confab_core::ports::{DeadRecord, EventRecord, EventSource, PortError, PortResult, ReplayFrom};
use confab_core::Topics;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use super::client::{base_config, consumer_config, group, ClosedOffRuntime};
use super::error::{is_fenced_static_member, port_error, KafkaResultExt};
use super::statistics::Metered;

pub struct KafkaEventSource {
    consumer: ClosedOffRuntime<Arc<StreamConsumer<Metered>>>,
    /// The projector of a live (subscribed) source, which can make its consumer again; `None`
    /// for replays.
    projector: Option<String>,
    codec: EventCodec,
    topic: String,
    /// Who reads (the projector, or `replay-<projection>`), for dead letters' headers.
    reader: String,
    dead_letter_topic: String,
    /// Made on the first dead letter.
    dead_letters: Option<FutureProducer>,
    cfg: Config,
    lag: Arc<AtomicI64>,
    /// The outcome of the lag probe's last look at the brokers.
    reachable: Arc<std::sync::Mutex<Result<(), String>>>,
    /// Start offsets of explicitly assigned partitions (replays).
    starts: std::collections::HashMap<i32, i64>,
}

impl KafkaEventSource {
    pub fn start(cfg: &Config, projector: &str, codec: EventCodec) -> PortResult<Self> {
        let consumer = live_consumer(cfg, projector)?;
        let mut source = Self::assemble(cfg, projector, consumer, codec, Default::default());
        source.projector = Some(projector.to_string());
        source.watch_lag();
        Ok(source)
    }

    /// Measures the current consumer's lag in the background, until the consumer is dropped.
    fn watch_lag(&self) {
        let probe = LagProbe { lag: self.lag.clone(), reachable: self.reachable.clone() };
        tokio::spawn(measure_lag(Arc::downgrade(&*self.consumer), self.topic.clone(), probe));
    }

    /// The port error for `e`. A live source whose static membership was fenced makes a new
    /// consumer first and calls the failure transient (see the module's notes).
    fn failed(&mut self, what: &str, e: rdkafka::error::KafkaError) -> PortError {
        let fenced = is_fenced_static_member(&e);
        let Some(projector) = self.projector.clone().filter(|_| fenced) else { return port_error(what, e) };
        tracing::warn!(projector, error = %e, "consumer fenced after its session was lost, joining again");
        match live_consumer(&self.cfg, &projector) {
            Ok(consumer) => {
                self.consumer = ClosedOffRuntime::new(consumer);
                self.watch_lag();
                PortError::transient(format!("kafka, {what}: fenced, joined again: {e}"))
            }
            Err(made) => made.context("making a new consumer after being fenced"),
        }
    }

    /// A replay consumer in its own group (`<ns>-replay-<projection>`): every partition
    /// assigned explicitly (no rebalancing), from the group's committed offsets, or from the
    /// beginning when `from_earliest` or when nothing is committed.
    pub async fn replay(cfg: &Config, projection: &str, codec: EventCodec, from: ReplayFrom) -> PortResult<Self> {
        let topic = Topics::new(&cfg.namespace).events;
        let consumer: Arc<StreamConsumer<Metered>> = Arc::new(
            base_config(cfg)
                .set("group.id", group(cfg, &format!("replay-{projection}")))
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "1000")
                .set("enable.auto.offset.store", "false")
                .set("isolation.level", "read_committed")
                .set("fetch.wait.max.ms", cfg.kafka.fetch_wait_max_ms.to_string())
                .create_with_context(Metered::new(format!("replay-{projection}")))
                .or_port("creating the events consumer")?,
        );
        let c = consumer.clone();
        let t = topic.clone();
        let tpl = super::blocking("finding replay offsets", move || {
            let md = c.fetch_metadata(Some(&t), Duration::from_secs(30))?;
            let mut all = rdkafka::TopicPartitionList::new();
            for topic in md.topics() {
                for p in topic.partitions() {
                    all.add_partition(&t, p.id());
                }
            }
            let committed = c.committed_offsets(all.clone(), Duration::from_secs(30))?;
            let by_time = match &from {
                ReplayFrom::Timestamp(ms) => {
                    let mut q = rdkafka::TopicPartitionList::new();
                    for e in all.elements() {
                        q.add_partition_offset(&t, e.partition(), Offset::Offset(*ms))?;
                    }
                    Some(c.offsets_for_times(q, Duration::from_secs(30))?)
                }
                _ => None,
            };
            let mut tpl = rdkafka::TopicPartitionList::new();
            for e in committed.elements() {
                let p = e.partition();
                let (low, high) = c.fetch_watermarks(&t, p, Duration::from_secs(30))?;
                let start = match (&from, e.offset()) {
                    (ReplayFrom::Resume, Offset::Offset(o)) => o,
                    (ReplayFrom::Offsets(m), _) => m.get(&p).copied().unwrap_or(low),
                    (ReplayFrom::Timestamp(_), _) => {
                        match by_time.as_ref().and_then(|b| b.find_partition(&t, p)).map(|x| x.offset()) {
                            Some(Offset::Offset(o)) => o,
                            _ => high, // nothing at or after the timestamp
                        }
                    }
                    _ => low,
                };
                tpl.add_partition_offset(&t, p, Offset::Offset(start.clamp(low, high)))?;
            }
            Ok(tpl)
        })
        .await?;
        let starts = tpl
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect();
        consumer.assign(&tpl).or_port("assigning partitions")?;
        Ok(Self::assemble(cfg, &format!("replay-{projection}"), consumer, codec, starts))
    }

    fn assemble(
        cfg: &Config,
        reader: &str,
        consumer: Arc<StreamConsumer<Metered>>,
        codec: EventCodec,
        starts: std::collections::HashMap<i32, i64>,
    ) -> Self {
        let topics = Topics::new(&cfg.namespace);
        Self {
            consumer: ClosedOffRuntime::new(consumer),
            projector: None,
            codec,
            topic: topics.events,
            reader: reader.to_string(),
            dead_letter_topic: topics.dead_letter,
            dead_letters: None,
            cfg: cfg.clone(),
            lag: Arc::new(AtomicI64::new(0)),
            reachable: Arc::new(std::sync::Mutex::new(Ok(()))),
            starts,
        }
    }

    /// The record for `m`, or the transient error that kept it from being decoded.
    async fn record(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> Result<EventRecord, PortError> {
        let payload = m.payload().unwrap_or_default();
        let event = match self.codec.decode(payload).await.map_err(PortError::from) {
            Ok(event) => Ok(event),
            Err(e) if e.is_transient() => return Err(e.context("decoding an event")),
            Err(error) => Err(DeadRecord { error, payload: payload.to_vec() }),
        };
        Ok(EventRecord { partition: m.partition(), offset: m.offset(), event })
    }

    /// Rewinds a partition to `offset`: the record there is read again by the next batch.
    async fn rewind(&self, partition: i32, offset: i64) -> PortResult<()> {
        let (c, t) = (self.consumer.clone(), self.topic.clone());
        super::blocking("rewinding to an undecoded event", move || {
            c.seek(&t, partition, Offset::Offset(offset), Duration::from_secs(10))
        })
        .await
    }
}

#[async_trait]
impl EventSource for KafkaEventSource {
    async fn next_batch(&mut self, max: usize, wait: Option<Duration>) -> PortResult<Vec<EventRecord>> {
        let mut batch = Vec::new();
        // one deadline for the whole batch: a steady trickle must not keep a batch open; only
        // the first receive may wait longer (nothing has been taken from the consumer yet)
        let mut deadline = None;
        let consumer = self.consumer.clone();
        while batch.len() < max {
            let received = match (deadline, wait) {
                (Some(d), _) => tokio::time::timeout_at(d, consumer.recv()).await,
                (None, Some(w)) => tokio::time::timeout(w, consumer.recv()).await,
                (None, None) => Ok(consumer.recv().await),
            };
            let Ok(m) = received else { break };
            let m = match m {
                Ok(m) => m,
                Err(e) => return Err(self.failed("reading events", e)),
            };
            match self.record(&m).await {
                Ok(record) => batch.push(record),
                Err(e) => {
                    let (partition, offset) = (m.partition(), m.offset());
                    drop(m);
                    self.rewind(partition, offset).await?;
                    if batch.is_empty() {
                        return Err(e);
                    }
                    tracing::warn!(partition, offset, error = %e, "an event cannot be decoded yet; the batch ends before it");
                    break;
                }
            }
            deadline.get_or_insert_with(|| tokio::time::Instant::now() + Duration::from_millis(2));
        }
        Ok(batch)
    }

    async fn positions(&mut self) -> PortResult<Vec<(i32, i64)>> {
        let pos = self.consumer.position().or_port("reading positions")?;
        Ok(pos
            .elements()
            .iter()
            .map(|e| {
                let o = match e.offset() {
                    Offset::Offset(o) => o,
                    // nothing consumed yet: where this consumer starts
                    _ => self.starts.get(&e.partition()).copied().unwrap_or(0),
                };
                (e.partition(), o)
            })
            .collect())
    }

    async fn end_offsets(&mut self) -> PortResult<Vec<(i32, i64)>> {
        let c = self.consumer.clone();
        let t = self.topic.clone();
        super::blocking("reading end offsets", move || {
            let md = c.fetch_metadata(Some(&t), Duration::from_secs(30))?;
            let mut out = Vec::new();
            for topic in md.topics() {
                for p in topic.partitions() {
                    out.push((p.id(), c.fetch_watermarks(&t, p.id(), Duration::from_secs(30))?.1));
                }
            }
            Ok(out)
        })
        .await
    }

    fn ack_returned(&mut self) -> PortResult<()> {
        // the position is the next offset to read, past any transaction markers consumed
        let mut tpl = rdkafka::TopicPartitionList::new();
        for e in self.consumer.position().or_port("reading positions")?.elements() {
            if let Offset::Offset(o) = e.offset() {
                tpl.add_partition_offset(&self.topic, e.partition(), Offset::Offset(o)).or_port("storing positions")?;
            }
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        self.consumer.store_offsets(&tpl).or_port("storing positions")
    }

    async fn commit(&mut self, wait: bool) -> PortResult<()> {
        // nothing stored since the last commit is not a failure
        let nothing_to_commit =
            |e: &rdkafka::error::KafkaError| e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset);
        if !wait {
            // stored offsets are auto-committed in the background too; this only hurries them
            return match self.consumer.commit_consumer_state(CommitMode::Async) {
                Err(e) if !nothing_to_commit(&e) => Err(self.failed("committing positions", e)),
                _ => Ok(()),
            };
        }
        let c = self.consumer.clone();
        let committed = tokio::task::spawn_blocking(move || c.commit_consumer_state(CommitMode::Sync)).await?;
        match committed {
            Err(e) if !nothing_to_commit(&e) => Err(self.failed("committing positions", e)),
            _ => Ok(()),
        }
    }

    async fn lag(&mut self) -> Option<i64> {
        Some(self.lag.load(Ordering::Relaxed))
    }

    fn reachable(&self) -> Result<(), String> {
        self.reachable.lock().expect("reachable lock").clone()
    }

    async fn dead_letter(&mut self, partition: i32, offset: i64, record: &DeadRecord) -> PortResult<()> {
        if self.dead_letters.is_none() {
            let producer = base_config(&self.cfg)
                .set("acks", "all")
                .set("enable.idempotence", "true")
                .create()
                .or_port("creating the dead-letter producer")?;
            self.dead_letters = Some(producer);
        }
        let producer = self.dead_letters.as_ref().expect("made above");
        let (partition_text, offset_text) = (partition.to_string(), offset.to_string());
        let error_text = record.error.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header { key: "source.topic", value: Some(self.topic.as_str()) })
            .insert(Header { key: "source.partition", value: Some(partition_text.as_str()) })
            .insert(Header { key: "source.offset", value: Some(offset_text.as_str()) })
            .insert(Header { key: "reader", value: Some(self.reader.as_str()) })
            .insert(Header { key: "error", value: Some(error_text.as_str()) });
        let key = format!("{}:{partition}:{offset}", self.reader);
        let dead = FutureRecord::to(&self.dead_letter_topic).key(&key).payload(&record.payload).headers(headers);
        producer
            .send(dead, Timeout::After(Duration::from_secs(10)))
            .await
            .map_err(|(e, _)| port_error("writing a dead letter", e))?;
        Ok(())
    }
}

/// A projector's consumer of the events, subscribed (group `<ns>-projector-<name>`, static
/// membership).
fn live_consumer(cfg: &Config, projector: &str) -> PortResult<Arc<StreamConsumer<Metered>>> {
    let topic = Topics::new(&cfg.namespace).events;
    let mut config = consumer_config(cfg, &format!("projector-{projector}"));
    if matches!(projector, "search" | "notifier") {
        // off the read path clients hit right after a live event: fewer, larger fetches
        // under load (see the config's docs)
        config
            .set("fetch.wait.max.ms", cfg.kafka.projector_fetch_wait_ms.to_string())
            .set("fetch.min.bytes", cfg.kafka.projector_fetch_min_bytes.max(1).to_string());
    }
    let consumer: StreamConsumer<Metered> = config
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .create_with_context(Metered::new(format!("projector-{projector}")))
        .or_port("creating the events consumer")?;
    consumer.subscribe(&[&topic]).or_port("subscribing to events")?;
    Ok(Arc::new(consumer))
}

/// Where the lag probe reports.
struct LagProbe {
    lag: Arc<AtomicI64>,
    reachable: Arc<std::sync::Mutex<Result<(), String>>>,
}

/// Every 2 s: the lag (high watermarks minus positions), and whether the brokers answered.
async fn measure_lag(consumer: std::sync::Weak<StreamConsumer<Metered>>, topic: String, out: LagProbe) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(c) = consumer.upgrade() else { return };
        let t = topic.clone();
        let lag = super::blocking("measuring lag", move || {
            let mut total = 0;
            for p in c.position()?.elements() {
                let (_, high) = c.fetch_watermarks(&t, p.partition(), Duration::from_secs(2))?;
                if let Offset::Offset(pos) = p.offset() {
                    total += (high - pos).max(0);
                }
            }
            Ok(total)
        })
        .await;
        let reachable = match lag {
            Ok(lag) => {
                out.lag.store(lag, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        *out.reachable.lock().expect("reachable lock") = reachable;
    }
}
