//! Read-side projectors. Each consumes `<ns>.events` in its own consumer group and applies
//! events idempotently to one store, so any of them can be rebuilt by replaying the log.
//!
//! - [`runner`]: the shared at-least-once loop: receive a batch, decode, apply, and only then
//!   store the offsets (committed in the background, on revoke and on shutdown); lag metrics.
//! - [`timeline`]: messages and channels into Cassandra (the design seed's table).
//! - [`fanout`]: frames and the membership index into Redis streams that every gateway reads.
//!
//! Every projection has the same shape: `mod.rs` says what it owns, `apply.rs` maps events to
//! idempotent writes.

pub mod fanout;
pub mod runner;
pub mod timeline;

use confab_core::event::Event;

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("store: {0}")]
    Store(String),
    #[error("schema registry: {0}")]
    Registry(String),
    #[error("task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// One read-side projection.
pub trait Projection: Send + Sync + 'static {
    /// Name used for the consumer group, metrics and logs.
    fn name(&self) -> &'static str;
    /// Applies a batch of events (in log order per partition). Must be idempotent: the same
    /// events may be applied again after a crash or during a replay.
    fn apply(&self, events: &[Event]) -> impl std::future::Future<Output = Result<(), ProjectorError>> + Send;
    /// Checks the store is reachable (for `/healthz`).
    fn check(&self) -> impl std::future::Future<Output = Result<(), ProjectorError>> + Send;
}
