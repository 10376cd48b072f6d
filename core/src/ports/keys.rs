//! The key store port: where wrapped workspace keys and data keys live (see
//! [`crate::sealing`] for the hierarchy). It only ever sees wrapped keys. Cassandra
//! (`confab-distributed`) and fjall (`confab-embedded`) implement it.

use async_trait::async_trait;
use std::collections::HashMap;
use uuid::Uuid;

use super::PortResult;

/// The longest a transit key lives when ingest never destroys it (it died between a commit and
/// the destruction): the commands topic's retention, a week; the commands it sealed are gone
/// from the log by then too.
pub const TRANSIT_KEY_TTL_SECS: i32 = 7 * 24 * 3600;

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The workspace's wrapped key, if it has one (none: never written, or destroyed).
    async fn workspace_key(&self, workspace_id: Uuid) -> PortResult<Option<Vec<u8>>>;
    /// Stores `wrapped` as the workspace's key unless it has one already, and returns the one
    /// stored (two sequencers racing on a new workspace agree on one key).
    async fn create_workspace_key(&self, workspace_id: Uuid, wrapped: Vec<u8>) -> PortResult<Vec<u8>>;
    /// Stores new data keys, durably, before any event sealed under them is committed. A key
    /// expires with its workspace's retention (`Workspace::retention_secs` when it is written):
    /// once expired it is absent, as if destroyed.
    async fn put_data_keys(&self, workspace_id: Uuid, keys: Vec<(Uuid, Vec<u8>)>) -> PortResult<()>;
    /// Stores a command's transit key (`keyring::transit`) before the command is written. It
    /// need only outlive the command's wait in the commands log, so it expires after at most
    /// [`TRANSIT_KEY_TTL_SECS`] (sooner with a shorter workspace retention) and stays out of the
    /// index the retention sweep walks; by default it is stored like a data key.
    async fn put_transit_key(&self, workspace_id: Uuid, key_id: Uuid, wrapped: Vec<u8>) -> PortResult<()> {
        self.put_data_keys(workspace_id, vec![(key_id, wrapped)]).await
    }
    /// The wrapped data keys among `key_ids` that exist (destroyed ones are absent).
    async fn data_keys(&self, workspace_id: Uuid, key_ids: &[Uuid]) -> PortResult<HashMap<Uuid, Vec<u8>>>;
    /// Destroys data keys for good (idempotent): what they sealed is unreadable everywhere.
    async fn destroy_data_keys(&self, workspace_id: Uuid, key_ids: &[Uuid]) -> PortResult<()>;
    /// Destroys the workspace's key (idempotent): everything it wrapped is unreadable.
    async fn destroy_workspace_key(&self, workspace_id: Uuid) -> PortResult<()>;
    /// Removes expired keys' bytes where the store does not do it by itself (Cassandra's TTL
    /// does); returns how many went.
    async fn sweep_expired(&self) -> PortResult<u64> {
        Ok(0)
    }
}
