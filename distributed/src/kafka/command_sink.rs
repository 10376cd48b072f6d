//! Commands into `<ns>.commands` (idempotent producer, acks=all).

use async_trait::async_trait;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use std::time::Duration;

use confab_core::command::Command;
use confab_core::config::Config;
use confab_core::ports::{CommandSink, PortResult};
use confab_core::Topics;

use super::client::base_config;
use super::error::port_error;

pub struct KafkaCommandSink {
    producer: FutureProducer,
    topic: String,
}

impl KafkaCommandSink {
    pub fn new(cfg: &Config) -> PortResult<Self> {
        let producer = base_config(cfg)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create()
            .map_err(|e| port_error("creating the commands producer", e))?;
        Ok(Self { producer, topic: Topics::new(&cfg.namespace).commands })
    }
}

#[async_trait]
impl CommandSink for KafkaCommandSink {
    async fn send(&self, cmd: &Command) -> PortResult<()> {
        let payload = serde_json::to_vec(cmd).expect("command serializes");
        let key = cmd.key();
        self.producer
            .send(FutureRecord::to(&self.topic).key(&key).payload(&payload), Timeout::After(Duration::from_secs(10)))
            .await
            .map_err(|(e, _)| port_error("writing a command", e))?;
        Ok(())
    }

    async fn ping(&self) -> PortResult<()> {
        let p = self.producer.clone();
        let topic = self.topic.clone();
        super::blocking("fetching metadata", move || {
            p.client().fetch_metadata(Some(&topic), Duration::from_secs(2)).map(|_| ())
        })
        .await
    }
}
