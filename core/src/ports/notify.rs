//! The notifier's storage: devices users registered for push, their notification preferences,
//! and the outbox of pushes to send. Addresses, preferences and payloads are opaque JSON here
//! (their types are in `crate::push`). Two adapters: Redis (`confab-distributed`) and fjall
//! (`confab-embedded`).
//!
//! The outbox is what makes sends durable: the notifier enqueues before it acknowledges the
//! event, and an item leaves only when the provider accepted it (or said the device is gone).
//! Enqueueing is idempotent by item id (`<event_id>:<device_id>`), so a replayed event adds
//! nothing. Items are claimed with a lease, so any number of notifiers share one outbox.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::PortResult;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: String,
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub device_id: Uuid,
    /// The device's address (JSON), as registered.
    pub address: String,
    /// The notification (JSON).
    pub payload: String,
    pub attempts: u32,
    /// Unix ms when it is (next) due.
    pub due_ms: i64,
    /// Unix ms of the event that caused it (for the latency metric).
    pub event_ms: i64,
}

#[async_trait]
pub trait NotifyStore: Send + Sync {
    async fn put_device(&self, ws: Uuid, user: Uuid, device_id: Uuid, address: &str) -> PortResult<()>;
    async fn devices(&self, ws: Uuid, user: Uuid) -> PortResult<Vec<(Uuid, String)>>;
    /// True if it existed.
    async fn remove_device(&self, ws: Uuid, user: Uuid, device_id: Uuid) -> PortResult<bool>;
    async fn put_prefs(&self, ws: Uuid, user: Uuid, prefs: &str) -> PortResult<()>;
    async fn prefs(&self, ws: Uuid, user: Uuid) -> PortResult<Option<String>>;
    /// The preferences of many users in one round trip, in order.
    async fn prefs_many(&self, ws: Uuid, users: &[Uuid]) -> PortResult<Vec<Option<String>>>;
    /// Adds items not already in the outbox.
    async fn enqueue(&self, items: &[OutboxItem]) -> PortResult<()>;
    /// Claims up to `limit` items due by `now_ms`, oldest first: each is due again only at
    /// `now_ms + lease_ms`, atomically with the claim, so notifiers sharing the outbox never
    /// send one item at once, and an item whose claimer died is claimed again once its lease
    /// ends. The claimer then removes the item or reschedules it.
    async fn claim(&self, now_ms: i64, lease_ms: i64, limit: usize) -> PortResult<Vec<OutboxItem>>;
    /// Stores a changed item (next due time, attempts).
    async fn reschedule(&self, item: &OutboxItem) -> PortResult<()>;
    async fn remove(&self, id: &str) -> PortResult<()>;
}
