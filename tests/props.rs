//! Property tests through the public API (proptest).
//!
//! - `Client::new` never panics, whatever the configuration: arbitrary URLs, headers,
//!   subprotocols, durations (zero, huge), backoff factors and jitters (NaN, infinities); it
//!   accepts exactly what the documented rules allow and names the field it refuses.
//! - A URL's port, whatever its text: `Client::new` refuses it naming `url` unless it is empty
//!   (the default port) or digits naming 1 to 65535, and the client then connects to exactly
//!   that port (seen in the CONNECT line an in-process proxy receives), never another one. A
//!   proxy URL's port follows the same rule, naming `proxy`.
//! - `HeartbeatConfig::detection_bound` is `ping_interval + max_missed_pongs × pong_timeout`,
//!   saturating instead of overflowing.
//! - The backoff, observed on real attempts against a refused loopback port, for arbitrary
//!   policies of every strategy: `max_retries + 1` attempts then `GaveUp`; with
//!   `b_k = min(initial × factor^k, max)`, the k-th delay lies in `[(1 - jitter) × b_k, b_k]`
//!   and never shrinks (proportional), in `[0, b_k]` (full), or in
//!   `[initial, min(max, 3 × previous)]` (decorrelated); every attempt waits at least its
//!   delay.
//! - The heartbeat, observed against a loopback server that never answers pings, for
//!   arbitrary timings: exactly `max_missed_pongs` pings and misses, and the dead verdict
//!   at the detection bound after the last inbound byte (the handshake), never before.
//!
//! The pure state machines behind the last two are crate-private; their exhaustive
//! properties (arbitrary inbound instants and clock steps) live next to them, in
//! `src/heartbeat/props.rs` and `src/backoff/props.rs`.

mod common;

use std::time::{Duration, Instant};

use common::drive::{is, names, until};
use common::proxy::{ConnectProxy, ProxyMode};
use common::{refused_port, watchdog, Mode, TestServer};
use proptest::prelude::*;
use proptest::test_runner::{Config as Runner, TestCaseError, TestRunner};
use wsbeat::{Client, Config, DisconnectReason, Error, Event, Jitter};

/// Runner settings: a fixed number of cases, no regression files in the source tree.
fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Runner {
        cases,
        failure_persistence: None,
        ..Runner::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Client::new

/// Durations around the interesting edges: zero, tiny, ordinary, huge.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        1 => Just(Duration::ZERO),
        30 => (1u64..5_000).prop_map(Duration::from_millis),
        1 => any::<u64>().prop_map(Duration::from_nanos),
        1 => Just(Duration::MAX),
        1 => (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

/// Mostly in `[0, 1)` (a valid jitter; for a factor, `+ 1.0` below), sometimes anything.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(1.0),
        30 => 0.0..1.0f64,
        1 => -2.0..4.0f64,
        1 => any::<f64>(),
    ]
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        // Shapes that should parse, with arbitrary hosts, ports and paths.
        12 => ("(ws|wss)", "[a-z][a-z0-9.-]{0,19}", proptest::option::of(any::<u16>()), "(/[a-zA-Z0-9._~/-]{0,20}(\\?[a-z]{1,5}=[a-z0-9]{0,5})?)?")
            .prop_map(|(s, h, p, path)| match p {
                Some(p) => format!("{s}://{h}:{p}{path}"),
                None => format!("{s}://{h}{path}"),
            }),
        1 => "(ws|wss|http|ftp|WS)://\\PC{0,30}",
        1 => "\\PC{0,40}",
        1 => any::<String>(),
        1 => "ws://\\[[0-9a-f:]{0,20}\\](:[0-9]{0,6})?/",
        1 => "ws://[^/]{0,10}@[a-z]{1,5}:[0-9]{1,7}/\\PC{0,10}",
        2 => ("(ws|wss)", "[a-z]{1,8}", port_text()).prop_map(|(s, h, p)| format!("{s}://{h}:{p}/")),
    ]
}

