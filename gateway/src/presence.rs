//! Presence at the gateway: each socket is a device. It is touched on connect and on every
//! heartbeat (`ping`), set away/active by `presence:set`, and left (with a grace period) on
//! disconnect. Transitions go to a batcher that gathers a workspace's changes for
//! `gateway.presence_batch_ms` and publishes one `presence:change` to the workspace's connected
//! members (every socket is subscribed to its workspace's stream, channel id = workspace id). A
//! sweeper finds users whose last device expired (a crashed gateway's sockets, or the grace
//! period after a disconnect) and reports them offline.

use confab_core::presence::PresenceStatus;
use confab_core::protocol::{PresenceView, ServerFrame};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::state::AppState;

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A device (socket) touches presence; a transition is queued for publishing.
pub async fn touch(st: &AppState, ws: Uuid, user: Uuid, device: &str, away: bool) {
    let ttl = st.cfg.gateway.presence_ttl_ms as i64;
    match st.presence.touch(ws, user, device, away, now_ms(), ttl).await {
        Ok(Some(status)) => {
            let _ = st.presence_changes.send((ws, user, status));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "presence touch failed"),
    }
}

pub async fn leave(st: &AppState, ws: Uuid, user: Uuid, device: &str) {
    match st.presence.leave(ws, user, device, now_ms(), st.cfg.gateway.presence_grace_ms as i64).await {
        Ok(Some(status)) => {
            let _ = st.presence_changes.send((ws, user, status));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "presence leave failed"),
    }
}

/// Users per `presence:change` frame (about 1.5 KB).
const PRESENCE_FRAME_USERS: usize = 20;

/// Gathers changes per workspace and publishes them together; within a window the last
/// status of a user wins, so a burst of changes (a reconnect storm) is one frame per window.
pub async fn batcher(st: Arc<AppState>, mut rx: mpsc::UnboundedReceiver<(Uuid, Uuid, PresenceStatus)>) {
    let window = Duration::from_millis(st.cfg.gateway.presence_batch_ms.max(1));
    let mut shutdown = st.shutdown.clone();
    loop {
        let first = tokio::select! {
            _ = shutdown.wait() => return,
            c = rx.recv() => match c { Some(c) => c, None => return },
        };
        let mut pending: HashMap<Uuid, HashMap<Uuid, PresenceStatus>> = HashMap::new();
        pending.entry(first.0).or_default().insert(first.1, first.2);
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some((ws, user, status))) = tokio::time::timeout_at(deadline, rx.recv()).await {
            pending.entry(ws).or_default().insert(user, status);
        }
        for (ws, users) in pending {
            let users: Vec<PresenceView> =
                users.into_iter().map(|(user_id, status)| PresenceView { user_id, status }).collect();
            st.metrics.presence_changes.inc_by(users.len() as u64);
            // small frames: each socket's write buffer keeps the capacity of the largest frame it
            // ever sent, so a burst of changes goes out as several frames of a few users each
            for chunk in users.chunks(PRESENCE_FRAME_USERS) {
                let frame = ServerFrame::PresenceChange { workspace_id: ws, users: chunk.to_vec() };
                let json = serde_json::to_string(&frame).expect("frame serializes");
                // from nobody: every connected member of the workspace gets it
                if let Err(e) = st.fanout.publish_ephemeral(&ws, &ws, &Uuid::nil(), frame.type_name(), &json).await {
                    tracing::warn!(error = %e, "cannot publish presence changes");
                }
            }
        }
    }
}

/// Periodically reports users of this gateway's workspaces whose every device expired.
pub async fn sweeper(st: Arc<AppState>) {
    let every = Duration::from_millis(st.cfg.gateway.presence_sweep_ms.max(50));
    let mut shutdown = st.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(every) => {}
        }
        for ws in st.hub.workspaces() {
            match st.presence.sweep(ws, now_ms()).await {
                Ok(gone) => {
                    for user in gone {
                        let _ = st.presence_changes.send((ws, user, PresenceStatus::Offline));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "presence sweep failed"),
            }
        }
    }
}
