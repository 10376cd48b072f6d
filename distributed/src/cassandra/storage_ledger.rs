//! The storage ledger on Cassandra: one partition per workspace, a row per counted file
//! (`bytes`) and a static column with their total (`used`). A reservation or a release changes
//! both in one conditional batch on that partition (a lightweight transaction compares `used`
//! with what was read), so concurrent completions on any number of gateways never push a
//! workspace past its quota nor count a file twice. A lost race reads again and retries.

use confab_core::ports::{PortError, PortResult};
use scylla::client::session::Session;
use scylla::response::query_result::QueryResult;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};
use std::sync::Arc;
use uuid::Uuid;

use super::error::CqlResultExt;

/// Tries of one reservation or release against concurrent writers before it gives up (a
/// transient error: the caller retries later).
const MAX_TRIES: usize = 32;

#[derive(Clone)]
pub struct StorageLedger {
    session: Arc<Session>,
    used: PreparedStatement,
    file_bytes: PreparedStatement,
    open_partition: PreparedStatement,
    count: Batch,
    uncount: Batch,
}

impl StorageLedger {
    pub async fn new(session: Arc<Session>, ks: &str) -> PortResult<Self> {
        let p = |q: String| {
            let s = session.clone();
            async move { s.prepare(q).await.or_port("storage ledger") }
        };
        let set_used = p(format!("UPDATE {ks}.storage_ledger SET used = ? WHERE workspace_id = ? IF used = ?")).await?;
        let mut count = Batch::new(BatchType::Logged);
        count.append_statement(set_used.clone());
        count.append_statement(
            p(format!("INSERT INTO {ks}.storage_ledger (workspace_id, file_id, bytes) VALUES (?, ?, ?) IF NOT EXISTS"))
                .await?,
        );
        let mut uncount = Batch::new(BatchType::Logged);
        uncount.append_statement(set_used);
        uncount.append_statement(
            p(format!("DELETE FROM {ks}.storage_ledger WHERE workspace_id = ? AND file_id = ? IF bytes = ?")).await?,
        );
        Ok(Self {
            used: p(format!("SELECT used FROM {ks}.storage_ledger WHERE workspace_id = ? LIMIT 1")).await?,
            file_bytes: p(format!("SELECT bytes FROM {ks}.storage_ledger WHERE workspace_id = ? AND file_id = ?"))
                .await?,
            open_partition: p(format!(
                "INSERT INTO {ks}.storage_ledger (workspace_id, used) VALUES (?, 0) IF NOT EXISTS"
            ))
            .await?,
            session,
            count,
            uncount,
        })
    }

    /// The workspace's total, or `None` before its first reservation.
    pub async fn used(&self, ws: Uuid) -> PortResult<Option<i64>> {
        self.read_i64(&self.used, (ws,), "storage used").await
    }

    /// See [`confab_core::ports::Store::reserve_storage`].
    pub async fn reserve(&self, ws: Uuid, file_id: Uuid, bytes: i64, quota: i64) -> PortResult<bool> {
        for _ in 0..MAX_TRIES {
            if self.read_i64(&self.file_bytes, (ws, file_id), "storage ledger").await?.is_some() {
                return Ok(true);
            }
            let Some(used) = self.used(ws).await? else {
                self.session.execute_unpaged(&self.open_partition, (ws,)).await.or_port("storage ledger")?;
                continue;
            };
            if used.saturating_add(bytes) > quota {
                return Ok(false);
            }
            let result = self
                .session
                .batch(&self.count, ((used + bytes, ws, used), (ws, file_id, bytes)))
                .await
                .or_port("storage ledger")?;
            if applied(result)? {
                return Ok(true);
            }
        }
        Err(PortError::transient(format!("storage ledger of workspace {ws}: too many concurrent changes")))
    }

    /// See [`confab_core::ports::Store::release_storage`].
    pub async fn release(&self, ws: Uuid, file_id: Uuid) -> PortResult<()> {
        for _ in 0..MAX_TRIES {
            let Some(bytes) = self.read_i64(&self.file_bytes, (ws, file_id), "storage ledger").await? else {
                return Ok(());
            };
            let used = self.used(ws).await?.unwrap_or(0);
            let result = self
                .session
                .batch(&self.uncount, (((used - bytes).max(0), ws, used), (ws, file_id, bytes)))
                .await
                .or_port("storage ledger")?;
            if applied(result)? {
                return Ok(());
            }
        }
        Err(PortError::transient(format!("storage ledger of workspace {ws}: too many concurrent changes")))
    }

    async fn read_i64(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        what: &'static str,
    ) -> PortResult<Option<i64>> {
        let rows =
            self.session.execute_unpaged(statement, values).await.or_port(what)?.into_rows_result().or_port(what)?;
        Ok(rows.maybe_first_row::<(Option<i64>,)>().or_port(what)?.and_then(|(v,)| v))
    }
}

/// Whether a conditional batch applied: the first column of its answer is `[applied]` (the
/// other columns, when it did not, are the values that failed the condition).
fn applied(result: QueryResult) -> PortResult<bool> {
    let rows = result.into_rows_result().or_port("storage ledger")?;
    let row = rows.maybe_first_row::<Row>().or_port("storage ledger")?;
    Ok(matches!(row.and_then(|r| r.columns.into_iter().next().flatten()), Some(CqlValue::Boolean(true))))
}
