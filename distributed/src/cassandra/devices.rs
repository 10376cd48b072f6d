//! Push devices and notification preferences in Cassandra: what users registered is durable
//! (written at the session's `LOCAL_QUORUM`, replicated like the directory) and survives a Redis
//! restart, which loses everything Redis holds without persistence. Tables:
//! `push_devices ((workspace_id, user_id), device_id) -> address` and
//! `push_prefs ((workspace_id, user_id)) -> prefs`.

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

use confab_core::ports::PortResult;

use super::error::CqlResultExt;

pub struct CassandraDevices {
    session: Arc<Session>,
    put_device: PreparedStatement,
    devices: PreparedStatement,
    remove_device: PreparedStatement,
    put_prefs: PreparedStatement,
    prefs: PreparedStatement,
    prefs_among: PreparedStatement,
}

impl CassandraDevices {
    pub async fn new(session: Arc<Session>, ks: &str) -> PortResult<Self> {
        let p = |q: String| {
            let s = session.clone();
            async move { s.prepare(q).await.or_port("preparing push statements") }
        };
        Ok(Self {
            put_device: p(format!(
                "INSERT INTO {ks}.push_devices (workspace_id, user_id, device_id, address) VALUES (?, ?, ?, ?)"
            ))
            .await?,
            devices: p(format!(
                "SELECT device_id, address FROM {ks}.push_devices WHERE workspace_id = ? AND user_id = ?"
            ))
            .await?,
            // a lightweight transaction: the answer says whether the device was there
            remove_device: p(format!(
                "DELETE FROM {ks}.push_devices WHERE workspace_id = ? AND user_id = ? AND device_id = ? IF EXISTS"
            ))
            .await?,
            put_prefs: p(format!("INSERT INTO {ks}.push_prefs (workspace_id, user_id, prefs) VALUES (?, ?, ?)"))
                .await?,
            prefs: p(format!("SELECT prefs FROM {ks}.push_prefs WHERE workspace_id = ? AND user_id = ?")).await?,
            prefs_among: p(format!(
                "SELECT user_id, prefs FROM {ks}.push_prefs WHERE workspace_id = ? AND user_id IN ?"
            ))
            .await?,
            session,
        })
    }

    pub async fn put_device(&self, ws: Uuid, user: Uuid, device_id: Uuid, address: &str) -> PortResult<()> {
        self.session.execute_unpaged(&self.put_device, (ws, user, device_id, address)).await.or_port("put device")?;
        Ok(())
    }

    pub async fn devices(&self, ws: Uuid, user: Uuid) -> PortResult<Vec<(Uuid, String)>> {
        let rows = self
            .session
            .execute_unpaged(&self.devices, (ws, user))
            .await
            .or_port("devices")?
            .into_rows_result()
            .or_port("devices")?;
        let mut out = Vec::new();
        for row in rows.rows::<(Uuid, String)>().or_port("devices")? {
            out.push(row.or_port("devices")?);
        }
        Ok(out)
    }

    pub async fn remove_device(&self, ws: Uuid, user: Uuid, device_id: Uuid) -> PortResult<bool> {
        let rows = self
            .session
            .execute_unpaged(&self.remove_device, (ws, user, device_id))
            .await
            .or_port("remove device")?
            .into_rows_result()
            .or_port("remove device")?;
        // the first column of a conditional statement's answer is `[applied]`
        let applied = rows.first_row::<(bool,)>().map(|(a,)| a).unwrap_or(false);
        Ok(applied)
    }

    pub async fn put_prefs(&self, ws: Uuid, user: Uuid, prefs: &str) -> PortResult<()> {
        self.session.execute_unpaged(&self.put_prefs, (ws, user, prefs)).await.or_port("put prefs")?;
        Ok(())
    }

    pub async fn prefs(&self, ws: Uuid, user: Uuid) -> PortResult<Option<String>> {
        let rows = self
            .session
            .execute_unpaged(&self.prefs, (ws, user))
            .await
            .or_port("prefs")?
            .into_rows_result()
            .or_port("prefs")?;
        Ok(rows.maybe_first_row::<(Option<String>,)>().or_port("prefs")?.and_then(|(p,)| p))
    }

    /// Each user's preferences, in the order given (a read per 100 users).
    pub async fn prefs_many(&self, ws: Uuid, users: &[Uuid]) -> PortResult<Vec<Option<String>>> {
        let mut found: HashMap<Uuid, String> = HashMap::new();
        for chunk in users.chunks(100) {
            let rows = self
                .session
                .execute_unpaged(&self.prefs_among, (ws, chunk.to_vec()))
                .await
                .or_port("prefs")?
                .into_rows_result()
                .or_port("prefs")?;
            for row in rows.rows::<(Uuid, Option<String>)>().or_port("prefs")? {
                if let (user, Some(prefs)) = row.or_port("prefs")? {
                    found.insert(user, prefs);
                }
            }
        }
        Ok(users.iter().map(|u| found.get(u).cloned()).collect())
    }
}
