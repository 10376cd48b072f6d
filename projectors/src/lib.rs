//! Read-side projectors. Each consumes `<ns>.events` in its own consumer group and applies
//! events idempotently to one store, so any of them can be rebuilt by replaying the log.
//!
//! - [`runner`]: the shared at-least-once loop over an [`EventSource`](confab_core::ports::EventSource):
//!   receive a batch, apply, and only then acknowledge the offsets; lag metrics.
//! - [`timeline`]: messages and channels into a [`Store`](confab_core::ports::Store)
//!   (Cassandra with the design seed's table, or the embedded store).
//! - [`fanout`]: frames and the membership index into a [`Fanout`](confab_core::ports::Fanout)
//!   (Redis streams, or in process) that every gateway reads.
//! - [`search`]: messages into a [`SearchIndex`](confab_core::ports::SearchIndex) (OpenSearch,
//!   or tantivy in process); edits replace, deletes remove.
//! - [`erasure`]: destroys the data keys events list (crypto-shredding), in the key store.
//! - [`deleted`]: which workspaces were deleted, so no projection brings one back.
//!
//! A workspace's deletion (`AdminActed` `workspace_deleted`) makes each projection remove what
//! it holds of the workspace; the erasure projector destroys its key.
//!
//! Every projection has the same shape: `mod.rs` says what it owns, `apply.rs` maps events to
//! idempotent writes.

pub mod deleted;
pub mod erasure;
pub mod fanout;
pub mod replay;
pub mod runner;
pub mod search;
pub mod timeline;

use confab_core::event::Event;
use confab_core::ports::{EventSource, PortError, PortResult};

/// One read-side projection.
pub trait Projection: Send + Sync + 'static {
    /// Name used for the consumer group, metrics and logs.
    fn name(&self) -> &'static str;
    /// Applies a batch of events (in log order per partition). Must be idempotent: the same
    /// events may be applied again after a crash or during a replay.
    fn apply(&self, events: &[Event]) -> impl std::future::Future<Output = Result<(), PortError>> + Send;
    /// Checks the store is reachable (for `/healthz`).
    fn check(&self) -> impl std::future::Future<Output = Result<(), PortError>> + Send;
    /// Makes everything applied so far durable. The runner calls it before it commits its
    /// position in the log (about once a second, and on shutdown), so a store that is cheaper
    /// to make durable in bulk (tantivy: a commit writes new segment files) does it once per
    /// commit instead of once per batch. Stores whose writes are durable on return need nothing.
    fn flush(&self) -> impl std::future::Future<Output = Result<(), PortError>> + Send {
        async { Ok(()) }
    }
}

/// Flushes the projection, then commits the source's acknowledged positions; if the flush
/// fails the positions stay uncommitted (those events are applied again after a restart).
pub async fn flush_then_commit<P: Projection>(
    projection: &P,
    source: &mut Box<dyn EventSource>,
    wait: bool,
) -> PortResult<()> {
    match projection.flush().await {
        Ok(()) => source.commit(wait).await,
        Err(e) => {
            tracing::warn!(projector = projection.name(), error = %e, "flush failed; positions not committed");
            Ok(())
        }
    }
}
