//! Counters a field engineer asks for first.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// Counters since the client was created. Get a snapshot with
/// [`Client::stats`](crate::Client::stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connect attempts made.
    pub attempts: u64,
    /// Links opened.
    pub connects: u64,
    /// Links lost because the heartbeat declared them dead.
    pub heartbeat_timeouts: u64,
    /// Links the server closed with a Close frame.
    pub closed_by_server: u64,
    /// Links lost to socket errors, EOF or write timeouts.
    pub io_errors: u64,
    /// Links lost to protocol violations by the server.
    pub protocol_errors: u64,
    /// Links lost to TLS failures.
    pub tls_errors: u64,
    /// Links the application closed.
    pub local_closes: u64,
    /// Heartbeat pings sent.
    pub pings_sent: u64,
    /// Replies to our pings received.
    pub pongs_received: u64,
    /// Pings that got no reply within `pong_timeout`.
    pub pongs_missed: u64,
    /// The latest round-trip time.
    pub last_rtt: Option<Duration>,
    /// Smoothed round-trip time (RFC 6298 weights: 7/8 old + 1/8 new).
    pub smoothed_rtt: Option<Duration>,
    /// Bytes received, including frame headers.
    pub bytes_in: u64,
    /// Bytes the kernel took, including frame headers.
    pub bytes_out: u64,
    /// Data messages received.
    pub messages_in: u64,
    /// Data messages whose frames the kernel took completely.
    pub messages_out: u64,
    /// System calls that wrote to the server's socket (including ones the full socket
    /// refused): with write coalescing (`Config::coalesce_window`), a burst of messages costs
    /// far fewer of these than `messages_out`.
    pub write_calls: u64,
    /// When the current link opened, if one is open.
    pub connected_since: Option<Instant>,
}

impl Stats {
    /// How long the current link has been open.
    pub fn uptime(&self, now: Instant) -> Option<Duration> {
        self.connected_since
            .map(|t| now.saturating_duration_since(t))
    }

    pub(crate) fn record_rtt(&mut self, rtt: Duration) {
        self.last_rtt = Some(rtt);
        self.smoothed_rtt = Some(match self.smoothed_rtt {
            Some(s) => (s * 7 + rtt) / 8,
            None => rtt,
        });
    }

    pub(crate) fn record_disconnect(&mut self, kind: &str) {
        let counter = match kind {
            "heartbeat_timeout" => &mut self.heartbeat_timeouts,
            "closed_by_server" => &mut self.closed_by_server,
            "io_error" => &mut self.io_errors,
            "protocol_error" => &mut self.protocol_errors,
            "tls_error" => &mut self.tls_errors,
            _ => &mut self.local_closes,
        };
        *counter += 1;
        self.connected_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothed_rtt_moves_an_eighth_towards_each_sample() {
        let mut s = Stats::default();
        s.record_rtt(Duration::from_millis(80));
        s.record_rtt(Duration::from_millis(160));
        assert_eq!(s.last_rtt, Some(Duration::from_millis(160)));
        assert_eq!(s.smoothed_rtt, Some(Duration::from_millis(90)));
    }
}
