//! Replies from `<ns>.replies` for one gateway. Every partition is assigned at its current end
//! with explicit offsets before the gateway accepts sockets, so no reply to a later command is
//! missed; `read_committed` means a reply is seen only once its event is committed.

use async_trait::async_trait;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::Duration;

use confab_core::command::Reply;
use confab_core::config::Config;
use confab_core::ports::{PortError, PortResult, ReplySource};
use confab_core::Topics;

use super::client::base_config;
use super::error::port_error;
use super::statistics::Metered;

pub struct KafkaReplySource {
    consumer: Arc<StreamConsumer<Metered>>,
    gateway_id: String,
}

impl KafkaReplySource {
    pub async fn start(cfg: &Config, gateway_id: &str) -> PortResult<Self> {
        let consumer: Arc<StreamConsumer<Metered>> = Arc::new(
            base_config(cfg)
                .set("group.id", format!("{}-gateway-{gateway_id}", cfg.namespace))
                .set("enable.auto.commit", "false")
                .set("isolation.level", "read_committed")
                .set("fetch.wait.max.ms", cfg.kafka.fetch_wait_max_ms.to_string())
                .create_with_context(Metered::new("gateway-replies"))
                .map_err(|e| port_error("creating the replies consumer", e))?,
        );
        let topic = Topics::new(&cfg.namespace).replies;
        let c = consumer.clone();
        let t = topic.clone();
        let tpl = super::blocking("assigning the replies topic at its end", move || {
            let md = c.fetch_metadata(Some(&t), Duration::from_secs(30))?;
            let mut tpl = TopicPartitionList::new();
            for topic in md.topics() {
                for p in topic.partitions() {
                    let (_, high) = c.fetch_watermarks(&t, p.id(), Duration::from_secs(30))?;
                    tpl.add_partition_offset(&t, p.id(), Offset::Offset(high))?;
                }
            }
            Ok(tpl)
        })
        .await?;
        if tpl.count() == 0 {
            return Err(PortError::fatal(format!("topic {topic} has no partitions: run `confab setup` first")));
        }
        consumer.assign(&tpl).map_err(|e| port_error("assigning replies", e))?;
        Ok(Self { consumer, gateway_id: gateway_id.to_string() })
    }
}

#[async_trait]
impl ReplySource for KafkaReplySource {
    async fn next(&mut self) -> PortResult<Reply> {
        loop {
            let msg = self.consumer.recv().await.map_err(|e| port_error("reading replies", e))?;
            if msg.key() != Some(self.gateway_id.as_bytes()) {
                continue;
            }
            match msg.payload().map(serde_json::from_slice::<Reply>) {
                Some(Ok(r)) => return Ok(r),
                _ => tracing::warn!(offset = msg.offset(), "undecodable reply skipped"),
            }
        }
    }
}
