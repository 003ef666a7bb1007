//! The shape of a firmware daemon built on wsbeat: one thread, one loop that reads a sensor on
//! a schedule, sends readings (kept in the outbox while the link is down), obeys commands from
//! the server, and shuts down cleanly on SIGTERM/SIGINT. Under systemd
//! (`examples/systemd/telemetry.service`, `Type=notify`) it tells the service manager that it
//! is ready, what state the link is in, that it is alive (`WatchdogSec=`) and that it is
//! stopping: [`Notify`] shows the pattern.
//!
//! ```text
//! cargo run --example echo_server                       # in one terminal
//! cargo run --example telemetry -- ws://127.0.0.1:9001/ --max-seconds 30
//! ```
//! In the echo server's terminal try `send {"cmd":"interval","secs":3}`, `send reboot`,
//! `freeze`, `drop` or `restart`, and watch the daemon's log.
//!
//! Copying it into a project of your own: besides `wsbeat`, `log` and `env_logger`, it needs
//!
//! ```toml
//! ctrlc = { version = "3", features = ["termination"] }
//! ```
//!
//! Plain `ctrlc = "3"` catches SIGINT only. SIGTERM, what systemd and `kill` send, then ends
//! the process on the spot: no close frame for the server and no count of unsent readings.
//! In this repository wsbeat's dev-dependency line and its `cli` feature both turn
//! `termination` on, so running the example here does not show the difference.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use wsbeat::{Client, Config, Event, Message, SendError};

/// Longest single wait in the loop. The client's wait is not interrupted by a signal, so this
/// bounds how long SIGTERM takes to be noticed when the server sets a long reading interval
/// (systemd's TimeoutStopSec must cover it plus the close timeout).
const MAX_WAIT: Duration = Duration::from_secs(1);

/// A stand-in for a temperature sensor: a random walk from a tiny xorshift generator.
struct Sensor {
    state: u64,
    temp_c: f64,
}

impl Sensor {
    fn new(seed: u64) -> Sensor {
        Sensor {
            state: seed | 1, // xorshift must not start at zero
            temp_c: 21.0,
        }
    }

    /// The next reading, drifting by at most ±0.25 °C and kept in a plausible range.
    fn read(&mut self) -> f64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let step = (self.state % 51) as f64 / 100.0 - 0.25;
        self.temp_c = (self.temp_c + step).clamp(-10.0, 60.0);
        self.temp_c
    }
}

/// Command-line settings.
struct Args {
    url: String,
    max_seconds: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: "ws://127.0.0.1:9001/".to_string(),
        max_seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--max-seconds" => {
                let n = it.next().ok_or("--max-seconds: missing value")?;
                let n = n
                    .parse()
                    .map_err(|_| format!("--max-seconds: invalid {n:?}"))?;
                args.max_seconds = Some(n);
            }
            flag if flag.starts_with('-') => return Err(format!("{flag}: unknown option")),
            url => args.url = url.to_string(),
        }
    }
    Ok(args)
}

/// The `sd_notify` protocol: one datagram per message to the socket in `NOTIFY_SOCKET` (a
/// path, or `@name` for an abstract socket). The library sends nothing to systemd; a daemon
/// that uses `poll` does it like this:
/// - `READY=1` once its loop runs, not after the first connect: a server that is down must
///   not fail the unit's start;
/// - `STATUS=...` from the events that change the link's state;
/// - `WATCHDOG=1` every half `WATCHDOG_USEC`, as one more deadline of the loop: the wait
///   ends at the earlier of its own deadlines and the ping's, and the ping goes out only if the
///   loop got there on time (a process that was stopped or stuck comes back late and waits
///   for one on-time round). A network outage is no reason to withhold it: the client retries
///   on schedule. With [`Client::run`], keep the ping's instant in the handler, return the
///   time left until it from `Handler::tick_interval` and ping in `Handler::on_tick`;
/// - `STOPPING=1` when it starts the clean close.
struct Notify {
    socket: std::os::unix::net::UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
    /// Half of `WatchdogSec=`, if systemd watches this process.
    watchdog: Option<Duration>,
    next_ping: Instant,
}

