//! The test plays systemd's side of `sd_notify`: it binds the notify socket, starts wsbeat
//! with `NOTIFY_SOCKET` and `WATCHDOG_USEC`, and judges what arrives against the README's
//! "Running on a device": READY=1 as soon as the loop runs (server down or not), STATUS= on
//! each state change, WATCHDOG=1 every half interval while the loop makes progress (connected,
//! idle, or retrying: an outage is progress), none while SIGSTOPped, STOPPING=1 on SIGTERM.
#![forbid(unsafe_code)]

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::common::{refused_port, watchdog, Mode, TestServer};
use super::harness::{Wsbeat, SLOW};

/// `WatchdogSec=` as the test's systemd sets it.
const INTERVAL: Duration = Duration::from_secs(1);
/// How long each case watches the pings: 30 intervals, as the issue asks.
const WATCH: Duration = Duration::from_secs(30);

/// The service manager's notify socket. Messages arrive on a channel with the instant the
/// receiving thread read them (it blocks in `recv`, so that is within a scheduling delay of
/// the send).
struct Manager {
    name: String,
    messages: Receiver<(Instant, String)>,
    stop: Arc<AtomicBool>,
    /// Everything received so far, in order.
    seen: Vec<(Instant, String)>,
}

impl Manager {
    /// Binds an abstract socket (`@name`, as systemd's own socket can be): the CLI must
    /// accept the `@` form.
    fn bind() -> Manager {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "wsbeat-test-notify-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
        let socket = UnixDatagram::bind_addr(&addr).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stopped.load(Ordering::SeqCst) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if tx.send((Instant::now(), text)).is_err() {
                        break;
                    }
                }
            }
        });
        Manager {
            name: format!("@{name}"),
            messages: rx,
            stop,
            seen: Vec::new(),
        }
    }

    /// Starts wsbeat as systemd would, with a watchdog of [`INTERVAL`].
    fn spawn(&self, args: &[&str]) -> Wsbeat {
        let usec = INTERVAL.as_micros().to_string();
        Wsbeat::spawn_env(
            &[("NOTIFY_SOCKET", &self.name), ("WATCHDOG_USEC", &usec)],
            args,
        )
    }

    /// Collects what arrives until `until`.
    fn collect_until(&mut self, until: Instant) {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) => self.seen.push(m),
                Err(_) if Instant::now() >= until => return,
                Err(e) => panic!("notify thread ended: {e}"),
            }
        }
    }

    /// Waits for `message` (at most `timeout`), returns when it arrived.
    fn expect(&mut self, message: &str, timeout: Duration) -> Instant {
        let until = Instant::now() + timeout;
        if let Some((t, _)) = self.seen.iter().find(|(_, m)| m == message) {
            return *t;
        }
        while let Ok(m) = self
            .messages
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            self.seen.push(m.clone());
            if m.1 == message {
                return m.0;
            }
        }
        panic!("no {message:?} within {timeout:?}; got {:?}", self.texts());
    }

    fn texts(&self) -> Vec<&str> {
        self.seen.iter().map(|(_, m)| m.as_str()).collect()
    }

    /// When each `WATCHDOG=1` arrived.
    fn pings(&self) -> Vec<Instant> {
        self.seen
            .iter()
            .filter(|(_, m)| m == "WATCHDOG=1")
            .map(|(t, _)| *t)
            .collect()
    }

    /// The `STATUS=` lines, without the prefix.
    fn statuses(&self) -> Vec<&str> {
        self.seen
            .iter()
            .filter_map(|(_, m)| m.strip_prefix("STATUS="))
            .collect()
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Every gap between consecutive pings is half the interval ±20 %, and they cover `span`.
fn assert_pings_on_schedule(case: &str, pings: &[Instant], from: Instant, span: Duration) {
    let half = INTERVAL / 2;
    let (lo, hi) = (half * 8 / 10, half * 12 / 10);
    let first = pings.first().unwrap_or_else(|| panic!("{case}: no ping"));
    assert!(
        first.saturating_duration_since(from) <= hi,
        "{case}: first ping {:?} after READY=1",
        first.saturating_duration_since(from)
    );
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    let bad: Vec<_> = gaps.iter().filter(|g| **g < lo || **g > hi).collect();
    assert!(
        bad.is_empty(),
        "{case}: gaps outside {lo:?}..{hi:?}: {bad:?}"
    );
    let covered = *pings.last().expect("a ping") - *first;
    assert!(
        covered + hi >= span,
        "{case}: pings cover only {covered:?} of {span:?}"
    );
    let ms: Vec<u128> = gaps.iter().map(|g| g.as_millis()).collect();
    eprintln!(
        "{case}: {} pings, gaps min {:?} ms max {:?} ms",
        pings.len(),
        ms.iter().min(),
        ms.iter().max()
    );
}

/// The three cases run side by side for 30 intervals: connected with traffic, connected and
/// idle, and retrying against a refused port (READY=1 must come with the server down).
#[test]
fn watchdog_pings_at_half_the_interval_while_connected_idle_and_retrying() {
    let _w = watchdog(WATCH + Duration::from_secs(30), "watchdog_pings");
    let server = TestServer::start(Mode::Echo);
    let refused = format!("ws://127.0.0.1:{}/", refused_port());
    let mut busy_m = Manager::bind();
    let mut idle_m = Manager::bind();
    let mut down_m = Manager::bind();
    let mut busy = busy_m.spawn(&[&server.url()]);
    let mut idle = idle_m.spawn(&[&server.url()]);
    let mut down = down_m.spawn(&[
        "--backoff-initial",
        "100ms",
        "--backoff-max",
        "300ms",
        &refused,
    ]);

    let down_ready = down_m.expect("READY=1", SLOW);
    let busy_ready = busy_m.expect("READY=1", SLOW);
    let idle_ready = idle_m.expect("READY=1", SLOW);
    busy.event("connected", SLOW);
    idle.event("connected", SLOW);

    let end = Instant::now() + WATCH;
    let mut n = 0;
    while Instant::now() < end {
        busy.write(&format!("line {n}\n"));
        assert_eq!(busy.stdout_line(SLOW), format!("line {n}"));
        n += 1;
        thread::sleep(Duration::from_millis(50));
    }
    for m in [&mut busy_m, &mut idle_m, &mut down_m] {
        m.collect_until(Instant::now() + Duration::from_millis(200));
    }
    assert!(
        down.seen_named("connected").is_empty(),
        "the refused port connected?"
    );
    assert_pings_on_schedule("connected, busy", &busy_m.pings(), busy_ready, WATCH);
    assert_pings_on_schedule("connected, idle", &idle_m.pings(), idle_ready, WATCH);
    assert_pings_on_schedule("retrying", &down_m.pings(), down_ready, WATCH);

    // STATUS= follows the state: one line per connecting/connected/reconnecting event, in
    // the events' order and with their attempt numbers; then stopping and closed.
    for ws in [&mut busy, &mut idle, &mut down] {
        ws.signal("TERM");
        assert_eq!(ws.wait_exit(SLOW).code(), Some(0), "{}", ws.stderr_text());
        ws.remaining_events(SLOW);
    }
    for m in [&mut idle_m, &mut down_m] {
        m.collect_until(Instant::now() + Duration::from_millis(200));
    }
    for (case, ws, m) in [("retrying", &down, &down_m), ("idle", &idle, &idle_m)] {
        let mut expected: Vec<String> = vec!["starting".into()];
        expected.extend(ws.seen.iter().filter_map(|e| match e.name() {
            "connecting" => Some(format!("connecting (attempt {})", e.num("attempt"))),
            "connected" => Some(format!("connected (attempt {})", e.num("attempt"))),
            "reconnecting" => Some(format!(
                "waiting to reconnect (attempt {} in {} ms)",
                e.num("attempt"),
                e.num("delay_ms")
            )),
            _ => None,
        }));
        expected.extend(["stopping".into(), "closed".into()]);
        let states: Vec<&str> = m
            .statuses()
            .into_iter()
            .map(|s| s.split(", outbox").next().unwrap_or(s))
            .collect();
        assert_eq!(states, expected, "{case}");
    }
    assert!(
        down_m.statuses().len() > 20,
        "retrying: {:?}",
        down_m.statuses()
    );
}

/// A stopped process cannot ping (systemd's watchdog then acts); once continued it pings
/// again within half an interval. SIGTERM: STOPPING=1, then a clean exit.
#[test]
fn no_watchdog_while_stopped_and_stopping_on_sigterm() {
    let _w = watchdog(Duration::from_secs(60), "no_watchdog_while_stopped");
    let server = TestServer::start(Mode::Echo);
    let mut m = Manager::bind();
    let mut ws = m.spawn(&[&server.url()]);
    m.expect("READY=1", SLOW);
    ws.event("connected", SLOW);
    m.collect_until(Instant::now() + INTERVAL * 2);
    assert!(m.pings().len() >= 3, "{:?}", m.texts());

    ws.signal("STOP");
    let stopped = Instant::now();
    m.collect_until(stopped + INTERVAL * 3);
    ws.signal("CONT");
    let continued = Instant::now();
    // A ping already in the socket when the signal landed may be read just after it.
    let grace = Duration::from_millis(100);
    let during: Vec<Duration> = m
        .pings()
        .into_iter()
        .filter(|t| *t > stopped + grace && *t < continued)
        .map(|t| t - stopped)
        .collect();
    assert!(
        during.is_empty(),
        "pings while stopped, at {during:?} after SIGSTOP"
    );

    m.collect_until(continued + INTERVAL);
    let after = m.pings().into_iter().find(|t| *t > continued);
    let after = after.expect("no ping after SIGCONT");
    eprintln!("first ping {:?} after SIGCONT", after - continued);
    assert!(
        after - continued <= INTERVAL / 2 * 12 / 10,
        "first ping {:?} after SIGCONT",
        after - continued
    );

    ws.signal("TERM");
    let stopping = m.expect("STOPPING=1", SLOW);
    assert_eq!(ws.wait_exit(SLOW).code(), Some(0), "{}", ws.stderr_text());
    assert!(stopping >= continued);
    m.collect_until(Instant::now() + Duration::from_millis(100));
    let texts = m.texts();
    let at = texts
        .iter()
        .position(|t| *t == "STOPPING=1")
        .expect("STOPPING=1");
    assert!(
        texts[at..].iter().any(|t| t.starts_with("STATUS=stopping")),
        "{texts:?}"
    );
}

/// `WATCHDOG_PID` naming another process: the watchdog is not ours, so no ping; READY=1
/// and STATUS= still go out.
#[test]
fn watchdog_pid_of_another_process_means_no_pings() {
    let _w = watchdog(Duration::from_secs(30), "watchdog_pid");
    let refused = format!("ws://127.0.0.1:{}/", refused_port());
    let mut m = Manager::bind();
    let usec = INTERVAL.as_micros().to_string();
    let _ws = Wsbeat::spawn_env(
        &[
            ("NOTIFY_SOCKET", &m.name),
            ("WATCHDOG_USEC", &usec),
            ("WATCHDOG_PID", "1"),
        ],
        &[&refused],
    );
    m.expect("READY=1", SLOW);
    m.collect_until(Instant::now() + INTERVAL * 2);
    assert!(m.pings().is_empty(), "{:?}", m.texts());
    assert!(!m.statuses().is_empty(), "{:?}", m.texts());
}
