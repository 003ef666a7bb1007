//! Interop with WebSocket servers nobody here wrote, each a child process on 127.0.0.1:
//! Python `websockets`, Node `ws`, libwebsockets' test server (Debian), and nginx as a
//! reverse proxy in front of the Python one. `tests/interop/run.sh` installs them and runs
//! this file; `cargo test` runs it too, skipping a peer that is not installed unless
//! `WSBEAT_REQUIRE_PEERS=1` (CI).
//!
//! Against each peer: text and binary echo up to `max_message_size`, the server's own
//! keepalive pings answered, close codes passed through, our pings answered with an RTT, a
//! frozen server (SIGSTOP) detected at the documented bound after the last inbound byte and
//! never earlier, and a killed server (SIGKILL) restarted on the same port reconnected after
//! exactly the announced backoff delays.
//!
//! What libwebsockets' test server cannot do, and how the tests adapt: its
//! `lws-mirror-protocol` sends every received chunk (at most 4 KiB, its rx buffer) back as a
//! separate *text* message, so binary echo does not apply and a large text message comes back
//! as several; it sends no keepalive pings; and it closes only through
//! `dumb-increment-protocol`'s `closeme` command, with 1001 "seeya".

mod common;
#[path = "interop/peers.rs"]
mod peers;

use std::thread;
use std::time::{Duration, Instant};

use common::drive::{name, names, Seen};
use common::{watchdog, Watchdog};
use peers::{Kind, Peer, SERVER_PING_INTERVAL};
use wsbeat::{Client, Config, DisconnectReason, Error, Event, Jitter, Message};

