//! `wss://` against a TLS terminator (`TlsFront`, OpenSSL) in front of the loopback test server,
//! with throw-away certificates made at test time: trust of a private CA, the refusals a field
//! engineer meets (unknown CA, wrong host name, expired), the insecure opt-out, mutual TLS
//! (PEM and PKCS#12), dead-link detection over TLS at the documented bound, a handshake that
//! stalls, and garbage on the wire mid-stream. The insecure opt-out's warning is checked in
//! `tests/redaction.rs`, the binary with a capturing logger.
#![cfg(feature = "tls")]

mod common;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::certs::{certs, P12_PASSWORD};
use common::drive::{for_span, is, ms, names, until, Seen};
use common::tls::{FrontMode, FrontOptions, ServerCert, TlsFront};
use common::{watchdog, Mode, TestServer};
use wsbeat::{
    Client, ClientIdentity, Config, DisconnectReason, Error, Event, Jitter, Message, TlsConfig,
};

const SLACK_MS: f64 = 100.0;

/// A client config for `url` trusting the test CA, with short timings.
fn config(url: &str) -> Config {
    let mut c = Config::new(url)
        .ping_interval(Duration::from_secs(5))
        .backoff(Duration::from_millis(200), Duration::from_millis(400))
        .connect_timeout(Duration::from_secs(2))
        .seed(11);
    c.tls = TlsConfig::default().add_root_pem(certs().ca_pem.clone());
    // The retry checks below are the proportional policy's (a floor, never shrinking).
    c.backoff.strategy = Jitter::Proportional;
    c
}

fn front(server: &TestServer, opts: FrontOptions) -> TlsFront {
    TlsFront::start(server.port(), opts)
}

/// The error of the first `ConnectFailed`, with the events before it.
fn first_failure(client: &mut Client) -> (Error, Vec<Seen>) {
    let (failed, before) = until(
        client,
        Duration::from_secs(5),
        "connect_failed",
        is("connect_failed"),
    );
    match failed.event {
        Event::ConnectFailed { error, .. } => (error, before),
        other => panic!("unexpected {other:?}"),
    }
}

/// Asserts `error` is a TLS error whose detail starts with `cause`; returns the detail.
fn assert_tls_cause(error: &Error, cause: &str) -> String {
    match error {
        Error::Tls { detail, .. } => {
            assert!(
                detail.starts_with(cause),
                "detail {detail:?} should start with {cause:?}"
            );
            assert!(
                error.to_string().contains(cause),
                "display names the cause: {error}"
            );
            detail.clone()
        }
        other => panic!("expected a TLS error ({cause}), got {other:?} ({other})"),
    }
}

/// Connects, then checks a text and a binary message come back through the echo server.
fn connect_and_echo(client: &mut Client) -> Duration {
    let (connected, before) = until(client, Duration::from_secs(5), "connected", is("connected"));
    assert_eq!(names(&before), ["connecting"], "first attempt succeeds");
    let handshake = match connected.event {
        Event::Connected { handshake, .. } => handshake,
        other => panic!("unexpected {other:?}"),
    };
    for msg in [
        Message::text("over tls"),
        Message::binary(vec![0, 1, 2, 255]),
    ] {
        client.send(msg.clone()).unwrap();
        let (echo, _) = until(client, Duration::from_secs(5), "echo", is("message"));
        match echo.event {
            Event::Message(m) => assert_eq!(m, msg),
            other => panic!("unexpected {other:?}"),
        }
    }
    handshake
}

