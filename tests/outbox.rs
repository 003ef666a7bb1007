//! Nothing lost silently: queued while offline, sent in order after the application's hello,
//! handed back when full, flushed before a clean close.

mod common;

use std::time::Duration;

use common::drive::{for_span, is, until};
use common::{refused_port, watchdog, Mode, Received, TestServer};
use wsbeat::{Client, Config, Event, Message, ReadyState, SendError};

fn config(url: &str) -> Config {
    Config::new(url)
        .ping_interval(Duration::from_secs(5))
        .backoff(Duration::from_millis(50), Duration::from_millis(100))
        .seed(5)
}

fn texts(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| match r {
            Received::Text(t) => t.clone(),
            Received::Binary(b) => format!("{b:?}"),
        })
        .collect()
}

#[test]
fn queued_messages_follow_the_hello_in_order_and_later_sends_never_overtake_them() {
    let _w = watchdog(Duration::from_secs(20), "hello_first");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url())).unwrap();
    client.set_hello(|| vec![Message::text("hello")]);
    for i in 0..5 {
        client.send(Message::text(format!("queued-{i}"))).unwrap();
    }
    assert_eq!(client.buffered_messages(), 5);
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    // Sent the moment `Connected` is seen: still behind the backlog.
    client.send(Message::text("right-after-connected")).unwrap();
    for_span(&mut client, Duration::from_millis(50));
    client.send(Message::text("newer")).unwrap();
    server.wait_for(Duration::from_secs(2), "8 messages", |s| {
        s.received().len() == 8
    });
    assert_eq!(
        texts(&server.received()),
        [
            "hello",
            "queued-0",
            "queued-1",
            "queued-2",
            "queued-3",
            "queued-4",
            "right-after-connected",
            "newer"
        ]
    );
    assert_eq!(client.buffered_amount(), 0);
}

#[test]
fn a_full_outbox_hands_the_message_back() {
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let mut cfg = config(&url);
    cfg.outbox.max_messages = 2;
    let mut client = Client::new(cfg).unwrap();
    client.send(Message::text("a")).unwrap();
    client.send(Message::text("b")).unwrap();
    assert_eq!(
        client.send(Message::text("c")),
        Err(SendError::OutboxFull(Message::text("c")))
    );
    let big = Message::binary(vec![0u8; (1 << 20) + 1]);
    assert_eq!(client.send(big.clone()), Err(SendError::TooLarge(big)));
    client.close();
    assert!(matches!(
        client.poll(Duration::ZERO),
        Some(Event::Closed { code: None })
    ));
    assert_eq!(
        client.take_unsent(),
        [Message::text("a"), Message::text("b")]
    );
    assert_eq!(
        client.send(Message::text("late")),
        Err(SendError::Closed(Message::text("late")))
    );
}

#[test]
fn close_sends_what_is_queued_then_close_1000() {
    let _w = watchdog(Duration::from_secs(20), "clean_close");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url())).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    server.freeze();
    for i in 0..3 {
        client.send(Message::text(format!("m{i}"))).unwrap();
    }
    server.unfreeze();
    client.close();
    assert_eq!(client.ready_state(), ReadyState::Closing);
    let (closed, before) = until(&mut client, Duration::from_secs(5), "closed", is("closed"));
    assert!(matches!(closed.event, Event::Closed { code: Some(1000) }));
    assert!(before.iter().any(|s| matches!(
        &s.event,
        Event::Disconnected {
            reason: wsbeat::DisconnectReason::LocalClose { code: 1000 },
            // The server's reply proves it read everything: no window of loss.
            unconfirmed: 0,
            ..
        }
    )));
    server.wait_for(Duration::from_secs(2), "close frame", |s| {
        !s.close_frames_received().is_empty()
    });
    assert_eq!(texts(&server.received()), ["m0", "m1", "m2"]);
    assert_eq!(server.close_frames_received(), [Some(1000)]);
    assert_eq!(client.ready_state(), ReadyState::Closed);
    // Nothing more: no reconnect after a local close.
    assert!(client.poll(Duration::from_millis(200)).is_none());
    assert_eq!(server.accepted(), 1);
}

#[test]
fn close_against_a_frozen_server_ends_within_close_timeout() {
    let _w = watchdog(Duration::from_secs(20), "close_timeout");
    let server = TestServer::start(Mode::Echo);
    let mut client =
        Client::new(config(&server.url()).close_timeout(Duration::from_millis(300))).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    server.freeze();
    let started = std::time::Instant::now();
    client.close_with(1001, "going away");
    until(&mut client, Duration::from_secs(5), "closed", is("closed"));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(299) && took <= Duration::from_millis(450),
        "{took:?}"
    );
}

#[test]
fn messages_sent_while_the_server_is_down_arrive_once_in_order() {
    let _w = watchdog(Duration::from_secs(30), "restart_delivery");
    let server = TestServer::start(Mode::Echo);
    let port = server.port();
    let mut client = Client::new(config(&server.url())).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    let mut sent = Vec::new();
    for i in 0..50 {
        let m = format!("before-{i}");
        client.send(Message::text(m.clone())).unwrap();
        sent.push(m);
    }
    // Sent back to back, the burst's tail waits for company until the next poll (see
    // `Config::coalesce_window`).
    client.poll(Duration::ZERO);
    server.wait_for(Duration::from_secs(2), "first batch", |s| {
        s.received().len() == 50
    });
    let mut delivered = texts(&server.received());
    server.close_all(1012, "restart");
    until(
        &mut client,
        Duration::from_secs(5),
        "disconnected",
        is("disconnected"),
    );
    server.stop();
    for i in 0..50 {
        let m = format!("offline-{i}");
        client.send(Message::text(m.clone())).unwrap();
        sent.push(m);
    }
    for_span(&mut client, Duration::from_millis(200));
    let server = TestServer::start_on(port, Mode::Echo).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "reconnected",
        is("connected"),
    );
    for_span(&mut client, Duration::from_millis(100));
    server.wait_for(Duration::from_secs(2), "second batch", |s| {
        s.received().len() == 50
    });
    delivered.extend(texts(&server.received()));
    assert_eq!(delivered, sent);
}
