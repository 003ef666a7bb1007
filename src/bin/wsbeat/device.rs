//! What a device's service manager and its operator get from the loop: `sd_notify` messages
//! (READY, STATUS, WATCHDOG, STOPPING) and `stats` lines. Each timed part is one more
//! deadline of the I/O loop, which asks [`Device::deadline`] before it waits.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use wsbeat::{Client, Event};

use crate::events::EventSink;
use crate::notify::{self, Notifier};
use crate::watchdog::{Verdict, Watchdog};

/// The loop's device-facing duties.
pub struct Device {
    notifier: Option<Notifier>,
    watchdog: Option<Watchdog>,
    stats_every: Option<Duration>,
    next_stats: Option<Instant>,
    /// The last `STATUS=` sent, so that only changes are sent.
    status: String,
    stopping: bool,
}

impl Device {
    /// From the environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`) and
    /// `--stats-interval`; `write_timeout` is the client's, for the watchdog's stall check.
    pub fn new(stats_every: Option<Duration>, write_timeout: Duration, now: Instant) -> Device {
        let notifier = Notifier::from_env();
        // Pinging a watchdog nobody can hear would only cost wake-ups.
        let watchdog = notifier
            .as_ref()
            .and(notify::watchdog_interval())
            .map(|interval| Watchdog::new(interval, write_timeout, now));
        let stats_every = stats_every.filter(|d| !d.is_zero());
        Device {
            notifier,
            watchdog,
            stats_every,
            next_stats: stats_every.map(|d| now + d),
            status: String::new(),
            stopping: false,
        }
    }

    /// The loop runs: `READY=1`. Not after the first connect, so that a server that is down
    /// does not fail the unit's start.
    pub fn ready(&mut self, client: &Client) {
        self.send("READY=1");
        self.set_status("starting", client);
    }

    /// The earliest instant the loop must wake for these duties.
    pub fn deadline(&self) -> Option<Instant> {
        let watchdog = self.watchdog.as_ref().map(Watchdog::deadline);
        match (watchdog, self.next_stats) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The loop asked to wait until `asked` and got control back at `woke`.
    pub fn waited(&mut self, asked: Instant, woke: Instant) {
        if let Some(w) = &mut self.watchdog {
            w.waited(asked, woke);
        }
    }

    /// After a drain of `client` (`more`: it stopped early, more is waiting): pings the
    /// watchdog and writes the periodic stats line when due.
    pub fn after_drain(&mut self, client: &Client, more: bool, events: &mut EventSink) {
        let now = Instant::now();
        if let Some(w) = &mut self.watchdog {
            let due = !more && client.next_wakeup().is_some_and(|t| t <= now);
            w.observe(now, due, client.wants_write(), client.stats().bytes_out);
            match w.check(now) {
                Verdict::NotDue => {}
                Verdict::Ping => self.send("WATCHDOG=1"),
                Verdict::Withheld(why) => log::warn!("watchdog ping withheld: {why}"),
            }
        }
        if let (Some(every), Some(at)) = (self.stats_every, self.next_stats) {
            if now >= at {
                self.stats(client, events);
                // On schedule, unless the loop fell more than a period behind.
                self.next_stats = Some(if now - at < every {
                    at + every
                } else {
                    now + every
                });
            }
        }
    }

    /// Writes one `stats` line (SIGUSR1, or `--stats-interval`).
    pub fn stats(&mut self, client: &Client, events: &mut EventSink) {
        events.stats(&client.stats(), client.buffered_messages());
    }

    /// A library event: `STATUS=` when it changes the client's state.
    pub fn event(&mut self, event: &Event, client: &Client) {
        let state = match event {
            Event::Connecting { attempt, .. } => format!("connecting (attempt {attempt})"),
            Event::Connected { attempt, .. } => format!("connected (attempt {attempt})"),
            Event::Reconnecting { attempt, delay, .. } => format!(
                "waiting to reconnect (attempt {attempt} in {} ms)",
                delay.as_millis()
            ),
            Event::GaveUp { attempts } => format!("gave up after {attempts} attempts"),
            Event::Closed { .. } => "closed".to_string(),
            _ => return,
        };
        self.set_status(&state, client);
    }

    /// The loop begins to shut down: `STOPPING=1` (once).
    pub fn stopping(&mut self, client: &Client) {
        if !self.stopping {
            self.stopping = true;
            self.send("STOPPING=1");
            self.set_status("stopping", client);
        }
    }

    fn set_status(&mut self, state: &str, client: &Client) {
        let line = status_line(state, client.buffered_messages(), client.stats().last_rtt);
        if line != self.status {
            self.send(&line);
            self.status = line;
        }
    }

    fn send(&mut self, message: &str) {
        if let Some(n) = &mut self.notifier {
            n.send(message);
        }
    }
}

/// One short `STATUS=` line: the state, the outbox depth and the last round-trip time.
fn status_line(state: &str, outbox: usize, rtt: Option<Duration>) -> String {
    let mut line = format!("STATUS={state}, outbox {outbox}");
    if let Some(rtt) = rtt {
        line.push_str(&format!(", last rtt {} ms", rtt.as_millis()));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_one_short_line() {
        assert_eq!(
            status_line("connected (attempt 2)", 3, Some(Duration::from_millis(41))),
            "STATUS=connected (attempt 2), outbox 3, last rtt 41 ms"
        );
        assert_eq!(status_line("closed", 0, None), "STATUS=closed, outbox 0");
    }
}
