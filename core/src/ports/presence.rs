//! The presence port: devices touch it on connect and heartbeat, and gateways sweep it for
//! users whose last device expired (see `crate::presence` for the rules). Redis with Lua
//! (`confab-distributed`) and a mutex in process (`confab-embedded`) implement it.

use async_trait::async_trait;
use uuid::Uuid;

use super::PortResult;
use crate::presence::PresenceStatus;

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
