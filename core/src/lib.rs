//! Confab's shared vocabulary and adapters.
//!
//! Data flows through the system like this (see `docs/architecture.md`):
//!
//! ```text
//! client --WS--> gateway --Command (JSON, key ws:ch)--> Kafka <ns>.commands
//!                                                          |
//!                 ingest: validate, authorize, dedup, assign message_id + seq
//!                                                          |
//!         Kafka <ns>.events (Avro, Confluent wire format) + <ns>.replies (JSON), one transaction
//!                |                        |                               |
//!        timeline projector       fanout projector                 gateways (acks)
//!        (Cassandra)              (Redis streams) --> gateways --WS--> clients
//! ```
//!
//! What lives where in this crate:
//! - [`protocol`]: the WebSocket frames clients send and receive, error codes and limits.
//! - [`command`]: commands (gateway -> ingest) and replies (ingest -> gateway).
//! - [`event`]: the canonical events, and their Avro encoding ([`avro`]).
//! - [`ids`]: UUID and TIMEUUID generation.
//! - [`auth`]: workspace-bound signed tokens.
//! - [`files`]: attachments and the rules uploads are checked against; [`blobs`]: the object
//!   store (S3 or a directory) and the pre-signed URLs clients upload and download with.
//! - [`config`]: the configuration file and `CONFAB_*` overrides.
//! - [`ports`]: the traits components use; [`kafka`], [`cassandra`], [`redis_fanout`] are the
//!   distributed adapters behind them (the embedded ones live in `confab-embedded`).
//! - [`telemetry`], [`shutdown`]: logging, metrics, health and the one shutdown path.

pub mod auth;
pub mod avro;
pub mod blobs;
pub mod cassandra;
pub mod command;
pub mod config;
pub mod event;
pub mod files;
pub mod ids;
pub mod kafka;
pub mod mentions;
pub mod notify;
pub mod ports;
pub mod presence;
pub mod protocol;
pub mod redis_fanout;
pub mod redis_notify;
pub mod redis_presence;
pub mod schemas;
pub mod search;
pub mod search_query;
pub mod shutdown;
pub mod telemetry;
