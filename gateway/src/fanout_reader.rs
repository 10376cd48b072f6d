//! Follows the fanout stream of every workspace that has a socket on this gateway, and
//! hands each entry to the hub once; the hub fans it out to local sockets. Its own state is
//! the `fanout_reader` health check (`fanout` is the periodic probe's: one writer per check).

use axum::extract::ws::Utf8Bytes;
use confab_core::ports::FanoutStream;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use crate::state::AppState;

const BLOCK_MS: usize = 200;
const COUNT: usize = 1000;

pub async fn run(st: Arc<AppState>) {
    let mut shutdown = st.shutdown.clone();
    let mut positions: HashMap<Uuid, String> = HashMap::new();
    let mut reader: Option<Box<dyn FanoutStream>> = None;
    loop {
        if shutdown.is_triggered() {
            return;
        }
        let r = match reader.as_mut() {
            Some(r) => r,
            None => match st.fanout.reader().await {
                Ok(r) => reader.insert(r),
                Err(e) => {
                    st.health.set("fanout_reader", Err(e.to_string()));
                    tokio::select! { _ = shutdown.wait() => return, _ = tokio::time::sleep(Duration::from_millis(500)) => {} }
                    continue;
                }
            },
        };
        let (follow, unfollow) = st.hub.take_follow_changes();
        for ws in unfollow {
            if !st.hub.has_workspace(&ws) {
                positions.remove(&ws);
            }
        }
        for (ws, after) in follow {
            positions.entry(ws).or_insert(after);
        }
        let from: Vec<(Uuid, String)> = positions.iter().map(|(k, v)| (*k, v.clone())).collect();
        match r.read(&from, BLOCK_MS, COUNT).await {
            Ok(entries) => {
                // only a read that reached the fanout store says it works (with no workspace
                // to follow, nothing was asked of it)
                if !from.is_empty() {
                    st.health.set("fanout_reader", Ok(()));
                }
                let now = chrono::Utc::now().timestamp_millis();
                for e in entries {
                    positions.insert(e.workspace_id, e.position.clone());
                    if e.ts > 0 && e.frame_type == "message:new" {
                        st.metrics.delivery_latency.observe((now - e.ts).max(0) as f64 / 1000.0);
                    }
                    match e.ephemeral_from {
                        Some(from) => {
                            st.hub.dispatch_ephemeral(e.workspace_id, e.topic_id, from, Utf8Bytes::from(e.frame_json))
                        }
                        None => st.hub.dispatch(
                            e.workspace_id,
                            e.topic_id,
                            e.seq,
                            &e.add_members,
                            &e.remove_members,
                            Utf8Bytes::from(e.frame_json),
                        ),
                    };
                }
            }
            Err(e) => {
                st.health.set("fanout_reader", Err(e.to_string()));
                tracing::warn!(error = %e, "fanout read failed, reconnecting");
                reader = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
