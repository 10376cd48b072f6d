//! The sequencer's log on Kafka: commands consumed in group `<ns>-ingest` (static membership);
//! events, replies and the consumed offsets committed in one Kafka transaction.
//!
//! `start` runs `init_transactions`, which fences a previous instance with the same
//! `transactional.id` and aborts its open transaction; only after that is a partition's event
//! history final up to its end, so `load_partition` may read it.

use async_trait::async_trait;
use futures::future::try_join_all;
use rdkafka::consumer::{Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_core::auth::command_signing::{CommandSigner, SIGNATURE_HEADER};
use confab_core::avro::EventCodec;
use confab_core::command::{Command, Reply};
use confab_core::config::Config;
use confab_core::event::Event;
use confab_core::ports::{CommandRecord, PortError, PortResult, SequencerLog, UnacceptedCommand};
use confab_core::Topics;

use super::client::{base_config, consumer_config, group, ClosedOffRuntime};
use super::error::{is_fenced_static_member, port_error, KafkaResultExt};
use super::statistics::Metered;

const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a commit (offsets and the transaction's end, each bounded by [`TXN_TIMEOUT`]
/// in librdkafka's terms) may take before the session gives up on it.
const COMMIT_BOUND: Duration = Duration::from_secs(35);
const LOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Records partitions taken away by a rebalance.
#[derive(Default, Clone)]
pub struct RevokeTracker(Arc<Mutex<HashSet<i32>>>);

impl ClientContext for RevokeTracker {
    fn stats(&self, statistics: rdkafka::statistics::Statistics) {
        super::statistics::record("ingest-commands", &statistics);
    }
}
impl ConsumerContext for RevokeTracker {
    fn pre_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut revoked = self.0.lock().expect("revoke lock");
            for p in tpl.elements() {
                revoked.insert(p.partition());
            }
        }
    }
}

pub struct KafkaSequencerLog {
    cfg: Config,
    topics: Topics,
    codec: EventCodec,
    producer: FutureProducer<Metered>,
    /// Dropped with every failed session: closed off the runtime (see `ClosedOffRuntime`).
    consumer: ClosedOffRuntime<StreamConsumer<RevokeTracker>>,
    tracker: RevokeTracker,
    signer: CommandSigner,
}

impl KafkaSequencerLog {
    pub async fn start(cfg: &Config, codec: EventCodec) -> PortResult<Self> {
        let topics = Topics::new(&cfg.namespace);
        let producer: FutureProducer<Metered> = base_config(cfg)
            .set("transactional.id", format!("{}-ingest-{}", cfg.namespace, cfg.kafka.instance_id))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("transaction.timeout.ms", "60000")
            // back-to-back transactions meet CONCURRENT_TRANSACTIONS while the broker still
            // writes the previous commit's markers; the default backoff (100 ms growing to 1 s)
            // then dominates latency
            .set("retry.backoff.ms", "5")
            .set("retry.backoff.max.ms", "50")
            .create_with_context(Metered::new("ingest-events"))
            .or_port("creating a Kafka client")?;
        let p = producer.clone();
        super::blocking("initializing transactions", move || p.init_transactions(TXN_TIMEOUT)).await?;
        let tracker = RevokeTracker::default();
        let consumer: StreamConsumer<RevokeTracker> = consumer_config(cfg, "ingest")
            .set("enable.auto.commit", "false")
            .create_with_context(tracker.clone())
            .or_port("creating a Kafka client")?;
        consumer.subscribe(&[&topics.commands]).or_port("subscribing to commands")?;
        let signer = CommandSigner::from_token_secret(&cfg.auth.token_secret);
        let consumer = ClosedOffRuntime::new(consumer);
        Ok(Self { cfg: cfg.clone(), topics, codec, producer, consumer, tracker, signer })
    }

    async fn abort(&self) {
        let p = self.producer.clone();
        if let Err(e) = super::blocking("aborting a transaction", move || p.abort_transaction(TXN_TIMEOUT)).await {
            tracing::warn!(error = %e, "abort_transaction failed");
        }
    }

