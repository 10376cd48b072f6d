//! Ports: what each component needs from the outside world, one file per family. Two adapter
//! sets implement them: distributed (Kafka, Cassandra, Redis, a Confluent registry, S3:
//! `confab-distributed`; OpenSearch: `confab-search`) and embedded (fjall, in process, a local
//! directory: `confab-embedded`; tantivy: `confab-search`). Components see only these traits,
//! and one conformance suite runs against both sets.
//!
//! | port | family (file) | used by |
//! | --- | --- | --- |
//! | [`CommandSink`], [`ReplySource`] | log | gateway |
//! | [`SequencerLog`] | log | ingest |
//! | [`EventSource`] | log | projectors, notifier |
//! | [`Store`] | store | timeline projector, gateway, notifier |
//! | [`Fanout`], [`FanoutStream`] | fanout | fanout projector, gateway |
//! | [`SearchIndex`] | search | search projector, gateway |
//! | [`Presence`] | presence | gateway, notifier |
//! | [`NotifyStore`] | notify | notifier, gateway |
//! | [`SchemaSource`] | schemas | the Avro codec |
//! | [`BlobStore`] | blobs | gateway, timeline projector |
//! | [`SendLimits`] | limits | gateway |
//! | [`KeyStore`] | keys | ingest, projectors, notifier (through [`crate::keyring::Keyring`]) |
//!
//! Every call returns a [`PortError`] whose [`PortErrorKind`] says whether to retry.

mod backlog;
mod blobs;
mod error;
mod fanout;
mod keys;
mod limits;
mod log;
mod notify;
mod presence;
mod schemas;
mod search;
mod store;

pub use backlog::{Backlog, BacklogLimits, BacklogScan};
pub use blobs::{BlobStore, ByteStream, GatewayServedBlobs, LinkError, LinkGrant, UploadUrl};
pub use error::{PortError, PortErrorKind, PortResult};
pub use fanout::{Fanout, FanoutEntry, FanoutItem, FanoutStream, StreamErasure};
pub use keys::{KeyStore, TRANSIT_KEY_TTL_SECS};
pub use limits::{Bucket, BucketState, SendLimits, SendVerdict};
pub use log::{
    CommandRecord, CommandSink, DeadRecord, EventRecord, EventSource, ReplayFrom, ReplySource, SequencerLog,
    UnacceptedCommand,
};
pub use notify::{NotifyStore, OutboxItem};
pub use presence::Presence;
pub use schemas::SchemaSource;
pub use search::{file_name_terms, SearchDoc, SearchHit, SearchIndex, SearchQuery, SearchResults};
pub use store::{
    ChannelChange, ChannelInfo, Deactivation, HistoryPage, MessageUpdate, Store, StoredMessage, ThreadSummary,
    TokenRevocation, Workspace, MAX_RETENTION_SECS,
};
