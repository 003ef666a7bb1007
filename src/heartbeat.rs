//! Dead-link detection as a pure state machine: time is an input, never read here.
//!
//! Liveness is any inbound byte. Counting from the last one:
//! - at `ping_interval` the first ping goes out;
//! - every `pong_timeout` of further silence, that ping counts as missed and the next follows;
//! - at `ping_interval + max_missed_pongs × pong_timeout` the link is dead.
//!
//! All deadlines are derived from the last inbound instant, not from when the driver happened
//! to wake, so a late wake-up never pushes the verdict later than the documented bound.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use crate::HeartbeatConfig;

/// Pings remembered for RTT samples and delivery proofs; older pongs still count as liveness.
const RECENT_PINGS: usize = 8;

/// What the driver should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeartbeatAction {
    /// Nothing before [`Heartbeat::next_deadline`].
    Wait,
    /// Send ping `seq`; `missed` pings in a row have gone unanswered before it.
    SendPing { seq: u64, missed: u32 },
    /// The link is dead: `missed` pings unanswered, nothing received for `silent_for`.
    Dead { missed: u32, silent_for: Duration },
}

#[derive(Clone, Copy, Debug)]
struct SentPing {
    seq: u64,
    sent_at: Instant,
    /// Data messages handed over before this ping: a pong proves the server read them.
    data_before: u64,
}

/// Heartbeat state of one link. Create a new one for every link, so no state leaks across.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    ping_interval: Duration,
    pong_timeout: Duration,
    max_missed: u32,
    last_inbound: Instant,
    pings_since_inbound: u32,
    next_seq: u64,
    recent: [Option<SentPing>; RECENT_PINGS],
    /// When the last ping of any kind left (or the link opened).
    last_ping: Instant,
}

impl Heartbeat {
    /// A fresh heartbeat for a link that just opened at `now` (the handshake reply is the first
    /// inbound byte).
    pub fn new(config: &HeartbeatConfig, now: Instant) -> Heartbeat {
        Heartbeat {
            ping_interval: config.ping_interval,
            pong_timeout: config.pong_timeout,
            max_missed: config.max_missed_pongs,
            last_inbound: now,
            pings_since_inbound: 0,
            next_seq: 0,
            recent: [None; RECENT_PINGS],
            last_ping: now,
        }
    }

    /// Bytes arrived at `at`: the peer is alive; the missed count resets.
    pub fn on_inbound(&mut self, at: Instant) {
        if at > self.last_inbound {
            self.last_inbound = at;
            self.pings_since_inbound = 0;
        }
    }

    /// The instant of the last inbound byte.
    pub fn last_inbound(&self) -> Instant {
        self.last_inbound
    }

    /// Decides what to do at `now`. Call after every wake, once buffered input has been read.
    pub fn poll(&mut self, now: Instant) -> HeartbeatAction {
        let silent = now.saturating_duration_since(self.last_inbound);
        if silent >= self.bound() {
            return HeartbeatAction::Dead {
                missed: self.max_missed,
                silent_for: silent,
            };
        }
        let due = self.pings_due(silent);
        if self.pings_since_inbound >= due {
            return HeartbeatAction::Wait;
        }
        self.pings_since_inbound = due;
        let seq = self.next_seq;
        self.next_seq += 1;
        HeartbeatAction::SendPing {
            seq,
            missed: due - 1,
        }
    }

