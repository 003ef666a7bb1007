//! The fault matrix of README.md ("Proven under faults"): one test per row. Each row drives a
//! client through the same fault again and again and checks, every time:
//!
//! - the event sequence the row documents, and its time bound;
//! - pacing: every attempt starts no sooner than the delay its `Reconnecting` event
//!   announced (and at most 100 ms later), delays never below `(1 - jitter) × initial`,
//!   never above the cap, and never shrinking while failures continue;
//! - nothing panics or hangs (a watchdog per row);
//! - memory and descriptors: VmRSS from `/proc/self/status` and the entries of
//!   `/proc/self/fd`, after a warm-up, before and after the loop. RSS may move a little
//!   (allocator caches, test-server threads): the slack is 1 MiB; descriptors must come back
//!   to where they were. Under qemu-user (cross tests) VmRSS is the emulator's and is only
//!   printed, and every loop is a quarter as long.
//!
//! Rows whose single-shot semantics are tested in detail elsewhere (`tests/faults.rs`,
//! `tests/reconnect.rs`, `tests/heartbeat.rs`, `tests/tls.rs`) are repeated here as loops for
//! the pacing and memory checks. Rows share one process, so they run one at a time (RSS is a
//! process-wide figure).

mod common;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::drive::{for_span, is, ms, name, names, until, Seen};
use common::{refused_port, watchdog, Mode, TestServer};
use wsbeat::{Client, Config, DisconnectReason, Error, Event, Jitter, Message};

/// Time slack of every upper bound.
const SLACK: Duration = Duration::from_millis(100);
/// RSS may grow this much over a row's loop (allocator and thread-stack caches).
const RSS_SLACK_KIB: i64 = 1024;
const INITIAL: Duration = Duration::from_millis(20);
const MAX: Duration = Duration::from_millis(80);
const JITTER: f64 = 0.2;

/// Rows run one at a time: RSS and descriptors are per process.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this runs under qemu-user (cross tests set the runner for the tests).
fn under_qemu() -> bool {
    std::env::var_os("CROSS_TEST_RUNNER").is_some()
}

/// Under qemu (cross tests) every row runs fewer cycles: same checks, less emulated time.
fn cycles(native: usize) -> usize {
    if under_qemu() {
        (native / 4).max(2)
    } else {
        native
    }
}

/// A client config for the matrix: short capped backoff that never resets within a row
/// (min_uptime 10 s), no pings of our own unless a row asks.
fn config(url: &str) -> Config {
    let mut c = Config::new(url)
        .ping_interval(Duration::from_secs(5))
        .backoff(INITIAL, MAX)
        .min_uptime(Duration::from_secs(10))
        .connect_timeout(Duration::from_millis(500))
        .max_message_size(64 << 10)
        .seed(23);
    c.backoff.jitter = JITTER;
    // The pacing checks are the proportional policy's (a floor of `(1 - jitter) × initial`,
    // never shrinking); the default strategy, decorrelated, is not monotonic.
    c.backoff.strategy = Jitter::Proportional;
    c
}

fn floor() -> Duration {
    INITIAL.mul_f64(1.0 - JITTER)
}

// ---------------------------------------------------------------------------------------------
// Memory and descriptors

fn rss_kib() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// RSS and descriptors at the start of a row's measured loop.
struct Usage {
    row: &'static str,
    rss: i64,
    fds: usize,
    started: Instant,
}

impl Usage {
    fn now(row: &'static str) -> Usage {
        Usage {
            row,
            rss: rss_kib(),
            fds: fd_count(),
            started: Instant::now(),
        }
    }

    /// Asserts RSS within the slack and descriptors back (waiting up to 2 s for the test
    /// server's connection threads to close theirs), and prints the figures.
    fn check(self, cycles: usize) {
        self.check_held(cycles, 0);
    }

    /// Like `check`, when the in-process server keeps `held` descriptors of connections the
    /// client has left (a server that never reads never sees the client go).
    fn check_held(self, cycles: usize, held: usize) {
        let took = self.started.elapsed();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut fds = fd_count();
        while fds > self.fds + held && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
            fds = fd_count();
        }
        let rss = rss_kib();
        eprintln!(
            "fault matrix: {}: {cycles} cycles in {:.0} ms; VmRSS {} -> {} KiB ({:+}); fds {} -> {}",
            self.row,
            ms(self.started + took, self.started),
            self.rss,
            rss,
            rss - self.rss,
            self.fds,
            fds
        );
        // Under qemu-user, VmRSS is the emulator's (translated code, per-thread state of
        // the test server's threads), megabytes at a time: only descriptors are judged.
        assert!(
            under_qemu() || rss - self.rss <= RSS_SLACK_KIB,
            "{}: VmRSS grew {} KiB over {cycles} cycles",
            self.row,
            rss - self.rss
        );
        assert!(
            fds <= self.fds + held,
            "{}: {} descriptors before, {fds} after ({held} held by the test server)",
            self.row,
            self.fds
        );
    }
}

