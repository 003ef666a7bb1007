//! Dead-link detection over real loopback sockets, asserted against the documented bound:
//! `ping_interval + max_missed_pongs × pong_timeout` after the last inbound byte.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::drive::{for_span, is, ms, names, until};
use common::{watchdog, Mode, TestServer};
use wsbeat::{AppHeartbeat, Client, Config, DisconnectReason, Event, Message};

const SLACK_MS: f64 = 100.0;

fn config(url: &str, interval: u64, timeout: u64, max: u32) -> Config {
    Config::new(url)
        .ping_interval(Duration::from_millis(interval))
        .pong_timeout(Duration::from_millis(timeout))
        .max_missed_pongs(max)
        .backoff(Duration::from_millis(100), Duration::from_millis(200))
        .seed(1)
}

/// The verdict `dead` came `silent` ms after the last inbound byte the test saw: at the bound
/// (never before it by the library's own measure, at most `SLACK_MS` after by the test's),
/// after two pings that both went unanswered.
fn assert_dead_at_bound(
    dead: &common::drive::Seen,
    silent: f64,
    bound_ms: f64,
    between: &[common::drive::Seen],
) {
    let library_silence = common::drive::library_silence_ms(&dead.event);
    assert!(
        library_silence >= bound_ms,
        "detected after {library_silence:.1} ms, before the {bound_ms} ms bound"
    );
    assert!(
        silent <= bound_ms + SLACK_MS,
        "detected after {silent:.1} ms, bound {bound_ms} ms"
    );
    assert_eq!(
        names(between),
        ["ping", "pong_missed", "ping", "pong_missed"],
        "{:?}",
        names(between)
    );
}

#[test]
fn frozen_server_is_detected_at_the_bound_never_earlier() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "frozen_server");
    let server = TestServer::start(Mode::Echo);
    let cfg = config(&server.url(), 300, 200, 2);
    let bound_ms = cfg.heartbeat.detection_bound().as_secs_f64() * 1000.0;
    let mut client = Client::new(cfg).unwrap();
    // A pong marks the last inbound byte; freeze right after it.
    let (pong, _) = until(
        &mut client,
        Duration::from_secs(5),
        "first pong",
        is("pong"),
    );
    server.freeze();
    let (dead, between) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnect",
        is("disconnected"),
    );
    assert_dead_at_bound(&dead, ms(dead.at, pong.at), bound_ms, &between);
    match dead.event {
        Event::Disconnected {
            reason: DisconnectReason::HeartbeatTimeout { missed: 2, .. },
            ..
        } => {}
        other => panic!("unexpected {other:?}"),
    }
    let stats = client.stats();
    assert_eq!((stats.heartbeat_timeouts, stats.pongs_missed), (1, 2));
}

/// While messages flow, the wait for the next one is a blocking read with a coarse timeout
/// (one system call per message instead of two); a server that freezes mid-stream must still
/// be declared dead at the bound, not at whatever the coarse timeout rounds to.
#[test]
fn a_server_frozen_while_messages_flow_is_detected_at_the_bound() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "frozen_mid_stream");
    let server = TestServer::start(Mode::Echo);
    // A long interval, so the blocking read's timeout is long too (about 0.4 s).
    let cfg = config(&server.url(), 1000, 300, 2);
    let bound_ms = cfg.heartbeat.detection_bound().as_secs_f64() * 1000.0;
    let mut client = Client::new(cfg).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    let mut last_echo = Instant::now();
    for i in 0..200u32 {
        client.send(Message::text(format!("m{i}"))).unwrap();
        let (echo, _) = until(&mut client, Duration::from_secs(5), "echo", is("message"));
        last_echo = echo.at;
    }
    server.freeze();
    let (dead, between) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnect",
        is("disconnected"),
    );
    assert_dead_at_bound(&dead, ms(dead.at, last_echo), bound_ms, &between);
}

#[test]
fn idle_healthy_link_pings_once_per_interval_and_stays_up() {
    let _w = watchdog(Duration::from_secs(20), "idle_link");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url(), 200, 200, 2)).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    let seen = for_span(&mut client, Duration::from_millis(1100));
    let pings = seen.iter().filter(|s| is("ping")(&s.event)).count();
    let pongs = seen.iter().filter(|s| is("pong")(&s.event)).count();
    assert!(
        (4..=6).contains(&pings),
        "{pings} pings in 1.1 s at a 200 ms interval"
    );
    assert_eq!(pings, pongs, "{:?}", names(&seen));
    assert!(seen
        .iter()
        .all(|s| !is("disconnected")(&s.event) && !is("pong_missed")(&s.event)));
    let rtt = client.stats().smoothed_rtt.expect("rtt measured");
    assert!(rtt < Duration::from_millis(50), "loopback rtt {rtt:?}");
    assert_eq!(server.pings_received(), pings);
}

