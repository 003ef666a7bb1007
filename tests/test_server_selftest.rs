//! Self-tests of the loopback test server in `tests/common`, using a plain
//! tungstenite client.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use common::{init_logs, refused_port, watchdog, Mode, Received, TestServer};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

const LIMIT: Duration = Duration::from_secs(10);

type Client = WebSocket<TcpStream>;

fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("tcp connect");
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("read timeout");
    s.set_write_timeout(Some(Duration::from_secs(3)))
        .expect("write timeout");
    s
}

fn connect(server: &TestServer) -> Client {
    let (ws, resp) =
        tungstenite::client::client(server.url(), tcp(server.port())).expect("ws handshake");
    assert_eq!(resp.status(), 101);
    ws
}

fn set_read_timeout(ws: &Client, t: Duration) {
    ws.get_ref()
        .set_read_timeout(Some(t))
        .expect("read timeout");
}

fn is_timeout(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io)
        if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut))
}

/// Read the next non-control message (pings/pongs are skipped).
fn read_data(ws: &mut Client) -> Message {
    loop {
        match ws.read().expect("client read") {
            Message::Ping(_) | Message::Pong(_) => continue,
            m => return m,
        }
    }
}

/// Read until an error; returns it and how long it took.
fn read_until_error(ws: &mut Client) -> (tungstenite::Error, Duration) {
    let start = Instant::now();
    loop {
        if let Err(e) = ws.read() {
            return (e, start.elapsed());
        }
    }
}

#[test]
fn echo_round_trip_and_headers() {
    let _wd = watchdog(LIMIT, "echo_round_trip_and_headers");
    init_logs();
    let server = TestServer::start(Mode::Echo);
    let mut req = server.url().into_client_request().expect("request");
    req.headers_mut()
        .insert("X-Device-Id", "dev-42".parse().expect("header value"));
    let (mut ws, _) = tungstenite::client::client(req, tcp(server.port())).expect("handshake");

    ws.send(Message::text("hello")).expect("send text");
    assert_eq!(read_data(&mut ws), Message::text("hello"));
    ws.send(Message::binary(vec![1u8, 2, 3]))
        .expect("send binary");
    assert_eq!(read_data(&mut ws), Message::binary(vec![1u8, 2, 3]));
    let big = vec![7u8; 200_000];
    ws.send(Message::binary(big.clone())).expect("send big");
    assert_eq!(read_data(&mut ws), Message::binary(big.clone()));

    assert_eq!(
        server.received(),
        vec![
            Received::Text("hello".into()),
            Received::Binary(vec![1, 2, 3]),
            Received::Binary(big),
        ]
    );
    assert_eq!(server.handshakes(), 1);
    server.wait_for(LIMIT, "accepted == 1", |s| s.accepted() == 1);
    let headers = server.request_headers();
    assert_eq!(headers.len(), 1);
    assert!(headers[0].contains(&("x-device-id".to_string(), "dev-42".to_string())));
    assert!(headers[0].iter().any(|(k, _)| k == "sec-websocket-key"));

    // A client Ping is answered; a client Close is recorded and answered.
    ws.send(Message::Ping("p1".into())).expect("ping");
    assert_eq!(ws.read().expect("pong"), Message::Pong("p1".into()));
    assert_eq!(server.pings_received(), 1);
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
    .expect("close");
    let (err, _) = read_until_error(&mut ws);
    assert!(
        matches!(err, tungstenite::Error::ConnectionClosed),
        "{err:?}"
    );
    assert_eq!(server.close_frames_received(), vec![Some(1000)]);
    server.wait_for(LIMIT, "connection gone", |s| s.open_connections() == 0);
}

