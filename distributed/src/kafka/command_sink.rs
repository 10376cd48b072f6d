//! Commands into `<ns>.commands` (idempotent producer, acks=all), each signed for ingest
//! (`confab_core::auth::command_signing`).

use async_trait::async_trait;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use std::time::Duration;

use confab_core::auth::command_signing::{CommandSigner, SIGNATURE_HEADER};
use confab_core::command::Command;
use confab_core::config::Config;
use confab_core::ports::{CommandSink, PortResult};
use confab_core::Topics;

use super::client::base_config;
use super::error::port_error;
use super::statistics::Metered;

pub struct KafkaCommandSink {
    producer: FutureProducer<Metered>,
    topic: String,
    signer: CommandSigner,
}

impl KafkaCommandSink {
    pub fn new(cfg: &Config) -> PortResult<Self> {
        let producer = base_config(cfg)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create_with_context(Metered::new("gateway-commands"))
            .map_err(|e| port_error("creating the commands producer", e))?;
        let signer = CommandSigner::from_token_secret(&cfg.auth.token_secret);
        Ok(Self { producer, topic: Topics::new(&cfg.namespace).commands, signer })
    }
}

#[async_trait]
impl CommandSink for KafkaCommandSink {
    async fn send(&self, cmd: &Command) -> PortResult<()> {
        let payload = serde_json::to_vec(cmd).expect("command serializes");
        let key = cmd.key();
        let signature = self.signer.sign(key.as_bytes(), &payload);
        let headers = OwnedHeaders::new().insert(Header { key: SIGNATURE_HEADER, value: Some(&signature[..]) });
        let record = FutureRecord::to(&self.topic).key(&key).payload(&payload).headers(headers);
        self.producer
            .send(record, Timeout::After(Duration::from_secs(10)))
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
