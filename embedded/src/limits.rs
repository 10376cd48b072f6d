//! Send limits in process: one token bucket per user and one per workspace. The map is bounded:
//! past [`MAX_BUCKETS`] entries, buckets that are full again (their owner stopped sending) are
//! dropped, which forgets nothing a later send could be refused for.

use async_trait::async_trait;
use confab_core::ports::{Bucket, BucketState, PortResult, SendLimits, SendVerdict};
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

const MAX_BUCKETS: usize = 100_000;

pub struct EmbeddedSendLimits {
    user: Bucket,
    workspace: Bucket,
    /// `(workspace, user)` for users, `(workspace, nil)` for workspaces.
    buckets: Mutex<HashMap<(Uuid, Uuid), BucketState>>,
}

impl EmbeddedSendLimits {
    pub fn new(user: Bucket, workspace: Bucket) -> Self {
        Self { user, workspace, buckets: Mutex::default() }
    }
}

#[async_trait]
impl SendLimits for EmbeddedSendLimits {
    async fn take(&self, ws: Uuid, user: Uuid, now_ms: i64) -> PortResult<SendVerdict> {
        let mut buckets = self.buckets.lock().expect("limits lock");
        if buckets.len() > MAX_BUCKETS {
            let (u, w) = (self.user, self.workspace);
            buckets.retain(|(_, who), s| {
                let shape = if who.is_nil() { w } else { u };
                shape.refill(*s, now_ms).tokens < shape.burst.max(1) as f64
            });
        }
        let user_key = (ws, user);
        let ws_key = (ws, Uuid::nil());
        let u = self.user.refill(*buckets.get(&user_key).unwrap_or(&self.user.full(now_ms)), now_ms);
        let w = self.workspace.refill(*buckets.get(&ws_key).unwrap_or(&self.workspace.full(now_ms)), now_ms);
        if self.user.enabled() && u.tokens < 1.0 {
            return Ok(SendVerdict::UserLimited);
        }
        if self.workspace.enabled() && w.tokens < 1.0 {
            return Ok(SendVerdict::WorkspaceLimited);
        }
        if self.user.enabled() {
            buckets.insert(user_key, BucketState { tokens: u.tokens - 1.0, ..u });
        }
        if self.workspace.enabled() {
            buckets.insert(ws_key, BucketState { tokens: w.tokens - 1.0, ..w });
        }
        Ok(SendVerdict::Allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_user_and_a_workspace_each_have_a_bucket() {
        let limits = EmbeddedSendLimits::new(Bucket { rate: 1, burst: 2 }, Bucket { rate: 1, burst: 3 });
        let (ws, alice, bob) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(limits.take(ws, alice, 0).await.unwrap(), SendVerdict::Allowed);
        assert_eq!(limits.take(ws, alice, 0).await.unwrap(), SendVerdict::Allowed);
        assert_eq!(limits.take(ws, alice, 0).await.unwrap(), SendVerdict::UserLimited);
        assert_eq!(limits.take(ws, bob, 0).await.unwrap(), SendVerdict::Allowed);
        assert_eq!(limits.take(ws, bob, 0).await.unwrap(), SendVerdict::WorkspaceLimited);
        assert_eq!(limits.take(ws, alice, 1_000).await.unwrap(), SendVerdict::Allowed, "a second later");
        let other = Uuid::new_v4();
        assert_eq!(limits.take(other, alice, 0).await.unwrap(), SendVerdict::Allowed, "workspaces are apart");
    }
}