    async fn transact(
        &self,
        events: Vec<(i32, Event)>,
        replies: Vec<Reply>,
        offsets: Vec<(i32, i64)>,
    ) -> PortResult<()> {
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &offsets {
            tpl.add_partition_offset(&self.topics.commands, *p, Offset::Offset(*o)).or_port("listing offsets")?;
        }
        let group =
            self.consumer.group_metadata().ok_or_else(|| PortError::transient("no consumer group metadata yet"))?;
        let records: Vec<(i32, String, Vec<u8>)> = events
            .iter()
            .map(|(p, e)| Ok((*p, e.key(), self.codec.encode(e).map_err(PortError::from)?)))
            .collect::<PortResult<_>>()?;
        let replies: Vec<(String, Vec<u8>)> = replies
            .iter()
            .map(|r| (r.reply_to.gateway_id.clone(), serde_json::to_vec(r).expect("reply serializes")))
            .collect();
        let p = self.producer.clone();
        super::blocking("beginning a transaction", move || p.begin_transaction()).await?;
        let sends = records.iter().map(|(partition, key, value)| {
            self.producer.send(
                FutureRecord::to(&self.topics.events).partition(*partition).key(key).payload(value),
                Timeout::After(TXN_TIMEOUT),
            )
        });
        let reply_sends = replies.iter().map(|(key, value)| {
            self.producer
                .send(FutureRecord::to(&self.topics.replies).key(key).payload(value), Timeout::After(TXN_TIMEOUT))
        });
        try_join_all(sends.chain(reply_sends)).await.map_err(|(e, _)| port_error("writing events and replies", e))?;
        let p = self.producer.clone();
        let committing = super::blocking("committing a transaction", move || {
            p.send_offsets_to_transaction(&tpl, &group, TXN_TIMEOUT)?;
            p.commit_transaction(TXN_TIMEOUT)
        });
        // librdkafka waits for `send_offsets_to_transaction` without a bound when the group's
        // and the transaction's coordinators move at once (a broker lost; seen in the
        // one-of-three-brokers test): past COMMIT_BOUND the session fails as transient, and
        // the next one's `init_transactions` fences this producer, so its transaction can
        // never commit after that (its blocked thread is left to end with the fence)
        match tokio::time::timeout(COMMIT_BOUND, committing).await {
            Ok(committed) => committed,
            Err(_) => Err(PortError::transient(format!(
                "kafka, committing a transaction: no answer in {} s; starting a new session",
                COMMIT_BOUND.as_secs()
            ))),
        }
    }
}

/// A command record as the sequencer may act on it: signed by a gateway and decodable.
fn command_record(signer: &CommandSigner, m: &BorrowedMessage<'_>) -> CommandRecord {
    CommandRecord { partition: m.partition(), offset: m.offset(), command: verified_command(signer, m) }
}

fn verified_command(signer: &CommandSigner, m: &BorrowedMessage<'_>) -> Result<Command, UnacceptedCommand> {
    let payload = m.payload().unwrap_or_default();
    let signature = m
        .headers()
        .and_then(|headers| headers.iter().find(|h| h.key == SIGNATURE_HEADER))
        .and_then(|header| header.value);
    let signed = signature.is_some_and(|s| signer.verifies(m.key().unwrap_or_default(), payload, s));
    if !signed {
        return Err(UnacceptedCommand::Forged);
    }
    serde_json::from_slice::<Command>(payload).map_err(|_| UnacceptedCommand::Undecodable)
}

/// A failed read of commands. A fenced static member (see `is_fenced_static_member`) ends the
/// session as transient: the next session makes a new consumer with the same identity, which
/// takes its partitions back from the committed offsets.
fn reading_commands_failed(e: rdkafka::error::KafkaError) -> PortError {
    if is_fenced_static_member(&e) {
        tracing::warn!(error = %e, "ingest's consumer fenced after its session was lost, joining again");
        return PortError::transient(format!("kafka, reading commands: fenced, joining again: {e}"));
    }
    port_error("reading commands", e)
}

