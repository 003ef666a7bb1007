//! The fault matrix (README "Proven under faults") for what the CLI adds to the library: the
//! JSON event lines each fault produces, the pacing they show (`t_ms`), lines typed while the
//! server misbehaves, and the exit status. The library side is `tests/fault_matrix.rs`.
#![forbid(unsafe_code)]

use std::time::Duration;

use super::common::{watchdog, Mode, Received, TestServer};
use super::harness::{Wsbeat, SLOW};
use super::json::Object;

/// Checks every `reconnecting` → next `connecting` gap in `seen` against its `delay_ms`
/// (`t_ms` and `delay_ms` are whole milliseconds, truncated) and returns the delays. Their
/// order is not checked: the default strategy (decorrelated) is not monotonic; each
/// strategy's shape is the library's tests' (`src/backoff.rs`, `tests/props.rs`).
fn paced(seen: &[Object], slack_ms: f64) -> Vec<f64> {
    let mut delays = Vec::new();
    let mut pending: Option<(f64, f64, f64)> = None;
    for e in seen {
        match e.name() {
            "reconnecting" => {
                pending = Some((e.num("t_ms"), e.num("delay_ms"), e.num("due_ms")));
            }
            "connecting" => {
                if let Some((at, delay, due)) = pending.take() {
                    // Never early, on the library's own instants (`due_ms`, `at_ms`; whole
                    // milliseconds, so 1 ms of rounding); late only by the scheduler's slack,
                    // on when the lines were written (`t_ms`).
                    assert!(
                        e.num("at_ms") >= due - 1.0,
                        "attempt started at {} ms, due at {due} ms",
                        e.num("at_ms")
                    );
                    let waited = e.num("t_ms") - at;
                    assert!(
                        waited <= delay + slack_ms,
                        "waited {waited} ms for a {delay} ms delay"
                    );
                    delays.push(delay);
                }
            }
            _ => {}
        }
    }
    delays
}

#[test]
fn dns_name_that_does_not_resolve_gives_up_with_exit_1() {
    let _w = watchdog(Duration::from_secs(30), "cli_matrix_dns");
    let url = "ws://wsbeat-cli-matrix.invalid:9/";
    let mut ws = Wsbeat::spawn(&[
        "--max-retries",
        "1",
        "--backoff-initial",
        "20ms",
        "--backoff-max",
        "20ms",
        url,
    ]);
    let e = ws.event("gave_up", SLOW);
    assert_eq!(e.num("attempts"), 2.0);
    assert_eq!(ws.wait_exit(SLOW).code(), Some(1), "{}", ws.stderr_text());
    ws.remaining_events(SLOW);
    let failed = ws.seen_named("connect_failed");
    assert_eq!(failed.len(), 2);
    for f in failed {
        assert!(f.str("error").contains("could not resolve host"), "{f:?}");
        assert_eq!(f.num_or_null("http_status"), None);
    }
}

#[test]
fn http_429_with_retry_after_waits_as_asked_then_connects() {
    let _w = watchdog(Duration::from_secs(30), "cli_matrix_429");
    let server = TestServer::start(Mode::HttpStatus {
        status: 429,
        retry_after: Some(1),
    });
    let mut ws = Wsbeat::spawn(&[
        "--backoff-initial",
        "50ms",
        "--backoff-max",
        "200ms",
        &server.url(),
    ]);
    let failed = ws.event("connect_failed", SLOW);
    assert_eq!(failed.num_or_null("http_status"), Some(429.0));
    let r = ws.event("reconnecting", SLOW);
    assert_eq!(
        r.num("delay_ms"),
        1000.0,
        "Retry-After: 1 beats the backoff cap"
    );
    server.set_mode(Mode::Echo);
    let c = ws.event("connecting", SLOW);
    // On the library's instants: scheduled at `due_ms - delay_ms`, started at `at_ms` (whole
    // milliseconds: 1 ms of rounding).
    let waited = c.num("at_ms") - (r.num("due_ms") - r.num("delay_ms"));
    assert!(
        (999.0..=1100.0).contains(&waited),
        "retried after {waited} ms"
    );
    ws.event("connected", SLOW);
    ws.close_stdin();
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0));
}

