//! SIGTERM in every phase of a stalled connect attempt (DNS, TCP connect, proxy CONNECT, TLS,
//! HTTP upgrade) and while waiting to reconnect: with no link open, wsbeat exits with status
//! 0 within 100 ms of the signal. With a link open to a server that never answers the Close,
//! within `--close-timeout` + 100 ms. Prints `cli stop <phase>: <ms> ms`.
//!
//! The DNS and TCP-connect phases run wsbeat in a network namespace
//! (`ip netns exec <ns> wsbeat ...`, see tests/common/netns.rs): skipped with a notice without
//! root and `ip netns`, failed then under `WSBEAT_REQUIRE_PEERS=1`.
#![forbid(unsafe_code)]

use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::common::netns::{self, figure, Setup, SilentDns, BLACKHOLE};
use super::common::proxy::{ConnectProxy, ProxyMode};
use super::common::{refused_port, watchdog, Mode, TestServer};
use super::harness::{Wsbeat, SLOW};

/// The documented bound from the signal to the exit with no link open.
const STOP_BOUND: Duration = Duration::from_millis(100);
/// How long wsbeat runs in a phase before the signal.
const IN_PHASE: Duration = Duration::from_millis(300);
/// Watchdog of every test.
const TEST_LIMIT: Duration = Duration::from_secs(40);
/// Hard limit for a test's child in a network namespace.
const CHILD_LIMIT: Duration = Duration::from_secs(30);

/// Waits up to 5 s for `cond` (the server side's sign that wsbeat is in the phase).
fn wait_until(what: &str, ws: &Wsbeat, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "wsbeat never reached {what}; stderr:\n{}",
            ws.stderr_text()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Sends SIGTERM, waits for the exit (status 0), prints and returns the time from the signal
/// to the exit.
fn stop(phase: &str, ws: &mut Wsbeat) -> Duration {
    let pid = Pid::from_raw(i32::try_from(ws.pid()).expect("pid fits in i32"));
    let sent = Instant::now();
    kill(pid, Signal::SIGTERM).expect("SIGTERM");
    while ws.running() {
        assert!(
            sent.elapsed() < SLOW,
            "{phase}: wsbeat still running {SLOW:?} after SIGTERM; stderr:\n{}",
            ws.stderr_text()
        );
        thread::sleep(Duration::from_millis(1));
    }
    let took = sent.elapsed();
    figure(format!(
        "cli stop {phase}: {:.1} ms",
        took.as_secs_f64() * 1000.0
    ));
    let status = ws.wait_exit(SLOW);
    assert_eq!(
        status.code(),
        Some(0),
        "{phase}: exit status after SIGTERM; stderr:\n{}",
        ws.stderr_text()
    );
    took
}

/// SIGTERM `IN_PHASE` after the `connecting` event, once `in_phase` holds: wsbeat must still be
/// connecting (no `connect_failed` yet), and must exit 0 within [`STOP_BOUND`].
fn stop_while_connecting(phase: &str, ws: &mut Wsbeat, in_phase: impl Fn() -> bool) {
    ws.event("connecting", SLOW);
    let announced = Instant::now();
    wait_until(phase, ws, in_phase);
    thread::sleep(IN_PHASE.saturating_sub(announced.elapsed()));
    assert!(
        !ws.stderr_text().contains("\"event\":\"connect_failed\""),
        "{phase}: the attempt ended before the signal; stderr:\n{}",
        ws.stderr_text()
    );
    let took = stop(phase, ws);
    assert!(
        took <= STOP_BOUND,
        "{phase}: exited {took:?} after SIGTERM (bound {STOP_BOUND:?}); stderr:\n{}",
        ws.stderr_text()
    );
}

#[test]
fn sigterm_exits_0_within_100_ms_while_the_upgrade_is_unanswered() {
    let _w = watchdog(TEST_LIMIT, "cli stop upgrade");
    let server = TestServer::start(Mode::SilentHandshake);
    let mut ws = Wsbeat::spawn(&[&server.url()]);
    stop_while_connecting("upgrade", &mut ws, || !server.request_headers().is_empty());
}

#[cfg(feature = "tls")]
#[test]
fn sigterm_exits_0_within_100_ms_while_the_tls_handshake_is_unanswered() {
    use super::common::tls::{FrontMode, FrontOptions, TlsFront};
    let _w = watchdog(TEST_LIMIT, "cli stop tls");
    let front = TlsFront::start(
        refused_port(),
        FrontOptions {
            mode: FrontMode::StallMidHandshake,
            ..FrontOptions::default()
        },
    );
    let mut ws = Wsbeat::spawn(&[&format!("wss://127.0.0.1:{}/", front.port())]);
    stop_while_connecting("tls", &mut ws, || !front.hello_bytes().is_empty());
}

#[test]
fn sigterm_exits_0_within_100_ms_while_the_proxy_never_answers_connect() {
    let _w = watchdog(TEST_LIMIT, "cli stop proxy");
    let proxy = ConnectProxy::start(ProxyMode::Silent);
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port());
    let target = format!("ws://127.0.0.1:{}/", refused_port());
    let mut ws = Wsbeat::spawn(&["--proxy", &proxy_url, &target]);
    stop_while_connecting("proxy", &mut ws, || !proxy.requests().is_empty());
}

