//! The CLI's delivery options: at-least-once resends what a dead link swallowed, and a full
//! outbox with drop-oldest says how many lines it dropped.
#![forbid(unsafe_code)]

use std::time::Duration;

use super::common::{refused_port, watchdog, Mode, Received, TestServer};
use super::harness::{Wsbeat, SLOW};

#[test]
fn at_least_once_resends_lines_a_frozen_then_killed_server_never_read() {
    let _w = watchdog(Duration::from_secs(30), "cli_at_least_once");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&[
        "--delivery",
        "at-least-once",
        "--ping-interval",
        "200ms",
        "--pong-timeout",
        "100ms",
        "--max-missed",
        "2",
        "--backoff-initial",
        "50ms",
        "--backoff-max",
        "100ms",
        "--keep-open",
        "--events",
        "-",
        &server.url(),
    ]);
    ws.event("connected", SLOW);
    server.freeze();
    ws.write("one\ntwo\nthree\n");
    let dead = ws.event("disconnected", SLOW);
    assert_eq!(dead.str("reason"), "heartbeat_timeout");
    assert_eq!(dead.num("unconfirmed"), 3.0, "{dead:?}");
    assert_eq!(dead.num("requeued"), 3.0, "{dead:?}");
    // The frozen server never read them; killing it loses its socket's bytes for good.
    server.drop_all();
    server.unfreeze();
    ws.event("connected", SLOW);
    server.wait_for(SLOW, "the three lines, sent again", |s| {
        s.received()
            == ["one", "two", "three"]
                .iter()
                .map(|t| Received::Text(t.to_string()))
                .collect::<Vec<_>>()
    });
}

#[test]
fn at_most_once_reports_requeued_zero() {
    let _w = watchdog(Duration::from_secs(30), "cli_at_most_once");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&[
        "--ping-interval",
        "200ms",
        "--pong-timeout",
        "100ms",
        "--max-missed",
        "2",
        "--keep-open",
        "--events",
        "-",
        &server.url(),
    ]);
    ws.event("connected", SLOW);
    server.freeze();
    ws.write("lost\n");
    let dead = ws.event("disconnected", SLOW);
    assert_eq!(dead.num("unconfirmed"), 1.0, "{dead:?}");
    assert_eq!(dead.num("requeued"), 0.0, "{dead:?}");
    server.unfreeze();
}

#[test]
fn drop_oldest_reports_how_many_lines_it_dropped() {
    let _w = watchdog(Duration::from_secs(30), "cli_drop_oldest");
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let mut ws = Wsbeat::spawn(&[
        "--outbox",
        "3",
        "--outbox-full",
        "drop-oldest",
        "--backoff-initial",
        "5s",
        "--events",
        "-",
        &url,
    ]);
    ws.event("reconnecting", SLOW);
    ws.write("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
    let mut dropped = 0.0;
    while dropped < 7.0 {
        dropped += ws.event("dropped", SLOW).num("messages");
    }
    assert_eq!(dropped, 7.0);
    ws.signal("TERM");
    let closed = ws.event("closed", SLOW);
    assert_eq!(closed.num("unsent"), 3.0, "the three newest are kept");
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0));
}
