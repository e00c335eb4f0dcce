//! Exponential backoff with a cap and jitter, and jittered renewal times.

use std::time::Duration;

use rand::Rng;

/// Delays between retries: `min`, `2*min`, `4*min`, ... up to `max`, each
/// spread by ±20 %.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        spread(base, 0.2).min(self.max)
    }

    /// Start over after a success.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Retries since the last reset.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// `d` spread uniformly by ±`fraction`.
pub(crate) fn spread(d: Duration, fraction: f64) -> Duration {
    if fraction <= 0.0 || d.is_zero() {
        return d;
    }
    let f = rand::rng().random_range(-fraction..=fraction);
    d.mul_f64((1.0 + f).max(0.0))
}

/// When to act on something valid for `ttl`: at `fraction` of it, moved
/// by up to ±`jitter`·ttl, and never later than 90 % of it.
pub(crate) fn renew_after(ttl: Duration, fraction: f64, jitter: f64) -> Duration {
    let j = if jitter > 0.0 {
        rand::rng().random_range(-jitter..=jitter)
    } else {
        0.0
    };
    let at = (fraction + j).clamp(0.05, 0.9);
    ttl.mul_f64(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(
            delays[0] >= Duration::from_millis(800) && delays[0] <= Duration::from_millis(1200)
        );
        assert!(
            delays[2] >= Duration::from_millis(3200) && delays[2] <= Duration::from_millis(4800)
        );
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(10)));
        assert!(delays[7] >= Duration::from_secs(8));
        assert_eq!(b.attempts(), 8);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1200));
    }

    #[test]
    fn renewal_times_stay_inside_the_ttl() {
        let ttl = Duration::from_secs(60);
        for _ in 0..1000 {
            let at = renew_after(ttl, 0.667, 0.1);
            assert!(
                at >= Duration::from_secs(34) && at <= Duration::from_secs(47),
                "{at:?}"
            );
        }
        assert_eq!(renew_after(ttl, 0.5, 0.0), Duration::from_secs(30));
        assert_eq!(renew_after(ttl, 0.99, 0.0), Duration::from_secs(54));
    }
}
