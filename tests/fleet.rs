//! The fleet simulation (`examples/fleet.rs`) checked against real clients: 500 real `Client`s
//! with the default policy, connected to the loopback test server for longer than
//! `min_uptime`, lose their links at once (the server drops every connection and refuses
//! connects for 2 s, as a restarting server process does). The server's accepts per 100 ms are
//! printed next to the simulation's for the same N, spread and outage, and the resident memory
//! per idle client.
//!
//! ```text
//! cargo test --release --features fleet-sim --test fleet -- --ignored --nocapture
//! ```
//!
//! The clients run in a child process (this test binary again, `fleet_clients_child`), one
//! thread each (the library itself spawns none), so that the RSS figure is the clients' alone:
//! the in-process test server keeps a thread and buffers per connection.
#![forbid(unsafe_code)]

mod common;
#[path = "../bench/src/fleet.rs"]
mod fleet;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{watchdog, Mode, TestServer};
use wsbeat::{BackoffConfig, Client, Config, Event};

/// Clients in the check.
const N: usize = 500;
/// The server refuses connects this long after the drop.
const DOWN: Duration = Duration::from_secs(2);
/// Set to the server URL for the child process.
const CHILD_URL: &str = "WSBEAT_FLEET_CHILD_URL";
/// Lines the child reports start with this.
const TAG: &str = "FLEET ";

#[test]
#[ignore = "500 clients for about a minute: cargo test --release --features fleet-sim --test fleet -- --ignored --nocapture"]
fn real_clients_return_as_the_simulation_says() {
    let _w = watchdog(Duration::from_secs(300), "fleet");
    // Two descriptors per connection here (the socket and its control clone).
    raise_fd_limit(2 * N + 64);
    let server = TestServer::start(Mode::Echo);
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "fleet_clients_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, server.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the client process");
    let stdout = child.stdout.take().expect("child stdout");
    let (lines_tx, lines) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print "test fleet_clients_child ... " on the same line first.
            if let Some(at) = line.find(TAG) {
                let _ = lines_tx.send(line[at + TAG.len()..].to_string());
            }
        }
    });

    server.wait_for(Duration::from_secs(60), "every client connected", |s| {
        s.handshakes() >= N
    });
    let memory = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("the client process's memory report");
    // The drop counts as a lost link (spread over the window) only after min_uptime.
    let policy = BackoffConfig::default();
    thread::sleep(policy.min_uptime + Duration::from_millis(500));

    let before = server.accept_times().len();
    let dropped = server.outage(DOWN);
    let window = policy.first_spread;
    // A spread attempt after DOWN succeeds (by `window`); one before fails and, decorrelated
    // from the window after a lost link, waits at most 3 × the window.
    let bound = DOWN + 3 * window;
    server.wait_for(bound + Duration::from_secs(5), "every client back", |s| {
        s.handshakes() >= 2 * N
    });
    let accepts: Vec<Duration> = server.accept_times()[before..]
        .iter()
        .map(|t| t.saturating_duration_since(dropped))
        .collect();

    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"stop\n");
    } // closed: the child stops its clients and reports their attempts
    let attempts = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("the client process's attempt count");
    let status = child.wait().expect("wait for the client process");
    assert!(status.success(), "client process: {status}");

    let sim = fleet::run(&fleet::Scenario {
        devices: N,
        down: DOWN,
        rate: None,
        backoff: policy.clone(),
        seed: 1,
    });
    let real = histogram(&accepts);
    report(
        &real,
        &sim.connects,
        &accepts,
        &sim,
        &memory,
        &attempts,
        &policy,
    );

    // What must hold whatever the draws: nothing accepted while refusing, everyone back
    // within the policy's bound, each client once.
    assert_eq!(accepts.len(), N, "accepts after the drop");
    let first = accepts.iter().min().copied().unwrap_or_default();
    assert!(
        first >= DOWN,
        "accepted {first:?} after the drop, while refusing"
    );
    let last = accepts.iter().max().copied().unwrap_or_default();
    assert!(
        last <= bound + Duration::from_millis(500),
        "last back after {last:?}"
    );
    // The share back within the window: the simulation's ± 8 points (sd ≈ 2 points at 500).
    let by =
        |t: Duration, xs: &[Duration]| xs.iter().filter(|&&x| x <= t).count() as f64 / N as f64;
    let real_share = by(window, &accepts);
    let sim_share = sim.connects.iter().take(bins(window)).sum::<u32>() as f64 / N as f64;
    assert!(
        (real_share - sim_share).abs() <= 0.08,
        "back within {window:?}: real {real_share:.3}, simulated {sim_share:.3}"
    );
}