#[test]
fn close_codes_are_reported_and_lines_typed_meanwhile_arrive_in_order() {
    let _w = watchdog(Duration::from_secs(30), "cli_matrix_close_codes");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&[
        "--backoff-initial",
        "20ms",
        "--backoff-max",
        "80ms",
        &server.url(),
    ]);
    ws.event("connected", SLOW);
    let mut sent = Vec::new();
    for code in [1000u16, 1001, 1008, 1011, 1012, 1013, 4000] {
        server.close_all(code, "matrix");
        let e = ws.event("disconnected", SLOW);
        assert_eq!(e.str("reason"), "closed_by_server");
        assert_eq!(e.num_or_null("code"), Some(f64::from(code)));
        assert_eq!(
            e.str("detail"),
            format!("closed by server with code {code}: matrix")
        );
        // Typed while the link is down or just back: kept if offline, sent in order.
        let line = format!("after {code}");
        ws.write(&format!("{line}\n"));
        sent.push(Received::Text(line));
        ws.event("connected", SLOW);
    }
    server.wait_for(SLOW, "every line", |s| s.received().len() >= sent.len());
    assert_eq!(server.received(), sent);
    ws.close_stdin();
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0));
    ws.remaining_events(SLOW);
    paced(&ws.seen, 100.0);
}

#[test]
fn hostile_bytes_are_protocol_errors_on_one_valid_line_each() {
    let _w = watchdog(Duration::from_secs(30), "cli_matrix_hostile");
    // A masked frame from the server, then garbage: the first breaks RFC 6455 already.
    let mut raw = vec![0x81, 0x81, 1, 2, 3, 4, b'a' ^ 1];
    raw.extend_from_slice(b"\xff\xfe\n{\"event\":\"gave_up\"}\n");
    let server = TestServer::start(Mode::RawAfterHandshake(raw));
    let mut ws = Wsbeat::spawn(&[
        "--backoff-initial",
        "20ms",
        "--backoff-max",
        "40ms",
        &server.url(),
    ]);
    for _ in 0..3 {
        let e = ws.event("disconnected", SLOW);
        assert_eq!(e.str("reason"), "protocol_error", "{e:?}");
        assert_eq!(e.num_or_null("code"), None);
        ws.event("reconnecting", SLOW);
    }
    ws.signal("TERM");
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0), "{}", ws.stderr_text());
    ws.remaining_events(SLOW);
    assert!(ws.seen_named("gave_up").is_empty(), "a forged event line");
    paced(&ws.seen, 100.0);
}

#[test]
fn flapping_server_is_retried_no_faster_than_the_backoff() {
    let _w = watchdog(Duration::from_secs(30), "cli_matrix_flapping");
    let server = TestServer::start(Mode::DropAfter(Duration::from_millis(100)));
    let mut ws = Wsbeat::spawn(&[
        "--backoff-initial",
        "20ms",
        "--backoff-max",
        "80ms",
        "--min-uptime",
        "10s",
        &server.url(),
    ]);
    for _ in 0..10 {
        ws.event("connected", SLOW);
        let e = ws.event("disconnected", SLOW);
        assert_eq!(e.str("reason"), "io_error", "{e:?}");
    }
    ws.signal("TERM");
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0), "{}", ws.stderr_text());
    ws.remaining_events(SLOW);
    let delays = paced(&ws.seen, 100.0);
    assert!(delays.len() >= 9, "{delays:?}");
    assert!(
        delays.iter().all(|d| (16.0..=80.0).contains(d)),
        "{delays:?}"
    );
    // Up 100 ms each time, so consecutive attempts start at least 100 ms + a delay apart (the
    // server accepts after the attempt starts and drops 100 ms later; the retry is due a
    // delay after that): judged on the library's instants (`at_ms`), 1 ms of rounding each.
    let starts: Vec<f64> = ws
        .seen_named("connecting")
        .iter()
        .map(|e| e.num("at_ms"))
        .collect();
    for (w, d) in starts.windows(2).zip(&delays) {
        assert!(w[1] - w[0] >= 100.0 + d - 2.0, "{starts:?} {delays:?}");
    }
}

#[test]
fn silent_handshake_fails_at_the_connect_timeout_and_exits_1() {
    let _w = watchdog(Duration::from_secs(30), "cli_matrix_silent");
    let server = TestServer::start(Mode::SilentHandshake);
    let mut ws = Wsbeat::spawn(&[
        "--connect-timeout",
        "200ms",
        "--max-retries",
        "1",
        "--backoff-initial",
        "20ms",
        "--backoff-max",
        "20ms",
        &server.url(),
    ]);
    ws.event("gave_up", SLOW);
    assert_eq!(ws.wait_exit(SLOW).code(), Some(1));
    ws.remaining_events(SLOW);
    let connecting = ws.seen_named("connecting");
    let failed = ws.seen_named("connect_failed");
    assert_eq!((connecting.len(), failed.len()), (2, 2));
    for (c, f) in connecting.iter().zip(&failed) {
        // From the attempt's start by the library's clock (`at_ms`) to when the failure was
        // written (`t_ms`, never before the library failed it): never under the timeout.
        let took = f.num("t_ms") - c.num("at_ms");
        assert!((199.0..=300.0).contains(&took), "failed after {took} ms");
        assert!(f.str("error").contains("timed out"), "{f:?}");
    }
    paced(&ws.seen, 100.0);
}