/// The client's own sockets to `port`: descriptors of this process that are TCP sockets
/// whose remote port is `port` (the in-process server's sockets have it as local port).
fn client_sockets_to(port: u16) -> usize {
    let mut inodes = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let remote_port = f
                .get(2)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if remote_port == Some(port) {
                if let Some(inode) = f.get(9) {
                    inodes.push(format!("socket:[{inode}]"));
                }
            }
        }
    }
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
        .count()
}

// ---------------------------------------------------------------------------------------------
// Pacing

/// Checks every `Reconnecting` → `Connecting` wait in `seen` and returns the delays. A delay
/// runs from the end it follows: `Reconnecting` is queued with the `Disconnected` or
/// `ConnectFailed` before it, which the test saw first (one poll earlier).
fn pacing(row: &str, seen: &[Seen], max: Duration) -> Vec<Duration> {
    let mut delays = Vec::new();
    let mut pending: Option<(Instant, Duration, Instant)> = None;
    let mut ended_at = None;
    for s in seen {
        match s.event {
            Event::Disconnected { .. } | Event::ConnectFailed { .. } => ended_at = Some(s.at),
            Event::Reconnecting { delay, at: due, .. } => {
                assert!(pending.is_none(), "{row}: two Reconnecting in a row");
                pending = Some((ended_at.take().unwrap_or(s.at), delay, due));
            }
            Event::Connecting { at: started, .. } => {
                if let Some((at, delay, due)) = pending.take() {
                    let waited = s.at.duration_since(at);
                    // Never early, judged on the library's own instants; late only by the
                    // scheduler's slack, judged on what the test saw.
                    assert!(
                        started >= due,
                        "{row}: retried {:?} before the end of the {delay:?} delay",
                        due - started
                    );
                    assert!(
                        waited <= delay + SLACK,
                        "{row}: retried after {waited:?} for a {delay:?} delay"
                    );
                    delays.push(delay);
                }
            }
            _ => {}
        }
    }
    assert!(
        delays.iter().all(|d| *d >= floor() && *d <= max),
        "{row}: delays {delays:?} outside [{:?}, {max:?}]",
        floor()
    );
    assert!(
        delays.windows(2).all(|w| w[0] <= w[1]),
        "{row}: a delay shrank while failures continued: {delays:?}"
    );
    delays
}

/// Polls until `count` events named `what` were seen; returns everything seen.
fn until_count(
    client: &mut Client,
    what: &'static str,
    count: usize,
    limit: Duration,
) -> Vec<Seen> {
    let end = Instant::now() + limit;
    let mut seen: Vec<Seen> = Vec::new();
    while seen.iter().filter(|s| name(&s.event) == what).count() < count {
        let now = Instant::now();
        assert!(
            now < end,
            "timed out waiting for {count} {what}; saw {:?}",
            names(&seen)
        );
        if let Some(event) = client.poll(end - now) {
            seen.push(Seen::new(event));
        }
    }
    seen
}

fn disconnect_reason(seen: &Seen) -> &DisconnectReason {
    match &seen.event {
        Event::Disconnected { reason, .. } => reason,
        other => panic!("expected a disconnect, got {other:?}"),
    }
}

/// Runs `cycles` link cycles against a server whose every connection ends with the row's
/// fault: `Connecting, Connected, Disconnected (checked by `check`), Reconnecting` each time.
/// Returns every event seen.
fn link_cycles(
    row: &'static str,
    client: &mut Client,
    cycles: usize,
    check: impl Fn(&DisconnectReason),
) -> Vec<Seen> {
    let mut all = Vec::new();
    for _ in 0..cycles {
        let (connected, before) =
            until(client, Duration::from_secs(5), "connected", is("connected"));
        let (dead, between) = until(
            client,
            Duration::from_secs(5),
            "disconnected",
            is("disconnected"),
        );
        assert!(
            between
                .iter()
                .all(|s| matches!(name(&s.event), "message" | "ping" | "pong")),
            "{row}: {:?}",
            names(&between)
        );
        check(disconnect_reason(&dead));
        all.extend(before);
        all.push(connected);
        all.extend(between);
        all.push(dead);
    }
    all
}