    /// A delivery-proof ping, for when sent messages are unconfirmed while the peer keeps
    /// talking (so the liveness pings never go out): due a ping interval after the last ping of
    /// any kind. Does not touch liveness. Returns the ping's sequence number when due.
    pub fn poll_probe(&mut self, now: Instant) -> Option<u64> {
        if now < self.last_ping + self.ping_interval {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Some(seq)
    }

    /// The sequence number for a probe sent now, whatever the time (see the session's
    /// proof-on-demand when messages kept for proof fill the outbox).
    pub fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Records that ping `seq` left at `now` behind `data_before` data messages.
    pub fn ping_sent(&mut self, seq: u64, now: Instant, data_before: u64) {
        self.last_ping = now;
        self.recent[(seq % RECENT_PINGS as u64) as usize] = Some(SentPing {
            seq,
            sent_at: now,
            data_before,
        });
    }

    /// A pong with payload `seq` arrived at `now`: its RTT, and how many data messages it proves
    /// delivered, when the ping is still remembered.
    pub fn on_pong(&mut self, seq: u64, now: Instant) -> Option<(Duration, u64)> {
        let slot = &mut self.recent[(seq % RECENT_PINGS as u64) as usize];
        match *slot {
            Some(p) if p.seq == seq => {
                *slot = None;
                Some((now.saturating_duration_since(p.sent_at), p.data_before))
            }
            _ => None,
        }
    }

    /// The newest ping still waiting for its reply (application heartbeats carry no sequence
    /// number, so their reply answers this one).
    pub fn newest_unanswered(&self) -> Option<u64> {
        self.recent.iter().flatten().map(|p| p.seq).max()
    }

    /// Whether [`poll`](Self::poll) at `now` would judge silence (count a missed pong or
    /// declare the link dead), rather than do nothing or only send the first ping of a quiet
    /// spell.
    pub fn judges_silence_at(&self, now: Instant) -> bool {
        let silent = now.saturating_duration_since(self.last_inbound);
        if silent >= self.bound() {
            return true;
        }
        let due = self.pings_due(silent);
        due > self.pings_since_inbound && due >= 2
    }

    /// When [`poll`](Self::poll) next has something to do.
    pub fn next_deadline(&self) -> Instant {
        let offset = if self.pings_since_inbound == 0 {
            self.ping_interval
        } else {
            self.ping_interval
                .saturating_add(self.pong_timeout.saturating_mul(self.pings_since_inbound))
        };
        self.last_inbound + offset
    }

    fn bound(&self) -> Duration {
        self.ping_interval
            .saturating_add(self.pong_timeout.saturating_mul(self.max_missed))
    }

    /// Pings that should have been sent after `silent` without inbound bytes.
    fn pings_due(&self, silent: Duration) -> u32 {
        if silent < self.ping_interval {
            return 0;
        }
        let after_first =
            (silent - self.ping_interval).as_nanos() / self.pong_timeout.as_nanos().max(1);
        (1 + after_first.min(u128::from(u32::MAX))) as u32
    }
}

// Property tests (the verdict against a model, for any timings, inbound bytes and clock
// steps) in `heartbeat/props.rs`: proptest runs thousands of cases there; the examples below
// pin single behaviours.
#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn config(interval_ms: u64, timeout_ms: u64, max: u32) -> HeartbeatConfig {
        HeartbeatConfig {
            ping_interval: Duration::from_millis(interval_ms),
            pong_timeout: Duration::from_millis(timeout_ms),
            max_missed_pongs: max,
            app_heartbeat: None,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Steps a fake clock to every deadline, never answering, and returns the actions seen.
    fn run_silent(hb: &mut Heartbeat, t0: Instant) -> Vec<(u64, HeartbeatAction)> {
        let mut seen = Vec::new();
        for _ in 0..20 {
            let at = hb.next_deadline();
            let action = hb.poll(at);
            seen.push(((at - t0).as_millis() as u64, action));
            if let HeartbeatAction::Dead { .. } = action {
                break;
            }
        }
        seen
    }

    #[test]
    fn nothing_happens_before_the_ping_interval() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(&config(1000, 300, 3), t0);
        assert_eq!(hb.poll(t0 + ms(999)), HeartbeatAction::Wait);
        assert_eq!(hb.next_deadline(), t0 + ms(1000));
    }

