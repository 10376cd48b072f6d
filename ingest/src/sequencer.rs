//! The transactional loop: consume a batch of commands, decide each, then in one transaction
//! produce the events and replies and commit the consumed offsets.
//!
//! Any Kafka error aborts the transaction and restarts the session from the committed offsets
//! with freshly loaded state, so in-memory state never runs ahead of the log.

use confab_core::avro::EventCodec;
use confab_core::command::{Command, Outcome, Reply};
use confab_core::config::Config;
use confab_core::ids::TimeUuidGen;
use confab_core::kafka::{self, Topics};
use confab_core::shutdown::Shutdown;
use confab_core::telemetry::{register, Health};
use futures::future::try_join_all;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts};
use rdkafka::consumer::{Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Message, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::loader::load_partition;
use crate::state::PartitionState;
use crate::IngestError;

const MAX_BATCH: usize = 500;
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

struct Metrics {
    commands: IntCounterVec,
    batch: Histogram,
}

impl Metrics {
    fn new() -> Self {
        Self {
            commands: register(IntCounterVec::new(Opts::new("confab_ingest_commands_total", "commands decided, by outcome"), &["outcome"]).unwrap()),
            batch: register(
                Histogram::with_opts(HistogramOpts::new("confab_ingest_batch_size", "commands per transaction").buckets(vec![1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0]))
                    .unwrap(),
            ),
        }
    }
}

/// Records partitions taken away by a rebalance, so their state is reloaded if they come back.
#[derive(Default, Clone)]
struct RevokeTracker(Arc<Mutex<HashSet<i32>>>);

impl ClientContext for RevokeTracker {}
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

/// Runs the sequencer until shutdown, restarting its session after failures.
pub async fn run(cfg: Config, shutdown: Shutdown, health: Health) -> Result<(), IngestError> {
    let topics = Topics::new(&cfg.namespace);
    let codec = loop {
        match EventCodec::register(&cfg.registry.url, &topics.events).await {
            Ok(c) => break c,
            Err(e) => {
                health.set("registry", Err(e.to_string()));
                tracing::warn!(error = %e, "schema registry unavailable, retrying");
                if wait_or_shutdown(&shutdown, Duration::from_secs(1)).await {
                    return Ok(());
                }
            }
        }
    };
    health.set("registry", Ok(()));
    let metrics = Metrics::new();
    let ids = TimeUuidGen::new();
    loop {
        match session(&cfg, &topics, &codec, &ids, &metrics, shutdown.clone(), &health).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                health.set("kafka", Err(e.to_string()));
                tracing::error!(error = %e, "ingest session failed, restarting from committed offsets");
                if wait_or_shutdown(&shutdown, Duration::from_secs(1)).await {
                    return Ok(());
                }
            }
        }
    }
}

