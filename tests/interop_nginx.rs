//! Interop with a real reverse proxy: Debian's nginx in front of the loopback test server, as a
//! TLS terminator (optionally requiring client certificates) and as a plain proxy. What a
//! device meets in the field: nginx relays the upgraded connection byte for byte, so pings,
//! close codes and a frozen backend must behave as they do directly.
//!
//! Without nginx installed these tests print "skipped: nginx not installed" and pass, unless
//! `WSBEAT_REQUIRE_PEERS=1` (CI), where they fail.

mod common;

use std::time::Duration;

use common::drive::{for_span, is, ms, names, until};
use common::nginx::{start_or_skip, NginxOptions};
use common::{watchdog, Mode, TestServer};
use wsbeat::{Client, Config, DisconnectReason, Event, Message};

const SLACK_MS: f64 = 100.0;

#[cfg(feature = "tls")]
const TLS: NginxOptions = NginxOptions {
    tls: true,
    verify_client: false,
};
const PLAIN: NginxOptions = NginxOptions {
    tls: false,
    verify_client: false,
};

fn config(url: &str) -> Config {
    #[allow(unused_mut)]
    let mut c = Config::new(url)
        .ping_interval(Duration::from_millis(300))
        .pong_timeout(Duration::from_millis(200))
        .max_missed_pongs(2)
        .backoff(Duration::from_millis(100), Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(2))
        .seed(13);
    #[cfg(feature = "tls")]
    {
        c.tls = wsbeat::TlsConfig::default().add_root_pem(common::certs::certs().ca_pem.clone());
    }
    c
}