    #[test]
    fn only_missed_pongs_and_death_judge_silence() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(&config(1000, 300, 3), t0);
        // The first ping of a quiet spell is no verdict; its own deadline is none either.
        assert!(!hb.judges_silence_at(t0 + ms(999)));
        assert!(!hb.judges_silence_at(t0 + ms(1000)));
        assert_eq!(
            hb.poll(t0 + ms(1000)),
            HeartbeatAction::SendPing { seq: 0, missed: 0 }
        );
        assert!(!hb.judges_silence_at(t0 + ms(1299)));
        assert!(hb.judges_silence_at(t0 + ms(1300)));
        // A loop that paused past a missed pong, or past the bound, before its first ping.
        let paused = Heartbeat::new(&config(1000, 300, 3), t0);
        assert!(paused.judges_silence_at(t0 + ms(1300)));
        assert!(paused.judges_silence_at(t0 + ms(5000)));
        // Nothing due, or the ping for this step already sent: no verdict.
        let mut answered = Heartbeat::new(&config(1000, 300, 3), t0);
        answered.on_inbound(t0 + ms(500));
        assert!(!answered.judges_silence_at(t0 + ms(1499)));
    }

    #[test]
    fn third_missed_pong_declares_dead_exactly_at_the_bound() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(&config(1000, 300, 3), t0);
        let seen = run_silent(&mut hb, t0);
        assert_eq!(
            seen,
            vec![
                (1000, HeartbeatAction::SendPing { seq: 0, missed: 0 }),
                (1300, HeartbeatAction::SendPing { seq: 1, missed: 1 }),
                (1600, HeartbeatAction::SendPing { seq: 2, missed: 2 }),
                (
                    1900,
                    HeartbeatAction::Dead {
                        missed: 3,
                        silent_for: ms(1900)
                    }
                ),
            ]
        );
    }

    #[test]
    fn never_dead_one_nanosecond_before_the_bound() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(&config(1000, 300, 3), t0);
        for step in (0..1900).step_by(7) {
            let action = hb.poll(t0 + ms(step));
            assert!(
                !matches!(action, HeartbeatAction::Dead { .. }),
                "dead at {step} ms"
            );
        }
        let just_before = t0 + ms(1900) - Duration::from_nanos(1);
        assert!(!matches!(
            hb.poll(just_before),
            HeartbeatAction::Dead { .. }
        ));
        assert!(matches!(
            hb.poll(t0 + ms(1900)),
            HeartbeatAction::Dead { .. }
        ));
    }

    #[test]
    fn any_inbound_byte_resets_the_missed_count() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(&config(1000, 300, 3), t0);
        assert!(matches!(
            hb.poll(t0 + ms(1000)),
            HeartbeatAction::SendPing { missed: 0, .. }
        ));
        assert!(matches!(
            hb.poll(t0 + ms(1300)),
            HeartbeatAction::SendPing { missed: 1, .. }
        ));
        hb.on_inbound(t0 + ms(1400));
        assert_eq!(hb.next_deadline(), t0 + ms(2400));
        assert_eq!(hb.poll(t0 + ms(2399)), HeartbeatAction::Wait);
        assert!(matches!(
            hb.poll(t0 + ms(2400)),
            HeartbeatAction::SendPing { missed: 0, .. }
        ));
        // Dead only at 1400 + 1900.
        assert!(!matches!(
            hb.poll(t0 + ms(3299)),
            HeartbeatAction::Dead { .. }
        ));
        assert!(matches!(
            hb.poll(t0 + ms(3300)),
            HeartbeatAction::Dead { .. }
        ));
    }

    #[test]
    fn a_late_wake_sends_one_ping_and_reports_the_pings_it_missed() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(&config(1000, 300, 3), t0);
        assert_eq!(
            hb.poll(t0 + ms(1650)),
            HeartbeatAction::SendPing { seq: 0, missed: 2 }
        );
        assert_eq!(hb.next_deadline(), t0 + ms(1900));
        assert_eq!(hb.poll(t0 + ms(1700)), HeartbeatAction::Wait);
    }

    #[test]
    fn a_very_late_wake_judges_dead_at_once() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(&config(1000, 300, 3), t0);
        assert!(matches!(
            hb.poll(t0 + ms(60_000)),
            HeartbeatAction::Dead { missed: 3, .. }
        ));
    }

    #[test]
    fn pong_gives_rtt_and_the_delivery_proof() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(&config(1000, 300, 3), t0);
        let HeartbeatAction::SendPing { seq, .. } = hb.poll(t0 + ms(1000)) else {
            panic!()
        };
        hb.ping_sent(seq, t0 + ms(1000), 42);
        assert_eq!(hb.newest_unanswered(), Some(seq));
        assert_eq!(hb.on_pong(seq, t0 + ms(1023)), Some((ms(23), 42)));
        assert_eq!(
            hb.on_pong(seq, t0 + ms(1030)),
            None,
            "a duplicate pong gives no second sample"
        );
        assert_eq!(
            hb.on_pong(999, t0 + ms(1030)),
            None,
            "unknown payloads give no sample"
        );
    }

    #[test]
    fn old_pings_fall_out_of_the_rtt_table() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(&config(10, 10, 1000), t0);
        for seq in 0..20 {
            hb.ping_sent(seq, t0, 0);
        }
        assert_eq!(hb.on_pong(3, t0), None);
        assert!(hb.on_pong(19, t0).is_some());
    }

    #[test]
    fn a_new_link_starts_clean() {
        // Stale state from a previous link must not carry over: a fresh Heartbeat created at
        // reconnect time waits a full interval whatever the old one had seen.
        let t0 = Instant::now();
        let mut old = Heartbeat::new(&config(1000, 300, 3), t0);
        let _ = old.poll(t0 + ms(1600));
        let t1 = t0 + ms(5000);
        let mut fresh = Heartbeat::new(&config(1000, 300, 3), t1);
        assert_eq!(fresh.poll(t1 + ms(999)), HeartbeatAction::Wait);
        assert_eq!(fresh.next_deadline(), t1 + ms(1000));
    }

    #[test]
    fn delivery_probes_come_at_most_once_per_interval_and_leave_liveness_alone() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(&config(1000, 300, 3), t0);
        assert_eq!(hb.poll_probe(t0 + ms(999)), None);
        let seq = hb.poll_probe(t0 + ms(1000)).expect("due");
        hb.ping_sent(seq, t0 + ms(1000), 5);
        assert_eq!(hb.poll_probe(t0 + ms(1999)), None);
        // Inbound traffic keeps liveness; probes do not count as missed pings.
        hb.on_inbound(t0 + ms(1500));
        assert_eq!(hb.poll(t0 + ms(2000)), HeartbeatAction::Wait);
        assert_eq!(hb.on_pong(seq, t0 + ms(1001)), Some((ms(1), 5)));
        let next = hb.poll_probe(t0 + ms(2000)).expect("due again");
        assert_eq!(next, seq + 1);
    }

    #[test]
    fn inbound_from_the_past_is_ignored() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(&config(1000, 300, 3), t0 + ms(10));
        hb.on_inbound(t0);
        assert_eq!(hb.last_inbound(), t0 + ms(10));
    }
}
