//! Hostile or broken servers: each gives an error event and a reconnect after the backoff,
//! never a panic, a hang or a large allocation.

mod common;

use std::time::Duration;

use common::drive::{is, names, until};
use common::{watchdog, Mode, TestServer};
use wsbeat::{Client, Config, DisconnectReason, Event, Message};

fn config(url: &str) -> Config {
    Config::new(url)
        .ping_interval(Duration::from_secs(5))
        .backoff(Duration::from_millis(100), Duration::from_millis(200))
        .max_message_size(64 * 1024)
        .seed(3)
}

/// Connects to a server sending `raw` after the handshake and returns the disconnect reason
/// kind, checking that a reconnect is scheduled after it.
fn reason_for_raw(raw: Vec<u8>) -> (String, String) {
    let server = TestServer::start(Mode::RawAfterHandshake(raw));
    let mut client = Client::new(config(&server.url())).unwrap();
    let (dead, _) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnected",
        is("disconnected"),
    );
    let (next, _) = until(&mut client, Duration::from_secs(5), "reconnecting", |_| {
        true
    });
    assert!(is("reconnecting")(&next.event), "{:?}", next.event);
    match dead.event {
        Event::Disconnected { reason, .. } => (reason.kind().to_string(), reason.to_string()),
        _ => unreachable!(),
    }
}

#[test]
fn garbage_bytes_are_a_protocol_error_and_a_reconnect() {
    let _w = watchdog(Duration::from_secs(20), "garbage");
    // 0xff: FIN + reserved bits + reserved opcode, then a mask bit and a 64-bit length.
    let mut raw = vec![0xffu8; 64];
    raw.extend_from_slice(b"GARBAGE HTTP/1.1 200 OK\r\n\r\n");
    let (kind, detail) = reason_for_raw(raw);
    assert_eq!(kind, "protocol_error", "{detail}");
}

#[test]
fn invalid_utf8_text_is_a_protocol_error() {
    let _w = watchdog(Duration::from_secs(20), "utf8");
    let (kind, detail) = reason_for_raw(vec![0x81, 0x02, 0xc3, 0x28]);
    assert_eq!(kind, "protocol_error", "{detail}");
}

#[test]
fn a_frame_over_the_limit_is_refused_before_allocation() {
    let _w = watchdog(Duration::from_secs(20), "oversize");
    // Header announcing 1 MiB (limit 64 KiB); no payload follows.
    let (kind, detail) = reason_for_raw(vec![0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 0]);
    assert_eq!(kind, "protocol_error", "{detail}");
    // A 2^63-length header.
    let (kind, detail) = reason_for_raw(vec![
        0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    assert_eq!(kind, "protocol_error", "{detail}");
}

#[test]
fn an_oversized_message_from_the_echo_path_is_a_protocol_error() {
    let _w = watchdog(Duration::from_secs(20), "oversize_message");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url())).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    server.send_all(tungstenite::Message::binary(vec![0u8; 100 * 1024]));
    let (dead, _) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnected",
        is("disconnected"),
    );
    assert!(
        matches!(
            &dead.event,
            Event::Disconnected {
                reason: DisconnectReason::Protocol(_),
                ..
            }
        ),
        "{:?}",
        dead.event
    );
}

#[test]
fn masked_frames_and_reserved_opcodes_are_protocol_errors() {
    let _w = watchdog(Duration::from_secs(20), "masked");
    // A masked text frame from a server violates RFC 6455 5.1.
    let (kind, _) = reason_for_raw(vec![0x81, 0x81, 1, 2, 3, 4, b'a' ^ 1]);
    assert_eq!(kind, "protocol_error");
    // Reserved data opcode 0x3.
    let (kind, _) = reason_for_raw(vec![0x83, 0x00]);
    assert_eq!(kind, "protocol_error");
}

#[test]
fn abrupt_drop_is_an_io_error_and_a_reconnect() {
    let _w = watchdog(Duration::from_secs(20), "drop");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url())).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    server.drop_all();
    let (dead, _) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnected",
        is("disconnected"),
    );
    assert!(
        matches!(
            &dead.event,
            Event::Disconnected {
                reason: DisconnectReason::Io(_),
                ..
            }
        ),
        "{:?}",
        dead.event
    );
    until(
        &mut client,
        Duration::from_secs(5),
        "reconnected",
        is("connected"),
    );
}

