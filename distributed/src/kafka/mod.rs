//! Kafka adapter: topic names, client settings and topic creation.
//!
//! Three topics share one partition count and one key (`workspace:channel`):
//! `<ns>.commands` (gateway -> ingest), `<ns>.events` (the log of record, Avro) and
//! `<ns>.replies` (ingest -> gateways; acks and rejections).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

use crate::config::Config;

#[derive(Debug, Clone)]
pub struct Topics {
    pub commands: String,
    pub events: String,
    pub replies: String,
}

impl Topics {
    pub fn new(namespace: &str) -> Self {
        Self {
            commands: format!("{namespace}.commands"),
            events: format!("{namespace}.events"),
            replies: format!("{namespace}.replies"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("creating topic {topic}: {code}")]
    CreateTopic { topic: String, code: String },
}

/// Settings every Confab client shares.
pub fn base_config(cfg: &Config) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.kafka.brokers)
        .set("client.id", format!("confab-{}", std::process::id()))
        .set("socket.keepalive.enable", "true")
        .set("log_level", "4");
    c
}

/// A consumer group name in this deployment's namespace.
pub fn group(cfg: &Config, role: &str) -> String {
    format!("{}-{role}", cfg.namespace)
}

/// Settings of a consumer in group `<ns>-<role>` with static membership.
pub fn consumer_config(cfg: &Config, role: &str) -> ClientConfig {
    let mut c = base_config(cfg);
    c.set("group.id", group(cfg, role))
        .set("group.instance.id", format!("{}-{role}-{}", cfg.namespace, cfg.kafka.instance_id))
        .set("session.timeout.ms", cfg.kafka.session_timeout_ms.to_string())
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", cfg.kafka.fetch_wait_max_ms.to_string())
        .set("auto.offset.reset", "earliest");
    c
}

/// How far the group of `consumer` (made with its `group.id`) is behind the end of `topic`:
/// its committed offsets against the high watermarks, summed over the partitions (a partition
/// with nothing committed counts from its low watermark). Blocking: call off the runtime.
/// `confab lag` and the throughput benchmark read lag this way.
pub fn committed_lag(
    consumer: &rdkafka::consumer::BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> rdkafka::error::KafkaResult<i64> {
    use rdkafka::consumer::Consumer;
    let md = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        tpl.add_partition(topic, p.id());
    }
    let mut total = 0;
    for e in consumer.committed_offsets(tpl, timeout)?.elements() {
        let (low, high) = consumer.fetch_watermarks(topic, e.partition(), timeout)?;
        let at = if let rdkafka::Offset::Offset(o) = e.offset() { o } else { low };
        total += (high - at).max(0);
    }
    Ok(total)
}

/// Creates the three topics if they do not exist (idempotent).
pub async fn ensure_topics(cfg: &Config) -> Result<Topics, KafkaError> {
    let topics = Topics::new(&cfg.namespace);
    let admin: AdminClient<DefaultClientContext> = base_config(cfg).create()?;
    let retention_forever = [("retention.ms", "-1"), ("min.insync.replicas", "1")];
    let replies_retention = [("retention.ms", "86400000")];
    let new = [
        NewTopic::new(&topics.commands, cfg.kafka.partitions, TopicReplication::Fixed(cfg.kafka.replication_factor))
            .set("retention.ms", "604800000"),
        retention_forever.iter().fold(
            NewTopic::new(&topics.events, cfg.kafka.partitions, TopicReplication::Fixed(cfg.kafka.replication_factor)),
            |t, (k, v)| t.set(k, v),
        ),
        replies_retention.iter().fold(
            NewTopic::new(&topics.replies, cfg.kafka.partitions, TopicReplication::Fixed(cfg.kafka.replication_factor)),
            |t, (k, v)| t.set(k, v),
        ),
    ];
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(new.iter(), &opts).await? {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaError::CreateTopic { topic, code: code.to_string() }),
        }
    }
    Ok(topics)
}

mod command_sink;
mod event_source;
mod replies;
mod sequencer_log;

pub use command_sink::KafkaCommandSink;
pub use event_source::KafkaEventSource;
pub use replies::KafkaReplySource;
pub use sequencer_log::KafkaSequencerLog;

/// Runs a blocking librdkafka call off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, rdkafka::error::KafkaError> + Send + 'static,
) -> crate::ports::PortResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(crate::ports::PortError::of)?.map_err(crate::ports::PortError::of)
}