/// The clients' side, run by `real_clients_return_as_the_simulation_says` in its own process:
/// `N` threads, each with one default `Client`, until stdin says stop. Reports VmRSS at start,
/// with the threads parked, and with every client connected and idle, then the attempts.
#[test]
#[ignore = "the client process of real_clients_return_as_the_simulation_says"]
fn fleet_clients_child() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    // A socket, an epoll set and a waker's eventfd per client, at most.
    raise_fd_limit(3 * N + 64);
    let start_kib = rss_kib();
    let barrier = Arc::new(Barrier::new(N + 1));
    let parked = Arc::new(AtomicUsize::new(0));
    let connected = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let startup_attempts = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::with_capacity(N);
    for i in 0..N {
        let (barrier, parked, connected, stop) = (
            barrier.clone(),
            parked.clone(),
            connected.clone(),
            stop.clone(),
        );
        let (attempts, startup_attempts, url) =
            (attempts.clone(), startup_attempts.clone(), url.clone());
        let spawned = thread::Builder::new()
            .name(format!("client-{i}"))
            .spawn(move || {
                parked.fetch_add(1, SeqCst);
                barrier.wait();
                // The default policy, seeded from the OS per client like a real device's.
                let mut client = Client::new(Config::new(url)).expect("valid config");
                let mut first = true;
                while !stop.load(SeqCst) {
                    if let Some(Event::Connected { .. }) = client.poll(Duration::from_millis(200)) {
                        if first {
                            startup_attempts.fetch_add(client.stats().attempts, SeqCst);
                            first = false;
                        }
                        connected.fetch_add(1, SeqCst);
                    }
                }
                attempts.fetch_add(client.stats().attempts, SeqCst);
            })
            .expect("spawn a client thread");
        threads.push(spawned);
    }
    wait_until(Duration::from_secs(30), || parked.load(SeqCst) == N);
    thread::sleep(Duration::from_millis(200));
    let threads_kib = rss_kib();
    barrier.wait();
    wait_until(Duration::from_secs(60), || connected.load(SeqCst) >= N);
    // Idle: the handshake's garbage freed, no ping due (every 20 s).
    thread::sleep(Duration::from_secs(2));
    let clients_kib = rss_kib();
    println!(
        "{TAG}rss_kib start={start_kib} threads={threads_kib} clients={clients_kib} startup_attempts={}",
        startup_attempts.load(SeqCst)
    );
    let mut sink = String::new();
    let _ = std::io::stdin().read_to_string(&mut sink);
    stop.store(true, SeqCst);
    for t in threads {
        let _ = t.join();
    }
    println!("{TAG}attempts={}", attempts.load(SeqCst));
}

fn wait_until(limit: Duration, f: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {limit:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Raises the soft descriptor limit to the hard one; fails the test if `needed` do not fit.
fn raise_fd_limit(needed: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    }
    let now = getrlimit(Resource::RLIMIT_NOFILE).map_or(soft, |(s, _)| s);
    assert!(
        now >= needed as u64,
        "{needed} descriptors needed, the limit is {now} (hard {hard}): raise ulimit -n"
    );
}

/// VmRSS of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn bins(d: Duration) -> usize {
    (d.as_nanos() / fleet::BIN.as_nanos()) as usize
}