#[test]
fn a_server_that_never_reads_is_a_dead_link_and_keeps_the_unsent_messages() {
    let _w = watchdog(Duration::from_secs(30), "never_read");
    let server = TestServer::start(Mode::NeverRead);
    let mut cfg = config(&server.url());
    cfg.write_timeout = Duration::from_millis(300);
    cfg.outbox.max_messages = 100_000;
    cfg.outbox.max_bytes = 64 << 20;
    let mut client = Client::new(cfg).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    // 32 MiB is far more than loopback socket buffers hold: writes must stall.
    let chunk = vec![7u8; 60 * 1024];
    let mut accepted = 0;
    let mut dead = None;
    while accepted < 540 && dead.is_none() {
        client
            .send(Message::binary(chunk.clone()))
            .expect("outbox has room");
        accepted += 1;
        dead = client.poll(Duration::ZERO).filter(is("disconnected"));
    }
    let dead = match dead {
        Some(event) => event,
        None => {
            until(
                &mut client,
                Duration::from_secs(5),
                "disconnected",
                is("disconnected"),
            )
            .0
            .event
        }
    };
    match &dead {
        Event::Disconnected {
            reason: DisconnectReason::Io(e),
            unconfirmed,
            ..
        } => {
            assert!(e.to_string().contains("no progress"), "{e}");
            // Nothing was ever proven read (no pong): everything the kernel took is unconfirmed.
            assert_eq!(*unconfirmed, client.stats().messages_out);
        }
        other => panic!("unexpected {other:?}"),
    }
    let stats = client.stats();
    let kept = client.buffered_messages();
    assert!(kept > 0, "unsent messages must be kept");
    assert_eq!(
        stats.messages_out as usize + kept,
        accepted,
        "every message is either sent or kept"
    );
    assert_eq!(client.buffered_amount(), kept * chunk.len());
}

#[test]
fn every_reported_disconnect_kind_is_consistent() {
    let _w = watchdog(Duration::from_secs(20), "kinds");
    let server = TestServer::start(Mode::CloseAfterHandshake {
        code: 1011,
        reason: String::new(),
    });
    let mut client = Client::new(config(&server.url())).unwrap();
    let (dead, before) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnected",
        is("disconnected"),
    );
    assert_eq!(names(&before), ["connecting", "connected"]);
    match dead.event {
        Event::Disconnected {
            reason,
            unconfirmed,
            ..
        } => {
            assert_eq!(
                (reason.kind(), reason.code(), unconfirmed),
                ("closed_by_server", Some(1011), 0)
            );
            assert_eq!(reason.to_string(), "closed by server with code 1011");
        }
        _ => unreachable!(),
    }
}

#[test]
fn a_hostile_close_reason_cannot_forge_log_lines() {
    let _w = watchdog(Duration::from_secs(20), "close_reason");
    let reason = "bye\n{\"event\":\"gave_up\"}\r\u{1b}[2J".to_string();
    let server = TestServer::start(Mode::CloseAfterHandshake { code: 4000, reason });
    let mut client = Client::new(config(&server.url())).unwrap();
    let (dead, _) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnected",
        is("disconnected"),
    );
    match dead.event {
        Event::Disconnected { reason, .. } => {
            let shown = reason.to_string();
            assert!(!shown.chars().any(char::is_control), "{shown:?}");
            assert!(shown.contains("bye\\n"), "{shown:?}");
        }
        _ => unreachable!(),
    }
}

#[test]
fn a_message_behind_a_server_ping_comes_out_of_zero_timeout_polls() {
    // Applications that wait on `socket()` themselves call poll(ZERO) until None: a ping (which
    // makes no event) must not hide the message buffered behind it.
    let _w = watchdog(Duration::from_secs(20), "ping_then_text");
    let mut raw = vec![0x89, 0x02, b'h', b'i']; // Ping "hi"
    raw.extend_from_slice(&[0x81, 0x05]);
    raw.extend_from_slice(b"hello"); // Text "hello"
    let server = TestServer::start(Mode::RawAfterHandshake(raw));
    let mut client = Client::new(config(&server.url())).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    std::thread::sleep(Duration::from_millis(100));
    let mut seen = Vec::new();
    while let Some(event) = client.poll(Duration::ZERO) {
        seen.push(event);
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Message(Message::Text(t)) if t.as_str() == "hello")),
        "{seen:?}"
    );
}

#[test]
fn send_never_blocks_when_the_server_stops_reading() {
    let _w = watchdog(Duration::from_secs(30), "send_nonblocking");
    let server = TestServer::start(Mode::NeverRead);
    let mut cfg = config(&server.url());
    cfg.write_timeout = Duration::from_millis(500);
    cfg.outbox.max_messages = 100_000;
    cfg.outbox.max_bytes = 64 << 20;
    let mut client = Client::new(cfg).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    let chunk = vec![1u8; 60 * 1024];
    let mut slowest = Duration::ZERO;
    for _ in 0..400 {
        let started = std::time::Instant::now();
        client
            .send(Message::binary(chunk.clone()))
            .expect("outbox has room");
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        client.wants_write(),
        "24 MiB cannot all fit in loopback buffers"
    );
    assert!(
        slowest < Duration::from_millis(50),
        "a send blocked for {slowest:?}"
    );
    let (dead, _) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnected",
        is("disconnected"),
    );
    assert!(
        matches!(
            &dead.event,
            Event::Disconnected {
                reason: DisconnectReason::Io(_),
                ..
            }
        ),
        "{:?}",
        dead.event
    );
}
