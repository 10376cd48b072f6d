//! The key store on Cassandra: `workspace_keys` (one row per workspace, created with a
//! lightweight transaction so racing sequencers agree on one key) and `data_keys` (one
//! partition per key, so keys spread evenly over the ring). Reads and writes use the session's
//! consistency (LOCAL_QUORUM by default): a key written before its event was committed is seen
//! by every reader of that event, so no text is taken for erased because a replica lagged.
//! A data key is written with its workspace's retention as its TTL, so it expires with the
//! messages it sealed. Deleted keys leave tombstones; the tables' `gc_grace_seconds` (see `schema`) bound how long
//! the wrapped bytes stay in SSTables, see docs/operators.md.

use async_trait::async_trait;
use confab_core::ports::{KeyStore, PortResult};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

use super::error::CqlResultExt;

/// Keys read or destroyed per statement.
const KEYS_PER_STATEMENT: usize = 100;

pub struct CassandraKeys {
    session: Arc<Session>,
    workspace_key: PreparedStatement,
    create_workspace_key: PreparedStatement,
    put_data_key: PreparedStatement,
    data_keys: PreparedStatement,
    destroy_data_keys: PreparedStatement,
    destroy_workspace_key: PreparedStatement,
    retention: PreparedStatement,
    /// Workspace -> (when read, retention in seconds), re-read after [`RETENTION_CACHE`].
    retention_cache: std::sync::Mutex<HashMap<Uuid, (std::time::Instant, i32)>>,
}

/// How long a workspace's retention is taken as read.
const RETENTION_CACHE: std::time::Duration = std::time::Duration::from_secs(60);

impl CassandraKeys {
    pub async fn new(session: Arc<Session>, ks: &str) -> PortResult<Self> {
        let p = |q: String| {
            let s = session.clone();
            async move { s.prepare(q).await.or_port("preparing key statements") }
        };
        Ok(Self {
            workspace_key: p(format!("SELECT wrapped FROM {ks}.workspace_keys WHERE workspace_id = ?")).await?,
            create_workspace_key: p(format!(
                "INSERT INTO {ks}.workspace_keys (workspace_id, wrapped) VALUES (?, ?) IF NOT EXISTS"
            ))
            .await?,
            put_data_key: p(format!(
                "INSERT INTO {ks}.data_keys (workspace_id, key_id, wrapped) VALUES (?, ?, ?) USING TTL ?"
            ))
            .await?,
            retention: p(format!("SELECT retention_secs FROM {ks}.workspaces WHERE workspace_id = ?")).await?,
            retention_cache: std::sync::Mutex::new(HashMap::new()),
            data_keys: p(format!("SELECT key_id, wrapped FROM {ks}.data_keys WHERE workspace_id = ? AND key_id IN ?"))
                .await?,
            destroy_data_keys: p(format!("DELETE FROM {ks}.data_keys WHERE workspace_id = ? AND key_id IN ?")).await?,
            destroy_workspace_key: p(format!("DELETE FROM {ks}.workspace_keys WHERE workspace_id = ?")).await?,
            session,
        })
    }
}

impl CassandraKeys {
    /// The workspace's retention in seconds (0: forever, also for a workspace not found).
    async fn retention_secs(&self, workspace_id: Uuid) -> PortResult<i32> {
        if let Some((at, secs)) =
            self.retention_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&workspace_id)
        {
            if at.elapsed() < RETENTION_CACHE {
                return Ok(*secs);
            }
        }
        let rows = self
            .session
            .execute_unpaged(&self.retention, (workspace_id,))
            .await
            .or_port("workspace retention")?
            .into_rows_result()
            .or_port("workspace retention")?;
        let secs = rows.maybe_first_row::<(Option<i32>,)>().or_port("workspace retention")?.and_then(|(s,)| s);
        let secs = secs.unwrap_or(0).max(0);
        let mut cache = self.retention_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= 100_000 {
            cache.clear();
        }
        cache.insert(workspace_id, (std::time::Instant::now(), secs));
        Ok(secs)
    }
}

#[async_trait]
impl KeyStore for CassandraKeys {
    async fn workspace_key(&self, workspace_id: Uuid) -> PortResult<Option<Vec<u8>>> {
        let rows = self
            .session
            .execute_unpaged(&self.workspace_key, (workspace_id,))
            .await
            .or_port("workspace key")?
            .into_rows_result()
            .or_port("workspace key")?;
        Ok(rows.maybe_first_row::<(Vec<u8>,)>().or_port("workspace key")?.map(|(w,)| w))
    }

    async fn create_workspace_key(&self, workspace_id: Uuid, wrapped: Vec<u8>) -> PortResult<Vec<u8>> {
        let rows = self
            .session
            .execute_unpaged(&self.create_workspace_key, (workspace_id, &wrapped))
            .await
            .or_port("create workspace key")?
            .into_rows_result()
            .or_port("create workspace key")?;
        // a conditional insert answers `[applied]`, and the row that won when it was not
        let (applied, existing) = rows
            .first_row::<(bool, Option<Uuid>, Option<Vec<u8>>)>()
            .map(|(a, _, w)| (a, w))
            .or_else(|_| rows.first_row::<(bool,)>().map(|(a,)| (a, None)))
            .or_port("create workspace key")?;
        match (applied, existing) {
            (true, _) => Ok(wrapped),
            (false, Some(existing)) => Ok(existing),
            (false, None) => self
                .workspace_key(workspace_id)
                .await?
                .ok_or_else(|| confab_core::ports::PortError::transient("workspace key neither created nor found")),
        }
    }

    async fn put_data_keys(&self, workspace_id: Uuid, keys: Vec<(Uuid, Vec<u8>)>) -> PortResult<()> {
        // a key lives as long as the workspace keeps its messages (TTL 0: forever)
        let ttl = self.retention_secs(workspace_id).await?;
        // one partition per key: an unlogged batch would only move the fan-out to a coordinator
        let writes = keys.iter().map(|(id, wrapped)| {
            self.session.execute_unpaged(&self.put_data_key, (workspace_id, *id, wrapped.as_slice(), ttl))
        });
        for result in futures::future::join_all(writes).await {
            result.or_port("put data keys")?;
        }
        Ok(())
    }

    async fn data_keys(&self, workspace_id: Uuid, key_ids: &[Uuid]) -> PortResult<HashMap<Uuid, Vec<u8>>> {
        let mut found = HashMap::new();
        for chunk in key_ids.chunks(KEYS_PER_STATEMENT) {
            let rows = self
                .session
                .execute_unpaged(&self.data_keys, (workspace_id, chunk.to_vec()))
                .await
                .or_port("data keys")?
                .into_rows_result()
                .or_port("data keys")?;
            for row in rows.rows::<(Uuid, Vec<u8>)>().or_port("data keys")? {
                let (id, wrapped) = row.or_port("data keys")?;
                found.insert(id, wrapped);
            }
        }
        Ok(found)
    }

    async fn destroy_data_keys(&self, workspace_id: Uuid, key_ids: &[Uuid]) -> PortResult<()> {
        for chunk in key_ids.chunks(KEYS_PER_STATEMENT) {
            self.session
                .execute_unpaged(&self.destroy_data_keys, (workspace_id, chunk.to_vec()))
                .await
                .or_port("destroy data keys")?;
        }
        Ok(())
    }

    async fn destroy_workspace_key(&self, workspace_id: Uuid) -> PortResult<()> {
        self.session
            .execute_unpaged(&self.destroy_workspace_key, (workspace_id,))
            .await
            .or_port("destroy workspace key")?;
        Ok(())
    }
}
