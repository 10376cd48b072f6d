//! The schema registry's shared log on Kafka: `<ns>._schemas`, one partition, compacted and
//! kept forever, as Confluent's registry keeps its `_schemas`. Every `confab registry --shared`
//! instance appends changes there and applies all of them in offset order, so any number of
//! instances serve the same subjects, versions and ids (see `confab_registry::SchemaLog`).
//! Each record's key is unique, so compaction never drops one.

use async_trait::async_trait;
use confab_core::config::Config;
use confab_core::ports::PortResult;
use confab_registry::SchemaLog;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::Duration;

use super::client::base_config;
use super::error::{port_error, KafkaResultExt};
use super::statistics::Metered;

pub struct KafkaSchemaLog {
    topic: String,
    producer: FutureProducer<Metered>,
    consumer: Arc<BaseConsumer<Metered>>,
}

/// The topic's name in a deployment.
pub fn schemas_topic(namespace: &str) -> String {
    format!("{namespace}._schemas")
}

impl KafkaSchemaLog {
    /// Connects, creating the topic if it is missing.
    pub async fn open(cfg: &Config) -> PortResult<Self> {
        let topic = schemas_topic(&cfg.namespace);
        ensure_topic(cfg, &topic).await?;
        let producer: FutureProducer<Metered> = base_config(cfg)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create_with_context(Metered::new("registry"))
            .or_port("creating the schema log's producer")?;
        // no group: the partition is assigned explicitly and nothing is committed
        let consumer: BaseConsumer<Metered> = base_config(cfg)
            .set("group.id", format!("{}-registry-unused", cfg.namespace))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "10")
            .create_with_context(Metered::new("registry"))
            .or_port("creating the schema log's consumer")?;
        Ok(Self { topic, producer, consumer: Arc::new(consumer) })
    }
}

async fn ensure_topic(cfg: &Config, topic: &str) -> PortResult<()> {
    let admin: AdminClient<DefaultClientContext> = base_config(cfg).create().or_port("creating the admin client")?;
    let min_insync = cfg.kafka.min_insync_replicas.to_string();
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(cfg.kafka.replication_factor))
        .set("cleanup.policy", "compact")
        .set("retention.ms", "-1")
        .set("min.insync.replicas", &min_insync)
        .set("unclean.leader.election.enable", "false");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let created = admin.create_topics([&new], &opts).await.or_port("creating the schema log")?;
    for result in created {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(port_error(&format!("creating topic {topic}"), rdkafka::error::KafkaError::AdminOp(code)))
            }
        }
    }
    Ok(())
}

#[async_trait]
impl SchemaLog for KafkaSchemaLog {
    async fn append(&self, change: Vec<u8>) -> PortResult<i64> {
        let key = uuid::Uuid::new_v4().to_string();
        let record = FutureRecord::to(&self.topic).partition(0).key(&key).payload(&change);
        let delivered = self.producer.send(record, Duration::from_secs(10)).await;
        let delivery = delivered.map_err(|(e, _)| port_error("appending to the schema log", e))?;
        Ok(delivery.offset)
    }

    async fn end(&self) -> PortResult<i64> {
        let (c, t) = (self.consumer.clone(), self.topic.clone());
        super::blocking("reading the schema log's end", move || {
            c.fetch_watermarks(&t, 0, Duration::from_secs(5)).map(|(_, high)| high)
        })
        .await
    }

    async fn read(&self, from: i64, max: usize) -> PortResult<Vec<(i64, Vec<u8>)>> {
        let (c, t) = (self.consumer.clone(), self.topic.clone());
        super::blocking("reading the schema log", move || {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&t, 0, Offset::Offset(from))?;
            c.assign(&tpl)?;
            let mut out = Vec::new();
            while out.len() < max {
                let Some(m) = c.poll(Duration::from_millis(if out.is_empty() { 500 } else { 20 })) else { break };
                let m = m?;
                out.push((m.offset(), m.payload().unwrap_or_default().to_vec()));
            }
            Ok(out)
        })
        .await
    }
}