// ---------------------------------------------------------------------------------------------
// Rows

#[test]
fn frozen_server() {
    let _serial = serial();
    let _w = watchdog(Duration::from_secs(60), "matrix_frozen");
    let server = TestServer::start(Mode::Echo);
    let cfg = config(&server.url())
        .ping_interval(Duration::from_millis(60))
        .pong_timeout(Duration::from_millis(30))
        .max_missed_pongs(2);
    let bound = cfg.heartbeat.detection_bound();
    let mut client = Client::new(cfg).unwrap();
    let mut cycle = |n: usize| {
        let mut seen = Vec::new();
        for _ in 0..n {
            // A pong is the last inbound byte; freeze right after it.
            let (pong, before) = until(&mut client, Duration::from_secs(5), "pong", is("pong"));
            server.freeze();
            let (dead, between) = until(
                &mut client,
                Duration::from_secs(5),
                "disconnected",
                is("disconnected"),
            );
            let silent = dead.at.duration_since(pong.at);
            assert!(
                silent + Duration::from_millis(5) >= bound && silent <= bound + SLACK,
                "frozen: dead after {silent:?}, bound {bound:?}"
            );
            assert_eq!(
                names(&between),
                ["ping", "pong_missed", "ping", "pong_missed"]
            );
            assert!(matches!(
                disconnect_reason(&dead),
                DisconnectReason::HeartbeatTimeout { missed: 2, .. }
            ));
            server.drop_all();
            server.unfreeze();
            seen.extend(before);
            seen.push(pong);
            seen.extend(between);
            seen.push(dead);
        }
        seen
    };
    cycle(3);
    let usage = Usage::now("frozen server");
    let n = cycles(8);
    let seen = cycle(n);
    usage.check(n);
    pacing("frozen server", &seen, MAX);
}

/// A server that completes the handshake, waits `after`, then resets the connection
/// (SO_LINGER 0: close sends RST, not FIN), for every connection.
struct ResetServer {
    port: u16,
    stop: Arc<AtomicBool>,
    resets: mpsc::Receiver<Instant>,
    thread: Option<JoinHandle<()>>,
}

impl ResetServer {
    fn start(after: Duration) -> ResetServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, resets) = mpsc::channel();
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            while !flag.load(SeqCst) {
                let Ok((tcp, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let _ = tcp.set_nonblocking(false);
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
                let Ok(ws) = tungstenite::accept(tcp) else {
                    continue;
                };
                thread::sleep(after);
                let linger = nix::libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                };
                nix::sys::socket::setsockopt(
                    ws.get_ref(),
                    nix::sys::socket::sockopt::Linger,
                    &linger,
                )
                .expect("SO_LINGER 0");
                let _ = tx.send(Instant::now());
                drop(ws);
            }
        });
        ResetServer {
            port,
            stop,
            resets,
            thread: Some(thread),
        }
    }
}

impl Drop for ResetServer {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn killed_server_reset() {
    let _serial = serial();
    let _w = watchdog(Duration::from_secs(60), "matrix_reset");
    let server = ResetServer::start(Duration::from_millis(30));
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let mut client = Client::new(config(&url)).unwrap();
    let mut cycle = |n: usize| {
        let seen = link_cycles(
            "killed server (RST)",
            &mut client,
            n,
            |reason| match reason {
                DisconnectReason::Io(Error::Io(e)) => {
                    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}")
                }
                other => panic!("RST: {other:?}"),
            },
        );
        // Each reset is noticed at once (the client waits in poll(2) on the socket).
        let deads: Vec<Instant> = seen
            .iter()
            .filter(|s| is("disconnected")(&s.event))
            .map(|s| s.at)
            .collect();
        for dead in deads {
            let reset = server.resets.recv_timeout(Duration::from_secs(1)).unwrap();
            assert!(
                dead.duration_since(reset) <= SLACK,
                "reset noticed after {:?}",
                dead.duration_since(reset)
            );
        }
        seen
    };
    cycle(3);
    let usage = Usage::now("killed server (RST)");
    let n = cycles(12);
    let seen = cycle(n);
    usage.check(n);
    pacing("killed server (RST)", &seen, MAX);
}

