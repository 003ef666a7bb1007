//! Reconnection: one cycle per disconnect, capped jittered backoff, give-up counts,
//! Retry-After, connect timeout, final close codes. Delays are asserted against the
//! proportional policy, pinned here (the default draws from a wider range): every wait lies in
//! `[(1 - jitter) × d, d]`.

mod common;

use std::time::{Duration, Instant};

use common::drive::{for_span, is, ms, names, until};
use common::{refused_port, watchdog, Mode, TestServer};
use wsbeat::{Client, Config, DisconnectReason, Error, Event, Jitter};

fn config(url: &str) -> Config {
    let mut c = Config::new(url)
        .ping_interval(Duration::from_secs(5))
        .backoff(Duration::from_millis(100), Duration::from_millis(400))
        .min_uptime(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(500))
        .seed(7);
    c.backoff.strategy = Jitter::Proportional;
    // A reset's first attempt is spread over [0, 100 ms] (not the default 10 s), and the
    // failures after it start from 100 ms, as before a reset.
    c.backoff.first_spread = Duration::from_millis(100);
    c
}

#[test]
fn refused_port_with_two_retries_makes_three_attempts_then_gives_up() {
    let _w = watchdog(Duration::from_secs(20), "give_up");
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let mut client = Client::new(config(&url).max_retries(Some(2))).unwrap();
    let start = Instant::now();
    let (gave_up, before) = until(
        &mut client,
        Duration::from_secs(5),
        "gave_up",
        is("gave_up"),
    );
    assert_eq!(
        names(&before),
        [
            "connecting",
            "connect_failed",
            "reconnecting",
            "connecting",
            "connect_failed",
            "reconnecting",
            "connecting",
            "connect_failed"
        ]
    );
    assert!(
        matches!(gave_up.event, Event::GaveUp { attempts: 3 }),
        "{:?}",
        gave_up.event
    );
    // Waits: 100 ms then 200 ms, each jittered by at most 20 % down.
    let total = ms(gave_up.at, start);
    assert!(
        (240.0..=300.0 + 150.0).contains(&total),
        "gave up after {total:.1} ms"
    );
    for s in &before {
        if let Event::ConnectFailed { error, .. } = &s.event {
            assert!(
                matches!(error, Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
                "{error}"
            );
        }
    }
    assert!(client.is_stopped() && client.poll(Duration::from_millis(10)).is_none());
    assert_eq!(client.stats().attempts, 3);
}

#[test]
fn after_a_dropped_link_gives_up_after_n_attempts() {
    let _w = watchdog(Duration::from_secs(20), "give_up_after_drop");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url()).max_retries(Some(2))).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    server.stop();
    let (gave_up, before) = until(
        &mut client,
        Duration::from_secs(5),
        "gave_up",
        is("gave_up"),
    );
    assert!(
        matches!(gave_up.event, Event::GaveUp { attempts: 2 }),
        "{:?}",
        gave_up.event
    );
    assert_eq!(
        names(&before)
            .iter()
            .filter(|n| **n == "connect_failed")
            .count(),
        2
    );
}

#[test]
fn one_disconnect_leads_to_exactly_one_reconnect() {
    let _w = watchdog(Duration::from_secs(20), "single_cycle");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url())).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    server.close_all(1012, "restarting");
    let (_, before) = until(
        &mut client,
        Duration::from_secs(5),
        "reconnected",
        is("connected"),
    );
    assert_eq!(
        names(&before),
        ["disconnected", "reconnecting", "connecting"]
    );
    match &before[0].event {
        Event::Disconnected {
            reason:
                DisconnectReason::ClosedByServer {
                    code: Some(1012),
                    reason,
                },
            ..
        } => {
            assert_eq!(reason, "restarting")
        }
        other => panic!("unexpected {other:?}"),
    }
    // Nothing more happens: no second cycle from the same link's end.
    let seen = for_span(&mut client, Duration::from_millis(600));
    assert!(
        names(&seen)
            .iter()
            .all(|n| *n != "disconnected" && *n != "connecting"),
        "{:?}",
        names(&seen)
    );
    assert_eq!(server.accepted(), 2);
    assert_eq!(
        server.close_frames_received(),
        [Some(1012)],
        "our reply to the server's close"
    );
}

#[test]
fn flapping_server_never_causes_a_tight_loop() {
    let _w = watchdog(Duration::from_secs(20), "flapping");
    let server = TestServer::start(Mode::DropAfterHandshake);
    let mut client = Client::new(config(&server.url())).unwrap();
    let seen = for_span(&mut client, Duration::from_millis(2000));
    let delays: Vec<Duration> = seen
        .iter()
        .filter_map(|s| match s.event {
            Event::Reconnecting { delay, .. } => Some(delay),
            _ => None,
        })
        .collect();
    // Up less than min_uptime each time: the delay keeps growing to the cap.
    assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
    assert!(
        delays
            .iter()
            .skip(2)
            .all(|d| *d >= Duration::from_millis(320)),
        "{delays:?}"
    );
    // 100 + 200 + 400 x n (jitter 20 %) in 2 s: at most 7 connections.
    assert!(
        server.accepted() <= 7,
        "{} connections in 2 s",
        server.accepted()
    );
}

