//! The backoff machine on a fake clock: sequences, caps, jitter ranges, spreads, give-up.
use super::*;

/// A policy with `Jitter::Proportional` (the pinned behaviour of the tests written before
/// the other strategies existed) and no spread, so a reset starts again at once.
fn config(max_retries: Option<u32>, jitter: f64) -> BackoffConfig {
    BackoffConfig {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(1000),
        factor: 2.0,
        jitter,
        strategy: Jitter::Proportional,
        first_spread: Duration::ZERO,
        min_uptime: Duration::from_secs(10),
        max_retries,
    }
}

fn with(strategy: Jitter) -> BackoffConfig {
    BackoffConfig {
        strategy,
        ..config(None, 0.2)
    }
}

/// The next `n` delays after failed attempts, in `unit`s (milliseconds, microseconds).
fn delays_in(b: &mut Backoff, n: usize, unit: fn(Duration) -> u128) -> Vec<u128> {
    (0..n)
        .map(|_| {
            b.on_attempt();
            match b.on_attempt_failed(None) {
                Decision::RetryAfter(d) => unit(d),
                Decision::GiveUp => panic!("gave up"),
            }
        })
        .collect()
}

fn delays(b: &mut Backoff, n: usize) -> Vec<u128> {
    delays_in(b, n, |d| d.as_millis())
}

fn micros(b: &mut Backoff, n: usize) -> Vec<u128> {
    delays_in(b, n, |d| d.as_micros())
}

/// Connects at `t0` and loses the link `up` later; returns the delay before the next attempt.
fn lose_after(b: &mut Backoff, t0: Instant, up: Duration) -> Duration {
    b.on_attempt();
    b.on_connected(t0);
    match b.on_link_lost(t0 + up) {
        Decision::RetryAfter(d) => d,
        Decision::GiveUp => panic!("gave up"),
    }
}

const ENVELOPE_MS: [u128; 8] = [100, 200, 400, 800, 1000, 1000, 1000, 1000];

