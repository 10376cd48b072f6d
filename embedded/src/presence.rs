//! In-process presence with the same semantics as the Redis adapter (`confab_core::presence`):
//! devices with expiries per user, the last announced status per user, a sweep that reports
//! each user whose last device expired once. Nothing here needs to survive a restart: after
//! one, every client reconnects and says where it is.

use async_trait::async_trait;
use confab_core::ports::{PortResult, Presence};
use confab_core::presence::PresenceStatus;
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

#[derive(Default)]
struct User {
    /// device -> (expires at ms, away, left: in its grace period)
    devices: HashMap<String, (i64, bool, bool)>,
    announced: Option<PresenceStatus>,
}

impl User {
    fn status(&self, now: i64) -> PresenceStatus {
        let live: Vec<(bool, bool)> =
            self.devices.values().filter(|(exp, _, _)| *exp > now).map(|(_, away, left)| (*away, *left)).collect();
        // connected devices decide; those in their grace period only while none is connected
        let connected: Vec<bool> = live.iter().filter(|(_, left)| !left).map(|(away, _)| *away).collect();
        let live: Vec<bool> =
            if connected.is_empty() { live.iter().map(|(away, _)| *away).collect() } else { connected };
        if live.is_empty() {
            PresenceStatus::Offline
        } else if live.iter().all(|away| *away) {
            PresenceStatus::Away
        } else {
            PresenceStatus::Active
        }
    }
}

#[derive(Default)]
pub struct EmbeddedPresence {
    users: Mutex<HashMap<(Uuid, Uuid), User>>,
}

#[async_trait]
impl Presence for EmbeddedPresence {
    async fn touch(
        &self,
        ws: Uuid,
        user: Uuid,
        device: &str,
        away: bool,
        now_ms: i64,
        ttl_ms: i64,
    ) -> PortResult<Option<PresenceStatus>> {
        let mut users = self.users.lock().expect("presence lock");
        let u = users.entry((ws, user)).or_default();
        u.devices.retain(|_, (exp, _, _)| *exp > now_ms);
        u.devices.insert(device.to_string(), (now_ms + ttl_ms, away, false));
        let after = u.status(now_ms);
        let before = u.announced.replace(after).unwrap_or(PresenceStatus::Offline);
        Ok((after != before).then_some(after))
    }

    async fn leave(
        &self,
        ws: Uuid,
        user: Uuid,
        device: &str,
        now_ms: i64,
        grace_ms: i64,
    ) -> PortResult<Option<PresenceStatus>> {
        let mut users = self.users.lock().expect("presence lock");
        let Some(u) = users.get_mut(&(ws, user)) else { return Ok(None) };
        let Some(d) = u.devices.get_mut(device) else { return Ok(None) };
        d.0 = now_ms + grace_ms;
        d.2 = true;
        let after = u.status(now_ms);
        let before = u.announced.replace(after).unwrap_or(PresenceStatus::Offline);
        Ok((after != before).then_some(after))
    }

    async fn sweep(&self, ws: Uuid, now_ms: i64) -> PortResult<Vec<Uuid>> {
        let mut users = self.users.lock().expect("presence lock");
        let mut gone = Vec::new();
        users.retain(|(w, u), p| {
            if *w != ws || p.status(now_ms) != PresenceStatus::Offline {
                return true;
            }
            if p.announced.is_some_and(|a| a != PresenceStatus::Offline) {
                gone.push(*u);
            }
            false
        });
        Ok(gone)
    }

    async fn lookup(&self, ws: Uuid, users: &[Uuid], now_ms: i64) -> PortResult<Vec<PresenceStatus>> {
        let map = self.users.lock().expect("presence lock");
        Ok(users
            .iter()
            .map(|u| map.get(&(ws, *u)).map(|p| p.status(now_ms)).unwrap_or(PresenceStatus::Offline))
            .collect())
    }

    async fn online_count(&self, ws: Uuid, now_ms: i64) -> PortResult<u64> {
        let map = self.users.lock().expect("presence lock");
        Ok(map.iter().filter(|((w, _), p)| *w == ws && p.status(now_ms) != PresenceStatus::Offline).count() as u64)
    }
}
