//! The session on a fake clock: every deadline stepped in microseconds, no socket, no sleep.
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::candidates::CONNECTION_ATTEMPT_DELAY;
use super::{Command, Session};
use crate::{Config, Error, Event, Jitter, ReadyState};

pub(super) fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A session for `url` (proportional jitter, off, so delays are exact: the default strategy,
/// decorrelated, draws every delay) and the fake clock's zero.
pub(super) fn session(url: &str, tune: impl FnOnce(&mut Config)) -> (Session, Instant) {
    let mut config = Config::new(url).seed(7);
    config.backoff.strategy = Jitter::Proportional;
    config.backoff.jitter = 0.0;
    tune(&mut config);
    let endpoint = config.validate().unwrap();
    let t0 = Instant::now();
    (Session::new(config, endpoint, t0).unwrap(), t0)
}

pub(super) fn commands(s: &mut Session) -> Vec<Command> {
    std::iter::from_fn(|| s.poll_command()).collect()
}

pub(super) fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

pub(super) fn names(events: &[Event]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            Event::Connecting { .. } => "connecting",
            Event::Connected { .. } => "connected",
            Event::ConnectFailed { .. } => "connect_failed",
            Event::Reconnecting { .. } => "reconnecting",
            Event::Disconnected { .. } => "disconnected",
            Event::Closed { .. } => "closed",
            Event::Ping { .. } => "ping",
            Event::Pong { .. } => "pong",
            Event::PongMissed { .. } => "pong_missed",
            Event::Message(_) => "message",
            Event::GaveUp { .. } => "gave_up",
            Event::Dropped { .. } => "dropped",
            Event::OutboxRestored { .. } => "outbox_restored",
            Event::NetworkChanged { .. } => "network_changed",
        })
        .collect()
}

/// The upgrade reply the request in `bytes` asks for.
pub(super) fn reply_to(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let key = text
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(": ")?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then_some(value)
        })
        .expect("request has a key");
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").into_bytes()
}

/// Runs the first attempt to an open link at `t`, with every I/O answered at once.
pub(super) fn open_at(s: &mut Session, t: Instant) {
    s.handle_timeout(t);
    let cmds = commands(s);
    assert!(
        matches!(cmds.as_slice(), [Command::Connect { id: 0, .. }]),
        "{cmds:?}"
    );
    s.handle_tcp(0, Ok(()), t);
    let request = match commands(s).as_slice() {
        [Command::Choose { id: 0 }, Command::Write(bytes)] => bytes.clone(),
        other => panic!("{other:?}"),
    };
    s.handle_connect_bytes(&reply_to(&request), t);
    assert!(matches!(commands(s).as_slice(), [Command::Open { .. }]));
    assert_eq!(names(&events(s)), ["connecting", "connected"]);
}

/// Runs the first attempt to an open link at `t0` and leaves the commands that follow the
/// `Open` (the hello, the backlog) to the test.
pub(super) fn upgrade(s: &mut Session, t0: Instant) {
    s.handle_timeout(t0);
    commands(s);
    s.handle_tcp(0, Ok(()), t0);
    let req = match commands(s).pop() {
        Some(Command::Write(b)) => b,
        other => panic!("{other:?}"),
    };
    s.handle_connect_bytes(&reply_to(&req), t0);
}

#[test]
fn an_address_literal_connects_without_the_resolver_and_upgrades() {
    let (mut s, t0) = session("ws://127.0.0.1:9/p", |_| {});
    assert_eq!(
        s.poll_timeout(),
        Some(t0),
        "the first attempt is due at once"
    );
    open_at(&mut s, t0 + us(5));
    assert_eq!(s.ready_state(t0), ReadyState::Open);
    assert_eq!(s.stats().connects, 1);
}

#[test]
fn a_name_asks_for_the_resolver_configuration_first() {
    let (mut s, t0) = session("ws://device-cloud.test:9/", |_| {});
    s.handle_timeout(t0);
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::LoadResolver]
    ));
}

#[test]
fn the_connect_deadline_fails_the_attempt_exactly_at_connect_timeout() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| {
        c.connect_timeout = ms(700);
    });
    s.handle_timeout(t0);
    commands(&mut s);
    s.handle_tcp(0, Ok(()), t0 + us(10));
    commands(&mut s); // Choose, Write: the server never answers
    events(&mut s);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(700)));
    s.handle_timeout(t0 + ms(700) - us(1));
    assert!(events(&mut s).is_empty(), "not one microsecond early");
    s.handle_timeout(t0 + ms(700));
    let ev = events(&mut s);
    assert!(
        matches!(&ev[0], Event::ConnectFailed { error: Error::ConnectTimeout(d), .. } if *d == ms(700)),
        "{ev:?}"
    );
    assert!(matches!(commands(&mut s).as_slice(), [Command::Abort]));
    match &ev[1] {
        Event::Reconnecting { delay, at, .. } => {
            assert_eq!(*delay, Duration::from_secs(1));
            assert_eq!(*at, t0 + ms(700) + Duration::from_secs(1));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.ready_state(t0 + ms(800)), ReadyState::WaitingToReconnect);
}