/// An event of ingest's own history. Nothing may be skipped: a state rebuilt without an event
/// would hand out its seq again. A registry that cannot be reached is waited out (the session
/// fails as transient and restarts); a record that can never be decoded stops ingest (fatal),
/// for an operator to restore the registry or the record.
async fn decode_for_state(codec: &EventCodec, payload: &[u8], partition: i32, offset: i64) -> PortResult<Event> {
    match codec.decode(payload).await.map_err(PortError::from) {
        Ok(event) => Ok(event),
        Err(e) if e.is_transient() => Err(e.context(format!("loading partition {partition}, offset {offset}"))),
        Err(e) => Err(PortError::fatal(format!(
            "partition {partition}, offset {offset} of the events can never be decoded ({e}): ingest cannot rebuild \
             this partition's state without it"
        ))),
    }
}

#[async_trait]
impl SequencerLog for KafkaSequencerLog {
    async fn next_batch(&mut self, max: usize) -> PortResult<Vec<CommandRecord>> {
        let record = |m: &BorrowedMessage<'_>| command_record(&self.signer, m);
        let first = self.consumer.recv().await.map_err(reading_commands_failed)?;
        let mut batch = vec![record(&first)];
        drop(first);
        // one deadline for the whole batch: a steady trickle must not keep a batch open
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1);
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(m) => batch.push(record(&m.map_err(reading_commands_failed)?)),
                Err(_) => break,
            }
        }
        Ok(batch)
    }

    async fn load_partition(&mut self, partition: i32) -> PortResult<Vec<Event>> {
        let consumer: Arc<StreamConsumer> = Arc::new(
            base_config(&self.cfg)
                .set("group.id", group(&self.cfg, "ingest-loader"))
                .set("enable.auto.commit", "false")
                .set("isolation.level", "read_committed")
                .set("fetch.wait.max.ms", self.cfg.kafka.fetch_wait_max_ms.to_string())
                .create()
                .or_port("creating a Kafka client")?,
        );
        let c = consumer.clone();
        let topic = self.topics.events.clone();
        let (low, high) = super::blocking("reading watermarks", move || {
            c.fetch_watermarks(&topic, partition, Duration::from_secs(30))
        })
        .await?;
        let mut events = Vec::new();
        if high <= low {
            return Ok(events);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topics.events, partition, Offset::Beginning).or_port("listing offsets")?;
        consumer.assign(&tpl).or_port("assigning a partition to load")?;
        let started = Instant::now();
        loop {
            if started.elapsed() > LOAD_TIMEOUT {
                return Err(PortError::transient(format!(
                    "partition {partition}: not at the end after {LOAD_TIMEOUT:?} ({} events read, end {high})",
                    events.len()
                )));
            }
            match tokio::time::timeout(Duration::from_millis(300), consumer.recv()).await {
                Ok(Ok(msg)) => {
                    if let Some(payload) = msg.payload() {
                        events.push(decode_for_state(&self.codec, payload, partition, msg.offset()).await?);
                    }
                    if msg.offset() + 1 >= high {
                        break;
                    }
                }
                Ok(Err(e)) => return Err(port_error("loading a partition", e)),
                Err(_) => {
                    // only control records (transaction markers) may be left: check the position
                    let pos = consumer.position().or_port("reading the loader's position")?;
                    let at = pos.find_partition(&self.topics.events, partition).and_then(|p| match p.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    });
                    if at.is_some_and(|o| o >= high) {
                        break;
                    }
                }
            }
        }
        Ok(events)
    }

    async fn commit(
        &mut self,
        events: Vec<(i32, Event)>,
        replies: Vec<Reply>,
        offsets: Vec<(i32, i64)>,
    ) -> PortResult<()> {
        let result = self.transact(events, replies, offsets).await;
        if result.is_err() {
            self.abort().await;
        }
        result
    }

    fn take_revoked(&mut self) -> Vec<i32> {
        self.tracker.0.lock().expect("revoke lock").drain().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_core::ports::PortErrorKind;
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn a_fenced_consumer_ends_the_session_as_transient_and_refused_credentials_stop_ingest() {
        let fenced = KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::FencedInstanceId);
        assert_eq!(reading_commands_failed(fenced).kind(), PortErrorKind::Transient);
        let refused = KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::SaslAuthenticationFailed);
        assert_eq!(reading_commands_failed(refused).kind(), PortErrorKind::Fatal);
        let down = KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure);
        assert_eq!(reading_commands_failed(down).kind(), PortErrorKind::Transient);
    }
}