/// What may follow `host:` in a URL: ports in and out of 1..=65535, zero, leading zeros, long
/// digit runs, nothing, signs, and any other characters that stay inside the authority
/// (`http::Uri` lets most of them through, so the library has to judge them itself).
fn port_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => any::<u16>().prop_map(|p| p.to_string()),
        2 => (65_536u64..=u64::from(u32::MAX)).prop_map(|p| p.to_string()),
        1 => Just("0".to_string()),
        1 => Just(String::new()),
        2 => "0{1,4}[0-9]{1,5}",
        1 => "[0-9]{6,25}",
        2 => "[+-][0-9]{1,5}",
        2 => "[0-9a-zA-Z._~!$&'()*+,;=:-]{1,8}",
        // `/ ? #` end the authority and `@ [ ]` restructure it: the URL would then say
        // something else than "this port".
        2 => "[^/?#@\\[\\]]{1,8}",
    ]
}

/// The port `text` names by the documented rule: the default when empty, the number when it
/// is ASCII digits naming 1 to 65535, else none (a `url` config error).
fn port_model(text: &str, default: u16) -> Option<u16> {
    if text.is_empty() {
        return Some(default);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|&p| p != 0)
}

fn header() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![4 => "[A-Za-z-]{1,12}", 1 => any::<String>()],
        prop_oneof![4 => "[ -~]{0,20}", 1 => any::<String>()],
    )
}

#[derive(Clone, Debug)]
struct Fields {
    url: String,
    ping_interval: Duration,
    pong_timeout: Duration,
    max_missed: u32,
    initial: Duration,
    /// `max` is `initial + max_extra`, or half of `initial` when `max_below`.
    max_extra: Duration,
    max_below: bool,
    factor: f64,
    jitter: f64,
    first_spread: Duration,
    connect_timeout: Duration,
    close_timeout: Duration,
    write_timeout: Duration,
    max_message_size: usize,
    max_frame_size: usize,
    read_buffer_size: usize,
    outbox: (usize, usize),
    headers: Vec<(String, String)>,
    protocols: Vec<String>,
    final_close_codes: Vec<u16>,
    final_http_statuses: Vec<u16>,
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        (
            url(),
            duration(),
            duration(),
            prop_oneof![1 => Just(0u32), 8 => 1u32..5, 1 => any::<u32>()],
        ),
        (
            duration(),
            duration(),
            proptest::bool::weighted(0.1),
            float(),
            float(),
            duration(),
        ),
        (duration(), duration(), duration()),
        (
            prop_oneof![1 => Just(0usize), 8 => 1usize..1 << 20, 1 => any::<usize>()],
            prop_oneof![1 => Just(0usize), 8 => 1usize..1 << 20],
            prop_oneof![1 => Just(0usize), 8 => 1usize..1 << 16],
            (
                prop_oneof![1 => Just(0usize), 8 => 1usize..100],
                prop_oneof![1 => Just(0usize), 8 => 1usize..1 << 20],
            ),
        ),
        (
            proptest::collection::vec(header(), 0..3),
            proptest::collection::vec(prop_oneof![4 => "[a-z.]{1,8}", 1 => any::<String>()], 0..3),
            proptest::collection::vec(prop_oneof![4 => 1000u16..5000, 1 => any::<u16>()], 0..3),
            proptest::collection::vec(prop_oneof![4 => 400u16..600, 1 => any::<u16>()], 0..3),
        ),
    )
        .prop_map(
            |(
                (url, ping_interval, pong_timeout, max_missed),
                (initial, max_extra, max_below, factor, jitter, first_spread),
                (connect_timeout, close_timeout, write_timeout),
                (max_message_size, max_frame_size, read_buffer_size, outbox),
                (headers, protocols, final_close_codes, final_http_statuses),
            )| Fields {
                url,
                ping_interval,
                pong_timeout,
                max_missed,
                initial,
                max_extra,
                max_below,
                factor,
                jitter,
                first_spread,
                connect_timeout,
                close_timeout,
                write_timeout,
                max_message_size,
                max_frame_size,
                read_buffer_size,
                outbox,
                headers,
                protocols,
                final_close_codes,
                final_http_statuses,
            },
        )
}

impl Fields {
    fn config(&self) -> Config {
        let mut c = Config::new(self.url.clone())
            .ping_interval(self.ping_interval)
            .pong_timeout(self.pong_timeout)
            .max_missed_pongs(self.max_missed)
            .backoff(self.initial, self.max())
            .connect_timeout(self.connect_timeout)
            .close_timeout(self.close_timeout);
        c.backoff.factor = self.factor + 1.0;
        c.backoff.jitter = self.jitter;
        c.backoff.first_spread = self.first_spread;
        c.write_timeout = self.write_timeout;
        c.max_message_size = self.max_message_size;
        c.max_frame_size = self.max_frame_size;
        c.read_buffer_size = self.read_buffer_size;
        c.outbox.max_messages = self.outbox.0;
        c.outbox.max_bytes = self.outbox.1;
        c.headers = self.headers.clone();
        c.protocols = self.protocols.clone();
        c.final_close_codes = self.final_close_codes.clone();
        c.final_http_statuses = self.final_http_statuses.clone();
        c
    }