#[test]
fn trusted_private_ca_connects_and_echoes() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "trusted_ca");
    let took = certs().took;
    eprintln!("test certificates made in {took:?}");
    assert!(took < Duration::from_secs(2), "certificates took {took:?}");
    let server = TestServer::start(Mode::Echo);
    let front = TlsFront::normal(server.port());
    let mut client = Client::new(config(&front.url())).unwrap();
    let tls_handshake = connect_and_echo(&mut client);
    assert_eq!(front.handshakes(), 1);
    assert_eq!(server.received().len(), 2);

    // Only the private CA, system roots off: still trusted.
    let mut cfg = config(&front.url());
    cfg.tls.disable_system_roots = true;
    let mut client = Client::new(cfg).unwrap();
    connect_and_echo(&mut client);

    // For the report: handshake times (TCP + TLS + upgrade) over 5 fresh connections each,
    // against plain ws to the same server.
    let median = |url: String| {
        let mut times: Vec<Duration> = (0..5)
            .map(|_| {
                let mut c = Client::new(config(&url)).unwrap();
                let (connected, _) =
                    until(&mut c, Duration::from_secs(5), "connected", is("connected"));
                match connected.event {
                    Event::Connected { handshake, .. } => handshake,
                    other => panic!("unexpected {other:?}"),
                }
            })
            .collect();
        times.sort();
        (times[0], times[2])
    };
    let (tls_min, tls_median) = median(front.url());
    let (ws_min, ws_median) = median(server.url());
    eprintln!(
        "loopback handshake: wss min {tls_min:?} median {tls_median:?} ({}), \
         ws min {ws_min:?} median {ws_median:?}; first wss {tls_handshake:?}",
        front.versions()[0]
    );
    assert!(
        tls_median < Duration::from_millis(500),
        "TLS handshake on loopback took {tls_median:?}"
    );
}

#[test]
fn server_close_and_drop_work_through_the_tls_front() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "tls_close_drop");
    let server = TestServer::start(Mode::Echo);
    let front = TlsFront::normal(server.port());
    let mut client = Client::new(config(&front.url())).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    server.close_all(4000, "bye");
    let (dead, _) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnect",
        is("disconnected"),
    );
    match &dead.event {
        Event::Disconnected { reason, .. } => {
            assert_eq!(reason.kind(), "closed_by_server", "{reason}");
            assert_eq!(reason.code(), Some(4000));
        }
        other => panic!("unexpected {other:?}"),
    }
    server.wait_for(Duration::from_secs(2), "close reply", |s| {
        s.close_frames_received() == [Some(4000)]
    });
    until(
        &mut client,
        Duration::from_secs(5),
        "reconnect",
        is("connected"),
    );
    // An abrupt end of the backend: the front sends close_notify and closes.
    server.drop_all();
    let (dead, _) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnect",
        is("disconnected"),
    );
    match &dead.event {
        Event::Disconnected { reason, .. } => {
            eprintln!("backend dropped behind TLS: {} ({reason})", reason.kind());
            assert_eq!(reason.kind(), "io_error", "{reason:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    until(
        &mut client,
        Duration::from_secs(5),
        "reconnect",
        is("connected"),
    );
    assert_eq!(front.handshakes(), 3);
}

#[test]
fn unknown_ca_is_refused_named_and_retried_per_backoff() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "unknown_ca");
    let server = TestServer::start(Mode::Echo);
    let front = TlsFront::normal(server.port());
    // System roots only: the private test CA is unknown.
    let mut cfg = config(&front.url());
    cfg.tls = TlsConfig::default();
    let jitter = cfg.backoff.jitter;
    let initial = cfg.backoff.initial;
    let mut client = Client::new(cfg).unwrap();
    let start = Instant::now();
    let seen = for_span(&mut client, Duration::from_millis(1500));
    let mut failures = 0;
    for s in &seen {
        if let Event::ConnectFailed { error, .. } = &s.event {
            let detail = assert_tls_cause(error, "unknown certificate authority");
            if failures == 0 {
                eprintln!("unknown CA: {error} / detail {detail:?}");
            }
            failures += 1;
        }
    }
    let connecting: Vec<Instant> = seen
        .iter()
        .filter(|s| is("connecting")(&s.event))
        .map(|s| s.at)
        .collect();
    let delays: Vec<Duration> = seen
        .iter()
        .filter_map(|s| match s.event {
            Event::Reconnecting { delay, .. } => Some(delay),
            _ => None,
        })
        .collect();
    // Never faster than (1 - jitter) x initial, and growing to the cap.
    let floor = initial.mul_f64(1.0 - jitter);
    assert!(
        delays.iter().all(|d| *d >= floor),
        "{delays:?} (floor {floor:?})"
    );
    assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
    // And really waited: each attempt starts no earlier than its delay said, judged on the
    // library's own instants (when the retry was due, when it started), never on when this
    // loop happened to see the events.
    let mut scheduled: Option<(Instant, Duration)> = None;
    for s in &seen {
        match &s.event {
            Event::Reconnecting { delay, at, .. } => scheduled = Some((*at, *delay)),
            Event::Connecting { at: started, .. } => {
                if let Some((due, delay)) = scheduled.take() {
                    assert!(
                        *started >= due,
                        "started {:?} before the end of its {delay:?} delay",
                        due - *started
                    );
                }
            }
            _ => {}
        }
    }
    // 0, then 160-200, 320-400, 320-400, ... ms apart: 4 to 6 attempts in 1.5 s.
    assert!(
        (4..=6).contains(&connecting.len()),
        "{} attempts in {:?}: {:?}",
        connecting.len(),
        start.elapsed(),
        names(&seen)
    );
    assert!(failures >= connecting.len() - 1);
    assert!(!names(&seen).contains(&"connected"));
    assert_eq!(server.handshakes(), 0, "nothing reached the backend");
    eprintln!("server side saw: {:?}", front.failures().first());

    // A different private CA (and no system roots) is unknown too.
    let mut cfg = config(&front.url());
    cfg.tls = TlsConfig::default().add_root_pem(certs().other_ca_pem.clone());
    cfg.tls.disable_system_roots = true;
    let mut client = Client::new(cfg).unwrap();
    let (error, _) = first_failure(&mut client);
    assert_tls_cause(&error, "unknown certificate authority");
}

