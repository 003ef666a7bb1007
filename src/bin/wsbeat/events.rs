//! `--events`: lifecycle events as JSON lines, one object per line, written at once.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::time::Instant;

use wsbeat::Event;

use crate::json::Line;

/// Where event lines go.
enum Target {
    Off,
    Stderr,
    File(File),
}

/// Writes event lines stamped with milliseconds since `start`.
pub struct EventSink {
    target: Target,
    start: Instant,
}

impl EventSink {
    /// `None`: no events; `-`: stderr; anything else: a file, appended to (a daemon restarted
    /// by systemd keeps one history).
    pub fn open(spec: Option<&str>, start: Instant) -> io::Result<EventSink> {
        let target = match spec {
            None => Target::Off,
            Some("-") => Target::Stderr,
            Some(path) => Target::File(OpenOptions::new().create(true).append(true).open(path)?),
        };
        Ok(EventSink { target, start })
    }

    /// Whether lines are written at all (so callers can skip building them).
    pub fn enabled(&self) -> bool {
        !matches!(self.target, Target::Off)
    }

    /// Milliseconds since the process started, from the monotonic clock.
    pub fn t_ms(&self) -> u128 {
        self.start.elapsed().as_millis()
    }

    /// Starts a line for `event` stamped now.
    pub fn line(&self, event: &str) -> Line {
        Line::new(event, self.t_ms())
    }

    /// An instant the library gave (when an attempt started, when a retry is due) on the
    /// `t_ms` scale: pacing read off the event log is then the library's own, not when this
    /// loop got round to writing the line (`t_ms`, which never goes backwards).
    fn ms_of(&self, at: Instant) -> u128 {
        at.saturating_duration_since(self.start).as_millis()
    }

    /// Writes a finished line in one `write` so that lines from a crash never interleave.
    /// A failing event log must not stop the data path: the error is logged once per line.
    pub fn write(&mut self, text: &str) {
        let result = match &mut self.target {
            Target::Off => Ok(()),
            Target::Stderr => io::stderr().lock().write_all(text.as_bytes()),
            // Files are unbuffered: every line reaches the kernel before the next event.
            Target::File(f) => f.write_all(text.as_bytes()),
        };
        if let Err(e) = result {
            log::warn!("cannot write event line: {e}");
        }
    }

    /// Writes the line for a library event; data messages have none.
    /// `extra` adds CLI-specific fields (e.g. `unsent` on `closed` and `gave_up`).
    pub fn event(&mut self, event: &Event, extra: impl FnOnce(Line) -> Line) {
        if !self.enabled() {
            return;
        }
        if let Some(line) = self.describe(event) {
            self.write(&extra(line).finish());
        }
    }

    /// Writes a `stats` line: every [`Stats`](wsbeat::Stats) field, numbers only (durations
    /// in ms, `connected_since_ms` on the `t_ms` scale, `null` when absent), and the outbox
    /// depth. Asked for (SIGUSR1, `--stats-interval`), so without `--events` it goes to stderr.
    pub fn stats(&mut self, s: &wsbeat::Stats, outbox: usize) {
        let line = self.stats_line(s, outbox);
        match self.target {
            Target::Off => {
                if let Err(e) = io::stderr().lock().write_all(line.as_bytes()) {
                    log::warn!("cannot write the stats line: {e}");
                }
            }
            _ => self.write(&line),
        }
    }

    fn stats_line(&self, s: &wsbeat::Stats, outbox: usize) -> String {
        self.line("stats")
            .int("attempts", s.attempts)
            .int("connects", s.connects)
            .int("heartbeat_timeouts", s.heartbeat_timeouts)
            .int("closed_by_server", s.closed_by_server)
            .int("io_errors", s.io_errors)
            .int("protocol_errors", s.protocol_errors)
            .int("tls_errors", s.tls_errors)
            .int("local_closes", s.local_closes)
            .int("pings_sent", s.pings_sent)
            .int("pongs_received", s.pongs_received)
            .int("pongs_missed", s.pongs_missed)
            .opt_ms("last_rtt_ms", s.last_rtt)
            .opt_ms("smoothed_rtt_ms", s.smoothed_rtt)
            .int("bytes_in", s.bytes_in)
            .int("bytes_out", s.bytes_out)
            .int("messages_in", s.messages_in)
            .int("messages_out", s.messages_out)
            .int("write_calls", s.write_calls)
            .opt_int(
                "connected_since_ms",
                s.connected_since.map(|t| self.ms_of(t)),
            )
            .int("outbox", outbox as u64)
            .finish()
    }

