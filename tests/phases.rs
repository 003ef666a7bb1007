//! `poll(timeout)` returns within `timeout + 20 ms` in every phase of the client's life: DNS,
//! TCP connect, proxy CONNECT, TLS handshake, HTTP upgrade, open, closing and waiting to
//! reconnect. Each phase is held (a peer that never answers, with the default 10 s
//! `connect_timeout`) while 20 calls of `poll(1 s)` are timed; the figures
//! (`phase <name>: max <ms> ms over 20 polls`) go in the README.
//!
//! The DNS and TCP-connect phases run in a network namespace (tests/common/netns.rs: needs root
//! and `ip`; skipped with a notice otherwise, failed under `WSBEAT_REQUIRE_PEERS=1`).
//!
//! A separate test wakes a poll blocked for 10 s from another thread ([`wsbeat::Waker`]): it
//! must return within 100 ms of the `wake()`.

mod common;

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::drive::{is, ms, name, until};
use common::netns::{self, figure, Setup, SilentDns, BLACKHOLE};
use common::proxy::{ConnectProxy, ProxyMode};
use common::{refused_port, watchdog, Mode, TestServer};
use wsbeat::{Client, Config, Event, ReadyState};

/// Calls of `poll` timed per phase.
const POLLS: usize = 20;
/// The timeout of each timed call.
const POLL_TIMEOUT: Duration = Duration::from_secs(1);
/// What a poll may take beyond its timeout (the documented bound).
const SLACK: Duration = Duration::from_millis(20);
/// The documented bound between `wake()` and the blocked poll's return.
const WAKE_BOUND: Duration = Duration::from_millis(100);
/// The default `connect_timeout`, which the connect phases keep.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Hard limit for a test's child in a network namespace (killed after it).
const CHILD_LIMIT: Duration = Duration::from_secs(45);
/// Watchdog of every test.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// The default `connect_timeout`, a short backoff, and no heartbeat within the test.
fn config(url: &str) -> Config {
    let c = Config::new(url)
        .ping_interval(Duration::from_secs(60))
        .backoff(Duration::from_millis(200), Duration::from_millis(400))
        .seed(7);
    assert_eq!(c.connect_timeout, CONNECT_TIMEOUT, "the default changed");
    c
}

/// One timed call of `poll`.
struct Poll {
    /// The client's state when the call began.
    state: ReadyState,
    began: Instant,
    ended: Instant,
    event: Option<Event>,
}

impl Poll {
    fn took(&self) -> Duration {
        self.ended - self.began
    }
}

/// `POLLS` calls of `poll(POLL_TIMEOUT)`, each timed. Fails at the first call that takes
/// longer than the timeout + [`SLACK`] (so that a blocking phase fails in seconds, not after
/// 20 blocked calls); else prints the phase's figure.
fn timed_polls(phase: &str, client: &mut Client) -> Vec<Poll> {
    let mut polls: Vec<Poll> = Vec::with_capacity(POLLS);
    for _ in 0..POLLS {
        let state = client.ready_state();
        let began = Instant::now();
        let event = client.poll(POLL_TIMEOUT);
        let ended = Instant::now();
        polls.push(Poll {
            state,
            began,
            ended,
            event,
        });
        let took = ended - began;
        if took > POLL_TIMEOUT + SLACK {
            figure(format!(
                "phase {phase}: poll {} of {POLLS} took {:.1} ms",
                polls.len(),
                took.as_secs_f64() * 1000.0
            ));
            panic!(
                "phase {phase}: a poll({POLL_TIMEOUT:?}) took {took:?}, more than the timeout + \
                 {SLACK:?}:\n  {}",
                describe(&polls)
            );
        }
    }
    let max = polls.iter().map(Poll::took).max().expect("polls");
    figure(format!(
        "phase {phase}: max {:.1} ms over {POLLS} polls",
        max.as_secs_f64() * 1000.0
    ));
    polls
}