#[test]
fn server_gone_and_back() {
    let _serial = serial();
    let _w = watchdog(Duration::from_secs(60), "matrix_gone_and_back");
    let mut server = TestServer::start(Mode::Echo);
    let port = server.port();
    let mut client = Client::new(config(&server.url())).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    // Connected at entry and at exit.
    let mut outage = |server: TestServer, gone: Duration| -> TestServer {
        server.stop();
        let (dead, _) = until(
            &mut client,
            Duration::from_secs(5),
            "disconnected",
            is("disconnected"),
        );
        let mut seen = for_span(&mut client, gone);
        let server = TestServer::start_on(port, Mode::Echo).unwrap();
        let back = Instant::now();
        let (connected, rest) = until(
            &mut client,
            Duration::from_secs(5),
            "connected",
            is("connected"),
        );
        seen.extend(rest);
        for s in &seen {
            if let Event::ConnectFailed { error, .. } = &s.event {
                assert!(
                    matches!(error, Error::Io(e) if e.kind() == ErrorKind::ConnectionRefused),
                    "{error:?}"
                );
            }
        }
        seen.insert(0, dead);
        seen.push(connected);
        let delays = pacing("server gone and back", &seen, MAX);
        // Back within one (capped) delay of the server's return.
        let late = seen.last().unwrap().at.duration_since(back);
        assert!(
            late <= MAX + SLACK,
            "reconnected {late:?} after the server came back"
        );
        eprintln!(
            "fault matrix: server gone {gone:?}: {} attempts while gone, back {:.1} ms after the server",
            delays.len(),
            ms(back + late, back)
        );
        server
    };
    server = outage(server, Duration::from_millis(300));
    let usage = Usage::now("server gone and back");
    server = outage(server, Duration::from_secs(2));
    usage.check(1);
    drop(server);
}

#[test]
fn refused_port_gives_up_after_max_retries() {
    let _serial = serial();
    let _w = watchdog(Duration::from_secs(60), "matrix_refused");
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let run = |n: usize| {
        for _ in 0..n {
            let mut cfg = config(&url).max_retries(Some(3));
            cfg.backoff.initial = Duration::from_millis(5);
            cfg.backoff.max = Duration::from_millis(20);
            let mut client = Client::new(cfg).unwrap();
            let (gave_up, before) = until(
                &mut client,
                Duration::from_secs(5),
                "gave_up",
                is("gave_up"),
            );
            let mut expected = Vec::new();
            for i in 0..4 {
                if i > 0 {
                    expected.push("reconnecting");
                }
                expected.extend(["connecting", "connect_failed"]);
            }
            assert_eq!(names(&before), expected);
            assert!(matches!(gave_up.event, Event::GaveUp { attempts: 4 }));
            for s in &before {
                match &s.event {
                    Event::ConnectFailed {
                        error: Error::Io(e),
                        ..
                    } => assert_eq!(e.kind(), ErrorKind::ConnectionRefused),
                    Event::ConnectFailed { error, .. } => panic!("{error:?}"),
                    Event::Reconnecting { delay, .. } => {
                        assert!(
                            *delay >= Duration::from_millis(4)
                                && *delay <= Duration::from_millis(20)
                        )
                    }
                    _ => {}
                }
            }
            // Same checks as every row, on this client's own backoff.
            let mut waits = Vec::new();
            let mut pending = None;
            for s in &before {
                match s.event {
                    Event::Reconnecting { delay, at: due, .. } => {
                        pending = Some((s.at, delay, due))
                    }
                    Event::Connecting { at: started, .. } => {
                        if let Some((at, delay, due)) = pending.take() {
                            let waited = s.at.duration_since(at);
                            assert!(started >= due && waited <= delay + SLACK);
                            waits.push(delay);
                        }
                    }
                    _ => {}
                }
            }
            assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
            assert!(client.is_stopped());
        }
    };
    run(5);
    let usage = Usage::now("refused port");
    let n = cycles(24);
    run(n);
    usage.check(n);
}

/// How long the system resolver takes to fail a `.invalid` name, or `None` if it does not
/// answer within 3 s (then the DNS row is skipped: a resolver that hangs would only test the
/// resolver; `connect_timeout` does not cover DNS, as documented).
fn invalid_name_lookup_time(host: &'static str) -> Option<Duration> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let started = Instant::now();
        let result = (host, 80).to_socket_addrs().map(|a| a.count());
        let _ = tx.send((started.elapsed(), result.is_err()));
    });
    match rx.recv_timeout(Duration::from_secs(3)) {
        Ok((took, failed)) => {
            assert!(failed, "{host} resolved");
            Some(took)
        }
        Err(_) => None,
    }
}