impl Notify {
    /// `None` when not started by systemd with `Type=notify`.
    fn from_env() -> Option<Notify> {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixDatagram};
        let name = std::env::var("NOTIFY_SOCKET").ok()?;
        let addr = match name.strip_prefix('@') {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name),
            None => SocketAddr::from_pathname(&name),
        };
        let socket = UnixDatagram::unbound().and_then(|s| s.set_nonblocking(true).map(|_| s));
        let (addr, socket) = match (addr, socket) {
            (Ok(a), Ok(s)) => (a, s),
            (Err(e), _) | (_, Err(e)) => {
                warn!("NOTIFY_SOCKET {name}: {e}");
                return None;
            }
        };
        let ours =
            std::env::var("WATCHDOG_PID").map_or(true, |pid| pid.parse() == Ok(std::process::id()));
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && ours)
            .map(|u| Duration::from_micros(u) / 2);
        let next_ping = Instant::now() + watchdog.unwrap_or_default();
        Some(Notify {
            socket,
            addr,
            watchdog,
            next_ping,
        })
    }

    fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            warn!("sd_notify {message}: {e}");
        }
    }

    /// When the loop must wake for the next ping.
    fn deadline(&self) -> Option<Instant> {
        self.watchdog.map(|_| self.next_ping)
    }

    /// After each return of `poll`: pings if due and the loop is on time.
    fn ping_if_due(&mut self) {
        let Some(half) = self.watchdog else { return };
        let now = Instant::now();
        if now < self.next_ping {
            return;
        }
        // More than a quarter of the ping period late: the loop did not meet its deadline
        // (stopped, or stuck in a call). Look again after one more on-time wait.
        if now > self.next_ping + half / 4 {
            self.next_ping = now + half / 4;
            return;
        }
        self.send("WATCHDOG=1");
        self.next_ping = now + half;
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("telemetry: {e}\nusage: telemetry [URL] [--max-seconds N]");
        std::process::exit(2);
    });

    // A device-like policy: notice a dead link within 15 s + 2 × 5 s = 25 s; keep an hour of
    // readings at one per second while offline.
    let mut config = Config::new(args.url)
        .ping_interval(Duration::from_secs(15))
        .pong_timeout(Duration::from_secs(5))
        .max_missed_pongs(2)
        .header("X-Device-Id", "demo-0001");
    config.outbox.max_messages = 3600;
    let mut client = Client::new(config).unwrap_or_else(|e| {
        eprintln!("telemetry: {e}");
        std::process::exit(2);
    });

    // The handler (on ctrlc's own thread) raises a flag and wakes the client, so a blocked
    // `poll` returns at once in any phase, a stalled connect included; all work stays on the
    // one thread. It covers SIGTERM (and SIGHUP) only with ctrlc's `termination` feature,
    // `ctrlc = { version = "3", features = ["termination"] }`; without it ctrlc handles SIGINT
    // alone and SIGTERM kills the process before the clean close below.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let waker = client.waker();
    if let Err(e) = ctrlc::set_handler(move || {
        flag.store(true, Ordering::SeqCst);
        waker.wake();
    }) {
        eprintln!("telemetry: cannot install the signal handler: {e}");
        std::process::exit(1);
    }

    let started = Instant::now();
    let deadline = args.max_seconds.map(|s| started + Duration::from_secs(s));
    let mut sensor = Sensor::new(0x5eed_2024);
    let mut interval = Duration::from_secs(1);
    let mut next_reading = started;
    let mut seq: u64 = 0;
    let mut dropped: u64 = 0;
    let mut notify = Notify::from_env();
    if let Some(n) = &notify {
        n.send("READY=1\nSTATUS=starting");
    }

    while !stop.load(Ordering::SeqCst) && deadline.is_none_or(|d| Instant::now() < d) {
        let now = Instant::now();
        if now >= next_reading {
            seq += 1;
            let reading = format!("{{\"seq\":{seq},\"temp_c\":{:.2}}}", sensor.read());
            match client.send(Message::text(reading)) {
                Ok(()) => {}
                // Offline for longer than the outbox holds: the newest reading is the one lost.
                Err(SendError::OutboxFull(_)) => {
                    dropped += 1;
                    warn!("outbox full: reading {seq} dropped ({dropped} so far)");
                }
                Err(e) => warn!("reading {seq} not sent: {e}"),
            }
            // Fixed schedule, no drift; after a long stall skip ahead instead of bursting.
            next_reading += interval;
            if next_reading < now {
                next_reading = now + interval;
            }
        }
        // Wake for the next reading or watchdog ping; the client uses the time for its socket
        // and heartbeat.
        let wake = notify
            .as_ref()
            .and_then(Notify::deadline)
            .map_or(next_reading, |ping| ping.min(next_reading));
        let wait = wake.saturating_duration_since(Instant::now());
        let event = client.poll(wait.min(MAX_WAIT));
        if let Some(n) = &mut notify {
            n.ping_if_due();
            if let Some(status) = event.as_ref().and_then(status_of) {
                n.send(&format!("STATUS={status}"));
            }
        }
        if let Some(event) = event {
            if let Some(new_interval) = on_event(event) {
                interval = new_interval;
                next_reading = Instant::now() + interval;
            }
            if client.is_stopped() {
                break; // gave up (only with max_retries set) or a final close code
            }
        }
    }

    info!("stopping: closing the link");
    if let Some(n) = &notify {
        n.send("STOPPING=1");
    }
    client.close();
    while !client.is_stopped() {
        if let Some(event) = client.poll(MAX_WAIT) {
            on_event(event);
        }
    }
    // A real device would write these to flash and send them after the next boot.
    let unsent = client.take_unsent().len();
    info!("{seq} readings taken, {dropped} dropped, {unsent} unsent at shutdown");
}

