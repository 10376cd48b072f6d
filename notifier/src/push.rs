//! The vocabulary every push provider shares: where a device is reached, what a
//! notification says, what one send attempt came to, and the provider trait.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use confab_core::push::{DeviceAddress, Platform};

/// How urgently the provider should wake the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Deliver now, wake the device (a DM, a mention). APNs 10, FCM HIGH, Urgency: high.
    #[default]
    High,
    /// Deliver when convenient for the device's power budget. APNs 5, FCM NORMAL,
    /// Urgency: normal.
    Normal,
}

/// Well-known keys of [`Notification::data`], which the client apps read to open
/// the right conversation.
pub mod data_keys {
    pub const WORKSPACE_ID: &str = "workspace_id";
    pub const CHANNEL_ID: &str = "channel_id";
    pub const MESSAGE_ID: &str = "message_id";
}

/// What the user sees, and what the app needs to act on it. Provider neutral: each
/// provider maps it onto its own payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub title: String,
    pub body: String,
    /// String key/values handed to the app (see [`data_keys`]).
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Notifications with the same key replace each other on the device
    /// (`apns-collapse-id`, FCM `collapse_key`, Web Push `Topic`).
    #[serde(default)]
    pub collapse_key: Option<String>,
    /// Groups notifications in the device's notification list (APNs `thread-id`,
    /// FCM `tag`, the Web Push payload's `tag`). Typically the channel.
    #[serde(default)]
    pub thread_id: Option<String>,
    /// The app icon's badge (unread count), where the platform has one.
    #[serde(default)]
    pub badge: Option<u32>,
    /// How long the push service may hold the notification for an unreachable
    /// device; `None` lets the provider's default apply (Web Push: one day).
    #[serde(default)]
    pub ttl: Option<Duration>,
    #[serde(default)]
    pub priority: Priority,
}

impl Notification {
    pub fn new(title: impl Into<String>, body: impl Into<String>) -> Self {
        Notification {
            title: title.into(),
            body: body.into(),
            data: BTreeMap::new(),
            collapse_key: None,
            thread_id: None,
            badge: None,
            ttl: None,
            priority: Priority::High,
        }
    }

    pub fn with_data(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }

    pub fn with_collapse_key(mut self, key: impl Into<String>) -> Self {
        self.collapse_key = Some(key.into());
        self
    }

    pub fn with_thread_id(mut self, id: impl Into<String>) -> Self {
        self.thread_id = Some(id.into());
        self
    }

    pub fn with_badge(mut self, badge: u32) -> Self {
        self.badge = Some(badge);
        self
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

/// What one send attempt came to, which tells the outbox what to do with the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The provider accepted it: remove the entry.
    Delivered,
    /// Transient (overload, 5xx, transport failure) or a credentials problem on our
    /// side that an operator can fix: keep the entry and try again, not before
    /// `after` when the provider said so (`Retry-After`).
    Retry { after: Option<Duration>, reason: String },
    /// The provider says the device address is no longer valid (unregistered app,
    /// expired subscription): drop the entry and prune the registration.
    InvalidToken { reason: String },
    /// The provider refused this message for good (too large, malformed): drop the
    /// entry, keep the device.
    Rejected { reason: String },
}

impl SendOutcome {
    pub fn retry(reason: impl Into<String>) -> Self {
        SendOutcome::Retry { after: None, reason: reason.into() }
    }

    pub fn invalid_token(reason: impl Into<String>) -> Self {
        SendOutcome::InvalidToken { reason: reason.into() }
    }

    pub fn rejected(reason: impl Into<String>) -> Self {
        SendOutcome::Rejected { reason: reason.into() }
    }

    /// A short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            SendOutcome::Delivered => "delivered",
            SendOutcome::Retry { .. } => "retry",
            SendOutcome::InvalidToken { .. } => "invalid_token",
            SendOutcome::Rejected { .. } => "rejected",
        }
    }
}

/// One push service's client.
#[async_trait]
pub trait PushProvider: Send + Sync {
    /// The platform whose device addresses this provider accepts.
    fn platform(&self) -> Platform;

    /// One attempt to hand `notification` to the push service for `device`. Never
    /// fails: every answer, and every transport failure, is a [`SendOutcome`]. A
    /// device of another platform is `Rejected`.
    async fn send(&self, device: &DeviceAddress, notification: &Notification) -> SendOutcome;
}

/// The configured providers, one per platform at most: sends a notification
/// through the one that matches the device.
#[derive(Clone, Default)]
pub struct ProviderSet {
    providers: BTreeMap<Platform, Arc<dyn PushProvider>>,
}

impl ProviderSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the provider for its platform.
    pub fn with(mut self, provider: Arc<dyn PushProvider>) -> Self {
        self.providers.insert(provider.platform(), provider);
        self
    }

    pub fn get(&self, platform: Platform) -> Option<&Arc<dyn PushProvider>> {
        self.providers.get(&platform)
    }

    /// Sends through the device's platform's provider; `Rejected` when none is
    /// configured for it.
    pub async fn send(&self, device: &DeviceAddress, notification: &Notification) -> SendOutcome {
        match self.get(device.platform()) {
            Some(provider) => provider.send(device, notification).await,
            None => SendOutcome::rejected(format!("no {} provider configured", device.platform())),
        }
    }
}

impl fmt::Debug for ProviderSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.providers.keys()).finish()
    }
}