#[test]
fn dns_name_that_does_not_resolve() {
    let _serial = serial();
    let _w = watchdog(Duration::from_secs(60), "matrix_dns");
    const HOST: &str = "wsbeat-fault-matrix.invalid";
    let Some(took) = invalid_name_lookup_time(HOST) else {
        eprintln!("skipped: the resolver did not fail {HOST} within 3 s (it would hang the attempt; connect_timeout does not cover DNS)");
        return;
    };
    eprintln!("fault matrix: getaddrinfo({HOST}) failed in {took:?}");
    let url = format!("ws://{HOST}:9/");
    // A handful of lookups only: each one asks the system resolver.
    let run = |n: usize| {
        for _ in 0..n {
            let mut client = Client::new(config(&url).max_retries(Some(1))).unwrap();
            let (gave_up, before) = until(
                &mut client,
                Duration::from_secs(10),
                "gave_up",
                is("gave_up"),
            );
            assert_eq!(
                names(&before),
                [
                    "connecting",
                    "connect_failed",
                    "reconnecting",
                    "connecting",
                    "connect_failed"
                ]
            );
            assert!(matches!(gave_up.event, Event::GaveUp { attempts: 2 }));
            for pair in before.windows(2) {
                if let Event::ConnectFailed { error, .. } = &pair[1].event {
                    assert!(
                        matches!(error, Error::Resolve { host, .. } if host == HOST),
                        "{error:?}"
                    );
                    let took = pair[1].at.duration_since(pair[0].at);
                    assert!(
                        took < Duration::from_secs(1),
                        "lookup failed after {took:?}"
                    );
                }
            }
            pacing("dns", &before, MAX);
        }
    };
    run(1);
    let usage = Usage::now("DNS name that does not resolve");
    run(4);
    usage.check(4);
}

#[test]
fn tcp_accepted_but_no_handshake_answer() {
    let _serial = serial();
    let _w = watchdog(Duration::from_secs(60), "matrix_silent");
    let server = TestServer::start(Mode::SilentHandshake);
    let timeout = Duration::from_millis(100);
    let mut client = Client::new(config(&server.url()).connect_timeout(timeout)).unwrap();
    let mut run = |n: usize| {
        let seen = until_count(&mut client, "connect_failed", n, Duration::from_secs(30));
        for pair in seen.windows(2) {
            if let Event::ConnectFailed { error, .. } = &pair[1].event {
                assert!(matches!(error, Error::ConnectTimeout(_)), "{error:?}");
                assert_eq!(name(&pair[0].event), "connecting");
                let took = pair[1].at.duration_since(pair[0].at);
                assert!(
                    took + Duration::from_millis(1) >= timeout && took <= timeout + SLACK,
                    "timed out after {took:?}"
                );
            }
        }
        seen
    };
    run(2);
    let usage = Usage::now("TCP accepted, no handshake answer");
    let n = cycles(8);
    let seen = run(n);
    usage.check(n);
    pacing("no handshake answer", &seen, MAX);
}

#[test]
fn handshake_refused_with_http_statuses() {
    let _serial = serial();
    let _w = watchdog(Duration::from_secs(60), "matrix_http");
    let run = |n: usize| {
        for status in [401u16, 403, 404, 429, 500, 503] {
            let server = TestServer::start(Mode::HttpStatus {
                status,
                retry_after: None,
            });
            let mut client = Client::new(config(&server.url())).unwrap();
            let seen = until_count(&mut client, "connect_failed", n, Duration::from_secs(10));
            for s in &seen {
                if let Event::ConnectFailed { error, .. } = &s.event {
                    assert_eq!(error.http_status(), Some(status), "{error:?}");
                }
            }
            pacing("http status", &seen, MAX);
        }
    };
    run(2);
    let usage = Usage::now("handshake HTTP 401/403/404/429/500/503");
    let n = cycles(4);
    run(n);
    usage.check(n * 6);

    // Final statuses stop at once.
    for status in [401u16, 403] {
        let server = TestServer::start(Mode::HttpStatus {
            status,
            retry_after: None,
        });
        let mut cfg = config(&server.url());
        cfg.final_http_statuses = vec![401, 403];
        let mut client = Client::new(cfg).unwrap();
        let (gave_up, before) = until(
            &mut client,
            Duration::from_secs(5),
            "gave_up",
            is("gave_up"),
        );
        assert_eq!(names(&before), ["connecting", "connect_failed"]);
        assert!(matches!(gave_up.event, Event::GaveUp { attempts: 1 }));
        assert_eq!(server.accepted(), 1);
    }

    // 429 and 503 with Retry-After: the wait is at least what the server asked for.
    for status in [429u16, 503] {
        let server = TestServer::start(Mode::HttpStatus {
            status,
            retry_after: Some(1),
        });
        let mut client = Client::new(config(&server.url())).unwrap();
        let (failed, _) = until(
            &mut client,
            Duration::from_secs(5),
            "connect_failed",
            is("connect_failed"),
        );
        match &failed.event {
            Event::ConnectFailed {
                error: Error::HttpStatus { retry_after, .. },
                ..
            } => assert_eq!(*retry_after, Some(Duration::from_secs(1))),
            other => panic!("{other:?}"),
        }
        let (r, _) = until(
            &mut client,
            Duration::from_secs(5),
            "reconnecting",
            is("reconnecting"),
        );
        assert!(
            matches!(r.event, Event::Reconnecting { delay, .. } if delay == Duration::from_secs(1)),
            "{:?}",
            r.event
        );
        server.set_mode(Mode::Echo);
        let (c, before) = until(
            &mut client,
            Duration::from_secs(5),
            "connected",
            is("connected"),
        );
        assert_eq!(names(&before), ["connecting"]);
        let waited = c.at.duration_since(r.at);
        assert!(
            waited >= Duration::from_millis(999) && waited <= Duration::from_secs(1) + SLACK,
            "{status}: reconnected {waited:?} after Retry-After: 1"
        );
    }
}

