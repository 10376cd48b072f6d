//! The send-limits port: token buckets per user and per workspace that hold across gateways, so
//! a user with many sockets (or many gateways) cannot send faster than one user may. Redis with
//! a Lua script (`confab-distributed`) or a map in process (`confab-embedded`) implements it.

use async_trait::async_trait;
use uuid::Uuid;

use super::PortResult;

/// A bucket's shape: `rate` tokens a second, up to `burst`. A rate of 0 disables the bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub rate: u32,
    pub burst: u32,
}

/// Which bucket refused a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendVerdict {
    Allowed,
    UserLimited,
    WorkspaceLimited,
}

#[async_trait]
pub trait SendLimits: Send + Sync {
    /// Takes a token from the user's bucket and from the workspace's, both or neither.
    async fn take(&self, ws: Uuid, user: Uuid, now_ms: i64) -> PortResult<SendVerdict>;
}

/// A token bucket's state: tokens left at `at_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketState {
    pub tokens: f64,
    pub at_ms: i64,
}

impl Bucket {
    /// A full bucket.
    pub fn full(&self, now_ms: i64) -> BucketState {
        BucketState { tokens: self.burst.max(1) as f64, at_ms: now_ms }
    }

    /// The state refilled up to `now_ms`.
    pub fn refill(&self, state: BucketState, now_ms: i64) -> BucketState {
        let elapsed = (now_ms - state.at_ms).max(0) as f64 / 1000.0;
        let tokens = (state.tokens + elapsed * self.rate as f64).min(self.burst.max(1) as f64);
        BucketState { tokens, at_ms: now_ms.max(state.at_ms) }
    }

    pub fn enabled(&self) -> bool {
        self.rate > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_up_to_its_burst() {
        let b = Bucket { rate: 2, burst: 4 };
        let s = BucketState { tokens: 0.0, at_ms: 1_000 };
        assert_eq!(b.refill(s, 1_500).tokens, 1.0);
        assert_eq!(b.refill(s, 60_000).tokens, 4.0);
        assert_eq!(b.refill(s, 500).tokens, 0.0, "a clock going back refills nothing");
    }
}
