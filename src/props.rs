//! Property tests of the pure state machines (proptest, a dev-only dependency): the
//! heartbeat's verdict comes exactly at the documented bound and never before, whatever the
//! inbound bytes and clock steps; backoff delays stay in range, never shrink while failures
//! continue, and give up after exactly the configured retries.
#![forbid(unsafe_code)]

/// The heartbeat: for any timings and any sequence of inbound bytes (fresh or stale) and clock
/// steps, the machine matches a two-line model: the last inbound instant, and the pings sent
/// since.
mod heartbeat {
    use crate::heartbeat::{Heartbeat, HeartbeatAction};
    use crate::HeartbeatConfig;
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    #[derive(Clone, Debug)]
    enum Step {
        /// The clock moves on this many microseconds; then the driver polls.
        Poll(u64),
        /// The clock moves on; a byte arrives now; then the driver polls.
        Inbound(u64),
        /// A byte stamped this many microseconds ago (a late reading); then the driver polls.
        StaleInbound(u64),
        /// The driver sleeps to `next_deadline()` (polling 1 ns before it), then polls.
        ToDeadline,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u64..400_000).prop_map(Step::Poll),
            2 => (0u64..400_000).prop_map(Step::Inbound),
            1 => (0u64..100_000).prop_map(Step::StaleInbound),
            4 => Just(Step::ToDeadline),
        ]
    }

    fn config() -> impl Strategy<Value = HeartbeatConfig> {
        (1u64..200_000, 1u64..100_000, 1u32..6).prop_map(|(interval, timeout, max)| {
            HeartbeatConfig {
                ping_interval: Duration::from_micros(interval),
                pong_timeout: Duration::from_micros(timeout),
                max_missed_pongs: max,
                app_heartbeat: None,
            }
        })
    }

    /// Pings due after `silent` without inbound bytes: one at `ping_interval`, then one per
    /// `pong_timeout`.
    fn due(cfg: &HeartbeatConfig, silent: Duration) -> u32 {
        if silent < cfg.ping_interval {
            return 0;
        }
        let after = (silent - cfg.ping_interval).as_nanos() / cfg.pong_timeout.as_nanos();
        1 + after as u32
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 2000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn verdict_at_last_inbound_plus_bound_never_before_and_one_action_per_deadline(
            cfg in config(),
            steps in proptest::collection::vec(step(), 1..80),
        ) {
            let t0 = Instant::now();
            let bound = cfg.detection_bound();
            let mut hb = Heartbeat::new(&cfg, t0);
            let (mut now, mut last, mut sent, mut next_seq) = (t0, t0, 0u32, 0u64);
            for step in steps {
                match step {
                    Step::Poll(us) => now += Duration::from_micros(us),
                    Step::Inbound(us) => {
                        now += Duration::from_micros(us);
                        hb.on_inbound(now);
                        if now > last {
                            (last, sent) = (now, 0);
                        }
                    }
                    Step::StaleInbound(us) => {
                        let at = now.checked_sub(Duration::from_micros(us)).unwrap_or(t0).max(t0);
                        hb.on_inbound(at);
                        if at > last {
                            (last, sent) = (at, 0);
                        }
                    }
                    Step::ToDeadline => {
                        let deadline = hb.next_deadline();
                        if deadline > now + Duration::from_nanos(1) {
                            let just_before = deadline - Duration::from_nanos(1);
                            prop_assert_eq!(hb.poll(just_before), HeartbeatAction::Wait);
                        }
                        now = now.max(deadline);
                    }
                }
                prop_assert_eq!(hb.last_inbound(), last);
                // The deadline the driver sleeps to is the model's: the next ping, or the
                // verdict; never past the verdict.
                let deadline = hb.next_deadline();
                let expected = if sent == 0 {
                    last + cfg.ping_interval
                } else {
                    last + cfg.ping_interval + cfg.pong_timeout * sent
                };
                prop_assert_eq!(deadline, expected);
                prop_assert!(deadline <= last + bound);
                let silent = now - last;
                let action = hb.poll(now);
                // Something happens exactly when the deadline has come.
                prop_assert_eq!(action == HeartbeatAction::Wait, now < deadline, "{:?}", action);
                match action {
                    HeartbeatAction::Dead { missed, silent_for } => {
                        prop_assert!(silent >= bound, "dead after {:?}, bound {:?}", silent, bound);
                        prop_assert_eq!((missed, silent_for), (cfg.max_missed_pongs, silent));
                        break; // the driver drops the link
                    }
                    HeartbeatAction::SendPing { seq, missed } => {
                        prop_assert!(silent < bound, "a ping instead of the verdict at {:?}", silent);
                        let due = due(&cfg, silent);
                        prop_assert!(due > sent);
                        prop_assert_eq!((seq, missed), (next_seq, due - 1));
                        next_seq += 1;
                        sent = due;
                    }
                    HeartbeatAction::Wait => {
                        prop_assert!(silent < bound);
                        prop_assert!(due(&cfg, silent) <= sent);
                    }
                }
            }
        }

        #[test]
        fn a_silent_peer_gets_max_pings_then_the_verdict_exactly_at_the_bound(cfg in config()) {
            let t0 = Instant::now();
            let mut hb = Heartbeat::new(&cfg, t0);
            for k in 0..cfg.max_missed_pongs {
                let at = hb.next_deadline();
                prop_assert_eq!(at, t0 + cfg.ping_interval + cfg.pong_timeout * k);
                prop_assert_eq!(
                    hb.poll(at),
                    HeartbeatAction::SendPing { seq: u64::from(k), missed: k }
                );
            }
            let at = hb.next_deadline();
            prop_assert_eq!(at, t0 + cfg.detection_bound());
            prop_assert_eq!(hb.poll(at - Duration::from_nanos(1)), HeartbeatAction::Wait);
            prop_assert_eq!(
                hb.poll(at),
                HeartbeatAction::Dead { missed: cfg.max_missed_pongs, silent_for: cfg.detection_bound() }
            );
        }
    }
}

/// The backoff: any policy, any seed.
mod backoff {
    use crate::backoff::{Backoff, Decision, SplitMix64, RETRY_AFTER_CAP};
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
            .prop_map(|(initial, extra, factor, jitter, max_retries, uptime)| {
                BackoffConfig {
                    initial: ms(initial),
                    max: ms(initial + extra),
                    factor,
                    jitter,
                    min_uptime: ms(uptime),
                    max_retries,
                }
            })
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
}