#[test]
fn close_codes_and_a_final_application_code() {
    let _serial = serial();
    let _w = watchdog(Duration::from_secs(60), "matrix_close_codes");
    const CODES: [u16; 7] = [1000, 1001, 1008, 1011, 1012, 1013, 4000];
    let run = |n: usize| {
        for code in CODES {
            let server = TestServer::start(Mode::CloseAfterHandshake {
                code,
                reason: "matrix".into(),
            });
            let mut client = Client::new(config(&server.url())).unwrap();
            let seen = link_cycles("close codes", &mut client, n, |reason| match reason {
                DisconnectReason::ClosedByServer {
                    code: Some(c),
                    reason,
                } => assert_eq!((*c, reason.as_str()), (code, "matrix")),
                other => panic!("close {code}: {other:?}"),
            });
            pacing("close codes", &seen, MAX);
            // Each close was answered with the same code.
            server.wait_for(Duration::from_secs(2), "close replies", |s| {
                s.close_frames_received().len() >= n
            });
            assert!(server
                .close_frames_received()
                .iter()
                .all(|c| *c == Some(code)));
        }
    };
    run(1);
    let usage = Usage::now("close codes 1000/1001/1008/1011/1012/1013/4000");
    let n = cycles(3);
    run(n);
    usage.check(n * CODES.len());

    // An application code configured as final: no reconnect.
    let server = TestServer::start(Mode::CloseAfterHandshake {
        code: 4001,
        reason: "device revoked".into(),
    });
    let mut client = Client::new(config(&server.url()).final_close_code(4001)).unwrap();
    let (gave_up, before) = until(
        &mut client,
        Duration::from_secs(5),
        "gave_up",
        is("gave_up"),
    );
    assert_eq!(names(&before), ["connecting", "connected", "disconnected"]);
    assert!(matches!(gave_up.event, Event::GaveUp { .. }));
    assert!(for_span(&mut client, Duration::from_millis(200)).is_empty());
    assert_eq!(server.accepted(), 1);
}

