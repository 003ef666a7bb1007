//! Property tests of the backoff (proptest, a dev-only dependency), for any policy and any
//! seed: delays stay in range, never shrink while failures continue, reset only after
//! `min_uptime`, give up after exactly the configured retries, and a `Retry-After` raises only
//! the one delay it applies to.
#![forbid(unsafe_code)]

use super::{Backoff, Decision, SplitMix64, RETRY_AFTER_CAP};
use crate::BackoffConfig;
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn policy() -> impl Strategy<Value = BackoffConfig> {
    (
        1u64..10_000,
        0u64..120_000,
        1.0f64..4.0,
        prop_oneof![Just(0.0), 0.0f64..0.99],
        proptest::option::of(0u32..20),
        1u64..30_000,
    )
        .prop_map(
            |(initial, extra, factor, jitter, max_retries, uptime)| BackoffConfig {
                initial: ms(initial),
                max: ms(initial + extra),
                factor,
                jitter,
                min_uptime: ms(uptime),
                max_retries,
            },
        )
}

/// `min(initial × factor^k, max)` in seconds, as the policy documents it.
fn base(c: &BackoffConfig, k: u32) -> f64 {
    let b = c.initial.as_secs_f64() * c.factor.powi(k as i32);
    if b.is_finite() {
        b.min(c.max.as_secs_f64())
    } else {
        c.max.as_secs_f64()
    }
}

/// Float-to-Duration rounding: a nanosecond either way.
const EPS: f64 = 2e-9;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn delays_stay_in_range_never_shrink_and_give_up_after_exactly_the_retries(
        c in policy(),
        seed in any::<u64>(),
    ) {
        let mut b = Backoff::new(c.clone(), SplitMix64::new(seed));
        let mut last = Duration::ZERO;
        let mut attempts = 0u32;
        let gave_up = loop {
            b.on_attempt();
            attempts += 1;
            match b.on_attempt_failed(None) {
                Decision::RetryAfter(d) => {
                    let hi = base(&c, attempts - 1);
                    let lo = hi * (1.0 - c.jitter);
                    let s = d.as_secs_f64();
                    prop_assert!(s >= lo - EPS && s <= hi + EPS, "delay {}: {:?} outside [{}, {}]", attempts - 1, d, lo, hi);
                    prop_assert!(d <= c.max);
                    prop_assert!(d >= last, "shrank: {:?} after {:?}", d, last);
                    last = d;
                    if attempts > 300 {
                        break false;
                    }
                }
                Decision::GiveUp => break true,
            }
        };
        match c.max_retries {
            // Dead from the start: N + 1 attempts.
            Some(n) => {
                prop_assert!(gave_up);
                prop_assert_eq!(attempts, n + 1);
                prop_assert_eq!(b.attempts_in_streak(), u64::from(n) + 1);
            }
            None => prop_assert!(!gave_up),
        }
    }

    #[test]
    fn after_a_dropped_link_gives_up_after_exactly_the_retries(
        c in policy(),
        seed in any::<u64>(),
        failures_before in 0u32..5,
        up_ms in 0u64..60_000,
    ) {
        let t0 = Instant::now();
        let mut b = Backoff::new(c.clone(), SplitMix64::new(seed));
        for _ in 0..failures_before {
            b.on_attempt();
            if b.on_attempt_failed(None) == Decision::GiveUp {
                return Ok(()); // gave up before ever connecting: the other property
            }
        }
        b.on_attempt();
        b.on_connected(t0);
        let mut decision = b.on_link_lost(t0 + ms(up_ms));
        let mut attempts = 0u32;
        while let Decision::RetryAfter(_) = decision {
            if attempts > 300 {
                break;
            }
            b.on_attempt();
            attempts += 1;
            decision = b.on_attempt_failed(None);
        }
        match c.max_retries {
            Some(n) => {
                prop_assert_eq!(decision, Decision::GiveUp);
                prop_assert_eq!(attempts, n);
            }
            None => prop_assert!(attempts > 300),
        }
    }

    #[test]
    fn the_delay_resets_only_after_min_uptime(
        c in policy(),
        seed in any::<u64>(),
        failures_before in 1u32..8,
        up_ms in 0u64..60_000,
    ) {
        let c = BackoffConfig { max_retries: None, ..c };
        let t0 = Instant::now();
        let mut b = Backoff::new(c.clone(), SplitMix64::new(seed));
        let mut last = Duration::ZERO;
        for _ in 0..failures_before {
            b.on_attempt();
            match b.on_attempt_failed(None) {
                Decision::RetryAfter(d) => last = d,
                Decision::GiveUp => unreachable!(),
            }
        }
        b.on_attempt();
        b.on_connected(t0);
        let up = ms(up_ms);
        let Decision::RetryAfter(d) = b.on_link_lost(t0 + up) else {
            unreachable!()
        };
        let s = d.as_secs_f64();
        if up >= c.min_uptime {
            // Back to the first delay.
            let hi = c.initial.as_secs_f64();
            prop_assert!(s >= hi * (1.0 - c.jitter) - EPS && s <= hi + EPS, "{:?}", d);
        } else {
            // Up too briefly: the sequence goes on, never shrinking.
            let hi = base(&c, failures_before);
            prop_assert!(d >= last, "{:?} after {:?}", d, last);
            prop_assert!(s >= hi * (1.0 - c.jitter) - EPS && s <= hi + EPS, "{:?}", d);
        }
    }

    #[test]
    fn retry_after_raises_that_one_delay_and_leaves_the_sequence_alone(
        c in policy(),
        seed in any::<u64>(),
        asks in proptest::collection::vec(proptest::option::of(0u64..7_200_000), 1..12),
    ) {
        // A twin without Retry-After draws the same jitter: the delays differ only where the
        // server asked for more, and then by exactly that (capped at an hour).
        let c = BackoffConfig { max_retries: None, ..c };
        let mut with = Backoff::new(c.clone(), SplitMix64::new(seed));
        let mut without = Backoff::new(c.clone(), SplitMix64::new(seed));
        for ask in asks {
            let asked = ask.map(ms);
            let (Decision::RetryAfter(d), Decision::RetryAfter(plain)) =
                (with.on_attempt_failed(asked), without.on_attempt_failed(None))
            else {
                unreachable!()
            };
            let expected = match asked {
                Some(a) => plain.max(a.min(RETRY_AFTER_CAP)),
                None => plain,
            };
            prop_assert_eq!(d, expected);
        }
    }
}