#[test]
fn a_slow_large_message_keeps_the_link_alive_and_arrives_whole() {
    // Liveness is bytes, not whole messages; and a read timeout inside a frame must resume.
    let _w = watchdog(Duration::from_secs(20), "slow_message");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let frame = {
        let f = tungstenite::protocol::frame::Frame::message(
            payload.clone(),
            tungstenite::protocol::frame::coding::OpCode::Data(
                tungstenite::protocol::frame::coding::Data::Binary,
            ),
            true,
        );
        let mut out = Vec::new();
        f.format(&mut out).unwrap();
        out
    };
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(tcp).unwrap();
        // 40 chunks, 40 ms apart: 1.6 s in all, far beyond the 400 ms detection bound.
        for chunk in frame.chunks(frame.len() / 40 + 1) {
            ws.get_mut().write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(40));
        }
        std::thread::sleep(Duration::from_millis(300));
    });
    let mut client = Client::new(config(&url, 200, 100, 2)).unwrap();
    let (msg, before) = until(
        &mut client,
        Duration::from_secs(5),
        "the message",
        is("message"),
    );
    assert!(
        !names(&before).contains(&"disconnected"),
        "{:?}",
        names(&before)
    );
    assert!(
        !names(&before).contains(&"pong_missed"),
        "{:?}",
        names(&before)
    );
    match msg.event {
        Event::Message(Message::Binary(b)) => assert!(b == payload, "payload corrupted"),
        other => panic!("unexpected {other:?}"),
    }
    server.join().unwrap();
}

#[test]
fn a_pong_waiting_in_the_socket_counts_after_a_long_pause() {
    let _w = watchdog(Duration::from_secs(20), "buffered_pong");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url(), 200, 200, 1)).unwrap();
    until(&mut client, Duration::from_secs(5), "ping", is("ping"));
    // The application does not poll for 2.5 x the 400 ms bound; the pong waits in the socket.
    std::thread::sleep(Duration::from_secs(1));
    let (next, _) = until(&mut client, Duration::from_secs(2), "any event", |_| true);
    assert!(
        is("pong")(&next.event),
        "first event after the pause: {:?}",
        next.event
    );
    let seen = for_span(&mut client, Duration::from_millis(300));
    assert!(
        !names(&seen).contains(&"disconnected"),
        "{:?}",
        names(&seen)
    );
}

#[test]
fn server_pings_are_answered_while_the_application_sends_nothing() {
    let _w = watchdog(Duration::from_secs(20), "server_ping");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url(), 5000, 1000, 2)).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    let sent = Instant::now();
    server.ping_all(b"are-you-there");
    loop {
        client.poll(Duration::from_millis(10));
        if server
            .pongs_received()
            .iter()
            .any(|p| p == b"are-you-there")
        {
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_millis(500),
            "no pong to the server's ping"
        );
    }
    assert!(
        sent.elapsed() < Duration::from_millis(100),
        "pong took {:?}",
        sent.elapsed()
    );
}

#[test]
fn app_heartbeat_reply_counts_as_pong_and_is_not_delivered() {
    let _w = watchdog(Duration::from_secs(20), "app_heartbeat");
    // The echo server sends our "hb" back: that is the configured reply.
    let server = TestServer::start(Mode::Echo);
    let cfg = config(&server.url(), 200, 200, 2)
        .app_heartbeat(AppHeartbeat::new(Message::text("hb"), Message::text("hb")));
    let mut client = Client::new(cfg).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    client.send(Message::text("data")).unwrap();
    let seen = for_span(&mut client, Duration::from_millis(700));
    let messages: Vec<_> = seen
        .iter()
        .filter_map(|s| match &s.event {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        messages,
        [Message::text("data")],
        "heartbeat replies leaked: {:?}",
        names(&seen)
    );
    assert!(
        seen.iter()
            .any(|s| matches!(s.event, Event::Pong { rtt: Some(_), .. })),
        "{:?}",
        names(&seen)
    );
    assert_eq!(
        server.pings_received(),
        0,
        "no Ping frames with an application heartbeat"
    );
    assert!(server
        .received()
        .contains(&common::Received::Text("hb".into())));
    // And a frozen server is still detected at the bound.
    let (pong, _) = until(&mut client, Duration::from_secs(5), "pong", is("pong"));
    server.freeze();
    let (dead, _) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnect",
        is("disconnected"),
    );
    let silent = ms(dead.at, pong.at);
    assert!(
        (595.0..=600.0 + SLACK_MS).contains(&silent),
        "detected after {silent:.1} ms (bound 600)"
    );
}

#[test]
fn heartbeat_state_does_not_leak_into_the_next_link() {
    let _w = watchdog(Duration::from_secs(20), "no_leak");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url(), 300, 200, 2)).unwrap();
    until(&mut client, Duration::from_secs(5), "pong", is("pong"));
    server.freeze();
    until(
        &mut client,
        Duration::from_secs(5),
        "disconnect",
        is("disconnected"),
    );
    server.drop_all();
    server.unfreeze();
    let (connected, _) = until(
        &mut client,
        Duration::from_secs(5),
        "reconnect",
        is("connected"),
    );
    // The new link waits a full ping interval before its first ping, and never misses.
    let (ping, before) = until(
        &mut client,
        Duration::from_secs(5),
        "first ping",
        is("ping"),
    );
    assert!(before.is_empty(), "{:?}", names(&before));
    let first_ping = ms(ping.at, connected.at);
    assert!(
        first_ping >= 295.0,
        "first ping of the new link after {first_ping:.1} ms"
    );
    let seen = for_span(&mut client, Duration::from_millis(1200));
    assert!(!names(&seen).contains(&"pong_missed"), "{:?}", names(&seen));
    assert!(
        !names(&seen).contains(&"disconnected"),
        "{:?}",
        names(&seen)
    );
}
