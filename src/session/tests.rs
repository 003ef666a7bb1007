//! The session on a fake clock: every deadline stepped in microseconds, no socket, no sleep.
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tungstenite::Message as Wire;

use super::connect::CONNECTION_ATTEMPT_DELAY;
use super::{Command, Session};
use crate::{Config, DisconnectReason, Error, Event, Message, ReadyState};

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A session for `url` (jitter off, so delays are exact) and the fake clock's zero.
fn session(url: &str, tune: impl FnOnce(&mut Config)) -> (Session, Instant) {
    let mut config = Config::new(url).seed(7);
    config.backoff.jitter = 0.0;
    tune(&mut config);
    let endpoint = config.validate().unwrap();
    let t0 = Instant::now();
    (Session::new(config, endpoint, t0).unwrap(), t0)
}

fn commands(s: &mut Session) -> Vec<Command> {
    std::iter::from_fn(|| s.poll_command()).collect()
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn names(events: &[Event]) -> Vec<&'static str> {
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
        })
        .collect()
}

/// The upgrade reply the request in `bytes` asks for.
fn reply_to(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("sec-websocket-key: "))
        .expect("request has a key");
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").into_bytes()
}

/// Runs the first attempt to an open link at `t`, with every I/O answered at once.
fn open_at(s: &mut Session, t: Instant) {
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
    // The driver's next round: the hello window closes.
    s.handle_timeout(t);
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

#[test]
fn a_stalled_write_kills_the_link_exactly_at_write_timeout_without_progress() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| c.write_timeout = ms(500));
    open_at(&mut s, t0);
    assert!(matches!(s.send(Message::text("a")), Ok(Some(_))));
    // The socket is full at t0 + 1 ms; progress at +300 ms moves the stall's start.
    s.handle_written(0, 100, Some(t0 + ms(1)));
    assert!(s.link_stalled());
    assert!(
        matches!(s.send(Message::text("b")), Ok(None)),
        "queued while stalled"
    );
    s.handle_written(0, 200, Some(t0 + ms(300)));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(800)));
    s.handle_timeout(t0 + ms(800) - us(1));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(t0 + ms(800));
    let ev = events(&mut s);
    match &ev[0] {
        Event::Disconnected {
            reason: DisconnectReason::Io(Error::Io(e)),
            ..
        } => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
        other => panic!("{other:?}"),
    }
    assert!(matches!(commands(&mut s).as_slice(), [Command::Release]));
    assert_eq!(s.buffered_messages(), 2, "both kept for the next link");
}

#[test]
fn a_close_without_reply_ends_exactly_at_close_timeout() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| c.close_timeout = ms(300));
    open_at(&mut s, t0);
    s.send(Message::text("queued")).unwrap();
    let t1 = t0 + ms(10);
    s.close(1000, "bye", t1);
    assert_eq!(s.ready_state(t1), ReadyState::Closing);
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::SendClose { code: 1000, .. }]
    ));
    s.handle_written(1, 50, None);
    assert_eq!(s.poll_timeout(), Some(t1 + ms(300)));
    s.handle_timeout(t1 + ms(300) - us(1));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(t1 + ms(300));
    assert_eq!(names(&events(&mut s)), ["disconnected", "closed"]);
    assert!(s.is_stopped());
}

#[test]
fn the_server_close_reply_proves_everything_sent_before_it() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    open_at(&mut s, t0);
    s.send(Message::text("x")).unwrap();
    s.handle_written(1, 10, None);
    s.close(1000, "", t0);
    commands(&mut s);
    s.handle_message(Wire::Close(None), t0 + ms(2));
    match events(&mut s).as_slice() {
        [Event::Disconnected { unconfirmed, .. }, Event::Closed { code: Some(1000) }] => {
            assert_eq!(*unconfirmed, 0)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn closing_while_connecting_aborts_the_attempt_at_once() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    s.handle_timeout(t0);
    commands(&mut s);
    s.close(1000, "", t0 + ms(1));
    assert!(matches!(commands(&mut s).as_slice(), [Command::Abort]));
    assert_eq!(names(&events(&mut s)), ["connecting", "closed"]);
    assert!(s.is_stopped());
}

#[test]
fn the_heartbeat_declares_the_link_dead_at_the_bound_and_reconnects() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| {
        c.heartbeat.ping_interval = ms(100);
        c.heartbeat.pong_timeout = ms(50);
        c.heartbeat.max_missed_pongs = 2;
    });
    open_at(&mut s, t0);
    let mut pings = Vec::new();
    let dead_at = loop {
        let t = s.poll_timeout().unwrap();
        s.handle_timeout(t);
        let ev = events(&mut s);
        for c in commands(&mut s) {
            if let Command::Ping { seq } = c {
                pings.push((seq, t - t0));
            }
        }
        if names(&ev).contains(&"disconnected") {
            break t;
        }
    };
    assert_eq!(pings, [(0, ms(100)), (1, ms(150))]);
    assert_eq!(dead_at, t0 + ms(200), "ping_interval + 2 x pong_timeout");
}

