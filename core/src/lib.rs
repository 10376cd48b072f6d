//! Confab's shared vocabulary, its ports, and the runtime helpers every process uses. No server
//! client is compiled here: the adapters live in `confab-distributed` (Kafka, Cassandra, Redis,
//! a Confluent registry, S3), `confab-embedded` (fjall, in process) and `confab-search`
//! (OpenSearch, tantivy).
//!
//! Data flows through the system like this (see `docs/architecture.md`):
//!
//! ```text
//! client --WS--> gateway --Command (JSON, key ws:ch)--> <ns>.commands
//!                                                          |
//!                 ingest: validate, authorize, dedup, assign message_id + seq
//!                                                          |
//!         <ns>.events (Avro, Confluent wire format) + <ns>.replies (JSON), one atomic commit
//!                |                        |                               |
//!        timeline projector       fanout projector                 gateways (acks)
//!        (Store)                  (Fanout) --> gateways --WS--> clients
//! ```
//!
//! # Crate map
//!
//! Vocabulary (plain data and pure functions; imports nothing but other vocabulary):
//! - [`protocol`]: the WebSocket frames clients send and receive, their limits and validation;
//!   [`ErrorCode`]: the typed error codes of every API.
//! - [`command`]: commands (gateway -> ingest) and replies (ingest -> gateway).
//! - [`event`]: the canonical events; [`avro`]: their encoding in the log, and [`schemas`]: the
//!   compatibility rules between versions of it.
//! - [`sealing`]: crypto-shredding's keys and sealed boxes (sensitive fields in the log).
//! - [`files`]: attachments and the rules uploads are checked against; [`push`]: device
//!   addresses and notification preferences, [`push_endpoint`]: which Web Push endpoints may be
//!   called; [`presence`]: presence statuses and their rules.
//! - [`mentions`], [`search_query`]: parsers of what users type; [`names`]: what a name people
//!   read (channel, user, file, emoji) may contain; [`unread`]: the per-channel summary unread
//!   and mention counts come from.
//! - [`Topics`], ids ([`TimeUuidGen`], [`timeuuid_millis`], [`new_id`]) and tokens
//!   ([`auth`]: `cfb1` tokens and standard JWTs, [`TokenVerifier`], [`Claims`]).
//!
//! Ports (traits the adapters implement; may import the vocabulary):
//! - [`ports`]: one file per family (log, store, fanout, search, presence, notify, schemas,
//!   blobs) and [`ports::PortError`], whose kind says whether to retry.
//!
//! - [`views`]: store rows as wire types (imports both; neither imports it).
//!
//! Runtime helpers (may import anything above):
//! - [`config`]: the configuration file and `CONFAB_*` overrides; [`secrets`]: secrets kept in a
//!   data directory (generated, private, written atomically).
//! - [`keyring`]: seals events for the log and opens them, with the key store and bounded
//!   caches; what a destroyed key sealed comes back redacted.
//! - [`telemetry`]: logging, metrics, health; [`Shutdown`]: the one shutdown path;
//!   [`Backoff`]: how long to wait before retrying a transient failure.

pub mod avro;
pub mod command;
pub mod config;
pub mod event;
pub mod files;
pub mod keyring;
pub mod mentions;
pub mod names;
pub mod ports;
pub mod presence;
pub mod protocol;
pub mod push;
pub mod push_endpoint;
pub mod schemas;
pub mod sealing;
pub mod search_query;
pub mod secrets;
pub mod telemetry;
pub mod unread;
pub mod views;

pub mod auth;
mod backoff;
mod error_code;
mod ids;
mod shutdown;
mod topics;

pub use auth::{AuthError, Claims, TokenSigner, TokenVerifier};
pub use backoff::Backoff;
pub use error_code::ErrorCode;
pub use ids::{new_id, timeuuid_millis, TimeUuidGen};
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use topics::Topics;