#[test]
fn freeze_leaves_ping_unanswered_until_unfreeze() {
    let _wd = watchdog(LIMIT, "freeze_leaves_ping_unanswered_until_unfreeze");
    init_logs();
    let server = TestServer::start(Mode::Echo);
    let mut ws = connect(&server);
    server.freeze();
    ws.send(Message::Ping("hb".into())).expect("ping");
    set_read_timeout(&ws, Duration::from_millis(300));
    let start = Instant::now();
    let err = ws.read().expect_err("no pong while frozen");
    assert!(is_timeout(&err), "{err:?}");
    assert!(start.elapsed() >= Duration::from_millis(290));
    assert_eq!(server.pings_received(), 0);

    // New connections are accepted by TCP but their handshake hangs.
    let mut stream = tcp(server.port());
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    server.wait_for(LIMIT, "second accept", |s| s.accepted() == 2);
    let mut buf = [0u8; 16];
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write request");
    let err = stream.read(&mut buf).expect_err("frozen: no answer");
    assert!(matches!(
        err.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));

    server.unfreeze();
    set_read_timeout(&ws, Duration::from_secs(2));
    assert_eq!(ws.read().expect("pong"), Message::Pong("hb".into()));
    assert_eq!(server.pings_received(), 1);
}

#[test]
fn http_status_with_retry_after() {
    let _wd = watchdog(LIMIT, "http_status_with_retry_after");
    init_logs();
    let server = TestServer::start(Mode::HttpStatus {
        status: 503,
        retry_after: Some(7),
    });
    match tungstenite::client::client(server.url(), tcp(server.port())) {
        Err(HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            assert_eq!(resp.status(), 503);
            assert_eq!(
                resp.headers().get("retry-after").map(|v| v.as_bytes()),
                Some(&b"7"[..])
            );
        }
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("handshake unexpectedly succeeded"),
    }
    assert_eq!(server.handshakes(), 0);
    assert_eq!(server.request_headers().len(), 1);
    server.wait_for(LIMIT, "connection gone", |s| s.open_connections() == 0);
}

#[test]
fn silent_handshake_times_out_client() {
    let _wd = watchdog(LIMIT, "silent_handshake_times_out_client");
    init_logs();
    let server = TestServer::start(Mode::SilentHandshake);
    let stream = tcp(server.port());
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let start = Instant::now();
    match tungstenite::client::client(server.url(), stream) {
        Err(HandshakeError::Interrupted(_)) => {}
        Err(HandshakeError::Failure(e)) => assert!(is_timeout(&e), "{e:?}"),
        Ok(_) => panic!("handshake unexpectedly succeeded"),
    }
    assert!(start.elapsed() >= Duration::from_millis(190));
    server.wait_for(LIMIT, "request recorded", |s| {
        s.request_headers().len() == 1
    });
    assert_eq!(server.accepted(), 1);
    assert_eq!(server.handshakes(), 0);
}

