//! The key store on Cassandra: `workspace_keys` (one row per workspace, created with a
//! lightweight transaction so racing sequencers agree on one key) and `data_keys` (one
//! partition per key, so keys spread evenly over the ring). Reads and writes use the session's
//! consistency (LOCAL_QUORUM by default): a key written before its event was committed is seen
//! by every reader of that event, so no text is taken for erased because a replica lagged.
//! A data key is written with its workspace's retention as its TTL, so it expires with the
//! messages it sealed. A retention shortened later does not change TTLs already written: the
//! sweep ([`KeyStore::sweep_expired`], run by the erasure projector) destroys, for each workspace
//! with a retention, the keys written before its current window, found hour by hour in
//! `data_key_times` from where it last stopped (`key_sweeps`). Deleted keys leave tombstones; the tables' `gc_grace_seconds` (see `schema`) bound how long
//! the wrapped bytes stay in SSTables, see docs/operators.md.

use async_trait::async_trait;
use confab_core::ports::{KeyStore, PortResult, TRANSIT_KEY_TTL_SECS};
use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

use super::error::CqlResultExt;

/// Keys read or destroyed per statement.
const KEYS_PER_STATEMENT: usize = 100;
/// The index of keys by write time is partitioned by the hour.
const HOUR_MS: i64 = 3_600_000;
/// The longest one sweep works (the keyring gives up on a call after 5 s); the next sweep
/// continues from where this one stopped.
const SWEEP_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

pub struct CassandraKeys {
    session: Arc<Session>,
    workspace_key: PreparedStatement,
    create_workspace_key: PreparedStatement,
    put_data_key: PreparedStatement,
    data_keys: PreparedStatement,
    destroy_data_keys: PreparedStatement,
    destroy_workspace_key: PreparedStatement,
    retention: PreparedStatement,
    put_key_time: PreparedStatement,
    all_retentions: PreparedStatement,
    swept_hour: PreparedStatement,
    set_swept_hour: PreparedStatement,
    keys_of_hour: PreparedStatement,
    keys_of_hour_before: PreparedStatement,
    forget_hour: PreparedStatement,
    forget_hour_before: PreparedStatement,
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
            put_key_time: p(format!(
                "INSERT INTO {ks}.data_key_times (workspace_id, hour, written_ms, key_id) VALUES (?, ?, ?, ?) USING TTL ?"
            ))
            .await?,
            all_retentions: p(format!("SELECT workspace_id, retention_secs, created_at FROM {ks}.workspaces")).await?,
            swept_hour: p(format!("SELECT swept_hour FROM {ks}.key_sweeps WHERE workspace_id = ?")).await?,
            set_swept_hour: p(format!("INSERT INTO {ks}.key_sweeps (workspace_id, swept_hour) VALUES (?, ?)")).await?,
            keys_of_hour: p(format!("SELECT key_id FROM {ks}.data_key_times WHERE workspace_id = ? AND hour = ?"))
                .await?,
            keys_of_hour_before: p(format!(
                "SELECT key_id FROM {ks}.data_key_times WHERE workspace_id = ? AND hour = ? AND written_ms < ?"
            ))
            .await?,
            forget_hour: p(format!("DELETE FROM {ks}.data_key_times WHERE workspace_id = ? AND hour = ?")).await?,
            forget_hour_before: p(format!(
                "DELETE FROM {ks}.data_key_times WHERE workspace_id = ? AND hour = ? AND written_ms < ?"
            ))
            .await?,
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
        // and the index by write time: one partition (the hour), so one unlogged batch
        let written_ms = chrono::Utc::now().timestamp_millis();
        let mut times = Batch::new(BatchType::Unlogged);
        let mut values = Vec::with_capacity(keys.len());
        for (id, _) in &keys {
            times.append_statement(self.put_key_time.clone());
            values.push((workspace_id, written_ms / HOUR_MS, written_ms, *id, ttl));
        }
        let (puts, index) = futures::join!(futures::future::join_all(writes), self.session.batch(&times, values));
        for result in puts {
            result.or_port("put data keys")?;
        }
        index.or_port("index data keys")?;
        Ok(())
    }

    /// One write, no index entry: a transit key is destroyed milliseconds after it is written,
    /// and one left behind expires by its TTL.
    async fn put_transit_key(&self, workspace_id: Uuid, key_id: Uuid, wrapped: Vec<u8>) -> PortResult<()> {
        let ttl = match self.retention_secs(workspace_id).await? {
            0 => TRANSIT_KEY_TTL_SECS,
            retention => retention.min(TRANSIT_KEY_TTL_SECS),
        };
        self.session
            .execute_unpaged(&self.put_data_key, (workspace_id, key_id, wrapped.as_slice(), ttl))
            .await
            .or_port("put transit key")?;
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

    async fn sweep_expired(&self) -> PortResult<u64> {
        use futures::TryStreamExt;
        let deadline = std::time::Instant::now() + SWEEP_BUDGET;
        let now = chrono::Utc::now().timestamp_millis();
        let pager = self.session.execute_iter(self.all_retentions.clone(), ()).await.or_port("workspace retentions")?;
        let mut rows = pager
            .rows_stream::<(Uuid, Option<i32>, Option<scylla::value::CqlTimestamp>)>()
            .or_port("workspace retentions")?;
        let mut swept = 0;
        while let Some((workspace_id, retention, created_at)) = rows.try_next().await.or_port("workspace retentions")? {
            let retention_secs = retention.unwrap_or(0);
            if retention_secs <= 0 {
                continue;
            }
            if std::time::Instant::now() >= deadline {
                break;
            }
            let window_start = now - i64::from(retention_secs) * 1000;
            let created_at = created_at.map(|t| t.0).unwrap_or(window_start);
            swept += self.sweep_workspace(workspace_id, window_start, created_at, deadline).await?;
        }
        Ok(swept)
    }
}

