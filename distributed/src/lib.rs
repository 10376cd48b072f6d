//! The distributed adapters: every port of `confab_core::ports` on real servers, for the
//! separate processes and for `confab serve` in distributed mode. Nothing here is compiled
//! into the embedded mode's crates.
//!
//! | module | server | ports |
//! | --- | --- | --- |
//! | [`kafka`] | Kafka (topics `<ns>.commands`, `<ns>.events`, `<ns>.replies`) | `CommandSink`, `ReplySource`, `SequencerLog`, `EventSource` |
//! | [`cassandra`] | Cassandra (the seed's tables, push registrations) | `Store`, half of `NotifyStore` |
//! | [`redis`] | Redis (streams, sets, Lua) | `Fanout`, `Presence`, `SendLimits`, the push outbox |
//! | [`notify`] | Cassandra and Redis | `NotifyStore` (registrations durable, outbox in Redis) |
//! | [`registry`] | a Confluent-compatible schema registry | `SchemaSource` |
//! | [`s3`] | an S3-compatible bucket | `BlobStore` |
//!
//! The search adapters (OpenSearch and tantivy) live in `confab-search`, which has one
//! conformance suite for both. Each adapter classifies its client's errors into
//! `PortErrorKind`s in its own `error` module, so callers can tell retry from stop.
//!
//! May import: `confab-core` and the server clients. Imported by: the `confab` binary and tests.

pub mod cassandra;
pub mod kafka;
pub mod notify;
pub mod redis;
pub mod registry;
pub mod s3;

pub use cassandra::{CassandraDevices, CassandraKeys, CassandraStore};
pub use kafka::{KafkaCommandSink, KafkaEventSource, KafkaReplySource, KafkaSchemaLog, KafkaSequencerLog};
pub use notify::DistributedNotify;
pub use redis::{RedisFanout, RedisNotify, RedisPresence, RedisSendLimits};
pub use registry::HttpSchemaSource;
pub use s3::{S3Blobs, S3Settings};
