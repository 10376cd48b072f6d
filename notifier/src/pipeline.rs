//! The notifier's two loops.
//!
//! - [`NotifyProjection`] consumes the events log like any projector: for each posted message it
//!   decides the recipients ([`crate::recipients`]), keeps those who are offline (presence), and
//!   enqueues one outbox item per registered device. The runner acknowledges the events only
//!   after the enqueue, so a crash loses nothing; items are keyed by event and device, so a
//!   replay enqueues nothing twice.
//! - [`sender`] takes due items from the outbox and sends them through the device's provider:
//!   delivered items leave, transient failures come back with exponential backoff (or the
//!   provider's `Retry-After`), invalid addresses are pruned from the registry, permanent
//!   refusals are dropped.

use confab_core::config::NotifierConfig;
use confab_core::event::{Event, Payload};
use confab_core::ports::{NotifyStore, OutboxItem, PortError, Presence, Store};
use confab_core::presence::PresenceStatus;
use confab_projectors::Projection;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use crate::providers::apns::{ApnsConfig, ApnsProvider};
use crate::providers::fcm::{FcmConfig, FcmProvider};
use crate::providers::webpush::{WebPushConfig, WebPushProvider};
use crate::recipients::{recipients, Prefs};
use crate::{DeviceAddress, Notification, ProviderSet, PushError, SendOutcome};

/// The providers the configuration enables.
pub fn providers(cfg: &NotifierConfig) -> Result<ProviderSet, PushError> {
    let mut set = ProviderSet::new();
    if !cfg.webpush_vapid_key.is_empty() {
        let c = WebPushConfig::new(cfg.webpush_vapid_key.clone(), cfg.webpush_subject.clone())
            .allow_http(cfg.webpush_allow_http)
            .allow_private_networks(cfg.webpush_allow_private_networks);
        set = set.with(Arc::new(WebPushProvider::new(c)?));
    }
    if !cfg.apns_key_pem.is_empty() {
        let mut c = ApnsConfig::new(
            cfg.apns_team_id.clone(),
            cfg.apns_key_id.clone(),
            cfg.apns_key_pem.clone(),
            cfg.apns_topic.clone(),
        );
        c.base_url = cfg.apns_url.clone();
        set = set.with(Arc::new(ApnsProvider::new(c)?));
    }
    if !cfg.fcm_service_account.is_empty() {
        let mut c = FcmConfig::from_service_account_json(&cfg.fcm_service_account)?.with_base_url(cfg.fcm_url.clone());
        if !cfg.fcm_token_url.is_empty() {
            c.token_uri = Some(cfg.fcm_token_url.clone());
        }
        set = set.with(Arc::new(FcmProvider::new(c)?));
    }
    Ok(set)
}

pub struct NotifyProjection {
    store: Arc<dyn Store>,
    presence: Arc<dyn Presence>,
    notify: Arc<dyn NotifyStore>,
}

/// Posts whose recipients are looked up at once within a batch.
const LOOKUPS_IN_FLIGHT: usize = 16;

impl NotifyProjection {
    pub fn new(store: Arc<dyn Store>, presence: Arc<dyn Presence>, notify: Arc<dyn NotifyStore>) -> Self {
        Self { store, presence, notify }
    }

    async fn items_for(&self, e: &Event) -> Result<Vec<OutboxItem>, PortError> {
        let Payload::MessagePosted { message_id, text, attachments, .. } = &e.payload else { return Ok(vec![]) };
        let (ws, ch) = (e.workspace_id, e.channel_id);
        // the timeline projector writes the channel record; until it has, try again later
        let Some(channel) = self.store.channel(ws, ch).await? else {
            return Err(PortError::transient(format!("channel {ch} not in the timeline yet")));
        };
        let members: HashSet<Uuid> = channel.members.iter().copied().collect();
        // one round trip for everyone's preferences (a user on level `all` hears every message)
        let users: Vec<Uuid> = members.iter().copied().collect();
        let raw = self.notify.prefs_many(ws, &users).await?;
        let prefs: std::collections::HashMap<Uuid, Prefs> = users
            .iter()
            .zip(raw)
            .map(|(u, j)| (*u, j.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default()))
            .collect();
        let who = recipients(e, channel.kind, &members, |u| prefs.get(u).cloned().unwrap_or_default());
        if who.is_empty() {
            return Ok(vec![]);
        }
        let users: Vec<Uuid> = who.keys().copied().collect();
        let now = chrono::Utc::now().timestamp_millis();
        let status = self.presence.lookup(ws, &users, now).await?;
        let mut items = Vec::new();
        for ((user, reason), st) in who.iter().zip(status) {
            if st != PresenceStatus::Offline {
                continue; // they see it live
            }
            let body: String = match (text.trim().is_empty(), attachments.first()) {
                // a message with only files says what was shared
                (true, Some(f)) if attachments.len() == 1 => format!("shared a file: {}", f.name),
                (true, Some(_)) => format!("shared {} files", attachments.len()),
                _ => text.chars().take(200).collect(),
            };
            let title =
                if channel.kind.is_direct() { "New direct message".to_string() } else { format!("#{}", channel.name) };
            let n = Notification::new(title, body)
                .with_data("workspace_id", ws.to_string())
                .with_data("channel_id", ch.to_string())
                .with_data("message_id", message_id.to_string())
                .with_data("reason", format!("{reason:?}").to_lowercase())
                .with_collapse_key(message_id.simple().to_string())
                .with_thread_id(ch.to_string());
            let payload = serde_json::to_string(&n).expect("notification serializes");
            for (device_id, address) in self.notify.devices(ws, *user).await? {
                items.push(OutboxItem {
                    id: format!("{}:{device_id}", e.event_id),
                    workspace_id: ws,
                    user_id: *user,
                    device_id,
                    address,
                    payload: payload.clone(),
                    attempts: 0,
                    due_ms: now,
                    event_ms: e.occurred_at,
                });
            }
        }
        Ok(items)
    }
}