impl CassandraKeys {
    /// Destroys the workspace's keys written before `window_start` (Unix ms): whole hours from
    /// where the last sweep stopped (the workspace's creation at first), then the part of the
    /// window's first hour before it. Stops at `deadline`, having recorded its progress.
    async fn sweep_workspace(
        &self,
        workspace_id: Uuid,
        window_start: i64,
        created_at: i64,
        deadline: std::time::Instant,
    ) -> PortResult<u64> {
        let rows = self
            .session
            .execute_unpaged(&self.swept_hour, (workspace_id,))
            .await
            .or_port("key sweep")?
            .into_rows_result()
            .or_port("key sweep")?;
        let from = rows.maybe_first_row::<(Option<i64>,)>().or_port("key sweep")?.and_then(|(h,)| h);
        let mut hour = from.unwrap_or(created_at / HOUR_MS);
        let first_partial = window_start / HOUR_MS;
        let mut swept = 0;
        while hour < first_partial && std::time::Instant::now() < deadline {
            let keys = self.key_ids(&self.keys_of_hour, (workspace_id, hour)).await?;
            if !keys.is_empty() {
                self.destroy_data_keys(workspace_id, &keys).await?;
                self.session.execute_unpaged(&self.forget_hour, (workspace_id, hour)).await.or_port("key sweep")?;
                swept += keys.len() as u64;
            }
            hour += 1;
        }
        if from != Some(hour) {
            self.session.execute_unpaged(&self.set_swept_hour, (workspace_id, hour)).await.or_port("key sweep")?;
        }
        if hour == first_partial {
            let keys = self.key_ids(&self.keys_of_hour_before, (workspace_id, hour, window_start)).await?;
            if !keys.is_empty() {
                self.destroy_data_keys(workspace_id, &keys).await?;
                let forget = (workspace_id, hour, window_start);
                self.session.execute_unpaged(&self.forget_hour_before, forget).await.or_port("key sweep")?;
                swept += keys.len() as u64;
            }
        }
        Ok(swept)
    }

    /// The key ids a query of `data_key_times` answers.
    async fn key_ids(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> PortResult<Vec<Uuid>> {
        let rows = self
            .session
            .execute_unpaged(statement, values)
            .await
            .or_port("key sweep")?
            .into_rows_result()
            .or_port("key sweep")?;
        rows.rows::<(Uuid,)>().or_port("key sweep")?.map(|r| r.map(|(id,)| id).or_port("key sweep")).collect()
    }
}
