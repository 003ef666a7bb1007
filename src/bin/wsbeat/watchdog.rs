//! When to send `WATCHDOG=1`: at half the interval systemd gave, and only while the loop is
//! making progress. The ping is one more deadline of the I/O loop (no thread, no tick): the
//! loop's wait ends at [`Watchdog::deadline`] like at any of the client's deadlines.
//!
//! Progress means three things, all read from what the loop already has:
//! - the loop meets its deadlines: a wait did not end much later than it was asked to, and
//!   the ping itself is not overdue (a process that was stopped, or stuck in a blocking call,
//!   finds itself late when it comes back, and pings only once it has run on time again);
//! - the client acts on its deadlines: after a full drain, nothing the client has due stays
//!   due (a loop spinning without the session handling its timeouts fails this);
//! - no write stalls past `write_timeout` without the session acting (it declares the link
//!   dead at that bound; a stall with no bytes moving beyond it means it did not).
//!
//! A network outage of any length is progress: retrying on schedule meets every deadline.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// The watchdog's state in the loop.
pub struct Watchdog {
    /// Half the interval systemd gave: the time between pings.
    period: Duration,
    /// How late a wake may be and still count as on time; also how soon a withheld ping is
    /// looked at again.
    slack: Duration,
    write_timeout: Duration,
    next: Instant,
    /// The last wait ended late (or the ping deadline was missed): withhold the ping until a
    /// wait has been on time again.
    late: bool,
    /// Since when the client has had something due that a full drain did not do.
    due_since: Option<Instant>,
    /// Since when the link has had output the socket would not take, with `bytes_out` then.
    stalled_since: Option<(Instant, u64)>,
}

/// What [`Watchdog::check`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not due yet.
    NotDue,
    /// Send `WATCHDOG=1`.
    Ping,
    /// Due, but the loop is not making progress: no ping (the reason is for the log).
    Withheld(&'static str),
}

impl Watchdog {
    /// A watchdog for systemd's `interval` (`WATCHDOG_USEC`); the first ping is due half an
    /// interval from `now`.
    pub fn new(interval: Duration, write_timeout: Duration, now: Instant) -> Watchdog {
        let period = interval / 2;
        Watchdog {
            period,
            slack: period / 4,
            write_timeout,
            next: now + period,
            late: false,
            due_since: None,
            stalled_since: None,
        }
    }

    /// When the loop must wake for the watchdog next.
    pub fn deadline(&self) -> Instant {
        self.next
    }

    /// The loop asked to wait until `asked` and got control back at `woke`.
    pub fn waited(&mut self, asked: Instant, woke: Instant) {
        self.late = woke > asked + self.slack;
    }

    /// What the loop sees after a full drain of the client at `now`: whether the client still
    /// has something due (`next_wakeup() <= now` with nothing more to drain), whether its link
    /// waits for the socket to take output, and the bytes it has written so far.
    pub fn observe(&mut self, now: Instant, due: bool, stalled: bool, bytes_out: u64) {
        self.due_since = match (due, self.due_since) {
            (true, since) => since.or(Some(now)),
            (false, _) => None,
        };
        self.stalled_since = match (stalled, self.stalled_since) {
            // Bytes moving mean the session's own stall clock restarted too.
            (true, Some((since, out))) if out == bytes_out => Some((since, out)),
            (true, _) => Some((now, bytes_out)),
            (false, _) => None,
        };
    }

    /// Decides at `now` whether to ping, and schedules the next look.
    pub fn check(&mut self, now: Instant) -> Verdict {
        if now < self.next {
            return Verdict::NotDue;
        }
        let overdue = now > self.next + self.slack;
        let reason = if self.late || overdue {
            // Looked at again soon: a loop that runs on time from here on pings then.
            self.late = overdue;
            Some("the loop woke late")
        } else if self
            .due_since
            .is_some_and(|t| now.saturating_duration_since(t) > self.slack)
        {
            Some("the client has a deadline it does not act on")
        } else if self.stalled_since.is_some_and(|(t, _)| {
            now.saturating_duration_since(t) > self.write_timeout + self.slack
        }) {
            Some("a write is stalled past write_timeout")
        } else {
            None
        };
        match reason {
            None => {
                self.next = now + self.period;
                Verdict::Ping
            }
            Some(why) => {
                self.next = now + self.slack;
                Verdict::Withheld(why)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn pings_every_half_interval_while_on_time() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(4 * S, S, t0);
        assert_eq!(w.deadline(), t0 + 2 * S);
        assert_eq!(w.check(t0 + S), Verdict::NotDue);
        w.waited(t0 + 2 * S, t0 + 2 * S);
        assert_eq!(w.check(t0 + 2 * S), Verdict::Ping);
        assert_eq!(w.deadline(), t0 + 4 * S);
    }

    #[test]
    fn a_late_wake_withholds_one_ping_until_the_loop_runs_on_time() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(4 * S, S, t0);
        // Stopped (SIGSTOP) from 1 s to 10 s: the wait for 2 s ends at 10 s.
        w.waited(t0 + 2 * S, t0 + 10 * S);
        assert!(matches!(w.check(t0 + 10 * S), Verdict::Withheld(_)));
        let again = w.deadline();
        assert_eq!(again, t0 + 10 * S + S / 2);
        w.waited(again, again);
        assert_eq!(w.check(again), Verdict::Ping);
    }

    #[test]
    fn a_deadline_left_due_or_a_write_stalled_too_long_withholds_pings() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(4 * S, S, t0);
        w.observe(t0, true, false, 0);
        w.waited(t0 + 2 * S, t0 + 2 * S);
        assert!(matches!(w.check(t0 + 2 * S), Verdict::Withheld(_)));
        w.observe(t0 + 2 * S, false, true, 10);
        let at = w.deadline();
        assert_eq!(
            w.check(at),
            Verdict::Ping,
            "stalled for less than write_timeout"
        );
        // Bytes moving restart the stall; none moving past write_timeout + slack withholds.
        w.observe(t0 + 3 * S, false, true, 20);
        w.observe(t0 + 5 * S, false, true, 20);
        assert_eq!(w.deadline(), t0 + 4 * S + S / 2);
        assert!(matches!(w.check(t0 + 5 * S), Verdict::Withheld(_)));
    }
}
