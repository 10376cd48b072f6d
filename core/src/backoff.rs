//! Exponential backoff with full jitter, for retrying transient failures: each wait is random
//! in `[0, min(max, initial * 2^attempt)]`, so processes that failed together do not retry in
//! step.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, attempt: 0 }
    }

    /// The wait before the next retry.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self.initial.saturating_mul(2u32.saturating_pow(self.attempt)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
    }

    /// Back to the first wait (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_the_ceiling_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        for attempt in 0..10u32 {
            let ceiling = Duration::from_millis(100 * 2u64.pow(attempt)).min(Duration::from_secs(1));
            assert!(b.next_wait() <= ceiling, "attempt {attempt}");
        }
        b.reset();
        assert!(b.next_wait() <= Duration::from_millis(100));
    }
}
