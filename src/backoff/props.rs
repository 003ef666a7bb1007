//! Property tests of the backoff (proptest, a dev-only dependency), for any policy (every
//! strategy, any spread) and any seed: delays stay in their strategy's range and keep its
//! floor while failures continue, reset only after `min_uptime` (the first attempt then spread
//! over `[0, first_spread]`), give up after exactly the configured retries, a `Retry-After`
//! raises only the one delay it applies to, and a seed repeats its whole sequence.
#![forbid(unsafe_code)]

use super::{Backoff, Decision, SplitMix64, RETRY_AFTER_CAP};
use crate::{BackoffConfig, Jitter};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn strategy() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::Proportional),
        Just(Jitter::Full),
        Just(Jitter::Decorrelated)
    ]
}

fn policy() -> impl Strategy<Value = BackoffConfig> {
    (
        (
            1u64..10_000,
            0u64..120_000,
            1.0f64..4.0,
            prop_oneof![Just(0.0), 0.0f64..0.99],
        ),
        (
            proptest::option::of(0u32..20),
            1u64..30_000,
            strategy(),
            prop_oneof![Just(0), 0u64..600_000],
        ),
    )
        .prop_map(
            |((initial, extra, factor, jitter), (max_retries, uptime, strategy, spread))| {
                BackoffConfig {
                    initial: ms(initial),
                    max: ms(initial + extra),
                    factor,
                    jitter,
                    strategy,
                    first_spread: ms(spread),
                    min_uptime: ms(uptime),
                    max_retries,
                }
            },
        )
}

/// `min(first × factor^k, max)` in seconds, as the policy documents it (`first`: `initial`,
/// or `first_spread` within `[initial, max]` after a lost link that lasted).
fn base(c: &BackoffConfig, first: Duration, k: u32) -> f64 {
    let b = first.as_secs_f64() * c.factor.powi(k as i32);
    if b.is_finite() {
        b.min(c.max.as_secs_f64())
    } else {
        c.max.as_secs_f64()
    }
}

/// Float-to-Duration rounding: a nanosecond either way.
const EPS: f64 = 2e-9;

/// Checks failure delay `d` (the `k`-th since the last reset; `prev` the one before it, zero
/// after a reset; `first` the sequence's first delay) against the policy's strategy, as
/// `Jitter` documents it.
fn check_delay(
    c: &BackoffConfig,
    first: Duration,
    k: u32,
    prev: Duration,
    d: Duration,
) -> Result<(), TestCaseError> {
    let s = d.as_secs_f64();
    let (lo, hi) = match c.strategy {
        Jitter::Proportional => {
            prop_assert!(d >= prev, "shrank: {:?} after {:?}", d, prev);
            (base(c, first, k) * (1.0 - c.jitter), base(c, first, k))
        }
        Jitter::Full => (0.0, base(c, first, k)),
        Jitter::Decorrelated => {
            let previous = prev.max(first).as_secs_f64();
            (
                first.as_secs_f64(),
                (3.0 * previous).min(c.max.as_secs_f64()),
            )
        }
    };
    prop_assert!(
        s >= lo - EPS && s <= hi + EPS,
        "{:?} delay {}: {:?} outside [{}, {}] (previous {:?})",
        c.strategy,
        k,
        d,
        lo,
        hi,
        prev
    );
    prop_assert!(d <= c.max);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn delays_keep_their_strategy_range_and_floor_and_give_up_after_exactly_the_retries(
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
                    check_delay(&c, c.initial, attempts - 1, last, d)?;
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
    fn the_delay_resets_only_after_min_uptime_with_the_first_attempt_spread(
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
        let next = |b: &mut Backoff| match b.on_attempt_failed(None) {
            Decision::RetryAfter(d) => d,
            Decision::GiveUp => unreachable!(),
        };
        if up >= c.min_uptime {
            // Spread over the window, then the sequence starts again at `k = 0` from the
            // window (within `[initial, max]`) instead of `initial`.
            prop_assert!(d <= c.first_spread, "spread {:?} > {:?}", d, c.first_spread);
            let first = c.first_spread.clamp(c.initial, c.max);
            let d0 = next(&mut b);
            check_delay(&c, first, 0, Duration::ZERO, d0)?;
            let d1 = next(&mut b);
            check_delay(&c, first, 1, d0, d1)?;
            // A short link after that goes on from the window too.
            b.on_attempt();
            b.on_connected(t0);
            let Decision::RetryAfter(d2) = b.on_link_lost(t0 + c.min_uptime / 2) else {
                unreachable!()
            };
            check_delay(&c, first, 2, d1, d2)?;
        } else {
            // Up too briefly: one more failure, the sequence goes on with its floor.
            check_delay(&c, c.initial, failures_before, last, d)?;
            check_delay(&c, c.initial, failures_before + 1, d, next(&mut b))?;
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

    #[test]
    fn a_seed_repeats_its_whole_sequence(
        c in policy(),
        seed in any::<u64>(),
        steps in proptest::collection::vec((0u8..3, 0u64..40_000, proptest::option::of(0u64..5_000)), 1..40),
    ) {
        // Any mix of failures (with or without Retry-After) and links of any length: two
        // clients with one seed decide alike, step by step.
        let t0 = Instant::now();
        let mut a = Backoff::new(c.clone(), SplitMix64::new(seed));
        let mut b = Backoff::new(c.clone(), SplitMix64::new(seed));
        let mut now = t0;
        for (kind, up_ms, ask) in steps {
            for x in [&mut a, &mut b] {
                x.on_attempt();
            }
            let (da, db) = if kind == 0 {
                for x in [&mut a, &mut b] {
                    x.on_connected(now);
                }
                now += ms(up_ms);
                (a.on_link_lost(now), b.on_link_lost(now))
            } else {
                let ask = ask.map(ms);
                (a.on_attempt_failed(ask), b.on_attempt_failed(ask))
            };
            prop_assert_eq!(da, db);
            prop_assert_eq!(a.attempts_in_streak(), b.attempts_in_streak());
        }
    }
}
