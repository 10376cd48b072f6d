//! Presence: who is online, away or offline, per workspace, the way the design seed draws it
//! (keys that expire unless the 30 s heartbeat refreshes them), with several devices per user:
//! a user is active if any device is active, away if every live device is away, offline when
//! none is left. Two adapters: Redis (`redis_presence`) and in process (`confab-embedded`).
//!
//! Transitions are reported once, whoever causes them: [`Presence::touch`] reports a user's new
//! status when it changed; [`Presence::sweep`] reports users whose last device expired, to the
//! one gateway whose sweep removed them. A device that disconnects counts for a short grace
//! period, so a quick reconnect (a reconnect storm) changes nothing; but only while the user
//! has no connected device: the connected ones decide (a phone that is away stays away when
//! the laptop closes).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ports::PortResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[async_trait]
pub trait Presence: Send + Sync {
    /// `device` of `user` is connected (and away or not) until `now_ms + ttl_ms` unless touched
    /// again. Returns the user's new status if it changed.
    async fn touch(
        &self,
        ws: Uuid,
        user: Uuid,
        device: &str,
        away: bool,
        now_ms: i64,
        ttl_ms: i64,
    ) -> PortResult<Option<PresenceStatus>>;
    /// `device` disconnected: it counts until `now_ms + grace_ms` (while no other device is
    /// connected), then a sweep drops it. Returns the user's new status if it changed.
    async fn leave(
        &self,
        ws: Uuid,
        user: Uuid,
        device: &str,
        now_ms: i64,
        grace_ms: i64,
    ) -> PortResult<Option<PresenceStatus>>;
    /// Users of `ws` whose every device expired by `now_ms`: removed and returned (once).
    async fn sweep(&self, ws: Uuid, now_ms: i64) -> PortResult<Vec<Uuid>>;
    /// The status of each user, in order.
    async fn lookup(&self, ws: Uuid, users: &[Uuid], now_ms: i64) -> PortResult<Vec<PresenceStatus>>;
    /// Users online (active or away) in `ws`, without scanning keys.
    async fn online_count(&self, ws: Uuid, now_ms: i64) -> PortResult<u64>;
}
