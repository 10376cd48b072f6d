//! Notifier storage in fjall: devices (`workspace | user | device` -> address), preferences
//! (`workspace | user` -> JSON) and the outbox (`id` -> item, scanned for due items: the
//! embedded mode's outbox is small).

use async_trait::async_trait;
use confab_core::ports::{NotifyStore, OutboxItem, PortResult};

use crate::error::{persist, port};
use fjall::Keyspace;
use uuid::Uuid;

fn k(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub struct EmbeddedNotify {
    /// For registrations' durable writes.
    pub(crate) db: fjall::Database,
    pub(crate) devices: Keyspace,
    pub(crate) prefs: Keyspace,
    pub(crate) outbox: Keyspace,
}

#[async_trait]
impl NotifyStore for EmbeddedNotify {
    async fn put_device(&self, ws: Uuid, user: Uuid, device_id: Uuid, address: &str) -> PortResult<()> {
        self.devices
            .insert(k(&[ws.as_bytes(), user.as_bytes(), device_id.as_bytes()]), address.as_bytes())
            .map_err(port)?;
        persist(&self.db).await
    }
    async fn devices(&self, ws: Uuid, user: Uuid) -> PortResult<Vec<(Uuid, String)>> {
        let mut out = Vec::new();
        for g in self.devices.prefix(k(&[ws.as_bytes(), user.as_bytes()])) {
            let (key, v) = g.into_inner().map_err(port)?;
            out.push((Uuid::from_slice(&key[32..48]).map_err(port)?, String::from_utf8_lossy(&v).into_owned()));
        }
        Ok(out)
    }
    async fn remove_device(&self, ws: Uuid, user: Uuid, device_id: Uuid) -> PortResult<bool> {
        let key = k(&[ws.as_bytes(), user.as_bytes(), device_id.as_bytes()]);
        let existed = self.devices.contains_key(&key).map_err(port)?;
        self.devices.remove(key).map_err(port)?;
        persist(&self.db).await?;
        Ok(existed)
    }
    async fn put_prefs(&self, ws: Uuid, user: Uuid, prefs: &str) -> PortResult<()> {
        self.prefs.insert(k(&[ws.as_bytes(), user.as_bytes()]), prefs.as_bytes()).map_err(port)?;
        persist(&self.db).await
    }
    async fn prefs(&self, ws: Uuid, user: Uuid) -> PortResult<Option<String>> {
        Ok(self
            .prefs
            .get(k(&[ws.as_bytes(), user.as_bytes()]))
            .map_err(port)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
    async fn prefs_many(&self, ws: Uuid, users: &[Uuid]) -> PortResult<Vec<Option<String>>> {
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            out.push(self.prefs(ws, *u).await?);
        }
        Ok(out)
    }
    async fn enqueue(&self, items: &[OutboxItem]) -> PortResult<()> {
        for it in items {
            if !self.outbox.contains_key(it.id.as_bytes()).map_err(port)? {
                self.outbox.insert(it.id.as_bytes(), serde_json::to_vec(it).expect("item serializes")).map_err(port)?;
            }
        }
        Ok(())
    }
    async fn claim(&self, now_ms: i64, lease_ms: i64, limit: usize) -> PortResult<Vec<OutboxItem>> {
        // one process, one sender: the lease only matters if it died holding items (a restart
        // sends them again once the lease ends)
        let mut due: Vec<OutboxItem> = Vec::new();
        for g in self.outbox.iter() {
            let it: OutboxItem = serde_json::from_slice(&g.value().map_err(port)?).map_err(port)?;
            if it.due_ms <= now_ms {
                due.push(it);
            }
        }
        due.sort_by_key(|i| i.due_ms);
        due.truncate(limit);
        for it in &due {
            let leased = OutboxItem { due_ms: now_ms.saturating_add(lease_ms), ..it.clone() };
            self.outbox
                .insert(it.id.as_bytes(), serde_json::to_vec(&leased).expect("item serializes"))
                .map_err(port)?;
        }
        Ok(due)
    }
    async fn reschedule(&self, item: &OutboxItem) -> PortResult<()> {
        self.outbox.insert(item.id.as_bytes(), serde_json::to_vec(item).expect("item serializes")).map_err(port)
    }
    async fn remove(&self, id: &str) -> PortResult<()> {
        self.outbox.remove(id.as_bytes()).map_err(port)
    }
}
