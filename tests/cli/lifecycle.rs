//! Lifecycle events: every event type with its documented fields, the dead-link bound,
//! giving up, and reconnecting after the server closes.
#![forbid(unsafe_code)]

use std::time::Duration;

use super::common::{refused_port, watchdog, Mode, TestServer};
use super::harness::{Wsbeat, SLOW};

#[test]
fn every_event_type_appears_with_its_fields() {
    let _w = watchdog(
        Duration::from_secs(40),
        "every_event_type_appears_with_its_fields",
    );
    let server = TestServer::start(Mode::Echo);
    let url = server.url();
    let mut ws = Wsbeat::spawn(&[
        "--ping-interval",
        "200ms",
        "--pong-timeout",
        "200ms",
        "--max-missed",
        "2",
        "--backoff-initial",
        "1s",
        "--backoff-max",
        "1s",
        "--max-retries",
        "2",
        "--connect-timeout",
        "1s",
        &url,
    ]);

    let e = ws.event("connecting", SLOW);
    assert_eq!(e.num("attempt"), 1.0);
    assert_eq!(e.str("url"), url);
    assert!(e.num("t_ms") >= 0.0);
    let e = ws.event("connected", SLOW);
    assert_eq!(e.num("attempt"), 1.0);
    assert!(e.num("handshake_ms") >= 0.0);
    assert_eq!(e.num_or_null("protocol"), None);
    let ping = ws.event("ping", SLOW);
    let pong = ws.event("pong", SLOW);
    assert_eq!(pong.num("seq"), ping.num("seq"));
    assert!(pong.num_or_null("rtt_ms").is_some_and(|ms| ms >= 0.0));

    server.freeze();
    let e = ws.event("pong_missed", SLOW);
    assert_eq!((e.num("missed"), e.num("max")), (1.0, 2.0));
    let e = ws.event("disconnected", SLOW);
    assert_eq!(e.str("reason"), "heartbeat_timeout");
    assert_eq!(e.num_or_null("code"), None);
    assert!(e.str("detail").starts_with("no reply to 2 pings"), "{e:?}");
    assert!(e.num("unconfirmed") >= 0.0);

    // From now on the server refuses the upgrade with 503.
    server.set_mode(Mode::HttpStatus {
        status: 503,
        retry_after: None,
    });
    server.unfreeze();
    let e = ws.event("reconnecting", SLOW);
    assert_eq!(e.num("attempt"), 2.0);
    let delay = e.num("delay_ms");
    // The default strategy (decorrelated) draws from [initial, 3 × initial], capped at max:
    // exactly 1 s here.
    assert_eq!(delay, 1000.0, "delay_ms {delay} (initial = max = 1s)");
    let gave_up = ws.event("gave_up", SLOW);
    assert_eq!(
        gave_up.num("attempts"),
        2.0,
        "--max-retries 2 after a dropped link"
    );
    assert_eq!(ws.wait_exit(SLOW).code(), Some(1));
    ws.remaining_events(SLOW);

    let failed = ws.seen_named("connect_failed");
    assert_eq!(failed.len(), 2, "{failed:?}");
    for (e, attempt) in failed.iter().zip([2.0, 3.0]) {
        assert_eq!(e.num("attempt"), attempt);
        assert!(!e.str("error").is_empty());
        e.num_or_null("http_status");
    }
    // The first retry may race the switch to 503 and time out; the second cannot.
    let last = failed[1];
    assert_eq!(last.num_or_null("http_status"), Some(503.0), "{last:?}");
    assert!(last.str("error").contains("503"), "{last:?}");
    // Every line carries a t_ms that never goes backwards.
    let times: Vec<f64> = ws.seen.iter().map(|e| e.num("t_ms")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn frozen_server_is_detected_within_the_bound() {
    let _w = watchdog(
        Duration::from_secs(30),
        "frozen_server_is_detected_within_the_bound",
    );
    let server = TestServer::start(Mode::Echo);
    // Bound: 300ms + 2 x 200ms = 700 ms after the last inbound byte.
    let mut ws = Wsbeat::spawn(&[
        "--ping-interval",
        "300ms",
        "--pong-timeout",
        "200ms",
        "--max-missed",
        "2",
        "--backoff-initial",
        "5s",
        "--backoff-max",
        "5s",
        &server.url(),
    ]);
    ws.event("connected", SLOW);
    ws.event("pong", SLOW);
    server.freeze();
    let dead = ws.event("disconnected", SLOW);
    assert_eq!(dead.str("reason"), "heartbeat_timeout");
    // The last inbound byte is the last pong (or, without one, the handshake reply).
    let last = ws
        .seen
        .iter()
        .rev()
        .find(|e| matches!(e.name(), "pong" | "connected"))
        .expect("a pong or connected event");
    let took = dead.num("t_ms") - last.num("t_ms");
    eprintln!(
        "dead link detected {took} ms after the last {}",
        last.name()
    );
    assert!(
        (700.0..=850.0).contains(&took),
        "detected {took} ms after the last {} (bound 700 ms, slack 150 ms); events: {:?}",
        last.name(),
        ws.seen
    );
    let missed = ws.seen_named("pong_missed");
    assert_eq!(missed.len(), 2, "{missed:?}");
}

#[test]
fn max_retries_against_a_refused_port_makes_three_attempts_and_exits_1() {
    let _w = watchdog(Duration::from_secs(30), "max_retries_refused");
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let mut ws = Wsbeat::spawn(&[
        "--max-retries",
        "2",
        "--backoff-initial",
        "50ms",
        "--backoff-max",
        "50ms",
        &url,
    ]);
    let e = ws.event("gave_up", SLOW);
    assert_eq!(e.num("attempts"), 3.0);
    assert_eq!(e.num("unsent"), 0.0);
    assert_eq!(ws.wait_exit(SLOW).code(), Some(1));
    ws.remaining_events(SLOW);
    let attempts = |name| {
        ws.seen_named(name)
            .iter()
            .map(|e| e.num("attempt"))
            .collect::<Vec<_>>()
    };
    assert_eq!(attempts("connecting"), [1.0, 2.0, 3.0]);
    assert_eq!(attempts("connect_failed"), [1.0, 2.0, 3.0]);
    assert_eq!(attempts("reconnecting"), [2.0, 3.0]);
    for e in ws.seen_named("connect_failed") {
        assert_eq!(e.num_or_null("http_status"), None);
        assert!(e.str("error").contains("refused"), "{e:?}");
    }
    assert_eq!(ws.seen.last().map(|e| e.name()), Some("gave_up"));
}

#[test]
fn server_close_is_reported_and_followed_by_a_reconnect() {
    let _w = watchdog(Duration::from_secs(30), "server_close_reconnects");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&[
        "--backoff-initial",
        "100ms",
        "--backoff-max",
        "100ms",
        &server.url(),
    ]);
    ws.event("connected", SLOW);
    server.close_all(4000, "maintenance");
    let e = ws.event("disconnected", SLOW);
    assert_eq!(e.str("reason"), "closed_by_server");
    assert_eq!(e.num_or_null("code"), Some(4000.0));
    assert_eq!(
        e.str("detail"),
        "closed by server with code 4000: maintenance"
    );
    assert_eq!(ws.event("reconnecting", SLOW).num("attempt"), 2.0);
    assert_eq!(ws.event("connected", SLOW).num("attempt"), 2.0);
    ws.write("still here\n");
    assert_eq!(ws.stdout_line(SLOW), "still here");
}

#[test]
fn credentials_in_the_url_never_reach_the_event_log() {
    let _w = watchdog(Duration::from_secs(30), "credentials_redacted");
    let server = TestServer::start(Mode::Echo);
    let url = format!("ws://device:s3cr3t-pw@127.0.0.1:{}/", server.port());
    let mut ws = Wsbeat::spawn(&[&url]);
    let e = ws.event("connecting", SLOW);
    assert!(!e.str("url").contains("s3cr3t-pw"), "{e:?}");
    ws.event("connected", SLOW);
    ws.close_stdin();
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0));
    assert!(
        !ws.stderr_text().contains("s3cr3t-pw"),
        "{}",
        ws.stderr_text()
    );
}
