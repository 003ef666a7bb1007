//! Driving a wsbeat client in tests: wait for an event, record timed event sequences.

use std::time::{Duration, Instant};

use wsbeat::{Client, Event};

/// An event and when it happened: for `Connecting` and `Reconnecting`, the library's own
/// instant (when the attempt started; when the retry was scheduled), so that pacing and
/// connect deadlines are judged on the library's clock, never on when a test loop happened to
/// see the event; for the others, when the test saw it (always after the library acted, so
/// good for upper bounds, and for lower bounds measured from a library instant).
pub struct Seen {
    pub at: Instant,
    pub event: Event,
}

impl Seen {
    /// `event`, seen now (see [`Seen`] for the instant kept).
    pub fn new(event: Event) -> Seen {
        let now = Instant::now();
        let at = match &event {
            Event::Connecting { at, .. } => *at,
            Event::Reconnecting { at, delay, .. } => at.checked_sub(*delay).unwrap_or(*at),
            _ => now,
        };
        Seen { at, event }
    }
}

/// Polls until `pred` matches an event, returning it with everything seen before it.
/// Panics with `what` if `limit` passes first.
pub fn until(
    client: &mut Client,
    limit: Duration,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> (Seen, Vec<Seen>) {
    let end = Instant::now() + limit;
    let mut before = Vec::new();
    loop {
        let now = Instant::now();
        assert!(
            now < end,
            "timed out waiting for {what}; saw {:?}",
            names(&before)
        );
        if let Some(event) = client.poll(end - now) {
            let seen = Seen::new(event);
            if pred(&seen.event) {
                return (seen, before);
            }
            before.push(seen);
        }
    }
}

/// Polls for `span`, returning every event seen.
pub fn for_span(client: &mut Client, span: Duration) -> Vec<Seen> {
    let end = Instant::now() + span;
    let mut seen = Vec::new();
    loop {
        let now = Instant::now();
        if now >= end {
            return seen;
        }
        if let Some(event) = client.poll(end - now) {
            seen.push(Seen::new(event));
        }
    }
}

/// Short names of events, for assertion messages and sequence checks.
pub fn names(seen: &[Seen]) -> Vec<&'static str> {
    seen.iter().map(|s| name(&s.event)).collect()
}

pub fn name(e: &Event) -> &'static str {
    match e {
        Event::Connecting { .. } => "connecting",
        Event::Connected { .. } => "connected",
        Event::Message(_) => "message",
        Event::Ping { .. } => "ping",
        Event::Pong { .. } => "pong",
        Event::PongMissed { .. } => "pong_missed",
        Event::Disconnected { .. } => "disconnected",
        Event::ConnectFailed { .. } => "connect_failed",
        Event::Reconnecting { .. } => "reconnecting",
        Event::GaveUp { .. } => "gave_up",
        Event::Closed { .. } => "closed",
        Event::NetworkChanged { .. } => "network_changed",
        _ => "other",
    }
}

pub fn is(name_wanted: &'static str) -> impl Fn(&Event) -> bool {
    move |e| name(e) == name_wanted
}

/// The silence the library itself measured when it declared the link dead (its
/// `HeartbeatTimeout::silent_for`), in ms: lower bounds on the verdict are judged on this, as
/// the test's own stamps can trail the library's by a preemption.
pub fn library_silence_ms(event: &Event) -> f64 {
    match event {
        Event::Disconnected {
            reason: wsbeat::DisconnectReason::HeartbeatTimeout { silent_for, .. },
            ..
        } => silent_for.as_secs_f64() * 1000.0,
        other => panic!("not a heartbeat verdict: {other:?}"),
    }
}

/// Milliseconds between two instants, as f64 for readable assertion messages.
pub fn ms(later: Instant, earlier: Instant) -> f64 {
    later.saturating_duration_since(earlier).as_secs_f64() * 1000.0
}
