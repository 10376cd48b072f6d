//! Ingest: the sequencer between `<ns>.commands` and `<ns>.events`.
//!
//! Each commands partition has exactly one writer (this consumer group's owner of it). For each
//! command it validates, authorizes (channel exists in the token's workspace, sender is a member),
//! deduplicates `client_msg_id`, assigns a TIMEUUID `message_id` and the channel's next `seq`, and
//! writes the event to the same partition number of the events topic, plus a reply for the
//! sending gateway, in one Kafka transaction with the consumed offsets. A crash anywhere
//! therefore yields neither a lost nor a doubled event.
//!
//! - [`state`]: per-channel state (members, last seq, dedup table) and the pure decision for a command.
//! - [`loader`]: rebuilds a partition's state from the events topic when the partition is assigned.
//! - [`sequencer`]: the consume -> decide -> produce -> commit transaction loop.

pub mod loader;
pub mod sequencer;
pub mod state;

pub use sequencer::run;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("avro: {0}")]
    Avro(#[from] confab_core::avro::AvroError),
    #[error("loading partition {partition} state: {reason}")]
    Load { partition: i32, reason: String },
    #[error("task: {0}")]
    Join(#[from] tokio::task::JoinError),
}