#[test]
fn backoff_resets_after_min_uptime() {
    let _w = watchdog(Duration::from_secs(20), "reset");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url())).unwrap();
    for _ in 0..3 {
        until(
            &mut client,
            Duration::from_secs(5),
            "connected",
            is("connected"),
        );
        for_span(&mut client, Duration::from_millis(350)); // > 300 ms min_uptime
        server.drop_all();
        let (r, _) = until(
            &mut client,
            Duration::from_secs(5),
            "reconnecting",
            is("reconnecting"),
        );
        match r.event {
            Event::Reconnecting { delay, .. } => {
                assert!(delay <= Duration::from_millis(100), "{delay:?}")
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn server_restarted_on_the_same_port_is_reconnected_after_the_backoff() {
    let _w = watchdog(Duration::from_secs(20), "restart");
    let server = TestServer::start(Mode::Echo);
    let port = server.port();
    let mut client = Client::new(config(&server.url())).unwrap();
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    server.stop();
    until(
        &mut client,
        Duration::from_secs(5),
        "a failed attempt",
        is("connect_failed"),
    );
    let server = TestServer::start_on(port, Mode::Echo).unwrap();
    let (reconnecting, _) = until(
        &mut client,
        Duration::from_secs(5),
        "reconnecting",
        is("reconnecting"),
    );
    let delay = match reconnecting.event {
        Event::Reconnecting { delay, .. } => delay,
        _ => unreachable!(),
    };
    let (connected, _) = until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    let waited = ms(connected.at, reconnecting.at);
    let delay_ms = delay.as_secs_f64() * 1000.0;
    assert!(
        waited >= delay_ms - 1.0 && waited <= delay_ms + 100.0,
        "waited {waited:.1} ms for a {delay_ms:.1} ms delay"
    );
    assert!(server.handshakes() >= 1);
}

#[test]
fn retry_after_on_503_is_honoured() {
    let _w = watchdog(Duration::from_secs(20), "retry_after");
    let server = TestServer::start(Mode::HttpStatus {
        status: 503,
        retry_after: Some(1),
    });
    let mut client = Client::new(config(&server.url())).unwrap();
    let (failed, _) = until(
        &mut client,
        Duration::from_secs(5),
        "connect_failed",
        is("connect_failed"),
    );
    match &failed.event {
        Event::ConnectFailed { error, .. } => {
            assert_eq!(error.http_status(), Some(503));
            assert!(
                matches!(error, Error::HttpStatus { retry_after: Some(d), .. } if *d == Duration::from_secs(1))
            );
        }
        _ => unreachable!(),
    }
    let (r, _) = until(
        &mut client,
        Duration::from_secs(5),
        "reconnecting",
        is("reconnecting"),
    );
    assert!(
        matches!(r.event, Event::Reconnecting { delay, .. } if delay >= Duration::from_secs(1))
    );
    server.set_mode(Mode::Echo);
    let (c, _) = until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    // From when the retry was scheduled (the failure), by the library's clock.
    assert!(ms(c.at, r.at) >= 1000.0);
    let _ = failed;
}

#[test]
fn refused_upgrade_reports_the_status() {
    let _w = watchdog(Duration::from_secs(20), "http_401");
    for status in [401u16, 403, 404, 500] {
        let server = TestServer::start(Mode::HttpStatus {
            status,
            retry_after: None,
        });
        let mut client = Client::new(config(&server.url()).max_retries(Some(0))).unwrap();
        let (failed, _) = until(
            &mut client,
            Duration::from_secs(5),
            "connect_failed",
            is("connect_failed"),
        );
        match &failed.event {
            Event::ConnectFailed { error, .. } => {
                assert_eq!(error.http_status(), Some(status));
                assert!(error.to_string().contains(&status.to_string()), "{error}");
            }
            _ => unreachable!(),
        }
        until(
            &mut client,
            Duration::from_secs(5),
            "gave_up",
            is("gave_up"),
        );
    }
}

#[test]
fn silent_handshake_times_out_at_the_connect_timeout() {
    let _w = watchdog(Duration::from_secs(20), "silent_handshake");
    let server = TestServer::start(Mode::SilentHandshake);
    let mut client = Client::new(config(&server.url())).unwrap();
    let (connecting, _) = until(
        &mut client,
        Duration::from_secs(5),
        "connecting",
        is("connecting"),
    );
    let (failed, _) = until(
        &mut client,
        Duration::from_secs(5),
        "connect_failed",
        is("connect_failed"),
    );
    let took = ms(failed.at, connecting.at);
    assert!(
        (499.0..=600.0).contains(&took),
        "timed out after {took:.1} ms (connect_timeout 500)"
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

#[test]
fn a_final_close_code_stops_reconnecting() {
    let _w = watchdog(Duration::from_secs(20), "final_code");
    let server = TestServer::start(Mode::CloseAfterHandshake {
        code: 4001,
        reason: "device revoked".into(),
    });
    let mut client = Client::new(config(&server.url()).final_close_code(4001)).unwrap();
    let (_, before) = until(
        &mut client,
        Duration::from_secs(5),
        "gave_up",
        is("gave_up"),
    );
    assert_eq!(names(&before), ["connecting", "connected", "disconnected"]);
    assert!(client.is_stopped());
    assert_eq!(server.accepted(), 1);
}
