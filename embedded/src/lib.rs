//! Embedded adapters: everything `confab serve` needs in one process, with no servers.
//!
//! One fjall database under the data directory holds:
//! - [`log`]: the event log: the `events` keyspace and in-memory command queues, split into
//!   partitions by the same `workspace:channel` key as Kafka, with per-partition offsets and
//!   durable consumer positions per group; the command queues are bounded in count and bytes,
//!   and refuse sends while the disk is nearly full ([`disk`]). The sequencer's commit (events + consumed offsets) is one atomic,
//!   fsynced write batch, so an acknowledged message survives `kill -9`. Replies to gateways
//!   travel in process, after that commit.
//! - [`store`]: the timeline (messages ordered by TIMEUUID time, newest first) and the directory.
//! - [`fanout`]: per-workspace in-memory streams for live delivery, with the membership index
//!   and the published seqs (for idempotent replays) persisted.
//! - [`presence`], [`notify`]: presence in process; push devices, preferences and the outbox.
//! - [`keys`]: the key store of crypto-shredding (wrapped workspace and data keys).
//!
//! Beside the database, [`blobs`] keeps shared files' bytes in `<data_dir>/files`, with links
//! the gateway signs and serves.
//!
//! All of them implement the same ports (`confab_core::ports`) as the distributed adapters, and
//! the same conformance suite runs against both. Settings come from the `[embedded]` section
//! only. May import: `confab-core`. Imported by: the `confab` binary and tests.

mod disk;
mod error;

pub mod blobs;
pub mod fanout;
pub mod keys;
pub mod limits;
pub mod log;
pub mod notify;
pub mod presence;
pub mod store;

pub use blobs::LocalBlobs;
pub use limits::EmbeddedSendLimits;

use confab_core::avro::EventCodec;
use confab_core::config::EmbeddedConfig;
use confab_core::ports::{PortError, PortResult};
use fjall::{Database, KeyspaceCreateOptions};
use std::path::Path;
use std::sync::Arc;

use crate::error::port;

/// The embedded adapter set over one database.
pub struct Embedded {
    pub log: Arc<log::Log>,
    pub store: Arc<store::EmbeddedStore>,
    pub fanout: Arc<fanout::EmbeddedFanout>,
    pub presence: Arc<presence::EmbeddedPresence>,
    pub notify: Arc<notify::EmbeddedNotify>,
    pub keys: Arc<keys::EmbeddedKeys>,
}

impl Embedded {
    /// Opens (creates) the database under `dir`.
    pub fn open(dir: &Path, options: &EmbeddedConfig, codec: EventCodec) -> PortResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| PortError::transient(format!("creating {}: {e}", dir.display())))?;
        let db = Database::builder(dir.join("db")).open().map_err(port)?;
        let ks = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default).map_err(port);
        let (events, positions, dead) = (ks("log_events")?, ks("log_positions")?, ks("log_dead_letters")?);
        let disk = disk::DiskWatermark::new(dir.to_path_buf(), options.min_free_disk_mb << 20);
        let log = Arc::new(log::Log::open(db.clone(), events, positions, dead, options.partitions, codec, disk)?);
        let store = Arc::new(store::EmbeddedStore {
            db: db.clone(),
            messages: ks("messages")?,
            workspaces: ks("workspaces")?,
            users: ks("users")?,
            channels: ks("channels")?,
            threads: ks("threads")?,
            pins: ks("pins")?,
            markers: ks("read_markers")?,
            activity: ks("channel_activity")?,
            revocations: ks("token_revocations")?,
            deactivated: ks("deactivated_users")?,
            files: ks("files")?,
            storage: ks("storage_ledger")?,
            storage_lock: tokio::sync::Mutex::new(()),
        });
        let fanout = Arc::new(fanout::EmbeddedFanout::new(
            db.clone(),
            ks("fanout_stream")?,
            ks("fanout_seqs")?,
            ks("members")?,
            ks("user_channels")?,
            options.fanout_stream_max_len,
        )?);
        let notify = Arc::new(notify::EmbeddedNotify {
            db: db.clone(),
            devices: ks("push_devices")?,
            prefs: ks("push_prefs")?,
            outbox: ks("push_outbox")?,
        });
        let keys = Arc::new(keys::EmbeddedKeys {
            db: db.clone(),
            workspace_keys: ks("workspace_keys")?,
            data_keys: ks("data_keys")?,
            expiry: ks("data_key_expiry")?,
            written: ks("data_key_written")?,
            workspaces: ks("workspaces")?,
            create_lock: tokio::sync::Mutex::new(()),
        });
        Ok(Self { log, store, fanout, presence: Arc::default(), notify, keys })
    }
}
