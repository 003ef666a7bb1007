//! SIGTERM/SIGINT: a clean close with code 1000 and exit 0; a second signal exits at once.
#![forbid(unsafe_code)]

use std::thread;
use std::time::{Duration, Instant};

use super::common::{refused_port, watchdog, Mode, TestServer};
use super::harness::{Wsbeat, SLOW};

#[test]
fn sigterm_closes_cleanly_with_1000_and_exits_0() {
    let _w = watchdog(Duration::from_secs(30), "sigterm_closes_cleanly");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&["--close-timeout", "3s", &server.url()]);
    ws.event("connected", SLOW);
    ws.write("before the signal\n");
    assert_eq!(ws.stdout_line(SLOW), "before the signal");
    ws.signal("TERM");
    let status = ws.wait_exit(SLOW);
    assert_eq!(status.code(), Some(0), "{}", ws.stderr_text());
    ws.remaining_events(SLOW);
    let closed = ws.seen_named("closed");
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].num_or_null("code"), Some(1000.0));
    assert_eq!(closed[0].num("unsent"), 0.0);
    let disc = ws.seen_named("disconnected");
    assert_eq!(disc.last().map(|e| e.str("reason")), Some("local_close"));
    server.wait_for(SLOW, "the client's Close frame", |s| {
        s.close_frames_received() == [Some(1000)]
    });
}

#[test]
fn sigint_while_waiting_to_reconnect_exits_0_at_once() {
    let _w = watchdog(Duration::from_secs(30), "sigint_while_reconnecting");
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let mut ws = Wsbeat::spawn(&["--backoff-initial", "20s", "--backoff-max", "20s", &url]);
    ws.event("reconnecting", SLOW);
    let sent = Instant::now();
    ws.signal("INT");
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0), "{}", ws.stderr_text());
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "took {:?}",
        sent.elapsed()
    );
    ws.remaining_events(SLOW);
    let closed = ws.seen_named("closed");
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].num_or_null("code"), None);
}

#[test]
fn second_signal_exits_at_once_while_the_close_waits() {
    let _w = watchdog(Duration::from_secs(30), "second_signal");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&["--close-timeout", "20s", &server.url()]);
    ws.event("connected", SLOW);
    // A frozen server never answers the Close: the clean close would wait 20 s.
    server.freeze();
    ws.signal("TERM");
    let deadline = Instant::now() + SLOW;
    while !ws.stderr_text().contains("signal received") {
        assert!(Instant::now() < deadline, "first signal not seen");
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(100));
    assert!(ws.running(), "exited before the close timeout");
    let sent = Instant::now();
    ws.signal("TERM");
    assert_eq!(ws.wait_exit(SLOW).code(), Some(130));
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "took {:?}",
        sent.elapsed()
    );
}

#[test]
fn end_of_stdin_closes_unless_keep_open() {
    let _w = watchdog(Duration::from_secs(30), "end_of_stdin_keep_open");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&["--keep-open", &server.url()]);
    ws.event("connected", SLOW);
    ws.write("x\n");
    assert_eq!(ws.stdout_line(SLOW), "x");
    ws.close_stdin();
    thread::sleep(Duration::from_millis(500));
    assert!(ws.running(), "--keep-open exited at end of stdin");
    assert!(server.close_frames_received().is_empty());
    // Still receiving after the end of input.
    server.send_all(tungstenite::Message::text("after eof"));
    assert_eq!(ws.stdout_line(SLOW), "after eof");
    ws.signal("TERM");
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0));
    server.wait_for(SLOW, "Close 1000", |s| {
        s.close_frames_received() == [Some(1000)]
    });
}