async fn wait_or_shutdown(shutdown: &Shutdown, d: Duration) -> bool {
    let mut s = shutdown.clone();
    tokio::select! { _ = s.wait() => true, _ = tokio::time::sleep(d) => false }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, rdkafka::error::KafkaError> + Send + 'static) -> Result<T, IngestError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

async fn session(
    cfg: &Config,
    topics: &Topics,
    codec: &EventCodec,
    ids: &TimeUuidGen,
    metrics: &Metrics,
    mut shutdown: Shutdown,
    health: &Health,
) -> Result<(), IngestError> {
    let producer: FutureProducer = kafka::base_config(cfg)
        .set("transactional.id", format!("{}-ingest-{}", cfg.namespace, cfg.kafka.instance_id))
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("transaction.timeout.ms", "60000")
        .create()?;
    {
        let p = producer.clone();
        blocking(move || p.init_transactions(TXN_TIMEOUT)).await?;
    }
    let tracker = RevokeTracker::default();
    let consumer: StreamConsumer<RevokeTracker> =
        kafka::consumer_config(cfg, "ingest").set("enable.auto.commit", "false").create_with_context(tracker.clone())?;
    consumer.subscribe(&[&topics.commands])?;
    health.set("kafka", Ok(()));
    tracing::info!(commands = %topics.commands, events = %topics.events, "ingest session started");

    let mut partitions: HashMap<i32, PartitionState> = HashMap::new();
    loop {
        let first = tokio::select! {
            _ = shutdown.wait() => {
                tracing::info!("ingest draining: no transaction open, exiting");
                return Ok(());
            }
            m = consumer.recv() => m?.detach(),
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout(Duration::from_millis(1), consumer.recv()).await {
                Ok(m) => batch.push(m?.detach()),
                Err(_) => break,
            }
        }
        for p in tracker.0.lock().expect("revoke lock").drain() {
            partitions.remove(&p);
        }
        metrics.batch.observe(batch.len() as f64);

        let mut records: Vec<(i32, String, Vec<u8>)> = Vec::new();
        let mut replies: Vec<(String, Vec<u8>)> = Vec::new();
        let mut offsets: HashMap<i32, i64> = HashMap::new();
        let now_ms = chrono::Utc::now().timestamp_millis();
        for msg in &batch {
            let partition = msg.partition();
            offsets.insert(partition, msg.offset() + 1);
            if !partitions.contains_key(&partition) {
                let st = load_partition(cfg, &topics.events, partition, codec).await?;
                partitions.insert(partition, st);
            }
            let state = partitions.get_mut(&partition).expect("loaded above");
            let Some(cmd) = msg.payload().and_then(|p| serde_json::from_slice::<Command>(p).ok()) else {
                metrics.commands.with_label_values(&["undecodable"]).inc();
                tracing::warn!(partition, offset = msg.offset(), "skipping undecodable command");
                continue;
            };
            let (event, outcome) = state.decide(&cmd, ids, now_ms);
            let label = match &outcome {
                Outcome::Posted { duplicate: true, .. } => "duplicate",
                Outcome::Posted { .. } => "posted",
                Outcome::Done { .. } => "done",
                Outcome::Rejected { .. } => "rejected",
            };
            metrics.commands.with_label_values(&[label]).inc();
            if let Some(e) = event {
                records.push((partition, e.key(), codec.encode(&e)?));
            }
            let client_msg_id = match &cmd.body {
                confab_core::command::CommandBody::SendMessage { client_msg_id, .. } => Some(client_msg_id.clone()),
                _ => None,
            };
            let reply = Reply {
                reply_to: cmd.reply_to.clone(),
                command_id: cmd.command_id,
                workspace_id: cmd.workspace_id,
                channel_id: cmd.channel_id,
                client_msg_id,
                outcome,
            };
            replies.push((cmd.reply_to.gateway_id.clone(), serde_json::to_vec(&reply).expect("reply serializes")));
        }

        let mut tpl = TopicPartitionList::new();
        for (p, o) in &offsets {
            tpl.add_partition_offset(&topics.commands, *p, rdkafka::Offset::Offset(*o))?;
        }
        let group = consumer.group_metadata().ok_or_else(|| IngestError::Load { partition: -1, reason: "no consumer group metadata".into() })?;
        let result = commit_batch(&producer, topics, records, replies, tpl, group).await;
        if let Err(e) = result {
            let p = producer.clone();
            let _ = blocking(move || p.abort_transaction(TXN_TIMEOUT)).await;
            return Err(e);
        }
    }
}

async fn commit_batch(
    producer: &FutureProducer,
    topics: &Topics,
    records: Vec<(i32, String, Vec<u8>)>,
    replies: Vec<(String, Vec<u8>)>,
    offsets: TopicPartitionList,
    group: rdkafka::consumer::ConsumerGroupMetadata,
) -> Result<(), IngestError> {
    {
        let p = producer.clone();
        blocking(move || p.begin_transaction()).await?;
    }
    let sends = records.iter().map(|(partition, key, value)| {
        producer.send(FutureRecord::to(&topics.events).partition(*partition).key(key).payload(value), Timeout::After(TXN_TIMEOUT))
    });
    let reply_sends = replies
        .iter()
        .map(|(key, value)| producer.send(FutureRecord::to(&topics.replies).key(key).payload(value), Timeout::After(TXN_TIMEOUT)));
    try_join_all(sends.chain(reply_sends)).await.map_err(|(e, _)| IngestError::Kafka(e))?;
    let p = producer.clone();
    blocking(move || {
        p.send_offsets_to_transaction(&offsets, &group, TXN_TIMEOUT)?;
        p.commit_transaction(TXN_TIMEOUT)
    })
    .await
}
