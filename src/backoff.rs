//! Reconnection delays and the give-up rule as a pure state machine: time and randomness are
//! inputs, never read here.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use crate::BackoffConfig;

/// `Retry-After` values beyond this are clamped, so a hostile answer cannot park a device.
pub(crate) const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// What to do after a failure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Decision {
    /// Try again after this delay.
    RetryAfter(Duration),
    /// Stop: `max_retries` retries in a row failed.
    GiveUp,
}

/// SplitMix64: tiny, seedable and good enough for jitter (not for secrets).
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// A seed that differs per process and per call, from std's randomly keyed hasher.
    pub fn random_seed() -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5753_6265_6174); // any input: the key is what is random
        h.finish()
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Backoff state for one client, across all its links.
#[derive(Debug)]
pub(crate) struct Backoff {
    config: BackoffConfig,
    rng: SplitMix64,
    /// Consecutive failures since the delay last reset: the exponent.
    step: u32,
    /// The last delay returned while failures continue; delays never shrink below it.
    last_delay: Duration,
    /// Whether the next attempt is a retry (it follows a failure).
    next_is_retry: bool,
    /// Retries that failed since the last open link.
    failed_retries: u32,
    /// Attempts since the last open link (or since start).
    attempts_in_streak: u64,
    connected_at: Option<Instant>,
}

impl Backoff {
    pub fn new(config: BackoffConfig, rng: SplitMix64) -> Backoff {
        Backoff {
            config,
            rng,
            step: 0,
            last_delay: Duration::ZERO,
            next_is_retry: false,
            failed_retries: 0,
            attempts_in_streak: 0,
            connected_at: None,
        }
    }

    /// An attempt starts.
    pub fn on_attempt(&mut self) {
        self.attempts_in_streak += 1;
    }

    /// Attempts since the last open link (or since start).
    pub fn attempts_in_streak(&self) -> u64 {
        self.attempts_in_streak
    }

    /// A link opened at `now`.
    pub fn on_connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
        self.failed_retries = 0;
        self.attempts_in_streak = 0;
        self.next_is_retry = false;
    }

    /// A connect attempt failed; `retry_after` is what the server asked for, if anything.
    pub fn on_attempt_failed(&mut self, retry_after: Option<Duration>) -> Decision {
        if self.next_is_retry {
            self.failed_retries = self.failed_retries.saturating_add(1);
        }
        self.decide(retry_after)
    }

    /// An open link was lost at `now`. The delay resets only if it stayed up for `min_uptime`.
    pub fn on_link_lost(&mut self, now: Instant) -> Decision {
        if let Some(at) = self.connected_at.take() {
            if now.saturating_duration_since(at) >= self.config.min_uptime {
                self.step = 0;
                self.last_delay = Duration::ZERO;
            }
        }
        self.decide(None)
    }

    fn decide(&mut self, retry_after: Option<Duration>) -> Decision {
        if let Some(max) = self.config.max_retries {
            if self.failed_retries >= max {
                return Decision::GiveUp;
            }
        }
        self.next_is_retry = true;
        let mut delay = self.next_delay();
        if let Some(asked) = retry_after {
            delay = delay.max(asked.min(RETRY_AFTER_CAP));
        }
        Decision::RetryAfter(delay)
    }

    /// `[(1 - jitter) × d, d]` with `d = min(initial × factor^step, max)`, never below the
    /// previous delay while failures continue.
    fn next_delay(&mut self) -> Duration {
        let c = &self.config;
        let growth = c.factor.powi(self.step.min(1024) as i32);
        let base = c.initial.as_secs_f64() * growth;
        let base = if base.is_finite() {
            base.min(c.max.as_secs_f64())
        } else {
            c.max.as_secs_f64()
        };
        let jittered = base * (1.0 - c.jitter * self.rng.next_f64());
        let delay = Duration::from_secs_f64(jittered).clamp(self.last_delay, c.max);
        self.step = self.step.saturating_add(1);
        self.last_delay = delay;
        delay
    }
}

