//! Reaction to the kernel's network reports (`NetworkConfig::watch`), in network namespaces
//! made by the test: the client in one, the test server in another, joined by a veth pair
//! (`10.254.0.1/24` on the client's end, `10.254.0.2/24` on the server's).
//!
//! - the client's source address removed, its interface set down, the only route to the
//!   server removed: `Disconnected` within the probe timeout (2 s) + 100 ms of the change;
//! - an unrelated IPv4 address, an unrelated route and an IPv6 address added and removed, 20
//!   times: no disconnect, and no probe;
//! - the address restored while waiting to reconnect: `Connected` within 200 ms of it;
//! - an idle link with the watch on sleeps through a `poll`;
//! - with the watch off, data left unacknowledged fails the link in about `write_timeout`
//!   (`TCP_USER_TIMEOUT`).
//!
//! The outer test makes both namespaces and the veth pair, starts the server (this binary
//! again, inside the server's namespace, with `WSBEAT_NETWORK_SERVER=1`), and runs the client
//! side in the client's namespace (tests/common/netns.rs). Needs root and `ip`; skipped with
//! a notice otherwise, failed under `WSBEAT_REQUIRE_PEERS=1`. Each scenario's figure (`network
//! <scenario>: ...`) goes in the README.

mod common;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::drive::{for_span, is, ms, name, until, Seen};
use common::netns::{self, figure, NetNs, Setup};
use common::{watchdog, Mode, TestServer};
use wsbeat::{Client, Config, DisconnectReason, Event};