#[test]
fn wrong_host_name_is_refused() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "wrong_host");
    let server = TestServer::start(Mode::Echo);
    let front = front(
        &server,
        FrontOptions {
            cert: ServerCert::WrongHost,
            ..FrontOptions::default()
        },
    );
    let mut client = Client::new(config(&front.url())).unwrap();
    let (error, _) = first_failure(&mut client);
    let detail = assert_tls_cause(&error, "host name mismatch");
    eprintln!("wrong host: {detail:?}");
    // Also by IP address: the certificate names only wrong.example.
    let url = format!("wss://127.0.0.1:{}/", front.port());
    let mut client = Client::new(config(&url)).unwrap();
    let (error, _) = first_failure(&mut client);
    assert_tls_cause(&error, "host name mismatch");
    assert_eq!(server.handshakes(), 0);
}

#[test]
fn expired_certificate_is_refused() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "expired");
    let server = TestServer::start(Mode::Echo);
    let front = front(
        &server,
        FrontOptions {
            cert: ServerCert::Expired,
            ..FrontOptions::default()
        },
    );
    let mut client = Client::new(config(&front.url())).unwrap();
    let (error, _) = first_failure(&mut client);
    let detail = assert_tls_cause(&error, "certificate expired");
    eprintln!("expired: {detail:?}");
    assert_eq!(server.handshakes(), 0);
}

#[test]
fn insecure_opt_out_connects_to_any_certificate() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "insecure");
    let server = TestServer::start(Mode::Echo);
    for cert in [
        ServerCert::Localhost,
        ServerCert::WrongHost,
        ServerCert::Expired,
    ] {
        let front = front(
            &server,
            FrontOptions {
                cert,
                ..FrontOptions::default()
            },
        );
        // No trusted root at all: the test CA is unknown, and it does not matter.
        let mut cfg = config(&front.url());
        cfg.tls = TlsConfig::default();
        cfg.tls.danger_accept_invalid_certs = true;
        let mut client = Client::new(cfg).unwrap();
        connect_and_echo(&mut client);
        assert_eq!(front.handshakes(), 1, "{cert:?}");
    }
}

fn mtls_front(server: &TestServer, max_tls12: bool) -> TlsFront {
    mtls_front_with(server, max_tls12, false)
}