// Property tests (delays, resets and giving up, for any policy and seed) in `backoff/props.rs`:
// proptest runs thousands of cases there; the examples below pin single behaviours.
#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_retries: Option<u32>, jitter: f64) -> BackoffConfig {
        BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            factor: 2.0,
            jitter,
            min_uptime: Duration::from_secs(10),
            max_retries,
        }
    }

    fn delays(b: &mut Backoff, n: usize) -> Vec<u128> {
        (0..n)
            .map(|_| {
                b.on_attempt();
                match b.on_attempt_failed(None) {
                    Decision::RetryAfter(d) => d.as_millis(),
                    Decision::GiveUp => panic!("gave up"),
                }
            })
            .collect()
    }

    #[test]
    fn delay_doubles_then_caps_at_max_without_jitter() {
        let mut b = Backoff::new(config(None, 0.0), SplitMix64::new(1));
        assert_eq!(
            delays(&mut b, 7),
            vec![100, 200, 400, 800, 1000, 1000, 1000]
        );
    }

    #[test]
    fn jitter_stays_in_range_and_never_shrinks() {
        for seed in 0..200 {
            let mut b = Backoff::new(config(None, 0.5), SplitMix64::new(seed));
            let d = delays(&mut b, 12);
            let bases = [
                100u128, 200, 400, 800, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000,
            ];
            for (i, (&got, &base)) in d.iter().zip(&bases).enumerate() {
                assert!(
                    got <= base && got * 2 >= base - 1,
                    "seed {seed} step {i}: {got} vs {base}"
                );
                if i > 0 {
                    assert!(got >= d[i - 1], "seed {seed}: shrank at {i}: {d:?}");
                }
            }
        }
    }

    #[test]
    fn same_seed_same_delays_other_seed_other_delays() {
        let a = delays(&mut Backoff::new(config(None, 0.2), SplitMix64::new(7)), 5);
        let b = delays(&mut Backoff::new(config(None, 0.2), SplitMix64::new(7)), 5);
        let c = delays(&mut Backoff::new(config(None, 0.2), SplitMix64::new(8)), 5);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn dead_from_start_gives_up_after_n_plus_one_attempts() {
        let mut b = Backoff::new(config(Some(2), 0.0), SplitMix64::new(1));
        let mut attempts = 0;
        loop {
            b.on_attempt();
            attempts += 1;
            if b.on_attempt_failed(None) == Decision::GiveUp {
                break;
            }
        }
        assert_eq!(attempts, 3);
        assert_eq!(b.attempts_in_streak(), 3);
    }

    #[test]
    fn after_a_dropped_link_gives_up_after_n_attempts() {
        let t0 = Instant::now();
        let mut b = Backoff::new(config(Some(2), 0.0), SplitMix64::new(1));
        b.on_attempt();
        b.on_connected(t0);
        assert!(matches!(
            b.on_link_lost(t0 + Duration::from_secs(60)),
            Decision::RetryAfter(_)
        ));
        let mut attempts = 0;
        loop {
            b.on_attempt();
            attempts += 1;
            if b.on_attempt_failed(None) == Decision::GiveUp {
                break;
            }
        }
        assert_eq!(attempts, 2);
    }

    #[test]
    fn zero_retries_gives_up_at_the_first_failure() {
        let mut b = Backoff::new(config(Some(0), 0.0), SplitMix64::new(1));
        b.on_attempt();
        assert_eq!(b.on_attempt_failed(None), Decision::GiveUp);
    }

    #[test]
    fn delay_resets_only_after_min_uptime() {
        let t0 = Instant::now();
        let mut b = Backoff::new(config(None, 0.0), SplitMix64::new(1));
        assert_eq!(delays(&mut b, 3), vec![100, 200, 400]);
        // Up for 1 s (< 10 s min_uptime): the next delay keeps growing.
        b.on_connected(t0);
        assert_eq!(
            b.on_link_lost(t0 + Duration::from_secs(1)),
            Decision::RetryAfter(Duration::from_millis(800))
        );
        // Up for 10 s: back to the initial delay.
        b.on_connected(t0);
        assert_eq!(
            b.on_link_lost(t0 + Duration::from_secs(10)),
            Decision::RetryAfter(Duration::from_millis(100))
        );
    }

    #[test]
    fn retry_after_is_honoured_and_clamped() {
        let mut b = Backoff::new(config(None, 0.0), SplitMix64::new(1));
        assert_eq!(
            b.on_attempt_failed(Some(Duration::from_secs(3))),
            Decision::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            b.on_attempt_failed(Some(Duration::from_secs(1 << 40))),
            Decision::RetryAfter(RETRY_AFTER_CAP)
        );
        // A short Retry-After never shortens the backoff.
        assert_eq!(
            b.on_attempt_failed(Some(Duration::from_millis(1))),
            Decision::RetryAfter(Duration::from_millis(400))
        );
    }

    #[test]
    fn huge_step_counts_do_not_overflow() {
        let mut b = Backoff::new(config(None, 0.2), SplitMix64::new(3));
        b.step = u32::MAX - 1;
        let d = delays(&mut b, 3);
        assert!(d.iter().all(|&ms| (800..=1000).contains(&ms)), "{d:?}");
    }

    #[test]
    fn random_seeds_differ() {
        assert_ne!(SplitMix64::random_seed(), SplitMix64::random_seed());
    }
}