    fn describe(&self, event: &Event) -> Option<Line> {
        let line = match event {
            Event::Connecting { attempt, url, at } => self
                .line("connecting")
                .int("attempt", *attempt)
                .str("url", url)
                .int("at_ms", self.ms_of(*at)),
            Event::Connected {
                attempt,
                handshake,
                protocol,
            } => self
                .line("connected")
                .int("attempt", *attempt)
                .opt_ms("handshake_ms", Some(*handshake))
                .opt_str("protocol", protocol.as_deref()),
            Event::Ping { seq } => self.line("ping").int("seq", *seq),
            Event::Pong { seq, rtt } => self.line("pong").int("seq", *seq).opt_ms("rtt_ms", *rtt),
            Event::PongMissed { missed, max } => self
                .line("pong_missed")
                .int("missed", *missed)
                .int("max", *max),
            Event::Disconnected {
                reason,
                unconfirmed,
                requeued,
            } => self
                .line("disconnected")
                .str("reason", reason.kind())
                .opt_int("code", reason.code())
                .str("detail", &reason.to_string())
                .int("unconfirmed", *unconfirmed)
                .int("requeued", *requeued),
            Event::ConnectFailed { attempt, error } => self
                .line("connect_failed")
                .int("attempt", *attempt)
                .str("error", &error.to_string())
                .opt_int("http_status", error.http_status()),
            Event::Reconnecting { attempt, delay, at } => self
                .line("reconnecting")
                .int("attempt", *attempt)
                .int("delay_ms", delay.as_millis())
                .int("due_ms", self.ms_of(*at)),
            Event::GaveUp { attempts } => self.line("gave_up").int("attempts", *attempts),
            Event::Dropped { messages } => self.line("dropped").int("messages", *messages),
            Event::OutboxRestored {
                messages,
                skipped_bytes,
            } => self
                .line("outbox_restored")
                .int("messages", *messages)
                .int("skipped_bytes", *skipped_bytes),
            Event::Closed { code } => self.line("closed").opt_int("code", *code),
            Event::NetworkChanged { change } => self
                .line("network_changed")
                .str("change", change.kind())
                .str("detail", &change.to_string()),
            Event::Message(_) => return None,
            // `Event` is non-exhaustive: a newer library's event still shows up, by name.
            other => self.line("other").str("debug", &format!("{other:?}")),
        };
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use wsbeat::DisconnectReason;

    fn describe(event: &Event) -> String {
        let sink = EventSink {
            target: Target::Off,
            start: Instant::now(),
        };
        sink.describe(event).unwrap().finish()
    }

    #[test]
    fn disconnected_has_reason_code_detail_and_unconfirmed() {
        let line = describe(&Event::Disconnected {
            reason: DisconnectReason::ClosedByServer {
                code: Some(4000),
                reason: "bye \"now\"\n\u{2028}".into(),
            },
            unconfirmed: 2,
            requeued: 1,
        });
        assert!(
            line.starts_with("{\"event\":\"disconnected\",\"t_ms\":"),
            "{line}"
        );
        assert!(
            line.contains("\"reason\":\"closed_by_server\",\"code\":4000,"),
            "{line}"
        );
        assert!(
            // The library escapes the newline itself ("\\n" once JSON-encoded).
            line.contains(r#""detail":"closed by server with code 4000: bye \"now\"\\n\u2028""#),
            "{line}"
        );
        assert!(
            line.ends_with(",\"unconfirmed\":2,\"requeued\":1}\n"),
            "{line}"
        );
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn connect_failed_reports_http_status() {
        let line = describe(&Event::ConnectFailed {
            attempt: 3,
            error: wsbeat::Error::HttpStatus {
                status: 503,
                reason: "Service Unavailable".into(),
                retry_after: None,
            },
        });
        assert!(line.contains("\"attempt\":3,"), "{line}");
        assert!(line.contains("\"http_status\":503}"), "{line}");
        let line = describe(&Event::ConnectFailed {
            attempt: 1,
            error: wsbeat::Error::ConnectTimeout(Duration::from_secs(1)),
        });
        assert!(line.contains("\"http_status\":null}"), "{line}");
    }

    /// Every field of `Stats` has its key: a field added to the library without one here
    /// fails this (the names come from `Stats`'s `Debug`, which lists them all).
    #[test]
    fn stats_line_has_every_stats_field_and_only_numbers() {
        let sink = EventSink {
            target: Target::Off,
            start: Instant::now(),
        };
        let stats = wsbeat::Stats::default();
        let debug = format!("{stats:?}");
        let fields: Vec<&str> = debug
            .split(['{', ','])
            .skip(1)
            .filter_map(|f| f.split(':').next())
            .map(str::trim)
            .collect();
        assert!(fields.len() >= 18, "{debug}");
        let full = sink.stats_line(&stats, 3);
        assert!(full.starts_with("{\"event\":\"stats\","), "{full}");
        assert!(full.ends_with(",\"outbox\":3}\n"), "{full}");
        for field in fields {
            let key = match field {
                "last_rtt" | "smoothed_rtt" | "connected_since" => format!("\"{field}_ms\":"),
                _ => format!("\"{field}\":"),
            };
            assert!(full.contains(&key), "{key} missing from {full}");
        }
        // Numbers or null only: the one string is the event's name.
        assert_eq!(full.matches(":\"").count(), 1, "{full}");
    }

    #[test]
    fn network_changed_has_change_and_detail() {
        let line = describe(&Event::NetworkChanged {
            change: wsbeat::NetworkChange::InterfaceDown(3),
        });
        assert!(
            line.ends_with(",\"change\":\"interface_down\",\"detail\":\"interface 3 down\"}\n"),
            "{line}"
        );
    }

    #[test]
    fn pong_without_rtt_is_null_and_closed_without_code_is_null() {
        let line = describe(&Event::Pong { seq: 4, rtt: None });
        assert!(line.ends_with("\"seq\":4,\"rtt_ms\":null}\n"), "{line}");
        let line = describe(&Event::Closed { code: None });
        assert!(line.ends_with("\"code\":null}\n"), "{line}");
    }
}
