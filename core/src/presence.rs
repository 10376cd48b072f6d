//! Presence: who is online, away or offline, per workspace, the way the design seed draws it
//! (keys that expire unless the 30 s heartbeat refreshes them), with several devices per user:
//! a user is active if any device is active, away if every live device is away, offline when
//! none is left. The port that tracks it is `ports::Presence`.
//!
//! Transitions are reported once, whoever causes them: `Presence::touch` reports a user's new
//! status when it changed; `Presence::sweep` reports users whose last device expired, to the
//! one gateway whose sweep removed them. A device that disconnects counts for a short grace
//! period, so a quick reconnect (a reconnect storm) changes nothing; but only while the user
//! has no connected device: the connected ones decide (a phone that is away stays away when
//! the laptop closes).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Active,
    Away,
    Offline,
}

impl PresenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Active => "active",
            PresenceStatus::Away => "away",
            PresenceStatus::Offline => "offline",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => PresenceStatus::Active,
            "away" => PresenceStatus::Away,
            "offline" => PresenceStatus::Offline,
            _ => return None,
        })
    }
}
