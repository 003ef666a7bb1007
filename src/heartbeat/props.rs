//! Property tests of the heartbeat (proptest, a dev-only dependency): for any timings and any
//! sequence of inbound bytes (fresh or stale) and clock steps, the machine matches a two-line
//! model: the last inbound instant, and the pings sent since. The verdict comes exactly at the
//! documented bound and never before.
#![forbid(unsafe_code)]

use super::{Heartbeat, HeartbeatAction};
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
    (1u64..200_000, 1u64..100_000, 1u32..6).prop_map(|(interval, timeout, max)| HeartbeatConfig {
        ping_interval: Duration::from_micros(interval),
        pong_timeout: Duration::from_micros(timeout),
        max_missed_pongs: max,
        app_heartbeat: None,
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