#[test]
fn mutual_tls_accepts_the_right_client_certificate_pem_and_pkcs12() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "mtls_ok");
    let server = TestServer::start(Mode::Echo);
    let c = certs();
    let identities = [
        ClientIdentity::Pem {
            cert: c.client.cert_pem.clone(),
            key: c.client.key_pem.clone(),
        },
        ClientIdentity::Pkcs12 {
            der: c.client_p12.clone(),
            password: P12_PASSWORD.to_string(),
        },
    ];
    for max_tls12 in [false, true] {
        let front = mtls_front(&server, max_tls12);
        for id in identities.clone() {
            let mut cfg = config(&front.url());
            cfg.tls = cfg.tls.identity(id.clone());
            let mut client = Client::new(cfg).unwrap();
            connect_and_echo(&mut client);
            assert!(!format!("{id:?}").contains(P12_PASSWORD));
        }
        assert_eq!(front.client_cns(), ["wsbeat-device", "wsbeat-device"]);
        assert!(front.failures().is_empty(), "{:?}", front.failures());
        eprintln!("mTLS ok over {:?}", front.versions());
    }
}

/// A refused client certificate: a ConnectFailed (never a Connected), retried per backoff.
fn assert_mtls_refused(front: &TlsFront, identity: Option<ClientIdentity>) -> Error {
    let mut cfg = config(&front.url());
    if let Some(id) = identity {
        cfg.tls = cfg.tls.identity(id);
    }
    let mut client = Client::new(cfg).unwrap();
    let (error, before) = first_failure(&mut client);
    assert_eq!(names(&before), ["connecting"], "{:?}", names(&before));
    let (next, _) = until(&mut client, Duration::from_secs(5), "reconnecting", |_| {
        true
    });
    assert!(is("reconnecting")(&next.event), "{:?}", next.event);
    error
}

#[test]
fn mutual_tls_refuses_a_client_without_certificate_tls12() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "mtls_none_12");
    let server = TestServer::start(Mode::Echo);
    let front = mtls_front(&server, true);
    let error = assert_mtls_refused(&front, None);
    eprintln!("mTLS without certificate (TLS 1.2): {error:?}");
    assert_tls_cause(&error, "handshake refused by server");
    assert_eq!(server.handshakes(), 0);
}

fn mtls_front_with(server: &TestServer, max_tls12: bool, abrupt: bool) -> TlsFront {
    front(
        server,
        FrontOptions {
            require_client_cert: true,
            max_tls12,
            abrupt_close_on_failure: abrupt,
            ..FrontOptions::default()
        },
    )
}

fn foreign_identity() -> ClientIdentity {
    let c = certs();
    ClientIdentity::Pem {
        cert: c.other_client.cert_pem.clone(),
        key: c.other_client.key_pem.clone(),
    }
}

/// Every refusal of our client certificate: (what, TLS 1.2 only, abrupt close, identity).
fn refusal_cases() -> Vec<(&'static str, bool, bool, Option<ClientIdentity>)> {
    vec![
        ("no certificate, TLS 1.2", true, false, None),
        ("no certificate, TLS 1.3", false, false, None),
        ("no certificate, TLS 1.3, abrupt close", false, true, None),
        (
            "foreign certificate, TLS 1.2",
            true,
            false,
            Some(foreign_identity()),
        ),
        (
            "foreign certificate, TLS 1.3",
            false,
            false,
            Some(foreign_identity()),
        ),
    ]
}

#[test]
fn mutual_tls_refusals_are_connect_failures_retried_per_backoff() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "mtls_refused");
    let server = TestServer::start(Mode::Echo);
    for (what, max_tls12, abrupt, identity) in refusal_cases() {
        let front = mtls_front_with(&server, max_tls12, abrupt);
        let error = assert_mtls_refused(&front, identity);
        eprintln!("mTLS refused ({what}): {error} / {error:?}");
        assert!(
            matches!(error, Error::Tls { .. } | Error::Io(_)),
            "{what}: {error:?}"
        );
        assert_eq!(front.handshakes(), 0, "{what}");
        // The front records its side after sending the alert: give it a moment.
        let end = Instant::now() + Duration::from_secs(2);
        while front.failures().is_empty() && Instant::now() < end {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(front.failures().len(), 1, "{what}: {:?}", front.failures());
    }
    assert_eq!(server.handshakes(), 0);
}