/// Every call, for assertion messages: duration, state at the start, event.
fn describe(polls: &[Poll]) -> String {
    polls
        .iter()
        .map(|p| {
            format!(
                "{:.1} ms {:?} -> {}",
                ms(p.ended, p.began),
                p.state,
                p.event.as_ref().map_or("none", name)
            )
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// How many calls began in `state`.
fn began_in(polls: &[Poll], state: ReadyState) -> usize {
    polls.iter().filter(|p| p.state == state).count()
}

/// The client stayed in a connect attempt: no link opened, most calls began while connecting,
/// and (`failures_only_by_timeout`) no attempt failed long before `connect_timeout` had passed
/// since it started (a refusal, reset or reply ends one in milliseconds): the peer really
/// never answered.
fn assert_stalled(phase: &str, polls: &[Poll], failures_only_by_timeout: bool) {
    assert!(
        !polls
            .iter()
            .any(|p| matches!(p.event, Some(Event::Connected { .. }))),
        "phase {phase}: a link opened:\n  {}",
        describe(polls)
    );
    assert!(
        began_in(polls, ReadyState::Connecting) >= POLLS / 2,
        "phase {phase}: most polls should begin while connecting:\n  {}",
        describe(polls)
    );
    if !failures_only_by_timeout {
        return;
    }
    let mut started = None;
    for p in polls {
        match &p.event {
            Some(Event::Connecting { at, .. }) => started = Some(*at),
            Some(Event::ConnectFailed { error, .. }) => {
                let started = started.expect("ConnectFailed before any Connecting");
                assert!(
                    p.ended >= started + (CONNECT_TIMEOUT - POLL_TIMEOUT),
                    "phase {phase}: the attempt failed {:.1} ms after it started, before the \
                     connect timeout ({error}): the peer answered:\n  {}",
                    ms(p.ended, started),
                    describe(polls)
                );
            }
            _ => {}
        }
    }
}

/// A client that stays in a connect phase (the peer never answers): `POLLS` timed calls.
fn stalled_connect_phase(phase: &str, config: Config, failures_only_by_timeout: bool) {
    let mut client = Client::new(config).expect("valid config");
    let polls = timed_polls(phase, &mut client);
    assert_stalled(phase, &polls, failures_only_by_timeout);
}

#[test]
fn poll_returns_within_its_timeout_while_the_nameserver_never_answers() {
    let _w = watchdog(TEST_LIMIT, "dns phase");
    let setup = Setup {
        resolv_conf: Some("nameserver 127.0.0.1\n".into()),
        blackhole: false,
    };
    netns::run(&setup, CHILD_LIMIT, |_| {
        let dns = SilentDns::start().expect("bind 127.0.0.1:53 in the namespace");
        // An IP literal and a name from /etc/hosts need no DNS: they still connect.
        let server = TestServer::start(Mode::Echo);
        for host in ["127.0.0.1", "localhost"] {
            let url = format!("ws://{host}:{}/", server.port());
            let mut client = Client::new(config(&url)).expect("valid config");
            let what = format!("connected to {url}");
            until(&mut client, Duration::from_secs(5), &what, is("connected"));
        }
        assert_eq!(
            dns.queries(),
            0,
            "an IP literal or localhost asked DNS: {:?}",
            dns.names()
        );
        // Not in /etc/hosts: glibc asks 127.0.0.1:53, which never answers (5 s x 2 tries).
        stalled_connect_phase("dns", config("ws://device-cloud.invalid-test:9/"), false);
        assert!(
            dns.queries() > 0,
            "no query reached the silent nameserver: the phase was not DNS"
        );
    });
}

#[test]
fn poll_returns_within_its_timeout_while_the_tcp_connect_is_unanswered() {
    let _w = watchdog(TEST_LIMIT, "tcp_connect phase");
    let setup = Setup {
        resolv_conf: None,
        blackhole: true,
    };
    netns::run(&setup, CHILD_LIMIT, |_| {
        // The SYN goes into the blackhole device and is dropped inside the namespace.
        let url = format!("ws://{BLACKHOLE}:80/");
        stalled_connect_phase("tcp_connect", config(&url), true);
    });
}

#[test]
fn poll_returns_within_its_timeout_while_the_proxy_never_answers_connect() {
    let _w = watchdog(TEST_LIMIT, "proxy phase");
    let proxy = ConnectProxy::start(ProxyMode::Silent);
    let mut c = config(&format!("ws://127.0.0.1:{}/", refused_port()));
    c.proxy = Some(format!("http://127.0.0.1:{}", proxy.port()));
    stalled_connect_phase("proxy", c, true);
    assert!(
        !proxy.requests().is_empty(),
        "the proxy never read a CONNECT request"
    );
    assert_eq!(proxy.tunnels(), 0);
}

#[cfg(feature = "tls")]
#[test]
fn poll_returns_within_its_timeout_while_the_tls_handshake_is_unanswered() {
    use common::tls::{FrontMode, FrontOptions, TlsFront};
    let _w = watchdog(TEST_LIMIT, "tls phase");
    let front = TlsFront::start(
        refused_port(),
        FrontOptions {
            mode: FrontMode::StallMidHandshake,
            ..FrontOptions::default()
        },
    );
    let url = format!("wss://127.0.0.1:{}/", front.port());
    stalled_connect_phase("tls", config(&url), true);
    assert!(
        !front.hello_bytes().is_empty(),
        "the server never read a ClientHello"
    );
    assert_eq!(front.handshakes(), 0);
}

#[test]
fn poll_returns_within_its_timeout_while_the_upgrade_is_unanswered() {
    let _w = watchdog(TEST_LIMIT, "upgrade phase");
    let server = TestServer::start(Mode::SilentHandshake);
    stalled_connect_phase("upgrade", config(&server.url()), true);
    assert!(
        !server.request_headers().is_empty(),
        "the server never read an upgrade request"
    );
    assert_eq!(server.handshakes(), 0);
}

#[test]
fn poll_returns_within_its_timeout_while_the_link_is_open_and_idle() {
    let _w = watchdog(TEST_LIMIT, "open phase");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url())).expect("valid config");
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    let polls = timed_polls("open", &mut client);
    assert_eq!(
        began_in(&polls, ReadyState::Open),
        POLLS,
        "the link did not stay open:\n  {}",
        describe(&polls)
    );
}

#[test]
fn poll_returns_within_its_timeout_while_closing_and_the_server_never_replies() {
    let _w = watchdog(TEST_LIMIT, "closing phase");
    let server = TestServer::start(Mode::Echo);
    let close_timeout = Duration::from_secs(5);
    let mut client =
        Client::new(config(&server.url()).close_timeout(close_timeout)).expect("valid config");
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    // The server stops reading and answering: the Close reply never comes.
    server.freeze();
    let closed_at = Instant::now();
    client.close();
    let polls = timed_polls("closing", &mut client);
    assert_eq!(polls[0].state, ReadyState::Closing);
    let closed = polls
        .iter()
        .find(|p| matches!(p.event, Some(Event::Closed { .. })))
        .unwrap_or_else(|| panic!("no Closed event:\n  {}", describe(&polls)));
    assert!(
        closed.ended >= closed_at + close_timeout,
        "Closed after {:.1} ms, before the close timeout: did the server reply?",
        ms(closed.ended, closed_at)
    );
    // About close_timeout / POLL_TIMEOUT calls begin before the close timeout.
    assert!(
        began_in(&polls, ReadyState::Closing) >= 4,
        "too few polls while closing:\n  {}",
        describe(&polls)
    );
}

#[test]
fn poll_returns_within_its_timeout_while_waiting_to_reconnect() {
    let _w = watchdog(TEST_LIMIT, "waiting_to_reconnect phase");
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let delay = Duration::from_secs(5);
    let mut client = Client::new(config(&url).backoff(delay, delay)).expect("valid config");
    let polls = timed_polls("waiting_to_reconnect", &mut client);
    // Refused at once: most of the time goes into waiting, never into an early attempt.
    let mut due = None;
    for p in &polls {
        match &p.event {
            Some(Event::Reconnecting { at, .. }) => due = Some(*at),
            Some(Event::Connecting { at, attempt, .. }) => {
                if let Some(due) = due.take() {
                    assert!(*at >= due, "attempt {attempt} started before it was due");
                }
            }
            _ => {}
        }
    }
    assert!(
        began_in(&polls, ReadyState::WaitingToReconnect) >= 8,
        "too few polls while waiting:\n  {}",
        describe(&polls)
    );
}

/// Starts a thread that, once `in_phase()` holds (within 5 s) and a further 200 ms have
/// passed, calls `wake()`; meanwhile polls with a 10 s timeout. The poll that is blocked at
/// the wake must return within [`WAKE_BOUND`] of it.
fn wake_blocked_poll(phase: &str, client: &mut Client, in_phase: impl Fn() -> bool + Sync) {
    let waker = client.waker();
    let woke_at: Mutex<Option<Instant>> = Mutex::new(None);
    let woke = || *woke_at.lock().unwrap_or_else(|e| e.into_inner());
    thread::scope(|s| {
        s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !in_phase() {
                assert!(Instant::now() < deadline, "{phase}: phase not reached");
                thread::sleep(Duration::from_millis(5));
            }
            // Long enough for the poll to be blocked in the phase.
            thread::sleep(Duration::from_millis(200));
            *woke_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            waker.wake();
        });
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let event = client.poll(Duration::from_secs(10));
            let returned = Instant::now();
            if let Some(woke) = woke() {
                let late = returned.saturating_duration_since(woke);
                figure(format!(
                    "wake {phase}: poll returned {:.1} ms after wake() (with {})",
                    late.as_secs_f64() * 1000.0,
                    event.as_ref().map_or("none", name)
                ));
                assert!(
                    late <= WAKE_BOUND,
                    "{phase}: a poll blocked at wake() returned {late:?} after it (bound {WAKE_BOUND:?})"
                );
                return;
            }
            // An event before the wake (e.g. Connecting): poll again.
            assert!(returned < end, "{phase}: no wake within 15 s");
        }
    });
}