/// Connects, echoes a text and a binary message, and sees a pong with an RTT.
fn echo_and_pong(client: &mut Client, via: &str) {
    let (connected, before) = until(client, Duration::from_secs(5), "connected", is("connected"));
    assert_eq!(names(&before), ["connecting"]);
    if let Event::Connected { handshake, .. } = connected.event {
        eprintln!("{via}: handshake {handshake:?}");
    }
    for msg in [
        Message::text("through nginx"),
        Message::binary((0..=255u8).collect::<Vec<u8>>()),
    ] {
        client.send(msg.clone()).unwrap();
        let (echo, _) = until(client, Duration::from_secs(5), "echo", is("message"));
        match echo.event {
            Event::Message(m) => assert_eq!(m, msg),
            other => panic!("unexpected {other:?}"),
        }
    }
    let (pong, _) = until(client, Duration::from_secs(5), "pong", is("pong"));
    match pong.event {
        Event::Pong { rtt: Some(rtt), .. } => {
            eprintln!("{via}: ping rtt {rtt:?}");
            assert!(rtt < Duration::from_millis(100), "{rtt:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// A pong marks the last inbound byte; freezing the backend then must be detected at the
/// bound (never earlier), and the client must come back once the backend does.
fn frozen_backend_is_detected(server: &TestServer, client: &mut Client, bound_ms: f64) {
    let (pong, _) = until(client, Duration::from_secs(5), "pong", is("pong"));
    server.freeze();
    let (dead, between) = until(
        client,
        Duration::from_secs(5),
        "disconnect",
        is("disconnected"),
    );
    let silent = ms(dead.at, pong.at);
    assert!(
        (bound_ms - 5.0..=bound_ms + SLACK_MS).contains(&silent),
        "detected after {silent:.1} ms, bound {bound_ms} ms"
    );
    assert_eq!(
        names(&between),
        ["ping", "pong_missed", "ping", "pong_missed"]
    );
    assert!(
        matches!(
            dead.event,
            Event::Disconnected {
                reason: DisconnectReason::HeartbeatTimeout { .. },
                ..
            }
        ),
        "{:?}",
        dead.event
    );
    server.drop_all();
    server.unfreeze();
    let (_, before) = until(client, Duration::from_secs(5), "reconnect", is("connected"));
    assert_eq!(names(&before), ["reconnecting", "connecting"]);
}

#[cfg(feature = "tls")]
#[test]
fn tls_terminator_echoes_and_answers_pings() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(30), "nginx_tls_echo");
    let server = TestServer::start(Mode::Echo);
    let Some(nginx) = start_or_skip(server.port(), TLS) else {
        return;
    };
    let mut client = Client::new(config(&nginx.url())).unwrap();
    echo_and_pong(&mut client, "nginx tls");
    assert_eq!(server.handshakes(), 1);
    // nginx forwarded the upgrade with the Host we sent.
    let host = format!("localhost:{}", nginx.port());
    assert!(
        server.request_headers()[0]
            .iter()
            .any(|(n, v)| n == "host" && *v == host),
        "{:?}",
        server.request_headers()[0]
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_terminator_passes_the_server_close_code_through() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(30), "nginx_close_code");
    let server = TestServer::start(Mode::Echo);
    let Some(nginx) = start_or_skip(server.port(), TLS) else {
        return;
    };
    let mut client = Client::new(config(&nginx.url())).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    server.close_all(4000, "maintenance");
    let (dead, _) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnect",
        is("disconnected"),
    );
    match &dead.event {
        Event::Disconnected { reason, .. } => {
            eprintln!("close through nginx: {} ({reason})", reason.kind());
            assert_eq!(reason.kind(), "closed_by_server");
            assert_eq!(reason.code(), Some(4000));
            assert!(
                matches!(reason, DisconnectReason::ClosedByServer { reason, .. } if reason == "maintenance")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // Our Close reply reached the server through nginx, then a reconnect follows.
    server.wait_for(Duration::from_secs(2), "close reply", |s| {
        s.close_frames_received() == [Some(4000)]
    });
    until(
        &mut client,
        Duration::from_secs(5),
        "reconnect",
        is("connected"),
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_terminator_frozen_backend_is_detected_at_the_bound() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(30), "nginx_tls_frozen");
    let server = TestServer::start(Mode::Echo);
    let Some(nginx) = start_or_skip(server.port(), TLS) else {
        return;
    };
    let cfg = config(&nginx.url());
    let bound_ms = cfg.heartbeat.detection_bound().as_secs_f64() * 1000.0;
    let mut client = Client::new(cfg).unwrap();
    frozen_backend_is_detected(&server, &mut client, bound_ms);
}

#[cfg(feature = "tls")]
#[test]
fn tls_terminator_with_client_verification_accepts_and_refuses() {
    use common::certs::{certs, P12_PASSWORD};
    use wsbeat::{ClientIdentity, Error};
    common::init_logs();
    let _w = watchdog(Duration::from_secs(30), "nginx_mtls");
    let server = TestServer::start(Mode::Echo);
    let Some(nginx) = start_or_skip(
        server.port(),
        NginxOptions {
            tls: true,
            verify_client: true,
        },
    ) else {
        return;
    };
    let c = certs();
    for id in [
        ClientIdentity::Pem {
            cert: c.client.cert_pem.clone(),
            key: c.client.key_pem.clone(),
        },
        ClientIdentity::Pkcs12 {
            der: c.client_p12.clone(),
            password: P12_PASSWORD.to_string(),
        },
    ] {
        let mut cfg = config(&nginx.url());
        cfg.tls = cfg.tls.identity(id);
        let mut client = Client::new(cfg).unwrap();
        echo_and_pong(&mut client, "nginx mTLS");
    }
    assert_eq!(server.handshakes(), 2);

    for (what, identity) in [
        ("no certificate", None),
        (
            "foreign certificate",
            Some(ClientIdentity::Pem {
                cert: c.other_client.cert_pem.clone(),
                key: c.other_client.key_pem.clone(),
            }),
        ),
    ] {
        let mut cfg = config(&nginx.url());
        if let Some(id) = identity {
            cfg.tls = cfg.tls.identity(id);
        }
        let mut client = Client::new(cfg).unwrap();
        let (failed, before) = until(
            &mut client,
            Duration::from_secs(5),
            "refusal",
            is("connect_failed"),
        );
        assert_eq!(names(&before), ["connecting"]);
        let Event::ConnectFailed { error, .. } = failed.event else {
            unreachable!()
        };
        eprintln!("nginx mTLS refusal ({what}): {error}");
        // nginx finishes the TLS handshake and answers the request with 400 ("No required SSL
        // certificate was sent" / "The SSL certificate error"); an alert is fine too.
        assert!(
            error.http_status() == Some(400) || matches!(error, Error::Tls { .. }),
            "{what}: {error:?}"
        );
        let (next, _) = until(&mut client, Duration::from_secs(5), "retry", |_| true);
        assert!(is("reconnecting")(&next.event), "{:?}", next.event);
    }
    assert_eq!(server.handshakes(), 2, "refused clients never reached it");
}

#[test]
fn plain_reverse_proxy_echoes_and_detects_a_frozen_backend() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(30), "nginx_plain");
    let server = TestServer::start(Mode::Echo);
    let Some(nginx) = start_or_skip(server.port(), PLAIN) else {
        return;
    };
    let cfg = config(&nginx.url());
    let bound_ms = cfg.heartbeat.detection_bound().as_secs_f64() * 1000.0;
    let mut client = Client::new(cfg).unwrap();
    echo_and_pong(&mut client, "nginx plain");
    frozen_backend_is_detected(&server, &mut client, bound_ms);
    // Still healthy afterwards.
    let seen = for_span(&mut client, Duration::from_millis(500));
    assert!(
        !names(&seen).contains(&"disconnected"),
        "{:?}",
        names(&seen)
    );
}

#[test]
fn plain_reverse_proxy_passes_the_close_code_and_a_dead_backend_is_a_502() {
    common::init_logs();
    let _w = watchdog(Duration::from_secs(30), "nginx_plain_close");
    let server = TestServer::start(Mode::Echo);
    let Some(nginx) = start_or_skip(server.port(), PLAIN) else {
        return;
    };
    let mut client = Client::new(config(&nginx.url())).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    server.close_all(4000, "");
    let (dead, _) = until(
        &mut client,
        Duration::from_secs(5),
        "disconnect",
        is("disconnected"),
    );
    match &dead.event {
        Event::Disconnected { reason, .. } => assert_eq!(reason.code(), Some(4000), "{reason}"),
        other => panic!("unexpected {other:?}"),
    }
    // The backend goes away: nginx answers the upgrade with 502, a retried refusal.
    server.stop();
    let (failed, _) = until(
        &mut client,
        Duration::from_secs(5),
        "refusal",
        is("connect_failed"),
    );
    match failed.event {
        Event::ConnectFailed { error, .. } => {
            eprintln!("nginx without backend: {error}");
            assert_eq!(error.http_status(), Some(502), "{error:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
}
