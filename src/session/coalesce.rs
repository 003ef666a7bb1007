//! Write coalescing: when the application sends faster than one system call per message is
//! worth, frames wait briefly in tungstenite's buffer and leave together in one `write`.
//!
//! The rule, decided here and nowhere else:
//! - A message leaves at once (its own flush) when it starts a burst: the application has
//!   called `poll` since the last flush, or the last flush is `window` or more ago. A lone
//!   message is never delayed.
//! - A message sent back to back with the previous one (no `poll` between, within `window` of
//!   the burst's first flush) is held. Held frames leave at the first of: the next `poll` call
//!   (the application is done producing for now), `window` after the burst's first flush (a
//!   deadline of the session, so an external `poll(2)` loop wakes for it), tungstenite's
//!   buffer passing [`COALESCE_BYTES`] (it writes out by itself), a ping or a pong reply.
//! - The backlog drained after a reconnect is one burst: one flush after its last frame.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// Bytes of held frames after which tungstenite writes them out without waiting for a flush
/// (its `write_buffer_size`): a burst of large messages goes out in writes of about this size.
pub(crate) const COALESCE_BYTES: usize = 16 << 10;

/// The coalescing state of one link.
#[derive(Debug)]
pub(super) struct Coalesce {
    window: Duration,
    /// When the current burst's first frame was flushed: held frames leave `window` after.
    /// `Some` whenever `held` is set.
    burst_started: Option<Instant>,
    /// Frames of the application's burst were handed over without a flush.
    held: bool,
    /// Frames of the backlog were handed over without a flush: the drain flushes when the
    /// outbox runs empty.
    backlog_unflushed: bool,
    /// The application has called `poll` since the last flush.
    app_polled: bool,
}

impl Coalesce {
    /// A fresh link's state: its first message starts a burst.
    pub fn new(window: Duration) -> Coalesce {
        Coalesce {
            window,
            burst_started: None,
            held: false,
            backlog_unflushed: false,
            app_polled: true,
        }
    }

    /// The application hands over a frame at `now`: whether it leaves at once (flush) or is
    /// held for company.
    pub fn flush_at_once(&mut self, now: Instant) -> bool {
        let in_burst = !self.app_polled
            && self
                .burst_started
                .is_some_and(|t| now.saturating_duration_since(t) < self.window);
        if in_burst {
            self.held = true;
            return false;
        }
        self.flushed();
        self.burst_started = Some(now);
        self.app_polled = false;
        true
    }

    /// Whether the next frame may join a burst, so that deciding needs the time.
    pub fn needs_clock(&self) -> bool {
        !self.app_polled && !self.window.is_zero()
    }

    /// A frame of the backlog was handed over without a flush.
    pub fn hold_backlog(&mut self) {
        self.backlog_unflushed = true;
    }

    /// The backlog is drained: whether its frames are owed a flush.
    pub fn backlog_drained(&mut self) -> bool {
        if std::mem::take(&mut self.backlog_unflushed) {
            self.held = false;
            return true;
        }
        false
    }

    /// A flush was asked for (or a ping or pong reply flushed everything).
    pub fn flushed(&mut self) {
        self.held = false;
        self.backlog_unflushed = false;
    }

    /// The application called `poll`: held frames are owed a flush now (returns whether), and
    /// its next message starts a new burst.
    pub fn app_polls(&mut self) -> bool {
        self.app_polled = true;
        let owed = self.held || self.backlog_unflushed;
        self.flushed();
        owed
    }

    /// When held frames must leave at the latest.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.held, self.burst_started) {
            (true, Some(t)) => Some(t + self.window),
            _ => None,
        }
    }
}