#[test]
fn mutual_tls_refusals_are_named_handshake_refused_by_server() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "mtls_refused_named");
    let server = TestServer::start(Mode::Echo);
    let mut wrong = Vec::new();
    for (what, max_tls12, abrupt, identity) in refusal_cases() {
        if abrupt {
            // A reset can overtake the alert: nothing to name then.
            continue;
        }
        let front = mtls_front_with(&server, max_tls12, abrupt);
        let error = assert_mtls_refused(&front, identity);
        let ok = matches!(&error, Error::Tls { detail, .. } if detail.starts_with("handshake refused by server"));
        if !ok {
            wrong.push(format!("{what}: {error:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn frozen_backend_over_tls_is_detected_at_the_bound_then_reconnects() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "tls_frozen");
    let server = TestServer::start(Mode::Echo);
    let front = TlsFront::normal(server.port());
    let cfg = config(&front.url())
        .ping_interval(Duration::from_millis(300))
        .pong_timeout(Duration::from_millis(200))
        .max_missed_pongs(2)
        .backoff(Duration::from_millis(100), Duration::from_millis(200));
    let bound_ms = cfg.heartbeat.detection_bound().as_secs_f64() * 1000.0;
    let mut client = Client::new(cfg).unwrap();
    let (pong, _) = until(
        &mut client,
        Duration::from_secs(5),
        "first pong",
        is("pong"),
    );
    if let Event::Pong { rtt, .. } = pong.event {
        eprintln!("rtt through the TLS front: {rtt:?}");
    }
    server.freeze();
    let (dead, between) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnect",
        is("disconnected"),
    );
    let silent = ms(dead.at, pong.at);
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
        names(&between),
        ["ping", "pong_missed", "ping", "pong_missed"]
    );
    match dead.event {
        Event::Disconnected {
            reason: DisconnectReason::HeartbeatTimeout { missed: 2, .. },
            ..
        } => {}
        other => panic!("unexpected {other:?}"),
    }
    server.drop_all();
    server.unfreeze();
    let (_, before) = until(
        &mut client,
        Duration::from_secs(5),
        "reconnect",
        is("connected"),
    );
    assert_eq!(names(&before), ["reconnecting", "connecting"]);
    assert_eq!(front.handshakes(), 2);
}

#[test]
fn stalled_tls_handshake_times_out_at_connect_timeout_and_retries() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "tls_stall");
    let server = TestServer::start(Mode::Echo);
    let front = front(
        &server,
        FrontOptions {
            mode: FrontMode::StallMidHandshake,
            ..FrontOptions::default()
        },
    );
    let mut client =
        Client::new(config(&front.url()).connect_timeout(Duration::from_millis(500))).unwrap();
    for round in 0..2 {
        let (connecting, _) = until(
            &mut client,
            Duration::from_secs(5),
            "connecting",
            is("connecting"),
        );
        let (failed, before) = until(
            &mut client,
            Duration::from_secs(5),
            "connect_failed",
            is("connect_failed"),
        );
        assert!(before.is_empty(), "{:?}", names(&before));
        let took = ms(failed.at, connecting.at);
        assert!(
            (500.0 - 1.0..=500.0 + SLACK_MS).contains(&took),
            "round {round}: timed out after {took:.1} ms (connect_timeout 500)"
        );
        assert!(
            matches!(
                &failed.event,
                Event::ConnectFailed {
                    error: Error::ConnectTimeout(_),
                    ..
                }
            ),
            "{:?}",
            failed.event
        );
    }
    assert_eq!(front.hello_bytes().len(), 2, "both ClientHellos read");
    assert!(front.hello_bytes().iter().all(|n| *n > 0));
    // The next attempt finds a working server.
    front.set_mode(FrontMode::Normal);
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
}