#[test]
fn sigterm_exits_0_within_100_ms_while_waiting_to_reconnect() {
    let _w = watchdog(TEST_LIMIT, "cli stop waiting_to_reconnect");
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let mut ws = Wsbeat::spawn(&["--backoff-initial", "20s", "--backoff-max", "20s", &url]);
    ws.event("reconnecting", SLOW);
    thread::sleep(IN_PHASE);
    let took = stop("waiting_to_reconnect", &mut ws);
    assert!(
        took <= STOP_BOUND,
        "exited {took:?} after SIGTERM (bound {STOP_BOUND:?}); stderr:\n{}",
        ws.stderr_text()
    );
}

#[test]
fn sigterm_exits_0_within_100_ms_while_the_nameserver_never_answers() {
    let _w = watchdog(TEST_LIMIT, "cli stop dns");
    let setup = Setup {
        resolv_conf: Some("nameserver 127.0.0.1\n".into()),
        blackhole: false,
    };
    // The silent nameserver must live in the namespace: this part runs in a child there.
    netns::run(&setup, CHILD_LIMIT, |ns| {
        let dns = SilentDns::start().expect("bind 127.0.0.1:53 in the namespace");
        let mut ws = Wsbeat::spawn_in_netns(ns, &["ws://device-cloud.invalid-test:9/"]);
        stop_while_connecting("dns", &mut ws, || dns.queries() > 0);
    });
}

#[test]
fn sigterm_exits_0_within_100_ms_while_the_tcp_connect_is_unanswered() {
    let _w = watchdog(TEST_LIMIT, "cli stop tcp_connect");
    let setup = Setup {
        resolv_conf: None,
        blackhole: true,
    };
    let Some(ns) = netns::create_or_skip(&netns::current_test(), &setup) else {
        return;
    };
    // The SYN goes into the blackhole device and is dropped inside the namespace.
    let url = format!("ws://{BLACKHOLE}:80/");
    let mut ws = Wsbeat::spawn_in_netns(ns.name(), &[&url]);
    stop_while_connecting("tcp_connect", &mut ws, || true);
}

#[test]
fn sigterm_with_a_link_open_exits_0_within_the_close_timeout_when_the_close_is_unanswered() {
    let _w = watchdog(TEST_LIMIT, "cli stop open");
    let server = TestServer::start(Mode::Echo);
    let close_timeout = Duration::from_secs(1);
    let mut ws = Wsbeat::spawn(&["--close-timeout", "1s", &server.url()]);
    ws.event("connected", SLOW);
    // The server stops reading and answering: the Close reply never comes.
    server.freeze();
    let took = stop("open", &mut ws);
    assert!(
        took <= close_timeout + STOP_BOUND,
        "exited {took:?} after SIGTERM (bound: --close-timeout {close_timeout:?} + {STOP_BOUND:?}); \
         stderr:\n{}",
        ws.stderr_text()
    );
}