#[test]
fn the_next_attempt_starts_exactly_when_reconnecting_said() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    s.handle_timeout(t0);
    commands(&mut s);
    s.handle_tcp(0, Err(io::ErrorKind::ConnectionRefused.into()), t0 + us(50));
    let at = match events(&mut s).as_slice() {
        [Event::Connecting { .. }, Event::ConnectFailed { .. }, Event::Reconnecting { at, .. }] => {
            *at
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(at, t0 + us(50) + Duration::from_secs(1));
    assert!(matches!(commands(&mut s).as_slice(), [Command::Abort]));
    assert_eq!(s.poll_timeout(), Some(at));
    s.handle_timeout(at - us(1));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(at);
    match events(&mut s).as_slice() {
        [Event::Connecting {
            attempt: 2,
            at: started,
            ..
        }] => assert_eq!(*started, at),
        other => panic!("{other:?}"),
    }
}

#[test]
fn addresses_are_staggered_and_a_failure_starts_the_next_at_once() {
    let (mut s, t0) = session("ws://device-cloud.test:9/", |_| {});
    s.handle_timeout(t0);
    commands(&mut s);
    // Three addresses from /etc/hosts, two families: interleaved, v6 first as given.
    let addrs: Vec<SocketAddr> = ["[::1]:9", "[::2]:9", "127.0.0.1:9"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    s.start_tcp_for_test(addrs, t0);
    let first = commands(&mut s);
    assert!(
        matches!(first.as_slice(), [Command::Connect { id: 0, addr }] if addr.to_string() == "[::1]:9"),
        "{first:?}"
    );
    events(&mut s);
    assert_eq!(s.poll_timeout(), Some(t0 + CONNECTION_ATTEMPT_DELAY));
    s.handle_timeout(t0 + CONNECTION_ATTEMPT_DELAY - us(1));
    assert!(commands(&mut s).is_empty());
    s.handle_timeout(t0 + CONNECTION_ATTEMPT_DELAY);
    let second = commands(&mut s);
    assert!(
        matches!(second.as_slice(), [Command::Connect { id: 1, addr }] if addr.to_string() == "127.0.0.1:9"),
        "families alternate: {second:?}"
    );
    // The second fails: the third starts at once, the first keeps going.
    s.handle_tcp(
        1,
        Err(io::ErrorKind::ConnectionRefused.into()),
        t0 + ms(260),
    );
    let third = commands(&mut s);
    assert!(
        matches!(third.as_slice(), [Command::Connect { id: 2, .. }]),
        "{third:?}"
    );
    // The first connects: it wins.
    s.handle_tcp(0, Ok(()), t0 + ms(300));
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::Choose { id: 0 }, Command::Write(_)]
    ));
}

#[test]
fn the_last_address_failing_fails_the_attempt_with_its_error() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    s.handle_timeout(t0);
    commands(&mut s);
    s.handle_tcp(0, Err(io::ErrorKind::ConnectionRefused.into()), t0 + us(3));
    let ev = events(&mut s);
    assert!(
        matches!(&ev[1], Event::ConnectFailed { error: Error::Io(e), .. } if e.kind() == io::ErrorKind::ConnectionRefused),
        "{ev:?}"
    );
}

#[test]
fn a_proxy_tunnel_comes_first_and_its_tail_is_put_back() {
    let (mut s, t0) = session("ws://server.test:80/", |c| {
        c.proxy = Some("http://127.0.0.1:3128".into());
    });
    s.handle_timeout(t0);
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::Connect { addr, .. }] if addr.port() == 3128
    ));
    s.handle_tcp(0, Ok(()), t0);
    match commands(&mut s).as_slice() {
        [Command::Choose { .. }, Command::Write(connect)] => {
            assert!(connect.starts_with(b"CONNECT server.test:80 HTTP/1.1\r\n"))
        }
        other => panic!("{other:?}"),
    }
    s.handle_connect_bytes(b"HTTP/1.1 200 OK\r\n\r\nXY", t0);
    match commands(&mut s).as_slice() {
        [Command::Unread(tail), Command::Write(upgrade)] => {
            assert_eq!(tail, b"XY");
            assert!(upgrade.starts_with(b"GET / HTTP/1.1\r\n"));
        }
        other => panic!("{other:?}"),
    }
}

#[cfg(feature = "tls")]
#[test]
fn wss_runs_tls_before_the_upgrade_and_a_tls_failure_fails_the_attempt() {
    let (mut s, t0) = session("wss://127.0.0.1:9/", |_| {});
    s.handle_timeout(t0);
    commands(&mut s);
    s.handle_tcp(0, Ok(()), t0);
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::Choose { .. }, Command::StartTls { host }] if host == "127.0.0.1"
    ));
    s.handle_tls(Ok(()), t0);
    assert!(matches!(commands(&mut s).as_slice(), [Command::Write(_)]));
    let (mut s, t0) = session("wss://127.0.0.1:9/", |_| {});
    s.handle_timeout(t0);
    commands(&mut s);
    s.handle_tcp(0, Ok(()), t0);
    commands(&mut s);
    let e = Error::Tls {
        detail: "unknown certificate authority".into(),
        source: None,
    };
    s.handle_tls(Err(e), t0);
    assert!(names(&events(&mut s)).contains(&"connect_failed"));
}

#[test]
fn a_refused_upgrade_carries_retry_after_into_the_delay() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    s.handle_timeout(t0);
    commands(&mut s);
    s.handle_tcp(0, Ok(()), t0);
    commands(&mut s);
    s.handle_connect_bytes(b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\n\r\n", t0);
    let ev = events(&mut s);
    assert!(
        matches!(&ev[2], Event::Reconnecting { delay, .. } if *delay == Duration::from_secs(7)),
        "{ev:?}"
    );
}

mod coalesce;
mod dns;
mod link;
mod network;
