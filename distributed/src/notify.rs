//! The notifier's store in distributed mode, in two halves: what users registered (devices,
//! preferences) in Cassandra, where it is durable once the API answers, and the outbox of
//! pushes to send in Redis (sorted by due time, short-lived; run Redis with AOF to keep pending
//! pushes across its restarts).

use async_trait::async_trait;
use std::sync::Arc;
use uuid::Uuid;

use confab_core::ports::{NotifyStore, OutboxItem, PortResult};

use crate::cassandra::CassandraDevices;
use crate::redis::RedisNotify;

pub struct DistributedNotify {
    registrations: Arc<CassandraDevices>,
    outbox: RedisNotify,
}

impl DistributedNotify {
    pub fn new(registrations: Arc<CassandraDevices>, outbox: RedisNotify) -> Self {
        Self { registrations, outbox }
    }
}

#[async_trait]
impl NotifyStore for DistributedNotify {
    async fn put_device(&self, ws: Uuid, user: Uuid, device_id: Uuid, address: &str) -> PortResult<()> {
        self.registrations.put_device(ws, user, device_id, address).await
    }
    async fn devices(&self, ws: Uuid, user: Uuid) -> PortResult<Vec<(Uuid, String)>> {
        self.registrations.devices(ws, user).await
    }
    async fn remove_device(&self, ws: Uuid, user: Uuid, device_id: Uuid) -> PortResult<bool> {
        self.registrations.remove_device(ws, user, device_id).await
    }
    async fn put_prefs(&self, ws: Uuid, user: Uuid, prefs: &str) -> PortResult<()> {
        self.registrations.put_prefs(ws, user, prefs).await
    }
    async fn prefs(&self, ws: Uuid, user: Uuid) -> PortResult<Option<String>> {
        self.registrations.prefs(ws, user).await
    }
    async fn prefs_many(&self, ws: Uuid, users: &[Uuid]) -> PortResult<Vec<Option<String>>> {
        self.registrations.prefs_many(ws, users).await
    }
    async fn enqueue(&self, items: &[OutboxItem]) -> PortResult<()> {
        self.outbox.enqueue(items).await
    }
    async fn claim(&self, now_ms: i64, lease_ms: i64, limit: usize) -> PortResult<Vec<OutboxItem>> {
        self.outbox.claim(now_ms, lease_ms, limit).await
    }
    async fn reschedule(&self, item: &OutboxItem) -> PortResult<()> {
        self.outbox.reschedule(item).await
    }
    async fn remove(&self, id: &str) -> PortResult<()> {
        self.outbox.remove(id).await
    }
}
