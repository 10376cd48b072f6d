//! Commands into `<ns>.commands` (idempotent producer, acks=all).

use async_trait::async_trait;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use std::time::Duration;

use crate::command::Command;
use crate::config::Config;
use crate::ports::{CommandSink, PortError, PortResult};

pub struct KafkaCommandSink {
    producer: FutureProducer,
    topic: String,
}

impl KafkaCommandSink {
    pub fn new(cfg: &Config) -> PortResult<Self> {
        let producer = super::base_config(cfg)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create()
            .map_err(PortError::of)?;
        Ok(Self { producer, topic: super::Topics::new(&cfg.namespace).commands })
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
            .map_err(|(e, _)| PortError::of(e))?;
        Ok(())
    }

    async fn ping(&self) -> PortResult<()> {
        let p = self.producer.clone();
        let topic = self.topic.clone();
        super::blocking(move || p.client().fetch_metadata(Some(&topic), Duration::from_secs(2)).map(|_| ())).await
    }
}
