//! Stats on demand: SIGUSR1 writes one `stats` event line, `--stats-interval` one per period.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use super::common::{watchdog, Mode, TestServer};
use super::harness::{Wsbeat, SLOW};
use super::json::Value;

/// The keys of a `stats` line (README's event table), all numbers or null.
const KEYS: [&str; 20] = [
    "attempts",
    "connects",
    "heartbeat_timeouts",
    "closed_by_server",
    "io_errors",
    "protocol_errors",
    "tls_errors",
    "local_closes",
    "pings_sent",
    "pongs_received",
    "pongs_missed",
    "last_rtt_ms",
    "smoothed_rtt_ms",
    "bytes_in",
    "bytes_out",
    "messages_in",
    "messages_out",
    "write_calls",
    "connected_since_ms",
    "outbox",
];

#[test]
fn sigusr1_writes_one_stats_line() {
    let _w = watchdog(Duration::from_secs(30), "sigusr1_writes_one_stats_line");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&[&server.url()]);
    let connected = ws.event("connected", SLOW);
    for line in ["one", "two"] {
        ws.write(&format!("{line}\n"));
        assert_eq!(ws.stdout_line(SLOW), line);
    }
    ws.signal("USR1");
    let stats = ws.event("stats", SLOW);
    assert_eq!(stats.0.len(), KEYS.len() + 2, "{stats:?}");
    for key in KEYS {
        assert!(
            matches!(stats.get(key), Some(Value::Num(_) | Value::Null)),
            "{key} in {stats:?}"
        );
    }
    assert_eq!(stats.num("attempts"), 1.0);
    assert_eq!(stats.num("connects"), 1.0);
    assert_eq!(stats.num("messages_out"), 2.0);
    assert_eq!(stats.num("messages_in"), 2.0);
    assert_eq!(stats.num("outbox"), 0.0);
    assert!(stats.num("bytes_in") > 0.0 && stats.num("bytes_out") > 0.0);
    // The link opened between the attempt's start and the `connected` line.
    let since = stats.num("connected_since_ms");
    assert!(since <= connected.num("t_ms"), "{since} vs {connected:?}");

    // One signal, one line; the process goes on.
    ws.write("three\n");
    assert_eq!(ws.stdout_line(SLOW), "three");
    ws.signal("TERM");
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0), "{}", ws.stderr_text());
    ws.remaining_events(SLOW);
    assert_eq!(ws.seen_named("stats").len(), 1);
}

/// `--stats-interval 300ms`: lines on a drift-free schedule, judged on the CLI's own `t_ms`.
#[test]
fn stats_interval_writes_lines_on_schedule() {
    let _w = watchdog(Duration::from_secs(30), "stats_interval");
    let server = TestServer::start(Mode::Echo);
    let period = 300.0;
    let mut ws = Wsbeat::spawn(&["--stats-interval", "300ms", &server.url()]);
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < 8 {
        times.push(ws.event("stats", SLOW).num("t_ms"));
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // The k-th line is due at start + k x period (the loop's start is within a few ms of
    // t_ms 0); each is written when the loop wakes for it: never early, late only by
    // scheduling.
    for (k, t) in times.iter().enumerate() {
        let due = (k as f64 + 1.0) * period;
        assert!(
            *t >= due - 1.0 && *t < due + 100.0,
            "line {k} at {t} ms, due {due}: {times:?}"
        );
    }
}