#[test]
fn garbage_mid_stream_ends_the_link_with_an_error_and_reconnects() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "tls_garbage");
    let server = TestServer::start(Mode::Echo);
    let front = front(
        &server,
        FrontOptions {
            mode: FrontMode::GarbageAfterHandshake {
                after: Duration::from_millis(300),
            },
            ..FrontOptions::default()
        },
    );
    let mut client = Client::new(config(&front.url())).unwrap();
    let (connected, _) = until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    front.set_mode(FrontMode::Normal);
    let (dead, before) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnect",
        is("disconnected"),
    );
    assert!(before.is_empty(), "{:?}", names(&before));
    let after = ms(dead.at, connected.at);
    assert!(after < 300.0 + SLACK_MS, "noticed after {after:.1} ms");
    match &dead.event {
        Event::Disconnected { reason, .. } => {
            eprintln!(
                "garbage mid-stream: kind {} ({reason}) {reason:?}",
                reason.kind()
            );
            assert!(
                ["tls_error", "protocol_error", "io_error"].contains(&reason.kind()),
                "{reason:?}"
            );
            assert_eq!(reason.kind(), "tls_error", "{reason:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let (_, before) = until(
        &mut client,
        Duration::from_secs(5),
        "reconnect",
        is("connected"),
    );
    assert_eq!(names(&before), ["reconnecting", "connecting"]);
    let seen = for_span(&mut client, Duration::from_millis(500));
    assert!(
        !names(&seen).contains(&"disconnected"),
        "{:?}",
        names(&seen)
    );
}

/// A tiny WebSocket server (tungstenite) that answers every upgrade with
/// `Sec-WebSocket-Protocol: <answer>` (if given) and echoes, for the subprotocol checks (the
/// test server has no such mode).
struct ProtoServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProtoServer {
    fn start(answer: Option<&'static str>) -> ProtoServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = thread::spawn(move || {
            let mut conns = Vec::new();
            while !stop2.load(SeqCst) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let stop3 = stop2.clone();
                        conns.push(thread::spawn(move || serve_proto(tcp, answer, &stop3)));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => break,
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        ProtoServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ProtoServer {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_proto(tcp: std::net::TcpStream, answer: Option<&'static str>, stop: &AtomicBool) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(50)));
    #[allow(clippy::result_large_err)]
    let callback = move |_req: &tungstenite::handshake::server::Request,
                         mut resp: tungstenite::handshake::server::Response| {
        if let Some(p) = answer {
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
        }
        Ok(resp)
    };
    let mut round = tungstenite::accept_hdr(tcp, callback);
    let mut ws = loop {
        match round {
            Ok(ws) => break ws,
            // A read timeout mid-request: resume.
            Err(tungstenite::HandshakeError::Interrupted(mid)) if !stop.load(SeqCst) => {
                round = mid.handshake();
            }
            Err(_) => return,
        }
    };
    while !stop.load(SeqCst) {
        match ws.read() {
            Ok(msg) if msg.is_text() || msg.is_binary() => {
                if ws.send(msg).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

#[test]
fn negotiated_subprotocol_is_reported_and_an_unoffered_one_refused() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(20), "subprotocol");
    // The server picks one we offered: reported in Connected, over TLS.
    let server = ProtoServer::start(Some("v1.json"));
    let front = TlsFront::normal(server.port);
    let cfg = config(&front.url()).protocol("v2.json").protocol("v1.json");
    let mut client = Client::new(cfg).unwrap();
    let (connected, _) = until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    match connected.event {
        Event::Connected { protocol, .. } => assert_eq!(protocol.as_deref(), Some("v1.json")),
        other => panic!("unexpected {other:?}"),
    }
    client.send(Message::text("x")).unwrap();
    until(&mut client, Duration::from_secs(5), "echo", is("message"));

    // The server picks one we did not offer, or answers one when none was offered.
    let rogue = ProtoServer::start(Some("mqtt"));
    let rogue_front = TlsFront::normal(rogue.port);
    for cfg in [
        config(&rogue_front.url()).protocol("v1.json"),
        config(&rogue_front.url()),
        config(&format!("ws://127.0.0.1:{}/", rogue.port)).protocol("v1.json"),
    ] {
        let mut client = Client::new(cfg).unwrap();
        let (error, before) = first_failure(&mut client);
        assert!(!names(&before).contains(&"connected"));
        eprintln!("unoffered subprotocol: {error}");
        assert!(
            matches!(error, Error::Handshake(_)),
            "{error:?} should be a handshake error"
        );
        assert!(
            error.to_string().to_lowercase().contains("subprotocol"),
            "{error}"
        );
    }
}