/// The `STATUS=` text for an event that changes the link's state.
fn status_of(event: &Event) -> Option<String> {
    match event {
        Event::Connected { attempt, .. } => Some(format!("online (attempt {attempt})")),
        Event::Reconnecting { attempt, delay, .. } => Some(format!(
            "offline, retry {attempt} in {} ms",
            delay.as_millis()
        )),
        Event::GaveUp { .. } => Some("gave up".into()),
        _ => None,
    }
}

/// Logs what happened; returns a new reading interval if the server asked for one.
fn on_event(event: Event) -> Option<Duration> {
    match event {
        Event::Message(Message::Text(text)) => return on_command(&text),
        Event::Message(Message::Binary(b)) => {
            info!("ignoring a binary message of {} bytes", b.len())
        }
        Event::Connected { attempt, .. } => info!("online (attempt {attempt})"),
        Event::Disconnected { reason, .. } if reason.kind() == "local_close" => {
            info!("link closed: {reason}")
        }
        Event::Disconnected {
            reason,
            unconfirmed,
            ..
        } => {
            warn!("offline: {reason} ({unconfirmed} readings unconfirmed)")
        }
        Event::Reconnecting { delay, .. } => info!("retrying in {} ms", delay.as_millis()),
        Event::GaveUp { attempts } => warn!("gave up after {attempts} attempts"),
        Event::Closed { code } => info!("closed (code {code:?})"),
        _ => {} // pings, pongs, connecting: the library logs them at debug level
    }
    None
}

/// Commands: `{"cmd":"interval","secs":N}` sets the reading interval; `reboot` (plain or as
/// `{"cmd":"reboot"}`) is only logged here. Anything else is an echo or unknown.
fn on_command(text: &str) -> Option<Duration> {
    let cmd = if text.trim() == "reboot" {
        Some("reboot")
    } else {
        json_field(text, "cmd")
    };
    match cmd {
        Some("interval") => match json_field(text, "secs").and_then(|s| s.parse::<u64>().ok()) {
            Some(secs @ 1..=3600) => {
                info!("server set the reading interval to {secs} s");
                return Some(Duration::from_secs(secs));
            }
            _ => warn!("ignoring interval command without secs in 1..=3600: {text}"),
        },
        Some("reboot") => warn!("server asked for a reboot (a real device would reboot now)"),
        Some(other) => warn!("unknown command {other:?}"),
        None if text.starts_with("{\"seq\":") => {} // our own reading, echoed back
        None => info!("server says: {text}"),
    }
    None
}

/// The raw value of `"key":` in a flat JSON object: a string without its quotes, or a number.
/// Enough for this example's commands; a real firmware would use its JSON parser.
fn json_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":");
    let rest = text[text.find(&pattern)? + pattern.len()..].trim_start();
    match rest.strip_prefix('"') {
        Some(s) => s.split('"').next(),
        None => rest.split([',', '}']).next().map(str::trim),
    }
}