#[test]
fn a_probe_ping_proves_delivery_while_the_server_keeps_talking() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| {
        c.heartbeat.ping_interval = ms(100);
    });
    open_at(&mut s, t0);
    assert!(matches!(s.send(Message::text("m")), Ok(Some(_))));
    s.handle_written(1, 20, None);
    // The server talks every 30 ms, so no liveness ping is ever due.
    let mut probe = None;
    for k in 1..=6u64 {
        let t = t0 + ms(30 * k);
        s.handle_inbound(t);
        s.handle_timeout(t);
        if let Some(Command::Ping { seq }) = commands(&mut s).into_iter().next() {
            probe = Some((seq, t - t0));
            s.handle_written(1, 30, None);
            break;
        }
    }
    assert_eq!(
        probe,
        Some((0, ms(120))),
        "first wake after one ping interval"
    );
    events(&mut s);
    let mut pong = vec![0u8; 8];
    pong.copy_from_slice(&0u64.to_be_bytes());
    s.handle_message(Wire::Pong(pong.into()), t0 + ms(121));
    assert!(names(&events(&mut s)).contains(&"pong"));
    s.close(1000, "", t0 + ms(130));
    commands(&mut s);
    s.handle_link_error(
        DisconnectReason::Io(Error::Io(io::ErrorKind::BrokenPipe.into())),
        t0 + ms(131),
    );
    assert!(
        matches!(
            events(&mut s).first(),
            Some(Event::Disconnected { unconfirmed: 0, .. })
        ),
        "the pong proved the message read"
    );
}

#[test]
fn the_outbox_waits_for_the_hello_then_flows_in_order() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    s.send(Message::text("offline-1")).unwrap();
    s.send(Message::text("offline-2")).unwrap();
    s.handle_timeout(t0);
    commands(&mut s);
    s.handle_tcp(0, Ok(()), t0);
    let req = match commands(&mut s).pop() {
        Some(Command::Write(b)) => b,
        other => panic!("{other:?}"),
    };
    s.handle_connect_bytes(&reply_to(&req), t0);
    commands(&mut s);
    events(&mut s);
    // In reply to Connected: the hello goes first, straight out.
    assert!(matches!(s.send(Message::text("hello")), Ok(Some(_))));
    assert!(
        s.poll_command().is_none(),
        "the backlog waits for the next round"
    );
    s.handle_timeout(t0 + us(1));
    let sent: Vec<String> = commands(&mut s)
        .into_iter()
        .filter_map(|c| match c {
            Command::Send(Wire::Text(t)) => Some(t.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(sent, ["offline-1", "offline-2"]);
}

fn resolver(resolv_conf: &str, hosts: &str) -> crate::dns::SystemConfig {
    crate::dns::SystemConfig::parse(resolv_conf, hosts)
}

#[test]
fn an_etc_hosts_name_never_touches_the_network() {
    let (mut s, t0) = session("ws://device-cloud.test:9/", |_| {});
    s.handle_timeout(t0);
    commands(&mut s);
    s.handle_resolver(
        &resolver("nameserver 127.0.0.53\n", "10.1.2.3 device-cloud.test\n"),
        t0,
    );
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::Connect { addr, .. }] if addr.to_string() == "10.1.2.3:9"
    ));
}

#[test]
fn an_unanswered_lookup_retries_per_resolv_conf_then_fails_the_attempt() {
    let (mut s, t0) = session("ws://device-cloud.test:9/", |_| {});
    s.handle_timeout(t0);
    commands(&mut s);
    events(&mut s);
    s.handle_resolver(
        &resolver(
            "nameserver 127.0.0.53\nnameserver 127.0.0.54\noptions timeout:1 attempts:2\n",
            "",
        ),
        t0,
    );
    let first: Vec<_> = commands(&mut s)
        .into_iter()
        .map(|c| match c {
            Command::SendDatagram(d) => d.to.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        first,
        ["127.0.0.53:53", "127.0.0.53:53"],
        "A and AAAA together"
    );
    // Each try waits `timeout`, then the next server; two rounds over two servers: 4 s.
    let mut retries = Vec::new();
    loop {
        let t = s.poll_timeout().unwrap();
        s.handle_timeout(t);
        let sent = commands(&mut s)
            .iter()
            .filter(|c| matches!(c, Command::SendDatagram(_)))
            .count();
        if sent > 0 {
            retries.push((t - t0, sent));
        }
        let ev = events(&mut s);
        if let Some(Event::ConnectFailed { error, .. }) = ev.first() {
            assert!(
                matches!(error, Error::Resolve { host, .. } if host == "device-cloud.test"),
                "{error:?}"
            );
            assert_eq!(t - t0, Duration::from_secs(4));
            break;
        }
        assert!(t - t0 < Duration::from_secs(5), "{retries:?}");
    }
    assert_eq!(
        retries,
        [
            (Duration::from_secs(1), 2),
            (Duration::from_secs(2), 2),
            (Duration::from_secs(3), 2)
        ]
    );
}

#[test]
fn the_connect_timeout_caps_a_slow_resolver() {
    let (mut s, t0) = session("ws://device-cloud.test:9/", |c| {
        c.connect_timeout = ms(2500);
    });
    s.handle_timeout(t0);
    commands(&mut s);
    events(&mut s);
    s.handle_resolver(&resolver("nameserver 127.0.0.53\n", ""), t0);
    commands(&mut s);
    // glibc's defaults (5 s, 2 attempts) would take 10 s: the attempt's deadline comes first.
    assert_eq!(s.poll_timeout(), Some(t0 + ms(2500)));
    s.handle_timeout(t0 + ms(2500));
    assert!(matches!(
        events(&mut s).first(),
        Some(Event::ConnectFailed {
            error: Error::ConnectTimeout(_),
            ..
        })
    ));
}