    fn max(&self) -> Duration {
        if self.max_below {
            self.initial / 2
        } else {
            self.initial.saturating_add(self.max_extra)
        }
    }

    /// The first numeric field the documented rules refuse, if any (the URL, headers and
    /// protocols are judged by the library alone).
    fn numeric_refusal(&self) -> Option<&'static str> {
        let positive = [
            ("heartbeat.ping_interval", self.ping_interval),
            ("heartbeat.pong_timeout", self.pong_timeout),
            ("backoff.initial", self.initial),
            ("backoff.max", self.max()),
            ("connect_timeout", self.connect_timeout),
            ("close_timeout", self.close_timeout),
            ("write_timeout", self.write_timeout),
        ];
        // Zero, or over 30 days (the library's bound keeps `Instant + duration` from
        // overflowing), names the field.
        let max = Duration::from_secs(30 * 24 * 3600);
        if let Some((field, _)) = positive.iter().find(|(_, d)| d.is_zero() || *d > max) {
            return Some(field);
        }
        if self.max_missed == 0 {
            return Some("heartbeat.max_missed_pongs");
        }
        if self.max() < self.initial {
            return Some("backoff.max");
        }
        let factor = self.factor + 1.0;
        if !(factor.is_finite() && factor >= 1.0) {
            return Some("backoff.factor");
        }
        if !(self.jitter.is_finite() && (0.0..1.0).contains(&self.jitter)) {
            return Some("backoff.jitter");
        }
        // Zero is allowed (reconnect at once); only the 30-day bound applies.
        if self.first_spread > max {
            return Some("backoff.first_spread");
        }
        let counts = [
            ("outbox.max_messages", self.outbox.0),
            ("outbox.max_bytes", self.outbox.1),
            ("max_message_size", self.max_message_size),
            ("max_frame_size", self.max_frame_size),
            ("read_buffer_size", self.read_buffer_size),
        ];
        counts.iter().find(|(_, n)| *n == 0).map(|(f, _)| *f)
    }
}