/// Set in the server's copy of this binary.
const SERVER_ENV: &str = "WSBEAT_NETWORK_SERVER";
const CLIENT_DEV: &str = "wsnc0";
const SERVER_DEV: &str = "wsns0";
const CLIENT_CIDR: &str = "10.254.0.1/24";
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 254, 0, 2);
const SERVER_CIDR: &str = "10.254.0.2/24";
const PORT: u16 = 9000;
/// The default probe timeout, which the tests keep.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// What the verdict may take beyond the probe timeout (the bound).
const VERDICT_SLACK: Duration = Duration::from_millis(100);
/// The bound between a restored address and `Connected`.
const RESTORE_BOUND: Duration = Duration::from_millis(200);
const CHILD_LIMIT: Duration = Duration::from_secs(45);
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Runs `client` in the client's namespace, with the server up in the other one.
fn scenario(client: impl FnOnce()) {
    if std::env::var(SERVER_ENV).is_ok_and(|v| v == "1") {
        return serve();
    }
    if netns::is_child() {
        return netns::run(&Setup::default(), CHILD_LIMIT, |_| client());
    }
    let _w = watchdog(TEST_LIMIT, "network change scenario");
    let test = netns::current_test();
    let Some(client_ns) = netns::create_or_skip(&test, &Setup::default()) else {
        return;
    };
    let server_ns = NetNs::create(&Setup::default()).expect("the server's namespace");
    let (c, s) = (client_ns.name(), server_ns.name());
    for args in [
        vec![
            "link", "add", CLIENT_DEV, "netns", c, "type", "veth", "peer", "name", SERVER_DEV,
            "netns", s,
        ],
        vec!["-n", c, "addr", "add", CLIENT_CIDR, "dev", CLIENT_DEV],
        vec!["-n", s, "addr", "add", SERVER_CIDR, "dev", SERVER_DEV],
        vec!["-n", c, "link", "set", CLIENT_DEV, "up"],
        vec!["-n", s, "link", "set", SERVER_DEV, "up"],
    ] {
        ip(&args);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut server = server_ns
        .command(exe.to_str().expect("UTF-8 path"))
        .args(["--exact", &test, "--nocapture", "--test-threads=1"])
        .env(SERVER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the server in its namespace");
    client_ns.run_test(&test, CHILD_LIMIT);
    let _ = server.kill();
    let _ = server.wait();
}

/// The server's side: an echo server on the veth address until stdin closes.
fn serve() {
    let _server = TestServer::start_at(IpAddr::V4(SERVER_IP), PORT, Mode::Echo)
        .expect("listen on the server's veth address");
    // The outer test holds the pipe; it closes (or the process is killed) at the end.
    let _ = std::io::stdin().read(&mut [0]);
}

/// Runs `ip ARGS` in the current namespace, failing the test if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The client: network watch on, the heartbeat out of the picture (60 s), short backoff.
fn connected_client(tune: impl FnOnce(&mut Config)) -> Client {
    common::init_logs();
    let mut config = Config::new(format!("ws://{SERVER_IP}:{PORT}/"))
        .watch_network(true)
        .ping_interval(Duration::from_secs(60))
        .backoff(Duration::from_millis(100), Duration::from_secs(10));
    config.backoff.first_spread = Duration::from_secs(20);
    tune(&mut config);
    let mut client = Client::new(config).expect("valid config");
    // The server may still be starting: the backoff retries until it listens.
    until(
        &mut client,
        Duration::from_secs(10),
        "connected",
        is("connected"),
    );
    client
}

/// Polls until the event named `what` and returns it, how long after `before` it was seen,
/// and the events before it.
fn reaction(
    client: &mut Client,
    before: Instant,
    what: &'static str,
    limit: Duration,
) -> (Seen, Duration, Vec<Seen>) {
    let (seen, earlier) = until(client, limit, what, is(what));
    let took = seen.at.duration_since(before);
    (seen, took, earlier)
}

/// Makes `change` with `ip` and judges the verdict: `Disconnected` (heartbeat timeout after
/// one probe) within the probe timeout + 100 ms of the moment before the command ran.
fn dead_within_probe_timeout(scenario: &str, change: &[&str]) {
    let mut client = connected_client(|_| {});
    let before = Instant::now();
    ip(change);
    let (seen, took, earlier) = reaction(
        &mut client,
        before,
        "disconnected",
        PROBE_TIMEOUT + Duration::from_secs(3),
    );
    figure(format!(
        "network {scenario}: disconnected {:.0} ms after the change (probe timeout {} ms)",
        ms(seen.at, before),
        PROBE_TIMEOUT.as_millis()
    ));
    assert!(
        matches!(
            seen.event,
            Event::Disconnected {
                reason: DisconnectReason::HeartbeatTimeout { missed: 1, .. },
                ..
            }
        ),
        "{:?}",
        seen.event
    );
    assert!(
        common::drive::names(&earlier).ends_with(&["network_changed", "ping", "pong_missed"]),
        "the report, then the probe: {:?}",
        common::drive::names(&earlier)
    );
    assert!(
        took <= PROBE_TIMEOUT + VERDICT_SLACK,
        "{scenario}: {took:?} after the change"
    );
    // Not before the probe timeout either: the verdict is the probe's, not the report's.
    assert!(
        took >= PROBE_TIMEOUT,
        "{scenario}: {took:?} after the change"
    );
}

#[test]
fn source_address_removed() {
    scenario(|| {
        dead_within_probe_timeout("addr_del", &["addr", "del", CLIENT_CIDR, "dev", CLIENT_DEV])
    });
}

#[test]
fn interface_down() {
    scenario(|| dead_within_probe_timeout("link_down", &["link", "set", CLIENT_DEV, "down"]));
}

#[test]
fn only_route_removed() {
    scenario(|| {
        dead_within_probe_timeout(
            "route_del",
            &["route", "del", "10.254.0.0/24", "dev", CLIENT_DEV],
        )
    });
}

#[test]
fn unrelated_changes_twenty_times_change_nothing() {
    scenario(|| {
        let mut client = connected_client(|_| {});
        let mut seen: Vec<Seen> = Vec::new();
        let started = Instant::now();
        for _ in 0..20 {
            for change in [
                ["addr", "add", "10.254.9.1/24", "dev", CLIENT_DEV],
                ["addr", "del", "10.254.9.1/24", "dev", CLIENT_DEV],
                ["route", "add", "192.0.2.0/24", "dev", CLIENT_DEV],
                ["route", "del", "192.0.2.0/24", "dev", CLIENT_DEV],
                // An IPv6 address coming and going, as a temporary address rotates.
                ["addr", "add", "2001:db8::5/64", "dev", CLIENT_DEV],
                ["addr", "del", "2001:db8::5/64", "dev", CLIENT_DEV],
            ] {
                ip(&change);
                seen.extend(for_span(&mut client, Duration::from_millis(5)));
            }
        }
        // Time for a probe's verdict, had one been sent.
        seen.extend(for_span(&mut client, PROBE_TIMEOUT + VERDICT_SLACK));
        let count = |n: &str| seen.iter().filter(|s| name(&s.event) == n).count();
        figure(format!(
            "network unrelated: 120 changes in {:.0} ms: {} disconnects, {} probes, {} network_changed events",
            ms(Instant::now(), started),
            count("disconnected"),
            count("ping"),
            count("network_changed")
        ));
        assert_eq!(
            count("disconnected"),
            0,
            "{:?}",
            common::drive::names(&seen)
        );
        assert_eq!(count("ping"), 0, "no probe for unrelated changes");
        assert_eq!(count("network_changed"), 0);
    });
}

#[test]
fn address_restored_while_waiting_reconnects_at_once() {
    scenario(|| {
        // Failure delays from 100 ms × 8 per failure: 100 ms, then 800 ms, then 6.4 s.
        let mut client = connected_client(|c| {
            c.backoff.strategy = wsbeat::Jitter::Proportional;
            c.backoff.jitter = 0.0;
            c.backoff.factor = 8.0;
        });
        ip(&["addr", "del", CLIENT_CIDR, "dev", CLIENT_DEV]);
        until(
            &mut client,
            Duration::from_secs(5),
            "disconnected",
            is("disconnected"),
        );
        // Wait until a long wait is scheduled (the attempts fail at once: no route).
        let (long, _) = until(
            &mut client,
            Duration::from_secs(5),
            "a long wait",
            |e| matches!(e, Event::Reconnecting { delay, .. } if *delay >= Duration::from_secs(5)),
        );
        let Event::Reconnecting { at: due, .. } = long.event else {
            unreachable!()
        };
        // Past the floor (backoff.initial, 100 ms) of the wait.
        for_span(&mut client, Duration::from_millis(300));
        let before = Instant::now();
        ip(&["addr", "add", CLIENT_CIDR, "dev", CLIENT_DEV]);
        let (seen, took, earlier) =
            reaction(&mut client, before, "connected", Duration::from_secs(5));
        assert_eq!(
            common::drive::names(&earlier),
            ["network_changed", "reconnecting", "connecting"],
            "the network back, the attempt brought forward"
        );
        figure(format!(
            "network restore: connected {:.0} ms after the address came back ({:.0} ms before the scheduled attempt)",
            ms(seen.at, before),
            ms(due, seen.at)
        ));
        assert!(
            took <= RESTORE_BOUND,
            "connected {took:?} after the restore"
        );
    });
}

/// Context switches this thread made by choice (each wait that slept and woke is one).
fn voluntary_switches() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("thread status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("voluntary_ctxt_switches")
}

#[test]
fn an_idle_link_with_the_watch_on_sleeps_through() {
    scenario(|| {
        let mut client = connected_client(|_| {});
        // Nothing changes in these namespaces: one `poll(3 s)` must sleep in one wait, the
        // netlink socket waking nothing.
        let before = voluntary_switches();
        let start = Instant::now();
        let event = client.poll(Duration::from_secs(3));
        let switches = voluntary_switches() - before;
        figure(format!(
            "network idle: poll(3 s) returned after {:.0} ms with {switches} voluntary context switches",
            ms(Instant::now(), start)
        ));
        assert!(event.is_none(), "{event:?}");
        assert!(switches <= 2, "{switches} wakes in an idle 3 s poll");
    });
}

/// `TCP_USER_TIMEOUT` = `write_timeout`: with the watch off and the heartbeat far away, data
/// that stays unacknowledged (the interface went down under it) fails the link in about
/// `write_timeout`, where Linux alone retransmits for over 15 minutes.
#[test]
fn unacknowledged_data_fails_the_link_at_write_timeout() {
    scenario(|| {
        const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
        let mut client = connected_client(|c| {
            c.network.watch = false;
            c.write_timeout = WRITE_TIMEOUT;
        });
        ip(&["link", "set", CLIENT_DEV, "down"]);
        let before = Instant::now();
        client.send("never acknowledged").expect("outbox has room");
        let (seen, took, _) =
            reaction(&mut client, before, "disconnected", Duration::from_secs(10));
        figure(format!(
            "network user_timeout: disconnected {:.0} ms after an unacknowledged send (write_timeout {} ms): {}",
            ms(seen.at, before),
            WRITE_TIMEOUT.as_millis(),
            match &seen.event {
                Event::Disconnected { reason, .. } => reason.to_string(),
                _ => String::new(),
            }
        ));
        assert!(
            matches!(
                seen.event,
                Event::Disconnected {
                    reason: DisconnectReason::Io(_),
                    ..
                }
            ),
            "{:?}",
            seen.event
        );
        assert!(took >= WRITE_TIMEOUT, "{took:?}");
        assert!(took <= WRITE_TIMEOUT * 2, "{took:?}");
    });
}
