//! Retry timing: exponential backoff with a cap, as a pure function of the attempt number.

use std::time::Duration;

/// Exponential backoff with a cap and optional jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub base: Duration,
    /// Longest delay between retries.
    pub cap: Duration,
}

impl Backoff {
    /// Delay before retry number `attempt` (1 for the first retry): `base * 2^(attempt-1)`,
    /// at most `cap`. `jitter` in `[0, 1]` shortens the delay by up to half (pass a random
    /// number to spread retries of many replicas; 0 for none). Attempt 0 waits nothing.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        let raw = self.base.saturating_mul(factor).min(self.cap);
        let jitter = jitter.clamp(0.0, 1.0);
        raw.mul_f64(1.0 - jitter / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_millis(10),
        cap: Duration::from_millis(500),
    };

    #[test]
    fn doubles_from_base_then_stays_at_the_cap() {
        let delays: Vec<u128> = (0..9).map(|a| B.delay(a, 0.0).as_millis()).collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 320, 500, 500]);
        assert_eq!(B.delay(u32::MAX, 0.0), B.cap);
    }

    #[test]
    fn jitter_shortens_by_at_most_half() {
        assert_eq!(B.delay(3, 1.0), Duration::from_millis(20));
        assert_eq!(B.delay(3, 0.5), Duration::from_millis(30));
        assert_eq!(
            B.delay(3, 7.0),
            Duration::from_millis(20),
            "jitter is clamped"
        );
    }
}