#[test]
fn a_wake_from_another_thread_ends_a_blocked_poll_within_100_ms() {
    let _w = watchdog(TEST_LIMIT, "wake");

    // HTTP upgrade: the server read the request and never answers.
    let server = TestServer::start(Mode::SilentHandshake);
    let mut client = Client::new(config(&server.url())).expect("valid config");
    wake_blocked_poll("upgrade", &mut client, || {
        !server.request_headers().is_empty()
    });
    drop((client, server));

    // TLS handshake: the server read the ClientHello and never answers.
    #[cfg(feature = "tls")]
    {
        use common::tls::{FrontMode, FrontOptions, TlsFront};
        let front = TlsFront::start(
            refused_port(),
            FrontOptions {
                mode: FrontMode::StallMidHandshake,
                ..FrontOptions::default()
            },
        );
        let url = format!("wss://127.0.0.1:{}/", front.port());
        let mut client = Client::new(config(&url)).expect("valid config");
        wake_blocked_poll("tls", &mut client, || !front.hello_bytes().is_empty());
    }

    // Proxy CONNECT: the proxy read the request and never answers.
    let proxy = ConnectProxy::start(ProxyMode::Silent);
    let mut c = config(&format!("ws://127.0.0.1:{}/", refused_port()));
    c.proxy = Some(format!("http://127.0.0.1:{}", proxy.port()));
    let mut client = Client::new(c).expect("valid config");
    wake_blocked_poll("proxy", &mut client, || !proxy.requests().is_empty());
    drop((client, proxy));

    // Waiting to reconnect: refused, next attempt in 5 s.
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let delay = Duration::from_secs(5);
    let mut client = Client::new(config(&url).backoff(delay, delay)).expect("valid config");
    until(
        &mut client,
        Duration::from_secs(5),
        "reconnecting",
        is("reconnecting"),
    );
    assert_eq!(client.ready_state(), ReadyState::WaitingToReconnect);
    wake_blocked_poll("waiting_to_reconnect", &mut client, || true);
    assert_eq!(client.ready_state(), ReadyState::WaitingToReconnect);
}
