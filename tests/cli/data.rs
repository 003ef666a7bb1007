//! The data path: stdin lines to text messages, messages to stdout, nothing lost while
//! offline, and hostile payloads that leave every event line valid JSON.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use tungstenite::Message;

use super::common::proxy::{ConnectProxy, ProxyMode};
use super::common::{refused_port, watchdog, Mode, Received, TestServer};
use super::harness::{Wsbeat, SLOW};

#[test]
fn stdin_lines_round_trip_through_the_server() {
    let _w = watchdog(Duration::from_secs(30), "stdin_round_trip");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&[&server.url()]);
    ws.write("hello\nwörld ✓ \"quoted\"\r\n\n");
    ws.write("no newline at the end");
    ws.close_stdin();
    let expected = ["hello", "wörld ✓ \"quoted\"", "", "no newline at the end"];
    for want in expected {
        assert_eq!(ws.stdout_line(SLOW), want);
    }
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0), "{}", ws.stderr_text());
    let got = server.received();
    let want: Vec<Received> = expected
        .iter()
        .map(|s| Received::Text(s.to_string()))
        .collect();
    assert_eq!(got, want);
    server.wait_for(SLOW, "Close 1000", |s| {
        s.close_frames_received() == [Some(1000)]
    });
}

#[test]
fn binary_messages_print_as_hex_or_raw() {
    let _w = watchdog(Duration::from_secs(30), "binary_messages");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&[&server.url()]);
    ws.event("connected", SLOW);
    server.send_all(Message::binary(vec![0x00, 0x01, 0xab, 0xff, b'\n']));
    assert_eq!(ws.stdout_line(SLOW), "0001abff0a");
    drop(ws);

    let mut raw = Wsbeat::spawn(&["--binary-stdout", "raw", &server.url()]);
    raw.event("connected", SLOW);
    server.send_all(Message::binary(b"raw bytes\n".to_vec()));
    assert_eq!(raw.stdout_line(SLOW), "raw bytes");
}

#[test]
fn hostile_server_text_keeps_every_line_valid() {
    let _w = watchdog(Duration::from_secs(30), "hostile_server_text");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&[
        "--backoff-initial",
        "100ms",
        "--backoff-max",
        "100ms",
        &server.url(),
    ]);
    ws.event("connected", SLOW);
    let text =
        "q\"uote \\back\\ nul\u{0} esc\u{1b}[31m del\u{7f} ls\u{2028} ps\u{2029} tab\t cr\r }";
    server.send_all(Message::text(text));
    assert_eq!(
        ws.stdout_line(SLOW),
        text,
        "stdout carries the text unchanged"
    );
    // The close reason reaches `detail` (and the library's log): try to forge an event line.
    let reason = "x\"\\\n{\"event\":\"gave_up\",\"t_ms\":0,\"attempts\":9}\u{2028}\u{1}";
    server.close_all(4001, reason);
    let e = ws.event("disconnected", SLOW);
    // The library escapes control characters in a server's reason before it reaches a log.
    let escaped: String = reason
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    assert_eq!(
        e.str("detail"),
        format!("closed by server with code 4001: {escaped}")
    );
    ws.event("connected", SLOW);
    ws.close_stdin();
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0));
    ws.remaining_events(SLOW);
    assert!(
        ws.seen_named("gave_up").is_empty(),
        "forged line: {:?}",
        ws.seen
    );
}

#[test]
fn lines_written_while_offline_are_all_delivered_in_order() {
    let _w = watchdog(Duration::from_secs(40), "offline_lines_delivered");
    let port = refused_port();
    // An outbox of 5 for 200 lines: wsbeat must stop reading stdin, not drop lines.
    let mut ws = Wsbeat::spawn(&[
        "--outbox",
        "5",
        "--backoff-initial",
        "100ms",
        "--backoff-max",
        "200ms",
        &format!("ws://127.0.0.1:{port}/"),
    ]);
    let lines: Vec<String> = (0..200).map(|i| format!("line {i}")).collect();
    ws.write(&lines.iter().map(|l| format!("{l}\n")).collect::<String>());
    ws.event("connect_failed", SLOW);
    ws.event("connect_failed", SLOW);
    let server = TestServer::start_on(port, Mode::Echo).expect("listen on the refused port");
    server.wait_for(SLOW, "200 lines", |s| s.received().len() >= 200);
    let want: Vec<Received> = lines.iter().cloned().map(Received::Text).collect();
    assert_eq!(server.received(), want);
    ws.close_stdin();
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0), "{}", ws.stderr_text());
    assert!(
        !ws.stderr_text().contains("not sent"),
        "{}",
        ws.stderr_text()
    );
}