/// Accepts per 100 ms after the drop.
fn histogram(accepts: &[Duration]) -> Vec<u32> {
    let mut h = Vec::new();
    for &a in accepts {
        let i = bins(a);
        if h.len() <= i {
            h.resize(i + 1, 0);
        }
        h[i] += 1;
    }
    h
}

fn percentile(accepts: &[Duration], p: f64) -> Duration {
    let mut sorted = accepts.to_vec();
    sorted.sort();
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(i).copied().unwrap_or_default()
}

fn report(
    real: &[u32],
    sim: &[u32],
    accepts: &[Duration],
    sim_out: &fleet::Outcome,
    memory: &str,
    attempts: &str,
    policy: &BackoffConfig,
) {
    println!(
        "\nfleet check: {N} real clients (default policy: {:?}, first_spread {:?}, initial {:?}, \
         max {:?}), server down {DOWN:?} after the drop, no accept limit",
        policy.strategy, policy.first_spread, policy.initial, policy.max
    );
    println!("accepts per 100 ms after the drop, one row per second (real | simulated):");
    let rows = real.len().max(sim.len()).div_ceil(10);
    for r in 0..rows {
        let cells = |h: &[u32]| {
            (r * 10..r * 10 + 10)
                .map(|i| format!("{:>3}", h.get(i).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join("")
        };
        println!("{r:>4} s |{} |{}", cells(real), cells(sim));
    }
    // Peaks of accepts (what the server sees), through the simulation's own counting.
    let peaks = |h: &[u32]| {
        let o = fleet::Outcome {
            attempts: h.to_vec(),
            ..fleet::Outcome::default()
        };
        (o.peak_per_bin(), o.peak_per_s())
    };
    let (real_bin, real_s) = peaks(real);
    let (sim_bin, sim_s) = peaks(sim);
    println!(
        "real:      t95 {:>5.1} s  t100 {:>5.1} s  peak accepts {real_bin:>3}/100 ms {real_s:>3}/s",
        percentile(accepts, 0.95).as_secs_f64(),
        percentile(accepts, 1.0).as_secs_f64(),
    );
    println!(
        "simulated: t95 {:>5.1} s  t100 {:>5.1} s  peak accepts {sim_bin:>3}/100 ms {sim_s:>3}/s; \
         attempts {}/s at peak, {} after the drop",
        sim_out.t95.as_secs_f64(),
        sim_out.t100.as_secs_f64(),
        sim_out.peak_per_s(),
        sim_out.total_attempts,
    );
    println!(
        "goal: peak ≤ 1.2 × N / W = {:.0}/s",
        1.2 * N as f64 / policy.first_spread.as_secs_f64()
    );
    // "start=A threads=B clients=C": the clients' share is C - B.
    let field = |name: &str| {
        memory
            .split_whitespace()
            .find_map(|kv| {
                kv.strip_prefix(name)?
                    .strip_prefix('=')?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(f64::NAN)
    };
    let (start, threads, clients) = (field("start"), field("threads"), field("clients"));
    let startup = field("startup_attempts");
    println!(
        "client process VmRSS: {start:.0} KiB at start, {threads:.0} KiB with {N} parked threads, \
         {clients:.0} KiB with {N} idle connected clients: {:.1} KiB per idle client \
         ({:.1} KiB per client and its thread)",
        (clients - threads) / N as f64,
        (clients - start) / N as f64,
    );
    // "attempts=A": every attempt since start, the start-up ones included.
    if let Some(a) = attempts
        .strip_prefix("attempts=")
        .and_then(|a| a.parse::<f64>().ok())
    {
        println!(
            "real attempts after the drop: {:.0} ({a:.0} in all, {startup:.0} at start-up)",
            a - startup
        );
    }
}
