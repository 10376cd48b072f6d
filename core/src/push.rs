//! Push vocabulary shared by the gateway (which registers devices and stores preferences) and
//! the notifier (which reads them and sends): where a device is reached, and what a user wants
//! to hear about. The providers and the decision of who hears what are in `confab-notifier`.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use uuid::Uuid;

/// The push service a device is reached through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Apple Push Notification service (iOS, iPadOS, macOS apps).
    Apns,
    /// Firebase Cloud Messaging (Android apps).
    Fcm,
    /// RFC 8030 Web Push (browsers, through whatever push service the browser uses).
    WebPush,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Apns => "apns",
            Platform::Fcm => "fcm",
            Platform::WebPush => "web_push",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one registered device is reached: what the client app handed us at
/// registration, verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "platform", rename_all = "snake_case")]
pub enum DeviceAddress {
    /// An APNs device token (hex, as the app got it from `registerForRemoteNotifications`).
    Apns { token: String },
    /// An FCM registration token.
    Fcm { token: String },
    /// A browser's `PushSubscription`: the push service URL to POST to, the user
    /// agent's P-256 public key (`p256dh`, base64url, uncompressed point) and the
    /// 16-byte authentication secret (`auth`, base64url).
    WebPush { endpoint: String, p256dh: String, auth: String },
}

impl DeviceAddress {
    pub fn platform(&self) -> Platform {
        match self {
            DeviceAddress::Apns { .. } => Platform::Apns,
            DeviceAddress::Fcm { .. } => Platform::Fcm,
            DeviceAddress::WebPush { .. } => Platform::WebPush,
        }
    }

    /// What identifies the registration: the token, or the subscription's endpoint.
    /// This is what `InvalidToken` asks to prune.
    pub fn key(&self) -> &str {
        match self {
            DeviceAddress::Apns { token } | DeviceAddress::Fcm { token } => token,
            DeviceAddress::WebPush { endpoint, .. } => endpoint,
        }
    }
}

/// How much a user wants to hear by push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    All,
    #[default]
    Mentions,
    Nothing,
}

/// A user's notification preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Prefs {
    pub level: Level,
    /// Channels to hear nothing from by push (at most 10,000; a channel named twice counts once).
    #[schema(value_type = Vec<Uuid>, max_items = 10000)]
    pub muted_channels: HashSet<Uuid>,
}
