//! The schema registry port: where the event schema is registered and writer schemas are
//! looked up. A Confluent registry over HTTP (`confab-distributed`) or the registry in process
//! (`confab-registry`, embedded mode) implements it.

use async_trait::async_trait;

use super::PortResult;

/// Where Avro schemas are registered and looked up (a Confluent registry over HTTP, or the
/// embedded one in process).
#[async_trait]
pub trait SchemaSource: Send + Sync {
    async fn register(&self, subject: &str, schema: &str) -> PortResult<u32>;
    async fn schema(&self, id: u32) -> PortResult<String>;
}