#[test]
fn hostile_bytes_after_the_handshake() {
    let _serial = serial();
    let _w = watchdog(Duration::from_secs(60), "matrix_hostile");
    let mut garbage = vec![0xffu8; 64];
    garbage.extend_from_slice(b"GARBAGE HTTP/1.1 200 OK\r\n\r\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage bytes", garbage),
        ("invalid UTF-8 text", vec![0x81, 0x02, 0xc3, 0x28]),
        // 1 MiB announced, limit 64 KiB, no payload follows.
        (
            "frame over the limit",
            vec![0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 0],
        ),
        (
            "2^63-length frame header",
            vec![0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        ("reserved opcode", vec![0x83, 0x00]),
        (
            "masked frame from the server",
            vec![0x81, 0x81, 1, 2, 3, 4, b'a' ^ 1],
        ),
    ];
    let run = |n: usize| {
        for (what, raw) in &cases {
            let server = TestServer::start(Mode::RawAfterHandshake(raw.clone()));
            let mut client = Client::new(config(&server.url())).unwrap();
            let seen = link_cycles("hostile bytes", &mut client, n, |reason| {
                assert_eq!(reason.kind(), "protocol_error", "{what}: {reason}")
            });
            // Refused as soon as the bytes arrive.
            for pair in seen.windows(2) {
                if is("disconnected")(&pair[1].event) {
                    let took = pair[1].at.duration_since(pair[0].at);
                    assert!(took <= SLACK, "{what}: refused {took:?} after connecting");
                }
            }
            pacing(what, &seen, MAX);
        }
    };
    run(1);
    let usage = Usage::now("hostile bytes (6 kinds)");
    let n = cycles(5);
    run(n);
    usage.check(n * cases.len());
}

#[test]
fn a_server_that_never_reads() {
    let _serial = serial();
    let _w = watchdog(Duration::from_secs(60), "matrix_never_reads");
    let server = TestServer::start(Mode::NeverRead);
    let mut cfg = config(&server.url());
    let write_timeout = Duration::from_millis(200);
    cfg.write_timeout = write_timeout;
    cfg.outbox.max_messages = 100_000;
    cfg.outbox.max_bytes = 64 << 20;
    let mut client = Client::new(cfg).unwrap();
    let chunk = vec![7u8; 60 * 1024];
    let mut accepted = 0usize;
    let port = server.port();
    let mut cycle = |client: &mut Client| {
        until(client, Duration::from_secs(5), "connected", is("connected"));
        assert_eq!(client_sockets_to(port), 1, "the link's socket");
        // Messages kept from the last link go out first; more while the socket takes them
        // (32 MiB a link at most: far more than loopback buffers hold). The kernel's last
        // progress is when the client last wrote a byte (`Stats::bytes_out`).
        let mut bytes_out = client.stats().bytes_out;
        let mut progress_at = Instant::now();
        let mut sent = 0;
        let end = Instant::now() + Duration::from_secs(10);
        let (dead_at, event) = loop {
            assert!(Instant::now() < end, "no write timeout within 10 s");
            if !client.wants_write() && sent < 540 {
                client.send(Message::binary(chunk.clone())).unwrap();
                accepted += 1;
                sent += 1;
            }
            let wait = if client.wants_write() {
                Duration::from_millis(2)
            } else {
                Duration::ZERO
            };
            let event = client.poll(wait);
            let now = Instant::now();
            let out = client.stats().bytes_out;
            if out != bytes_out {
                bytes_out = out;
                progress_at = now;
            }
            match event {
                Some(e) if is("disconnected")(&e) => break (now, e),
                Some(e) => assert!(matches!(name(&e), "ping"), "{e:?}"),
                None => {}
            }
        };
        match &event {
            Event::Disconnected {
                reason: DisconnectReason::Io(e),
                ..
            } => assert!(e.to_string().contains("no progress"), "{e}"),
            other => panic!("{other:?}"),
        }
        // `progress_at` is seen when poll returns, up to one 2 ms slice after the write.
        let after = dead_at.duration_since(progress_at);
        assert!(
            after + Duration::from_millis(5) >= write_timeout && after <= write_timeout + SLACK,
            "dead {after:?} after the last progress (write_timeout {write_timeout:?})"
        );
        // Every message is either handed to the kernel or still kept.
        let kept = client.buffered_messages();
        assert!(kept > 0);
        assert_eq!(client.stats().messages_out as usize + kept, accepted);
    };
    cycle(&mut client);
    let usage = Usage::now("a server that never reads");
    let n = cycles(4);
    for _ in 0..n {
        cycle(&mut client);
    }
    // Between links the client holds no socket; the server holds its two (socket and
    // control clone) of every connection it never read from.
    assert_eq!(client_sockets_to(server.port()), 0);
    usage.check_held(n, 2 * n);
}

#[test]
fn flapping_server() {
    let _serial = serial();
    let _w = watchdog(Duration::from_secs(60), "matrix_flapping");
    // Accepts, echoes, drops 100 ms after every handshake, 20 times.
    let up = Duration::from_millis(100);
    let server = TestServer::start(Mode::DropAfter(up));
    let mut client = Client::new(config(&server.url())).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    let usage = Usage::now("flapping server");
    let n = cycles(20);
    let started = Instant::now();
    let mut seen = link_cycles("flapping", &mut client, n, |reason| {
        assert_eq!(reason.kind(), "io_error", "{reason}")
    });
    usage.check(n);
    let (next, _) = until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    seen.push(next);
    let delays = pacing("flapping", &seen, MAX);
    // Never faster than up-time plus the floor of each delay.
    let connects: Vec<Instant> = seen
        .iter()
        .filter(|s| is("connected")(&s.event))
        .map(|s| s.at)
        .collect();
    for (w, delay) in connects.windows(2).zip(&delays) {
        let gap = w[1].duration_since(w[0]);
        assert!(
            gap >= up + *delay,
            "reconnected {gap:?} after the previous connect"
        );
    }
    // The link never lasts min_uptime: the delay grows to the cap and stays there.
    assert!(
        delays
            .iter()
            .skip(3)
            .all(|d| *d >= MAX.mul_f64(1.0 - JITTER)),
        "{delays:?}"
    );
    eprintln!(
        "fault matrix: flapping: {} connections in {:.0} ms, delays {:?}",
        connects.len(),
        ms(Instant::now(), started),
        delays.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    );
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use common::certs::certs;
    use common::tls::{FrontMode, FrontOptions, ServerCert, TlsFront};
    use wsbeat::TlsConfig;

    fn tls_config(url: &str) -> Config {
        let mut c = config(url).connect_timeout(Duration::from_secs(2));
        c.tls = TlsConfig::default().add_root_pem(certs().ca_pem.clone());
        c
    }

    /// Attempts against `front` fail with a TLS error whose detail starts with `cause`.
    fn refused(row: &'static str, front: &TlsFront, cfg: Config, cause: &str) {
        let mut client = Client::new(cfg).unwrap();
        let mut run = |n: usize| {
            let seen = until_count(&mut client, "connect_failed", n, Duration::from_secs(30));
            for s in &seen {
                if let Event::ConnectFailed { error, .. } = &s.event {
                    match error {
                        Error::Tls { detail, .. } => {
                            assert!(detail.starts_with(cause), "{row}: {detail}")
                        }
                        other => panic!("{row}: {other:?}"),
                    }
                }
            }
            pacing(row, &seen, MAX);
        };
        run(2);
        let usage = Usage::now(row);
        let n = cycles(8);
        run(n);
        usage.check(n);
        assert_eq!(front.handshakes(), 0, "{row}: no handshake may succeed");
    }

    #[test]
    fn tls_unknown_ca() {
        let _serial = serial();
        let _w = watchdog(Duration::from_secs(60), "matrix_tls_unknown_ca");
        let server = TestServer::start(Mode::Echo);
        let front = TlsFront::normal(server.port());
        let mut cfg = tls_config(&front.url());
        cfg.tls = TlsConfig::default(); // system roots only
        refused(
            "TLS unknown CA",
            &front,
            cfg,
            "unknown certificate authority",
        );
    }

    #[test]
    fn tls_host_mismatch() {
        let _serial = serial();
        let _w = watchdog(Duration::from_secs(60), "matrix_tls_host");
        let server = TestServer::start(Mode::Echo);
        let front = TlsFront::start(
            server.port(),
            FrontOptions {
                cert: ServerCert::WrongHost,
                ..FrontOptions::default()
            },
        );
        let cfg = tls_config(&front.url());
        refused("TLS host mismatch", &front, cfg, "host name mismatch");
    }

    #[test]
    fn tls_garbage_mid_stream() {
        let _serial = serial();
        let _w = watchdog(Duration::from_secs(60), "matrix_tls_garbage");
        let server = TestServer::start(Mode::Echo);
        // Garbage this long after the TLS handshake, on the raw TCP socket.
        let after = Duration::from_millis(20);
        let front = TlsFront::start(
            server.port(),
            FrontOptions {
                mode: FrontMode::GarbageAfterHandshake { after },
                ..FrontOptions::default()
            },
        );
        let mut client = Client::new(tls_config(&front.url())).unwrap();
        let mut run = |n: usize| {
            let seen = link_cycles("TLS garbage mid-stream", &mut client, n, |reason| {
                assert_eq!(reason.kind(), "tls_error", "{reason:?}")
            });
            for pair in seen.windows(2) {
                if is("disconnected")(&pair[1].event) {
                    let took = pair[1].at.duration_since(pair[0].at);
                    assert!(
                        took <= after + SLACK,
                        "garbage noticed {took:?} after connecting"
                    );
                }
            }
            pacing("TLS garbage mid-stream", &seen, MAX);
        };
        run(2);
        let usage = Usage::now("TLS garbage mid-stream");
        let n = cycles(6);
        run(n);
        usage.check(n);
    }
}