/// Attempts that fail one after another until the backoff gives up; returns how many.
fn attempts_until_give_up(b: &mut Backoff) -> u32 {
    let mut attempts = 0;
    loop {
        b.on_attempt();
        attempts += 1;
        if b.on_attempt_failed(None) == Decision::GiveUp {
            return attempts;
        }
    }
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
fn full_jitter_stays_under_the_envelope_and_reaches_down_to_zero() {
    let mut lowest = [u128::MAX; 8];
    let mut highest = [0u128; 8];
    for seed in 0..500 {
        let mut b = Backoff::new(with(Jitter::Full), SplitMix64::new(seed));
        for (i, got) in micros(&mut b, 8).into_iter().enumerate() {
            assert!(
                got <= ENVELOPE_MS[i] * 1000,
                "seed {seed} step {i}: {got} us"
            );
            lowest[i] = lowest[i].min(got);
            highest[i] = highest[i].max(got);
        }
    }
    // The whole of [0, d_k] is used: no floor, and the cap is reached.
    for i in 0..8 {
        let d = ENVELOPE_MS[i] * 1000;
        assert!(lowest[i] < d / 50, "step {i}: lowest {} us", lowest[i]);
        assert!(
            highest[i] > d * 49 / 50,
            "step {i}: highest {} us",
            highest[i]
        );
    }
}

#[test]
fn full_jitter_delays_may_shrink_while_failures_continue() {
    // Documented: the floor is Proportional's; full jitter draws each delay afresh.
    let shrank = (0..50).any(|seed| {
        let mut b = Backoff::new(with(Jitter::Full), SplitMix64::new(seed));
        let d = micros(&mut b, 10);
        d.windows(2).any(|w| w[1] < w[0])
    });
    assert!(shrank);
}

#[test]
fn decorrelated_stays_between_initial_and_three_times_the_previous_capped_at_max() {
    let mut reached_max = false;
    let mut shrank = false;
    for seed in 0..500 {
        let mut b = Backoff::new(with(Jitter::Decorrelated), SplitMix64::new(seed));
        let mut prev = 100_000u128; // `initial`, in µs
        for (i, got) in micros(&mut b, 12).into_iter().enumerate() {
            let hi = (3 * prev).min(1_000_000);
            assert!(
                (100_000..=hi).contains(&got),
                "seed {seed} step {i}: {got} us outside [100000, {hi}]"
            );
            reached_max |= got == 1_000_000;
            shrank |= got < prev && i > 0;
            prev = got;
        }
    }
    assert!(reached_max, "never capped at max");
    assert!(shrank, "never shrank: documented as not monotonic");
}

#[test]
fn decorrelated_ignores_factor() {
    let a = micros(
        &mut Backoff::new(with(Jitter::Decorrelated), SplitMix64::new(9)),
        8,
    );
    let c = BackoffConfig {
        factor: 3.5,
        ..with(Jitter::Decorrelated)
    };
    let b = micros(&mut Backoff::new(c, SplitMix64::new(9)), 8);
    assert_eq!(a, b);
}

#[test]
fn every_strategy_repeats_per_seed_and_differs_between_seeds() {
    for strategy in [Jitter::Proportional, Jitter::Full, Jitter::Decorrelated] {
        let c = BackoffConfig {
            first_spread: Duration::from_secs(5),
            ..with(strategy)
        };
        let run = |seed| {
            let t0 = Instant::now();
            let mut b = Backoff::new(c.clone(), SplitMix64::new(seed));
            let mut out = micros(&mut b, 6);
            out.push(lose_after(&mut b, t0, Duration::from_secs(60)).as_micros());
            out.extend(micros(&mut b, 6));
            out
        };
        assert_eq!(run(7), run(7), "{strategy:?}");
        assert_ne!(run(7), run(8), "{strategy:?}");
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
fn a_lost_link_that_lasted_is_spread_uniformly_over_the_window() {
    let spread = Duration::from_secs(10);
    for strategy in [Jitter::Proportional, Jitter::Full, Jitter::Decorrelated] {
        let c = BackoffConfig {
            first_spread: spread,
            ..with(strategy)
        };
        // Ten equal bins over [0, 10 s]: each gets 10 % ± 2 % of 20,000 draws.
        let mut bins = [0u32; 10];
        for seed in 0..20_000 {
            let mut b = Backoff::new(c.clone(), SplitMix64::new(seed));
            let d = lose_after(&mut b, Instant::now(), Duration::from_secs(10));
            assert!(d <= spread, "{strategy:?}: {d:?}");
            bins[(d.as_secs_f64() as usize).min(9)] += 1;
        }
        for (i, &n) in bins.iter().enumerate() {
            assert!(
                (1600..=2400).contains(&n),
                "{strategy:?} bin {i}: {n} {bins:?}"
            );
        }
    }
}

#[test]
fn after_the_spread_failures_start_from_the_window_without_the_old_floor() {
    let t0 = Instant::now();
    let c = BackoffConfig {
        first_spread: Duration::from_millis(300),
        ..config(None, 0.0)
    };
    let mut b = Backoff::new(c, SplitMix64::new(3));
    assert_eq!(delays(&mut b, 4), vec![100, 200, 400, 800]);
    let spread = lose_after(&mut b, t0, Duration::from_secs(10));
    assert!(spread <= Duration::from_millis(300), "{spread:?}");
    // The spread is no failure delay: no floor from it, nor from the delays before; the
    // failures start from the window instead of `initial`.
    assert_eq!(delays(&mut b, 4), vec![300, 600, 1000, 1000]);
    // A short link goes on from there; a lasting one starts from the window again.
    assert_eq!(
        lose_after(&mut b, t0, Duration::from_secs(1)),
        Duration::from_millis(1000)
    );
    lose_after(&mut b, t0, Duration::from_secs(10));
    assert_eq!(delays(&mut b, 2), vec![300, 600]);
}

#[test]
fn the_window_as_first_delay_stays_within_initial_and_max() {
    let t0 = Instant::now();
    for (spread_ms, first) in [(0, 100), (50, 100), (5_000, 1000)] {
        for strategy in [Jitter::Proportional, Jitter::Decorrelated] {
            let c = BackoffConfig {
                first_spread: Duration::from_millis(spread_ms),
                jitter: 0.0,
                ..with(strategy)
            };
            let mut b = Backoff::new(c, SplitMix64::new(3));
            lose_after(&mut b, t0, Duration::from_secs(10));
            let d = delays(&mut b, 1)[0];
            // Decorrelated draws from [first, 3 × first]: at least `first`.
            assert!(
                d >= first && d <= 3 * first,
                "{strategy:?} {spread_ms}: {d}"
            );
            if strategy == Jitter::Proportional {
                assert_eq!(d, first);
            }
        }
    }
}

#[test]
fn a_device_spread_with_the_fleet_never_retries_faster_than_the_window() {
    // The property behind the fleet goal: after a lasting link, Decorrelated and (up to
    // its jitter) Proportional keep every failure delay at or above the window, so N
    // devices spread over W make at most about N / W attempts per second.
    let t0 = Instant::now();
    for seed in 0..200 {
        for strategy in [Jitter::Proportional, Jitter::Decorrelated] {
            let c = BackoffConfig {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
                first_spread: Duration::from_secs(10),
                ..with(strategy)
            };
            let floor = if strategy == Jitter::Proportional {
                8_000
            } else {
                10_000
            };
            let mut b = Backoff::new(c, SplitMix64::new(seed));
            lose_after(&mut b, t0, Duration::from_secs(10));
            let d = delays(&mut b, 10);
            assert!(d.iter().all(|&ms| ms >= floor), "{strategy:?}: {d:?}");
        }
    }
}

#[test]
fn a_short_lived_link_gets_no_spread_and_the_sequence_goes_on() {
    let t0 = Instant::now();
    let c = BackoffConfig {
        first_spread: Duration::from_secs(3600),
        ..config(None, 0.0)
    };
    let mut b = Backoff::new(c, SplitMix64::new(3));
    assert_eq!(delays(&mut b, 2), vec![100, 200]);
    let d = lose_after(&mut b, t0, Duration::from_millis(9_999));
    assert_eq!(d, Duration::from_millis(400));
    assert_eq!(delays(&mut b, 1), vec![800]);
}

#[test]
fn a_failed_attempt_is_never_spread() {
    // Dead from the start: the first delay is the strategy's, whatever the window.
    let c = BackoffConfig {
        first_spread: Duration::from_secs(3600),
        ..config(None, 0.0)
    };
    assert_eq!(
        delays(&mut Backoff::new(c, SplitMix64::new(1)), 2),
        vec![100, 200]
    );
}

#[test]
fn a_zero_spread_reconnects_at_once() {
    let mut b = Backoff::new(with(Jitter::Full), SplitMix64::new(1));
    let d = lose_after(&mut b, Instant::now(), Duration::from_secs(10));
    assert_eq!(d, Duration::ZERO);
}

#[test]
fn dead_from_start_gives_up_after_n_plus_one_attempts() {
    for strategy in [Jitter::Proportional, Jitter::Full, Jitter::Decorrelated] {
        let c = BackoffConfig {
            max_retries: Some(2),
            ..with(strategy)
        };
        let mut b = Backoff::new(c, SplitMix64::new(1));
        let attempts = attempts_until_give_up(&mut b);
        assert_eq!(attempts, 3, "{strategy:?}");
        assert_eq!(b.attempts_in_streak(), 3, "{strategy:?}");
    }
}

#[test]
fn after_a_dropped_link_gives_up_after_n_attempts() {
    for strategy in [Jitter::Proportional, Jitter::Full, Jitter::Decorrelated] {
        let t0 = Instant::now();
        let c = BackoffConfig {
            max_retries: Some(2),
            first_spread: Duration::from_secs(10),
            ..with(strategy)
        };
        let mut b = Backoff::new(c, SplitMix64::new(1));
        // Spread or not, the attempt after a lost link is the first of the N.
        for up in [Duration::from_secs(60), Duration::from_secs(1)] {
            lose_after(&mut b, t0, up);
            let attempts = attempts_until_give_up(&mut b);
            assert_eq!(attempts, 2, "{strategy:?} up {up:?}");
        }
    }
}

#[test]
fn zero_retries_gives_up_at_the_first_failure() {
    let mut b = Backoff::new(config(Some(0), 0.0), SplitMix64::new(1));
    b.on_attempt();
    assert_eq!(b.on_attempt_failed(None), Decision::GiveUp);
}

#[test]
fn zero_retries_gives_up_when_the_link_is_lost() {
    let t0 = Instant::now();
    let c = BackoffConfig {
        first_spread: Duration::from_secs(10),
        ..config(Some(0), 0.0)
    };
    let mut b = Backoff::new(c, SplitMix64::new(1));
    b.on_attempt();
    b.on_connected(t0);
    assert_eq!(
        b.on_link_lost(t0 + Duration::from_secs(60)),
        Decision::GiveUp
    );
}

#[test]
fn delay_resets_only_after_min_uptime() {
    // Changed with the spread: a reset now starts with the spread (zero here), and the
    // initial delay follows at the next failure; before, the reset's first delay was it.
    let t0 = Instant::now();
    let mut b = Backoff::new(config(None, 0.0), SplitMix64::new(1));
    assert_eq!(delays(&mut b, 3), vec![100, 200, 400]);
    // Up for 1 s (< 10 s min_uptime): the next delay keeps growing.
    assert_eq!(
        lose_after(&mut b, t0, Duration::from_secs(1)),
        Duration::from_millis(800)
    );
    // Up for 10 s: the spread (zero), then back to the initial delay.
    assert_eq!(
        lose_after(&mut b, t0, Duration::from_secs(10)),
        Duration::ZERO
    );
    assert_eq!(delays(&mut b, 1), vec![100]);
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
fn retry_after_raises_one_delay_of_every_strategy_and_leaves_the_rest() {
    for strategy in [Jitter::Proportional, Jitter::Full, Jitter::Decorrelated] {
        let mut asked = Backoff::new(with(strategy), SplitMix64::new(5));
        let mut plain = Backoff::new(with(strategy), SplitMix64::new(5));
        let d = |x: Decision| match x {
            Decision::RetryAfter(d) => d,
            Decision::GiveUp => panic!("gave up"),
        };
        for i in 0..8 {
            let ask = (i == 2).then_some(Duration::from_secs(30));
            let got = d(asked.on_attempt_failed(ask));
            let base = d(plain.on_attempt_failed(None));
            if i == 2 {
                assert_eq!(got, Duration::from_secs(30), "{strategy:?}");
            } else {
                assert_eq!(got, base, "{strategy:?} delay {i}");
            }
        }
    }
}

#[test]
fn huge_step_counts_do_not_overflow() {
    for strategy in [Jitter::Proportional, Jitter::Full] {
        let mut b = Backoff::new(with(strategy), SplitMix64::new(3));
        b.step = u32::MAX - 1;
        let d = delays(&mut b, 3);
        assert!(d.iter().all(|&ms| ms <= 1000), "{d:?}");
    }
    let mut b = Backoff::new(config(None, 0.2), SplitMix64::new(3));
    b.step = u32::MAX - 1;
    let d = delays(&mut b, 3);
    assert!(d.iter().all(|&ms| (800..=1000).contains(&ms)), "{d:?}");
}

#[test]
fn longest_policy_does_not_overflow() {
    // 30 days is the longest duration `validate` lets through.
    let month = Duration::from_secs(30 * 24 * 3600);
    for strategy in [Jitter::Proportional, Jitter::Full, Jitter::Decorrelated] {
        let c = BackoffConfig {
            initial: month,
            max: month,
            factor: 4.0,
            first_spread: month,
            ..with(strategy)
        };
        let mut b = Backoff::new(c, SplitMix64::new(3));
        assert!(micros(&mut b, 5).iter().all(|&us| us <= month.as_micros()));
        assert!(lose_after(&mut b, Instant::now(), month) <= month);
    }
}

#[test]
fn random_seeds_differ() {
    assert_ne!(SplitMix64::random_seed(), SplitMix64::random_seed());
}