impl Projection for NotifyProjection {
    fn name(&self) -> &'static str {
        "notifier"
    }

    async fn apply(&self, events: &[Event]) -> Result<(), PortError> {
        // each post's lookups are independent reads (the notifier writes only the outbox, once
        // per batch): run several at once, or the round trips cap the rate (issue 6, scenario 2)
        let mut items = Vec::new();
        for chunk in events.chunks(LOOKUPS_IN_FLIGHT) {
            for per_event in futures::future::try_join_all(chunk.iter().map(|e| self.items_for(e))).await? {
                items.extend(per_event);
            }
        }
        self.notify.enqueue(&items).await
    }

    async fn check(&self) -> Result<(), PortError> {
        self.notify.prefs(Uuid::nil(), Uuid::nil()).await.map(|_| ())
    }
}

/// Backoff before attempt `n + 1`: 1 s doubling, at most 10 minutes.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(10)).min(Duration::from_secs(600))
}

/// How the sender treats an item: attempts before giving up, and how long a claim hides it
/// from other notifiers (longer than a send can take: connect and request timeouts).
#[derive(Debug, Clone, Copy)]
pub struct SenderLimits {
    pub max_attempts: u32,
    pub lease_ms: i64,
}

/// Sends due outbox items until shutdown, claiming them so that any number of notifiers can
/// share the outbox; `on_delivered` gets each delivery's latency from the event (ms).
pub async fn sender(
    notify: Arc<dyn NotifyStore>,
    providers: Arc<ProviderSet>,
    limits: SenderLimits,
    mut shutdown: confab_core::Shutdown,
    on_delivered: impl Fn(i64) + Send + Sync + 'static,
) {
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let due = match notify.claim(now, limits.lease_ms, 64).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "outbox unavailable");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
            }
        }
        let sends = due.into_iter().map(|item| {
            let (notify, providers) = (notify.clone(), providers.clone());
            async move {
                let (Ok(address), Ok(n)) = (serde_json::from_str::<DeviceAddress>(&item.address), serde_json::from_str::<Notification>(&item.payload)) else {
                    tracing::warn!(id = %item.id, "undecodable outbox item dropped");
                    let _ = notify.remove(&item.id).await;
                    return None;
                };
                let outcome = providers.send(&address, &n).await;
                let r = match &outcome {
                    SendOutcome::Delivered => notify.remove(&item.id).await.map(|_| Some(chrono::Utc::now().timestamp_millis() - item.event_ms)),
                    SendOutcome::InvalidToken { reason } => {
                        tracing::info!(user_id = %item.user_id, device_id = %item.device_id, reason = %reason, "device address invalid, pruned");
                        let _ = notify.remove_device(item.workspace_id, item.user_id, item.device_id).await;
                        notify.remove(&item.id).await.map(|_| None)
                    }
                    SendOutcome::Rejected { reason } => {
                        tracing::warn!(id = %item.id, reason = %reason, "push rejected for good, dropped");
                        notify.remove(&item.id).await.map(|_| None)
                    }
                    SendOutcome::Retry { after, reason } => {
                        let mut next = item.clone();
                        next.attempts += 1;
                        if next.attempts >= limits.max_attempts {
                            tracing::warn!(id = %item.id, reason = %reason, attempts = next.attempts, "push given up");
                            notify.remove(&item.id).await.map(|_| None)
                        } else {
                            let wait = after.unwrap_or_default().max(backoff(item.attempts));
                            next.due_ms = chrono::Utc::now().timestamp_millis() + wait.as_millis() as i64;
                            tracing::debug!(id = %item.id, reason = %reason, attempts = next.attempts, "push retried later");
                            notify.reschedule(&next).await.map(|_| None)
                        }
                    }
                };
                r.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "outbox update failed");
                    None
                })
            }
        });
        for latency in futures::future::join_all(sends).await.into_iter().flatten() {
            on_delivered(latency);
        }
    }
}