/// Frame bytes as a server sends them (unmasked).
fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![0x80 | opcode, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

#[test]
fn a_message_behind_a_server_ping_is_printed_at_once() {
    let _w = watchdog(Duration::from_secs(30), "message_behind_ping");
    // Ping and text in one write: both land in the client's read buffer together.
    let mut raw = server_frame(0x9, b"");
    raw.extend(server_frame(0x1, b"behind the ping"));
    let server = TestServer::start(Mode::RawAfterHandshake(raw));
    let mut ws = Wsbeat::spawn(&["--ping-interval", "20s", &server.url()]);
    ws.event("connected", SLOW);
    let started = Instant::now();
    let line = ws
        .stdout_line_within(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("message stuck behind the ping; {}", ws.stderr_text()));
    assert_eq!(line, "behind the ping");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn app_heartbeat_uses_text_messages_and_hides_the_replies() {
    let _w = watchdog(Duration::from_secs(30), "app_heartbeat");
    let server = TestServer::start(Mode::Echo);
    // The echo server returns "hb" unchanged, so it doubles as the expected reply.
    let mut ws = Wsbeat::spawn(&[
        "--ping-interval",
        "200ms",
        "--app-ping",
        "hb",
        "--app-pong",
        "hb",
        &server.url(),
    ]);
    ws.event("pong", SLOW);
    ws.event("pong", SLOW);
    assert_eq!(server.pings_received(), 0, "no Ping frames with --app-ping");
    assert!(server.received().contains(&Received::Text("hb".into())));
    ws.write("data\n");
    assert_eq!(
        ws.stdout_line(SLOW),
        "data",
        "heartbeat replies are not printed"
    );
}

#[test]
fn proxy_option_tunnels_through_http_connect() {
    let _w = watchdog(Duration::from_secs(30), "proxy_option");
    let server = TestServer::start(Mode::Echo);
    let proxy = ConnectProxy::start(ProxyMode::Open);
    let mut ws = Wsbeat::spawn(&["--proxy", &proxy.url(), &server.url()]);
    ws.write("via the proxy\n");
    assert_eq!(ws.stdout_line(SLOW), "via the proxy");
    assert_eq!(proxy.tunnels(), 1);
    ws.close_stdin();
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0));
}

#[test]
fn headers_and_origin_reach_the_server() {
    let _w = watchdog(Duration::from_secs(30), "headers_and_origin");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&[
        "--header",
        "X-Device-Id: gw-0042",
        "--header=X-Fw: 1.2.3",
        "--origin",
        "https://devices.example",
        &server.url(),
    ]);
    ws.event("connected", SLOW);
    let headers = server.request_headers().pop().expect("one upgrade request");
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("x-device-id"), Some("gw-0042"));
    assert_eq!(get("x-fw"), Some("1.2.3"));
    assert_eq!(get("origin"), Some("https://devices.example"));
}

#[test]
fn unsendable_lines_are_reported_and_counted_not_sent() {
    let _w = watchdog(Duration::from_secs(30), "unsendable_lines");
    let server = TestServer::start(Mode::Echo);
    let mut ws = Wsbeat::spawn(&["--max-message-size", "8", &server.url()]);
    ws.event("connected", SLOW);
    // Too long for an 8-byte limit; then bytes that are not UTF-8 (written raw below).
    ws.write("123456789\nfits\n");
    ws.write_bytes(b"\xff\xfe\nlast\n");
    assert_eq!(ws.stdout_line(SLOW), "fits");
    assert_eq!(ws.stdout_line(SLOW), "last");
    ws.close_stdin();
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0));
    ws.remaining_events(SLOW);
    assert_eq!(ws.seen_named("closed")[0].num("unsent"), 2.0);
    let stderr = ws.stderr_text();
    assert!(stderr.contains("stdin line 1 has 9 bytes"), "{stderr}");
    assert!(
        stderr.contains("stdin line 3 is not valid UTF-8"),
        "{stderr}"
    );
    assert_eq!(
        server.received(),
        [Received::Text("fits".into()), Received::Text("last".into())]
    );
}
