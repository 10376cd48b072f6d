//! A connection's token bucket: `rate` tokens a second up to `burst`; each command takes one.

use std::time::Instant;

pub(super) struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// A full bucket; a `rate` of 0 disables the limit.
    pub(super) fn new(rate: u32, burst: u32) -> Self {
        Self { rate: rate as f64, burst: burst.max(1) as f64, tokens: burst.max(1) as f64, at: Instant::now() }
    }

    /// Takes a token if there is one.
    pub(super) fn allow(&mut self) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_zero_disables() {
        let mut limit = RateLimit::new(1, 3);
        assert_eq!((0..5).filter(|_| limit.allow()).count(), 3);
        let mut off = RateLimit::new(0, 1);
        assert!((0..1000).all(|_| off.allow()));
    }
}
