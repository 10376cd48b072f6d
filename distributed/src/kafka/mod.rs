//! The Kafka adapters: the log ports on three topics that share one partition count and one
//! key (`workspace:channel`): `<ns>.commands` (gateway -> ingest), `<ns>.events` (the log of
//! record, Avro) and `<ns>.replies` (ingest -> gateways; acks and rejections).
//!
//! - [`KafkaCommandSink`]: the gateway's producer of commands.
//! - [`KafkaReplySource`]: the gateway's read_committed reader of its replies.
//! - [`KafkaSequencerLog`]: ingest's consumer group and transactional producer.
//! - [`KafkaEventSource`]: a projector's consumer group with stored offsets, or a replay.
//! - [`KafkaSchemaLog`]: the schema registry's shared log (`<ns>._schemas`).
//! - [`preflight`]: refused credentials stop a start instead of hanging it.
//! - `client`: settings every client shares; `admin`: topic creation; `error`: what an error means;
//!   `statistics`: librdkafka's statistics as `confab_kafka_*` metrics.

mod admin;
mod client;
mod command_sink;
mod error;
mod event_source;
mod preflight;
mod replies;
mod schema_log;
mod sequencer_log;
mod statistics;

pub use admin::ensure_topics;
pub use client::{base_config, committed_lag, consumer_config, group};
pub use command_sink::KafkaCommandSink;
pub use event_source::KafkaEventSource;
pub use preflight::preflight;
pub use replies::KafkaReplySource;
pub use schema_log::{schemas_topic, KafkaSchemaLog};
pub use sequencer_log::KafkaSequencerLog;

use confab_core::ports::PortResult;

/// Runs a blocking librdkafka call off the async runtime; `what` names it in errors.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, rdkafka::error::KafkaError> + Send + 'static,
) -> PortResult<T> {
    tokio::task::spawn_blocking(f).await?.map_err(|e| error::port_error(what, e))
}