#[test]
fn refused_port_refuses() {
    let _wd = watchdog(LIMIT, "refused_port_refuses");
    let err = TcpStream::connect((Ipv4Addr::LOCALHOST, refused_port())).expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn close_all_delivers_code() {
    let _wd = watchdog(LIMIT, "close_all_delivers_code");
    init_logs();
    let server = TestServer::start(Mode::Echo);
    let mut ws = connect(&server);
    server.close_all(4000, "bye");
    match ws.read().expect("close frame") {
        Message::Close(Some(cf)) => {
            assert_eq!(cf.code, CloseCode::from(4000));
            assert_eq!(cf.reason.as_str(), "bye");
        }
        m => panic!("expected Close, got {m:?}"),
    }
    // tungstenite replies with the same code on the next read/flush.
    let (err, _) = read_until_error(&mut ws);
    assert!(
        matches!(err, tungstenite::Error::ConnectionClosed),
        "{err:?}"
    );
    server.wait_for(LIMIT, "close reply", |s| {
        s.close_frames_received() == vec![Some(4000)]
    });
    server.wait_for(LIMIT, "connection gone", |s| s.open_connections() == 0);
}

#[test]
fn close_after_handshake_mode() {
    let _wd = watchdog(LIMIT, "close_after_handshake_mode");
    init_logs();
    let server = TestServer::start(Mode::CloseAfterHandshake {
        code: 1013,
        reason: "try again later".into(),
    });
    let mut ws = connect(&server);
    match ws.read().expect("close frame") {
        Message::Close(Some(cf)) => {
            assert_eq!(u16::from(cf.code), 1013);
            assert_eq!(cf.reason.as_str(), "try again later");
        }
        m => panic!("expected Close, got {m:?}"),
    }
    let _ = read_until_error(&mut ws);
    server.wait_for(LIMIT, "close reply", |s| {
        s.close_frames_received() == vec![Some(1013)]
    });
}

#[test]
fn echo_no_pong_never_answers() {
    let _wd = watchdog(LIMIT, "echo_no_pong_never_answers");
    init_logs();
    let server = TestServer::start(Mode::EchoNoPong);
    let mut ws = connect(&server);
    ws.send(Message::Ping("x".into())).expect("ping");
    ws.send(Message::text("after ping")).expect("text");
    // The echo arrives, the pong never does.
    assert_eq!(ws.read().expect("echo"), Message::text("after ping"));
    set_read_timeout(&ws, Duration::from_millis(300));
    let err = ws.read().expect_err("no pong");
    assert!(is_timeout(&err), "{err:?}");
    assert_eq!(server.pings_received(), 1);
}

#[test]
fn restart_on_same_port() {
    let _wd = watchdog(LIMIT, "restart_on_same_port");
    init_logs();
    let server = TestServer::start(Mode::Echo);
    let port = server.port();
    let mut ws = connect(&server);
    ws.send(Message::text("one")).expect("send");
    assert_eq!(read_data(&mut ws), Message::text("one"));
    server.stop();
    let err = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect_err("stopped");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let (err, _) = read_until_error(&mut ws);
    assert!(!is_timeout(&err), "old connection must be dead: {err:?}");

    let server = TestServer::start_on(port, Mode::Echo).expect("restart");
    assert_eq!(server.port(), port);
    let mut ws = connect(&server);
    ws.send(Message::text("two")).expect("send");
    assert_eq!(read_data(&mut ws), Message::text("two"));
    assert_eq!(server.received(), vec![Received::Text("two".into())]);
}

#[test]
fn counters_and_set_mode() {
    let _wd = watchdog(LIMIT, "counters_and_set_mode");
    init_logs();
    let server = TestServer::start(Mode::SilentHandshake);
    let _a = tcp(server.port());
    let _b = tcp(server.port());
    server.wait_for(LIMIT, "two accepts", |s| s.accepted() == 2);
    assert_eq!(server.handshakes(), 0);
    server.set_mode(Mode::Echo);
    let _ws = connect(&server);
    server.wait_for(LIMIT, "three accepts", |s| s.accepted() == 3);
    assert_eq!(server.handshakes(), 1);
    assert_eq!(server.open_connections(), 3);
    server.drop_all();
    server.wait_for(LIMIT, "all dropped", |s| s.open_connections() == 0);
}

#[test]
fn ping_all_and_send_all() {
    let _wd = watchdog(LIMIT, "ping_all_and_send_all");
    init_logs();
    let server = TestServer::start(Mode::Echo);
    let mut ws1 = connect(&server);
    let mut ws2 = connect(&server);
    server.wait_for(LIMIT, "two connections", |s| s.open_connections() == 2);
    server.ping_all(b"srv");
    server.send_all(Message::text("broadcast"));
    for ws in [&mut ws1, &mut ws2] {
        assert_eq!(ws.read().expect("ping"), Message::Ping("srv".into()));
        // tungstenite queues the pong and flushes it on the next read.
        assert_eq!(ws.read().expect("text"), Message::text("broadcast"));
    }
    server.wait_for(LIMIT, "two pongs", |s| s.pongs_received().len() == 2);
    assert_eq!(
        server.pongs_received(),
        vec![b"srv".to_vec(), b"srv".to_vec()]
    );
    assert!(server.received().is_empty());
}

#[test]
fn drop_all_ends_connections_and_server_keeps_accepting() {
    let _wd = watchdog(
        LIMIT,
        "drop_all_ends_connections_and_server_keeps_accepting",
    );
    init_logs();
    let server = TestServer::start(Mode::Echo);
    let mut ws = connect(&server);
    server.freeze(); // drop_all works on frozen connections too
    server.drop_all();
    let (err, took) = read_until_error(&mut ws);
    assert!(!is_timeout(&err), "{err:?}");
    assert!(took < Duration::from_secs(1));
    server.unfreeze();
    let mut ws = connect(&server);
    ws.send(Message::text("again")).expect("send");
    assert_eq!(read_data(&mut ws), Message::text("again"));
}

#[test]
fn drop_modes() {
    let _wd = watchdog(LIMIT, "drop_modes");
    init_logs();
    let server = TestServer::start(Mode::DropAfterHandshake);
    let mut ws = connect(&server);
    let (err, took) = read_until_error(&mut ws);
    assert!(!is_timeout(&err), "{err:?}");
    assert!(took < Duration::from_secs(1));

    server.set_mode(Mode::DropAfter(Duration::from_millis(300)));
    let mut ws = connect(&server);
    ws.send(Message::text("flap")).expect("send");
    assert_eq!(read_data(&mut ws), Message::text("flap"));
    let (err, took) = read_until_error(&mut ws);
    assert!(!is_timeout(&err), "{err:?}");
    assert!(took < Duration::from_secs(2));
}

#[test]
fn raw_after_handshake_gives_protocol_error() {
    let _wd = watchdog(LIMIT, "raw_after_handshake_gives_protocol_error");
    init_logs();
    // FIN + RSV1..3 + reserved opcode: invalid for a client without extensions.
    let server = TestServer::start(Mode::RawAfterHandshake(vec![0xFF, 0x00]));
    let mut ws = connect(&server);
    match ws.read() {
        Err(tungstenite::Error::Protocol(_)) => {}
        other => panic!("expected protocol error, got {other:?}"),
    }
}

#[test]
fn never_read_blocks_client_writes() {
    let _wd = watchdog(LIMIT, "never_read_blocks_client_writes");
    init_logs();
    let server = TestServer::start(Mode::NeverRead);
    let mut ws = connect(&server);
    ws.get_ref()
        .set_write_timeout(Some(Duration::from_millis(200)))
        .expect("write timeout");
    let chunk = vec![0u8; 256 * 1024];
    let mut sent = 0usize;
    let err = loop {
        match ws.send(Message::binary(chunk.clone())) {
            Ok(()) => sent += chunk.len(),
            Err(e) => break e,
        }
        assert!(sent < 512 << 20, "writes never blocked");
    };
    assert!(is_timeout(&err), "{err:?}");
    assert!(server.received().is_empty());
}

#[test]
fn drop_stops_everything() {
    let _wd = watchdog(LIMIT, "drop_stops_everything");
    init_logs();
    let server = TestServer::start(Mode::Echo);
    let port = server.port();
    let mut ws = connect(&server);
    let silent = TestServer::start(Mode::SilentHandshake);
    let mut half = tcp(silent.port());
    silent.wait_for(LIMIT, "accept", |s| s.open_connections() == 1);

    let start = Instant::now();
    drop(server);
    drop(silent);
    assert!(start.elapsed() < Duration::from_millis(500));
    let (err, _) = read_until_error(&mut ws);
    assert!(!is_timeout(&err), "{err:?}");
    // The half-open (SilentHandshake) connection was shut down too: EOF or
    // a reset, not a read timeout.
    let mut buf = [0u8; 8];
    match half.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{e:?}"
        ),
    }
    let err = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect_err("stopped");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn watchdog_disarms_on_drop() {
    let wd = watchdog(Duration::from_millis(50), "watchdog_disarms_on_drop");
    drop(wd);
    std::thread::sleep(Duration::from_millis(150));
}