#[test]
fn client_new_never_panics_and_refuses_exactly_what_the_rules_refuse() {
    let _w = watchdog(Duration::from_secs(120), "props_client_new");
    const FIELDS: [&str; 24] = [
        "url",
        "heartbeat.ping_interval",
        "heartbeat.pong_timeout",
        "heartbeat.max_missed_pongs",
        "heartbeat.app_heartbeat",
        "backoff.initial",
        "backoff.max",
        "backoff.factor",
        "backoff.jitter",
        "backoff.first_spread",
        "connect_timeout",
        "close_timeout",
        "write_timeout",
        "outbox.max_messages",
        "outbox.max_bytes",
        "max_message_size",
        "max_frame_size",
        "read_buffer_size",
        "headers",
        "protocols",
        "origin",
        "proxy",
        "final_http_statuses",
        "final_close_codes",
    ];
    let accepted = std::cell::Cell::new(0u32);
    let refused = std::cell::Cell::new(0u32);
    // Every field can be wrong (ports, spreads and strategies joined the generators), so only
    // about 3 % of arbitrary configurations are valid: enough cases that both outcomes are
    // well exercised (the check below).
    runner(2048)
        .run(&fields(), |f| {
            let result = Client::new(f.config());
            match &result {
                Ok(_) => accepted.set(accepted.get() + 1),
                Err(e) => {
                    refused.set(refused.get() + 1);
                    if std::env::var_os("PROPS_DEBUG").is_some() {
                        eprintln!("{e}");
                    }
                }
            }
            let refusal = f.numeric_refusal();
            match &result {
                Ok(_) => prop_assert!(
                    refusal.is_none(),
                    "accepted although {refusal:?} breaks the rules: {f:?}"
                ),
                Err(Error::Config { field, problem }) => {
                    prop_assert!(FIELDS.contains(field), "unknown field {field}");
                    prop_assert!(!problem.is_empty());
                    // The URL is checked first; after it, the first numeric field refused.
                    if *field != "url" {
                        if let Some(expected) = refusal {
                            prop_assert_eq!(*field, expected);
                        }
                    }
                }
                Err(other) => prop_assert!(false, "not a config error: {other:?}"),
            }
            // Display and Debug of either outcome never panic either.
            let _ = format!("{result:?}");
            if let Err(e) = &result {
                let _ = e.to_string();
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "Client::new: {} accepted, {} refused",
        accepted.get(),
        refused.get()
    );
    assert!(accepted.get() >= 20 && refused.get() >= 20);
}

#[test]
fn a_url_port_is_exactly_that_port_or_a_url_error_never_another_port() {
    let _w = watchdog(Duration::from_secs(120), "props_url_port");
    // The proxy sees the target the client resolved from the URL, `CONNECT 127.0.0.1:PORT`,
    // without anything having to listen on PORT; its 502 ends each attempt at once.
    let proxy = ConnectProxy::start(ProxyMode::Status(502));
    let (accepted, refused) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    runner(256)
        .run(&port_text(), |text| {
            let url = format!("ws://127.0.0.1:{text}/");
            let config = Config::new(url.as_str())
                .proxy(proxy.url())
                .max_retries(Some(0));
            let expected = port_model(&text, 80);
            let mut client = match (Client::new(config), expected) {
                (Ok(client), Some(_)) => client,
                (Err(Error::Config { field: "url", .. }), None) => {
                    refused.set(refused.get() + 1);
                    return Ok(());
                }
                (result, _) => {
                    let result = result.map(|_| "a client");
                    return Err(TestCaseError::fail(format!(
                        "{url:?}: expected port {expected:?}, got {result:?}"
                    )));
                }
            };
            accepted.set(accepted.get() + 1);
            let before = proxy.requests().len();
            let (failed, _) = until(
                &mut client,
                Duration::from_secs(5),
                "connect_failed",
                is("connect_failed"),
            );
            prop_assert!(
                matches!(
                    failed.event,
                    Event::ConnectFailed {
                        error: Error::Proxy {
                            status: Some(502),
                            ..
                        },
                        ..
                    }
                ),
                "{url:?}: {:?}",
                failed.event
            );
            let requests = proxy.requests();
            prop_assert_eq!(requests.len(), before + 1, "{:?}", url);
            let want = format!("CONNECT 127.0.0.1:{} HTTP/1.1", expected.unwrap_or(0));
            prop_assert_eq!(&requests[before].line, &want, "{:?}", url);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "url ports: {} accepted, {} refused",
        accepted.get(),
        refused.get()
    );
    assert!(accepted.get() >= 20 && refused.get() >= 20);
}

#[test]
fn a_proxy_port_is_a_number_from_1_to_65535_or_a_proxy_error() {
    runner(512)
        .run(&port_text(), |text| {
            let proxy = format!("http://127.0.0.1:{text}");
            let result = Client::new(Config::new("ws://127.0.0.1:1/").proxy(proxy.as_str()));
            match (&result, port_model(&text, 80)) {
                (Ok(_), Some(_)) | (Err(Error::Config { field: "proxy", .. }), None) => {}
                (result, expected) => prop_assert!(
                    false,
                    "{proxy:?}: expected port {expected:?}, got {:?}",
                    result.as_ref().map(|_| "a client")
                ),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn detection_bound_is_the_documented_sum_saturating() {
    runner(1024)
        .run(
            &(duration(), duration(), any::<u32>()),
            |(interval, timeout, max)| {
                let c = Config::new("ws://h/")
                    .ping_interval(interval)
                    .pong_timeout(timeout)
                    .max_missed_pongs(max);
                let expected = timeout
                    .checked_mul(max)
                    .and_then(|t| interval.checked_add(t))
                    .unwrap_or(Duration::MAX);
                prop_assert_eq!(c.heartbeat.detection_bound(), expected);
                Ok(())
            },
        )
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Backoff, observed

#[derive(Clone, Debug)]
struct Policy {
    initial_us: u64,
    max_us: u64,
    factor: f64,
    jitter: f64,
    strategy: Jitter,
    retries: u32,
    seed: u64,
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        500u64..4_000,
        0u64..8_000,
        1.0..3.0f64,
        prop_oneof![Just(0.0), 0.0..0.95f64],
        prop_oneof![
            Just(Jitter::Proportional),
            Just(Jitter::Full),
            Just(Jitter::Decorrelated)
        ],
        0u32..7,
        any::<u64>(),
    )
        .prop_map(
            |(initial_us, extra, factor, jitter, strategy, retries, seed)| Policy {
                initial_us,
                max_us: initial_us + extra,
                factor,
                jitter,
                strategy,
                retries,
                seed,
            },
        )
}

#[test]
fn backoff_on_real_refused_attempts_follows_the_policy() {
    let _w = watchdog(Duration::from_secs(120), "props_backoff");
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let slack = Duration::from_millis(100);
    runner(48)
        .run(&policy(), |p| {
            let initial = Duration::from_micros(p.initial_us);
            let max = Duration::from_micros(p.max_us);
            let mut cfg = Config::new(url.clone())
                .backoff(initial, max)
                .max_retries(Some(p.retries))
                .seed(p.seed);
            cfg.backoff.factor = p.factor;
            cfg.backoff.jitter = p.jitter;
            cfg.backoff.strategy = p.strategy;
            let mut client = Client::new(cfg).unwrap();
            let (gave_up, before) = until(
                &mut client,
                Duration::from_secs(10),
                "gave_up",
                is("gave_up"),
            );
            let attempts = u64::from(p.retries) + 1;
            prop_assert!(
                matches!(gave_up.event, Event::GaveUp { attempts: a } if a == attempts),
                "{:?}",
                gave_up.event
            );
            let connecting = before.iter().filter(|s| is("connecting")(&s.event)).count();
            prop_assert_eq!(connecting as u64, attempts);
            // Delays against the policy, and each wait against its delay.
            let mut k = 0i32;
            let mut last = Duration::ZERO;
            let mut pending: Option<(Instant, Duration)> = None;
            // A delay runs from the failure it follows (queued together, seen first).
            let mut failed_at = None;
            for s in &before {
                match s.event {
                    Event::ConnectFailed { .. } => failed_at = Some(s.at),
                    Event::Reconnecting { delay, .. } => {
                        let base =
                            (initial.as_secs_f64() * p.factor.powi(k)).min(max.as_secs_f64());
                        let (low, high) = match p.strategy {
                            Jitter::Proportional => {
                                prop_assert!(
                                    delay >= last,
                                    "delay {k} shrank: {delay:?} < {last:?}"
                                );
                                (base * (1.0 - p.jitter), base)
                            }
                            Jitter::Full => (0.0, base),
                            Jitter::Decorrelated => {
                                let previous = last.max(initial).as_secs_f64();
                                (
                                    initial.as_secs_f64(),
                                    (3.0 * previous).min(max.as_secs_f64()),
                                )
                            }
                            other => unreachable!("no property for {other:?}"),
                        };
                        let d = delay.as_secs_f64();
                        prop_assert!(
                            d >= low - 1e-6 && d <= high + 1e-6,
                            "{:?} delay {k}: {delay:?} outside [{low}, {high}] s",
                            p.strategy
                        );
                        last = delay;
                        k += 1;
                        // From when the library scheduled the retry (the `Reconnecting`'s own
                        // instant, see `Seen`), never from when this loop saw the failure.
                        let _ = failed_at.take();
                        pending = Some((s.at, delay));
                    }
                    Event::Connecting { .. } => {
                        if let Some((at, delay)) = pending.take() {
                            let waited = s.at.duration_since(at);
                            prop_assert!(waited >= delay, "waited {waited:?} < {delay:?}");
                            prop_assert!(waited <= delay + slack, "waited {waited:?}");
                        }
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(k as u32, p.retries);
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Heartbeat, observed

#[test]
fn heartbeat_verdict_comes_at_the_bound_after_the_last_inbound_byte() {
    let _w = watchdog(Duration::from_secs(120), "props_heartbeat");
    // Echoes data, never answers pings: the handshake reply is the last inbound byte.
    let server = TestServer::start(Mode::EchoNoPong);
    let slack = Duration::from_millis(100);
    runner(12)
        .run(
            &(20u64..80, 10u64..40, 1u32..4),
            |(interval, timeout, max)| {
                let cfg = Config::new(server.url())
                    .ping_interval(Duration::from_millis(interval))
                    .pong_timeout(Duration::from_millis(timeout))
                    .max_missed_pongs(max)
                    .seed(interval);
                let bound = cfg.heartbeat.detection_bound();
                let mut client = Client::new(cfg).unwrap();
                let (connected, _) = until(
                    &mut client,
                    Duration::from_secs(5),
                    "connected",
                    is("connected"),
                );
                let (dead, between) = until(
                    &mut client,
                    Duration::from_secs(5),
                    "disconnected",
                    is("disconnected"),
                );
                // `connected.at` is taken when poll returns the event, microseconds after the
                // handshake's last byte: 1 ms covers that, nothing more.
                let silent = dead.at.duration_since(connected.at);
                prop_assert!(
                    silent + Duration::from_millis(1) >= bound,
                    "dead after {silent:?}, bound {bound:?}"
                );
                prop_assert!(
                    silent <= bound + slack,
                    "dead after {silent:?}, bound {bound:?}"
                );
                let mut expected = Vec::new();
                for _ in 0..max {
                    expected.extend(["ping", "pong_missed"]);
                }
                prop_assert_eq!(names(&between), expected);
                match dead.event {
                    Event::Disconnected {
                        reason: DisconnectReason::HeartbeatTimeout { missed, silent_for },
                        ..
                    } => {
                        prop_assert_eq!(missed, max);
                        prop_assert!(silent_for >= bound, "{silent_for:?}");
                    }
                    other => prop_assert!(false, "{other:?}"),
                }
                Ok(())
            },
        )
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Huge durations: `Client::new` once accepted them (only zero was refused) and the client
// panicked when it first added one to an `Instant` or turned it into a delay. Now validation
// refuses anything over 30 days with an error naming the field; these stay as regressions.

/// 2^63 seconds and more: past what `Instant` can add on Linux.
const HUGE: Duration = Duration::MAX;

#[test]
fn huge_backoff_is_refused_or_capped_not_a_panic() {
    let _w = watchdog(Duration::from_secs(10), "bug_huge_backoff");
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let mut cfg = Config::new(url).backoff(HUGE, HUGE).max_retries(Some(1));
    cfg.backoff.jitter = 0.0;
    let Ok(mut client) = Client::new(cfg) else {
        return; // refused, naming the field: fine
    };
    // Connecting, ConnectFailed (refused), then the delay: a panic here.
    for _ in 0..3 {
        let _ = client.poll(Duration::from_millis(50));
    }
}

#[test]
fn huge_connect_timeout_is_refused_or_capped_not_a_panic() {
    let _w = watchdog(Duration::from_secs(10), "bug_huge_connect_timeout");
    let url = format!("ws://127.0.0.1:{}/", refused_port());
    let Ok(mut client) = Client::new(Config::new(url).connect_timeout(HUGE)) else {
        return;
    };
    for _ in 0..3 {
        let _ = client.poll(Duration::from_millis(50));
    }
}

#[test]
fn huge_ping_interval_is_refused_or_capped_not_a_panic() {
    let _w = watchdog(Duration::from_secs(10), "bug_huge_ping_interval");
    let server = TestServer::start(Mode::Echo);
    let Ok(mut client) = Client::new(Config::new(server.url()).ping_interval(HUGE)) else {
        return;
    };
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    let _ = client.poll(Duration::from_millis(50));
}

#[test]
fn huge_close_timeout_is_refused_or_capped_not_a_panic() {
    let _w = watchdog(Duration::from_secs(10), "bug_huge_close_timeout");
    let server = TestServer::start(Mode::Echo);
    let Ok(mut client) = Client::new(Config::new(server.url()).close_timeout(HUGE)) else {
        return;
    };
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    client.close();
    until(&mut client, Duration::from_secs(5), "closed", is("closed"));
}

#[test]
fn huge_write_timeout_is_refused_or_capped_not_a_panic() {
    let _w = watchdog(Duration::from_secs(10), "bug_huge_write_timeout");
    let server = TestServer::start(Mode::NeverRead);
    let mut cfg = Config::new(server.url());
    cfg.write_timeout = HUGE;
    cfg.outbox.max_messages = 100_000;
    cfg.outbox.max_bytes = 64 << 20;
    let Ok(mut client) = Client::new(cfg) else {
        return;
    };
    until(
        &mut client,
        Duration::from_secs(5),
        "connected",
        is("connected"),
    );
    // More than loopback buffers hold: the write stalls.
    for _ in 0..540 {
        let _ = client.send(wsbeat::Message::binary(vec![0u8; 60 << 10]));
        let _ = client.poll(Duration::ZERO);
        if client.wants_write() {
            break;
        }
    }
    let _ = client.poll(Duration::from_millis(50));
}