const SLACK_MS: f64 = 100.0;
const MAX_MESSAGE: usize = 256 << 10;
/// Poll slice: the resolution at which the last inbound byte is observed.
const SLICE: Duration = Duration::from_millis(2);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A client config for `peer`: no pings of our own unless a test asks, short backoff, the
/// peer's subprotocol.
fn config(peer: &Peer) -> Config {
    let mut c = Config::new(peer.url())
        .ping_interval(Duration::from_secs(5))
        .pong_timeout(Duration::from_secs(1))
        .backoff(Duration::from_millis(100), Duration::from_millis(400))
        .min_uptime(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .max_message_size(MAX_MESSAGE)
        .seed(17);
    // The restart test checks the proportional policy's pacing (a floor, never shrinking).
    c.backoff.strategy = Jitter::Proportional;
    if peer.kind == Kind::Lws {
        c = c.protocol("lws-mirror-protocol");
    }
    c
}

/// Polls a client in short slices, recording every event with its instant and the instant
/// the client last read a byte (`Stats::bytes_in` changed): the start of the silence the
/// detection bound is measured from.
struct Driver {
    client: Client,
    bytes_in: u64,
    last_inbound: Instant,
    peer: &'static str,
}

impl Driver {
    fn new(client: Client, peer: Kind) -> Driver {
        Driver {
            client,
            bytes_in: 0,
            last_inbound: Instant::now(),
            peer: peer.name(),
        }
    }

    fn step(&mut self, end: Instant) -> Option<Seen> {
        let left = end.saturating_duration_since(Instant::now());
        let event = self.client.poll(left.min(SLICE));
        let now = Instant::now();
        let bytes_in = self.client.stats().bytes_in;
        if bytes_in != self.bytes_in {
            self.bytes_in = bytes_in;
            self.last_inbound = now;
        }
        event.map(Seen::new)
    }

    /// Polls until `pred` matches, returning the event and those before it.
    fn until(
        &mut self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> (Seen, Vec<Seen>) {
        let end = Instant::now() + limit;
        let mut before = Vec::new();
        loop {
            assert!(
                Instant::now() < end,
                "{}: timed out waiting for {what}; saw {:?}",
                self.peer,
                names(&before)
            );
            if let Some(seen) = self.step(end) {
                if pred(&seen.event) {
                    return (seen, before);
                }
                before.push(seen);
            }
        }
    }

    /// Polls for `span`, returning every event.
    fn span(&mut self, span: Duration) -> Vec<Seen> {
        let end = Instant::now() + span;
        let mut seen = Vec::new();
        while Instant::now() < end {
            seen.extend(self.step(end));
        }
        seen
    }

    fn connected(&mut self) -> Duration {
        let (c, before) = self.until(Duration::from_secs(5), "connected", is("connected"));
        assert!(
            names(&before)
                .iter()
                .all(|n| *n == "connecting" || *n == "reconnecting"),
            "{}: {:?}",
            self.peer,
            names(&before)
        );
        match c.event {
            Event::Connected { handshake, .. } => handshake,
            _ => unreachable!(),
        }
    }

    /// The next data message.
    fn message(&mut self) -> Message {
        let (m, before) = self.until(Duration::from_secs(5), "a message", is("message"));
        assert!(
            !names(&before).contains(&"disconnected"),
            "{}: {:?}",
            self.peer,
            names(&before)
        );
        match m.event {
            Event::Message(m) => m,
            _ => unreachable!(),
        }
    }

    /// Sends text and returns the text reply.
    fn ask(&mut self, text: &str) -> String {
        self.client.send(Message::text(text)).unwrap();
        match self.message() {
            Message::Text(t) => t.to_string(),
            other => panic!("{}: binary reply to {text:?}: {other:?}", self.peer),
        }
    }
}

fn is(wanted: &'static str) -> impl Fn(&Event) -> bool {
    move |e| name(e) == wanted
}

/// Arms the test's watchdog, then starts the peer (`None`: not installed, skipped).
fn start(kind: Kind, limit_s: u64, test: &str) -> Option<(Peer, Watchdog)> {
    let guard = watchdog(
        Duration::from_secs(limit_s),
        &format!("{}::{test}", kind.name()),
    );
    common::init_logs();
    Peer::start(kind).map(|p| (p, guard))
}

/// Text of `len` ASCII bytes.
fn text_of(len: usize) -> String {
    (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

fn binary_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// Scenarios

fn echo(kind: Kind) {
    let Some((peer, _w)) = start(kind, 60, "echo") else {
        return;
    };
    let mut d = Driver::new(Client::new(config(&peer)).unwrap(), kind);
    let handshake = d.connected();
    let started = Instant::now();
    if kind == Kind::Lws {
        // The mirror sends each received chunk (<= 4 KiB) back as one text message.
        for len in [1, 125, 126, 4096, 65_536, MAX_MESSAGE] {
            let text = text_of(len);
            d.client.send(Message::text(text.clone())).unwrap();
            let mut got = String::new();
            let mut pieces = 0;
            while got.len() < len {
                match d.message() {
                    Message::Text(t) => got.push_str(&t),
                    other => panic!("libwebsockets: binary from the mirror: {other:?}"),
                }
                pieces += 1;
            }
            assert!(got == text, "libwebsockets: {len}-byte echo differs");
            if len == MAX_MESSAGE {
                eprintln!("libwebsockets: {len} bytes echoed as {pieces} text messages");
            }
        }
    } else {
        for len in [0, 1, 125, 126, 65_535, 65_536, MAX_MESSAGE] {
            for msg in [Message::text(text_of(len)), Message::binary(binary_of(len))] {
                d.client.send(msg.clone()).unwrap();
                let got = d.message();
                assert!(
                    got == msg,
                    "{}: {len}-byte {} echo differs",
                    kind.name(),
                    if msg.as_text().is_some() {
                        "text"
                    } else {
                        "binary"
                    }
                );
            }
        }
    }
    // One byte more than the limit is refused locally, before any I/O.
    assert!(d
        .client
        .send(Message::binary(vec![0; MAX_MESSAGE + 1]))
        .is_err());
    eprintln!(
        "interop {}: handshake {:.2} ms; echo of every size up to {} KiB took {:.1} ms",
        kind.name(),
        ms(handshake),
        MAX_MESSAGE >> 10,
        ms(started.elapsed())
    );
    let seen = d.span(Duration::from_millis(100));
    assert!(
        !names(&seen).contains(&"disconnected"),
        "{}: {:?}\n{}",
        kind.name(),
        names(&seen),
        peer.logs()
    );
}

fn server_keepalive(kind: Kind) {
    let Some((peer, _w)) = start(kind, 30, "server_keepalive") else {
        return;
    };
    // Our own pings are 5 s away: only the server's keepalive runs.
    let mut d = Driver::new(Client::new(config(&peer)).unwrap(), kind);
    d.connected();
    let window = Duration::from_millis(1500);
    let seen = d.span(window);
    assert!(
        !names(&seen).contains(&"disconnected"),
        "{}: dropped within {window:?}: {:?}\n{}",
        kind.name(),
        names(&seen),
        peer.logs()
    );
    assert_eq!(d.client.stats().pings_sent, 0, "{}", kind.name());
    match kind {
        Kind::Python | Kind::NginxPython => {
            // websockets closes with 1011 when a keepalive ping is not answered within
            // ping_timeout; its latency is the RTT of the last answered one.
            let reply = d.ask("stats");
            let latency: f64 = reply
                .strip_prefix("stats latency=")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{reply:?}"));
            assert!(latency > 0.0, "{}: no keepalive ping answered", kind.name());
            eprintln!(
                "interop {}: stayed up {window:?} under keepalive pings every {SERVER_PING_INTERVAL:?} \
                 (timeout 200 ms); server-measured RTT {:.3} ms",
                kind.name(),
                latency * 1000.0
            );
        }
        Kind::Node => {
            let reply = d.ask("stats");
            let pongs: u32 = reply
                .strip_prefix("stats pongs=")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{reply:?}"));
            assert!(pongs >= 5, "node-ws: only {pongs} pongs in {window:?}");
            eprintln!(
                "interop node-ws: stayed up {window:?}; the server counted {pongs} pongs to its \
                 pings every {SERVER_PING_INTERVAL:?}"
            );
        }
        Kind::Lws => {
            // No server pings to answer: the idle link simply stays up.
            eprintln!(
                "interop libwebsockets: sends no keepalive pings; an idle link stayed up {window:?}"
            );
        }
    }
}

fn close_codes(kind: Kind) {
    let Some((peer, _w)) = start(kind, 30, "close_codes") else {
        return;
    };
    let (cfg, cases): (Config, Vec<(u16, &str, String)>) = if kind == Kind::Lws {
        let mut cfg = config(&peer);
        cfg.protocols = vec!["dumb-increment-protocol".into()];
        (cfg, vec![(1001, "seeya", "closeme\n".to_string())])
    } else {
        let cases = [1000u16, 1001, 1008, 1011, 4000]
            .iter()
            .map(|&code| (code, "bye", format!("close {code} bye")))
            .collect();
        (config(&peer), cases)
    };
    let mut d = Driver::new(Client::new(cfg).unwrap(), kind);
    d.connected();
    for (code, reason, command) in cases {
        d.client.send(Message::text(command)).unwrap();
        let (dead, _) = d.until(Duration::from_secs(5), "disconnected", is("disconnected"));
        match &dead.event {
            Event::Disconnected {
                reason:
                    DisconnectReason::ClosedByServer {
                        code: got,
                        reason: text,
                    },
                unconfirmed,
                ..
            } => {
                // The command that made the server close was handed to the kernel after the
                // last pong: it is the one message of the window of possible loss.
                assert_eq!(
                    (*got, text.as_str(), *unconfirmed),
                    (Some(code), reason, 1),
                    "{}",
                    kind.name()
                );
            }
            other => panic!("{}: {other:?}\n{}", kind.name(), peer.logs()),
        }
        // One reconnect cycle, then the link works again.
        let (_, before) = d.until(Duration::from_secs(5), "reconnected", is("connected"));
        assert_eq!(
            names(&before),
            ["reconnecting", "connecting"],
            "{}",
            kind.name()
        );
    }
    eprintln!(
        "interop {}: close codes passed through, each followed by one reconnect",
        kind.name()
    );
}

fn our_pings(kind: Kind) {
    let Some((peer, _w)) = start(kind, 30, "our_pings") else {
        return;
    };
    let cfg = config(&peer)
        .ping_interval(Duration::from_millis(100))
        .pong_timeout(Duration::from_millis(500));
    let mut d = Driver::new(Client::new(cfg).unwrap(), kind);
    d.connected();
    let mut pinged = Vec::new();
    let mut rtts = Vec::new();
    while rtts.len() < 3 {
        let (pong, before) = d.until(Duration::from_secs(5), "pong", is("pong"));
        for s in &before {
            assert!(
                !matches!(
                    name(&s.event),
                    "pong_missed" | "disconnected" | "connect_failed"
                ),
                "{}: {:?}",
                kind.name(),
                names(&before)
            );
            if let Event::Ping { seq } = s.event {
                pinged.push(seq);
            }
        }
        match pong.event {
            Event::Pong {
                seq,
                rtt: Some(rtt),
            } => {
                assert!(pinged.contains(&seq), "pong {seq} for pings {pinged:?}");
                assert!(rtt < Duration::from_millis(100), "{}: {rtt:?}", kind.name());
                rtts.push(rtt);
            }
            other => panic!("{}: {other:?}", kind.name()),
        }
    }
    eprintln!("{}: rtts {rtts:?}", kind.name());
    rtts.sort();
    eprintln!(
        "interop {}: our pings answered, RTT median {:.3} ms",
        kind.name(),
        ms(rtts[1])
    );
}

fn frozen_server(kind: Kind) {
    let Some((peer, _w)) = start(kind, 30, "frozen_server") else {
        return;
    };
    let cfg = config(&peer)
        .ping_interval(Duration::from_millis(300))
        .pong_timeout(Duration::from_millis(200))
        .max_missed_pongs(2);
    let bound = ms(cfg.heartbeat.detection_bound());
    let mut d = Driver::new(Client::new(cfg).unwrap(), kind);
    d.connected();
    d.span(Duration::from_millis(400));
    peer.process.freeze();
    let frozen_at = Instant::now();
    let (dead, between) = d.until(Duration::from_secs(5), "disconnected", is("disconnected"));
    let silent = ms(dead.at.duration_since(d.last_inbound));
    let since_freeze = ms(dead.at.duration_since(frozen_at));
    peer.process.thaw();
    // Never early, judged on the library's own measure of the silence: the test's stamp of
    // the last inbound byte (when it saw the event) can trail the library's by a preemption.
    let library_silence = match &dead.event {
        Event::Disconnected {
            reason: DisconnectReason::HeartbeatTimeout { silent_for, .. },
            ..
        } => ms(*silent_for),
        other => panic!("{}: {other:?}", kind.name()),
    };
    assert!(
        library_silence >= bound,
        "{}: dead after {library_silence:.1} ms of silence, before the {bound} ms bound",
        kind.name()
    );
    assert!(
        silent <= bound + SLACK_MS,
        "{}: dead after {silent:.1} ms of silence, bound {bound} ms",
        kind.name()
    );
    match dead.event {
        Event::Disconnected {
            reason: DisconnectReason::HeartbeatTimeout { missed: 2, .. },
            ..
        } => {}
        other => panic!("{}: {other:?}", kind.name()),
    }
    let missed = names(&between)
        .iter()
        .filter(|n| **n == "pong_missed")
        .count();
    assert_eq!(missed, 2, "{}: {:?}", kind.name(), names(&between));
    // Thawed, the server takes us back.
    d.connected();
    d.client.send(Message::text("after the thaw")).unwrap();
    assert_eq!(d.message(), Message::text("after the thaw"));
    eprintln!(
        "interop {}: frozen server detected {silent:.1} ms after the last inbound byte \
         ({since_freeze:.1} ms after SIGSTOP; bound {bound} ms)",
        kind.name()
    );
}

fn killed_and_restarted(kind: Kind) {
    let Some((mut peer, _w)) = start(kind, 60, "killed_and_restarted") else {
        return;
    };
    let cfg = config(&peer);
    let (initial, jitter) = (cfg.backoff.initial, cfg.backoff.jitter);
    let mut d = Driver::new(Client::new(cfg).unwrap(), kind);
    d.connected();
    peer.process.kill();
    let killed_at = Instant::now();
    let (dead, _) = d.until(Duration::from_secs(2), "disconnected", is("disconnected"));
    let noticed = ms(dead.at.duration_since(killed_at));
    match &dead.event {
        Event::Disconnected { reason, .. } => {
            assert_eq!(reason.kind(), "io_error", "{}: {reason}", kind.name())
        }
        _ => unreachable!(),
    }
    // Down for 500 ms, then the same server on the same port; the client is polled all along.
    let mut seen = vec![dead];
    let process = &mut peer.process;
    let restarted_at = thread::scope(|s| {
        let restart = s.spawn(move || {
            thread::sleep(Duration::from_millis(500));
            process.restart();
            Instant::now()
        });
        let (connected, before) = d.until(Duration::from_secs(10), "reconnected", is("connected"));
        seen.extend(before);
        seen.push(connected);
        restart.join().expect("restart thread")
    });
    let connected_at = seen.last().unwrap().at;
    // Every wait is the announced delay: never shorter, at most the slack longer. A delay
    // runs from the end it follows: `Reconnecting` is queued with the `Disconnected` or
    // `ConnectFailed` before it, which the test saw first (one poll earlier).
    let mut delays = Vec::new();
    let mut pending: Option<(Instant, Duration)> = None;
    let mut ended_at = seen[0].at;
    for s in &seen {
        match &s.event {
            Event::Disconnected { .. } => ended_at = s.at,
            Event::Reconnecting { delay, .. } => pending = Some((ended_at, *delay)),
            Event::Connecting { .. } => {
                let (at, delay) = pending.take().expect("connecting without reconnecting");
                let waited = ms(s.at.duration_since(at));
                assert!(
                    waited >= ms(delay) - 1.0 && waited <= ms(delay) + SLACK_MS,
                    "{}: waited {waited:.1} ms for a {:.1} ms delay",
                    kind.name(),
                    ms(delay)
                );
                delays.push(delay);
            }
            Event::ConnectFailed { error, .. } => {
                ended_at = s.at;
                match kind {
                    Kind::NginxPython => assert_eq!(error.http_status(), Some(502), "{error}"),
                    _ => assert!(
                        matches!(error, Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
                        "{}: {error:?}",
                        kind.name()
                    ),
                }
            }
            _ => {}
        }
    }
    let floor = initial.mul_f64(1.0 - jitter);
    assert!(delays.iter().all(|d| *d >= floor), "{delays:?}");
    assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
    assert!(delays.len() >= 2, "{}: {:?}", kind.name(), names(&seen));
    d.client.send(Message::text("after the restart")).unwrap();
    assert_eq!(d.message(), Message::text("after the restart"));
    eprintln!(
        "interop {}: SIGKILL noticed after {noticed:.1} ms; {} attempts while down (delays {:?}); \
         reconnected {:.1} ms after the restarted server listened",
        kind.name(),
        delays.len(),
        delays
            .iter()
            .map(|d| format!("{:.0} ms", ms(*d)))
            .collect::<Vec<_>>(),
        ms(connected_at.saturating_duration_since(restarted_at))
    );
}

macro_rules! peer_tests {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn echo_up_to_max_message_size() {
                echo($kind);
            }

            #[test]
            fn server_keepalive_pings_are_answered() {
                server_keepalive($kind);
            }

            #[test]
            fn close_codes_pass_through() {
                close_codes($kind);
            }

            #[test]
            fn our_pings_are_answered_with_an_rtt() {
                our_pings($kind);
            }

            #[test]
            fn frozen_server_is_detected_at_the_bound_never_earlier() {
                frozen_server($kind);
            }

            #[test]
            fn killed_server_restarted_on_the_same_port_is_reconnected_after_the_backoff() {
                killed_and_restarted($kind);
            }
        }
    };
}

peer_tests!(python_websockets, Kind::Python);
peer_tests!(node_ws, Kind::Node);
peer_tests!(libwebsockets, Kind::Lws);
peer_tests!(nginx_python, Kind::NginxPython);
