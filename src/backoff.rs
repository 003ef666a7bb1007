//! Reconnection delays and the give-up rule as a pure state machine: time and randomness are
//! inputs, never read here.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use crate::{BackoffConfig, Jitter};

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

    /// A seed that differs per process, per thread and per call, so that devices booting
    /// together do not share a jitter sequence.
    ///
    /// The OS randomness comes through std's `RandomState`: on Linux its keys are 16 bytes
    /// from `getrandom(GRND_INSECURE)` (falling back to `GRND_NONBLOCK`, then
    /// `/dev/urandom`), fetched once per thread; each `RandomState::new()` then adds 1 to the
    /// first key, and SipHash under a different key gives an unrelated output. That is the
    /// same source as reading `/dev/urandom` ourselves, and it never blocks: `getrandom(0)`
    /// (the `getrandom` crate) waits for the kernel's pool, which on an old kernel without a
    /// hardware RNG can stall a booting device for minutes, for a seed that needs to differ
    /// between devices, not to be secret. The clock (nanoseconds) and the process id are
    /// hashed in too, so that even a pool read before it was seeded, identical on two
    /// devices with the same firmware, does not give them the same sequence.
    pub fn random_seed() -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5753_6265_6174); // any input: the key is what is random
        if let Ok(since_epoch) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)
        {
            h.write_u128(since_epoch.as_nanos());
        }
        h.write_u32(std::process::id());
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
    /// Consecutive failures since the delay last reset: the exponent of the envelope.
    step: u32,
    /// The sequence's first delay: `initial` from the start, `first_spread` (within
    /// `[initial, max]`) once a lasting link was lost (see [`Backoff::on_link_lost`]).
    base: Duration,
    /// The last delay drawn by the strategy while failures continue (before any
    /// `Retry-After`; zero after a reset): the floor of [`Jitter::Proportional`] and the
    /// "previous" of [`Jitter::Decorrelated`].
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
            base: config.initial,
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
        self.decide(retry_after, false)
    }

    /// An open link was lost at `now`. If it stayed up for `min_uptime`, the sequence resets:
    /// the first attempt is spread over `[0, first_spread]`, and the failures after it start
    /// from `first_spread` instead of `initial` (a device that lost its link with the fleet
    /// never retries faster than the window the fleet was spread over, so the fleet's
    /// attempts stay near `N / first_spread` per second while the server is still down or
    /// refusing). A shorter link counts as one more failure and the sequence goes on: a
    /// server that accepts and drops at once must not get a tight loop, nor a fresh spread
    /// that may be zero.
    pub fn on_link_lost(&mut self, now: Instant) -> Decision {
        let lasted = self
            .connected_at
            .take()
            .is_some_and(|at| now.saturating_duration_since(at) >= self.config.min_uptime);
        if lasted {
            self.step = 0;
            self.last_delay = Duration::ZERO;
            // `initial <= max` is validated, so the clamp cannot panic.
            self.base = self
                .config
                .first_spread
                .clamp(self.config.initial, self.config.max);
        }
        self.decide(None, lasted)
    }

    fn decide(&mut self, retry_after: Option<Duration>, spread: bool) -> Decision {
        if let Some(max) = self.config.max_retries {
            if self.failed_retries >= max {
                return Decision::GiveUp;
            }
        }
        self.next_is_retry = true;
        if spread {
            // Not a failure delay: the envelope, the floor and the decorrelated "previous"
            // start with the first failure after it.
            let spread = self.config.first_spread.as_secs_f64() * self.rng.next_f64();
            return Decision::RetryAfter(Duration::from_secs_f64(spread));
        }
        let mut delay = self.next_delay();
        if let Some(asked) = retry_after {
            delay = delay.max(asked.min(RETRY_AFTER_CAP));
        }
        Decision::RetryAfter(delay)
    }

    /// The next failure delay per the strategy (see [`Jitter`] for the formulas and floors).
    fn next_delay(&mut self) -> Duration {
        let c = &self.config;
        // `Jitter` is non-exhaustive for users, not inside the crate: no catch-all arm, so a
        // new variant cannot compile without its formula.
        let delay = match c.strategy {
            Jitter::Proportional => {
                let d = envelope(c, self.base, self.step);
                let jittered = d * (1.0 - c.jitter * self.rng.next_f64());
                Duration::from_secs_f64(jittered).clamp(self.last_delay, c.max)
            }
            Jitter::Full => {
                let d = envelope(c, self.base, self.step);
                Duration::from_secs_f64(d * self.rng.next_f64()).min(c.max)
            }
            Jitter::Decorrelated => {
                let lo = self.base.as_secs_f64();
                // `last_delay <= max <= 30 days` (validated), so `× 3` stays finite.
                let hi = 3.0 * self.last_delay.max(self.base).as_secs_f64();
                let drawn = lo + (hi - lo) * self.rng.next_f64();
                // `base <= max`: `initial <= max` is validated and the spread base is clamped.
                Duration::from_secs_f64(drawn).clamp(self.base, c.max)
            }
        };
        self.step = self.step.saturating_add(1);
        self.last_delay = delay;
        delay
    }
}

/// `min(base × factor^step, max)` in seconds.
fn envelope(c: &BackoffConfig, base: Duration, step: u32) -> f64 {
    let growth = c.factor.powi(step.min(1024) as i32);
    let base = base.as_secs_f64() * growth;
    if base.is_finite() {
        base.min(c.max.as_secs_f64())
    } else {
        c.max.as_secs_f64()
    }
}

// Property tests (delays, resets and giving up, for any policy and seed) in `backoff/props.rs`:
// proptest runs thousands of cases there; the examples below pin single behaviours.
#[cfg(test)]
mod props;

#[cfg(test)]
mod tests;
