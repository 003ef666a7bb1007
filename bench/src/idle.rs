//! Idle cost: every client connected, idle, pinging every 5 s, each in its own process against
//! its own server; the bench samples all their threads (`/proc/PID/task/*/status` and
//! `schedstat`) at the start and end of one common window. A second instance of each client
//! runs under `strace -f -ttt`; its syscalls inside the window are counted.
//!
//! The wsbeat and bare-tungstenite clients are this binary run again (`--idle-child`,
//! `--bare-idle-child`), so that their counters are theirs alone.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tungstenite::Message as Wire;
use wsbeat::{Client, Config, Event};

use crate::peers::{self, Peer, Watched};
use crate::procfs::{self, CpuSample, Mem};
use crate::server::{Mode, Server};

/// `--idle-child URL PING_MS LIFETIME_S`: a wsbeat client that connects and then only polls.
pub fn wsbeat_child(args: &[String]) -> i32 {
    let (url, ping_ms, lifetime) = match child_args(args) {
        Some(a) => a,
        None => return 2,
    };
    let config = Config::new(url).ping_interval(Duration::from_millis(ping_ms));
    let mut client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("idle child: {e}");
            return 2;
        }
    };
    let end = Instant::now() + Duration::from_secs(lifetime);
    let mut said = false;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return 0;
        }
        // Nothing else happens here: the only wakes are the client's own.
        match client.poll(left) {
            Some(Event::Connected { .. }) if !said => {
                println!("CONNECTED");
                said = true;
            }
            Some(Event::Disconnected { .. }) => println!("DISCONNECTED"),
            _ => {}
        }
    }
}

/// `--bare-idle-child URL PING_MS LIFETIME_S`: tungstenite alone, a Ping after every
/// PING_MS of silence, waiting with the socket read timeout.
pub fn bare_child(args: &[String]) -> i32 {
    let (url, ping_ms, lifetime) = match child_args(args) {
        Some(a) => a,
        None => return 2,
    };
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    let Ok(stream) = TcpStream::connect(&addr) else {
        return 1;
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut ws, _)) = tungstenite::client(url, stream) else {
        return 1;
    };
    println!("CONNECTED");
    let ping = Duration::from_millis(ping_ms);
    let end = Instant::now() + Duration::from_secs(lifetime);
    let mut next_ping = Instant::now() + ping;
    loop {
        let now = Instant::now();
        if now >= end {
            return 0;
        }
        if now >= next_ping {
            if ws.send(Wire::Ping(Vec::new().into())).is_err() {
                return 1;
            }
            next_ping = Instant::now() + ping;
            continue;
        }
        let wait = next_ping.min(end) - now;
        let _ = ws
            .get_ref()
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        match ws.read() {
            Ok(_) => next_ping = Instant::now() + ping,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return 1,
        }
    }
}

fn child_args(args: &[String]) -> Option<(String, u64, u64)> {
    let url = args.first()?.clone();
    let ping_ms = args.get(1)?.parse().ok()?;
    let lifetime = args.get(2)?.parse().ok()?;
    Some((url, ping_ms, lifetime))
}

/// One client in the idle comparison.
#[derive(Clone)]
pub struct Subject {
    pub name: String,
    pub settings: String,
    how: How,
    ping_s: u64,
}

#[derive(Clone)]
enum How {
    /// This binary with `--idle-child` or `--bare-idle-child`.
    SelfExec(&'static str),
    /// The wsbeat CLI at this path.
    Cli(PathBuf),
    Peer(Peer),
}

fn self_command(kind: &str, url: &str, ping_s: u64, lifetime: u64) -> Command {
    let exe = std::env::current_exe().expect("own path");
    let mut c = Command::new(exe);
    c.args([
        kind,
        url,
        &(ping_s * 1000).to_string(),
        &lifetime.to_string(),
    ]);
    c
}

impl Subject {
    pub fn wsbeat(ping_s: u64) -> Subject {
        Subject {
            name: "wsbeat".into(),
            settings: format!(
                "the library: a Client::poll loop and nothing else (this binary, --idle-child), \
                 ping_interval {ping_s} s, pong_timeout 5 s, max_missed_pongs 3"
            ),
            how: How::SelfExec("--idle-child"),
            ping_s,
        }
    }

    pub fn cli(path: &Path, ping_s: u64) -> Subject {
        Subject {
            name: "wsbeat CLI".into(),
            settings: format!(
                "{} URL --ping-interval {ping_s}s -q, stdin an open pipe",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
            how: How::Cli(path.to_path_buf()),
            ping_s,
        }
    }

    pub fn bare(ping_s: u64) -> Subject {
        Subject {
            name: "bare tungstenite".into(),
            settings: format!(
                "tungstenite alone (this binary, --bare-idle-child): read() with SO_RCVTIMEO \
                 until the next ping, a Ping after {ping_s} s of silence"
            ),
            how: How::SelfExec("--bare-idle-child"),
            ping_s,
        }
    }

    pub fn peer(peer: &Peer, ping_s: u64) -> Subject {
        Subject {
            name: peer.name.into(),
            settings: peers::keepalive(peer.kind, ping_s, false).2,
            how: How::Peer(peer.clone()),
            ping_s,
        }
    }

    fn command(&self, url: &str, lifetime: u64) -> Command {
        match &self.how {
            How::SelfExec(kind) => self_command(kind, url, self.ping_s, lifetime),
            How::Cli(path) => {
                let mut c = Command::new(path);
                c.args([url, "--ping-interval", &format!("{}s", self.ping_s), "-q"]);
                c
            }
            How::Peer(p) => p.keepalive_command("idle", url, self.ping_s, lifetime, false),
        }
    }
}

/// What the window showed for one client.
#[derive(Clone, Debug, Default)]
pub struct IdleResult {
    pub name: String,
    pub settings: String,
    pub window_s: f64,
    pub cpu: CpuSample,
    pub mem: Mem,
    pub top_mappings: Vec<(u64, String)>,
    /// Pings the server answered inside the window (untraced instance).
    pub pings: u64,
    /// Syscalls of the traced instance inside the window, by name.
    pub syscalls: Option<BTreeMap<String, u64>>,
    pub error: Option<String>,
}

impl IdleResult {
    pub fn syscall_total(&self) -> Option<u64> {
        self.syscalls.as_ref().map(|m| m.values().sum())
    }
    /// Voluntary context switches per minute.
    pub fn vcsw_per_min(&self) -> f64 {
        self.cpu.voluntary as f64 * 60.0 / self.window_s
    }
    pub fn cpu_ms_per_min(&self) -> f64 {
        self.cpu.cpu_ns as f64 / 1e6 * 60.0 / self.window_s
    }
}

struct Instance {
    subject: usize,
    server: Server,
    watched: Watched,
    /// The strace output file, for a traced instance.
    trace: Option<PathBuf>,
}

/// The started idle clients; sample with [`Idle::window`].
pub struct Idle {
    subjects: Vec<Subject>,
    instances: Vec<Instance>,
    pub errors: Vec<String>,
}

/// Starts an untraced and (with `strace`) a traced instance of every subject.
pub fn start(subjects: Vec<Subject>, out_dir: &Path, lifetime: u64, strace: bool) -> Idle {
    let mut instances = Vec::new();
    let mut errors = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        for traced in [false, true] {
            if traced && !strace {
                continue;
            }
            let server = match Server::start(Mode::Echo) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(format!("{}: server: {e}", s.name));
                    continue;
                }
            };
            let inner = s.command(&server.url(), lifetime);
            let (cmd, trace) = if traced {
                let file = out_dir.join(format!("strace-idle-{}.txt", slug(&s.name)));
                let _ = std::fs::remove_file(&file);
                let mut c = Command::new("strace");
                c.arg("-f").arg("-ttt").arg("-o").arg(&file);
                c.arg(inner.get_program());
                c.args(inner.get_args());
                (c, Some(file))
            } else {
                (inner, None)
            };
            match peers::spawn_watched(cmd) {
                Ok(watched) => instances.push(Instance {
                    subject: i,
                    server,
                    watched,
                    trace,
                }),
                Err(e) => errors.push(format!("{}: spawn: {e}", s.name)),
            }
        }
    }
    Idle {
        subjects,
        instances,
        errors,
    }
}

pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

impl Idle {
    /// Waits until every instance's server has an open connection (at most `max`); instances
    /// that did not connect are stopped and reported.
    pub fn wait_connected(&mut self, max: Duration) {
        let end = Instant::now() + max;
        while Instant::now() < end && self.instances.iter().any(|i| i.server.open_conns() == 0) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut kept = Vec::new();
        for inst in self.instances.drain(..) {
            if inst.server.open_conns() == 0 {
                self.errors.push(format!(
                    "{}{}: did not connect within {} s",
                    self.subjects[inst.subject].name,
                    if inst.trace.is_some() {
                        " (strace)"
                    } else {
                        ""
                    },
                    max.as_secs()
                ));
                stop_instance(inst);
            } else {
                kept.push(inst);
            }
        }
        self.instances = kept;
    }

    /// What the sampler thread needs: each instance's pid and server.
    pub fn probes(&self) -> Vec<(u32, &Server)> {
        self.instances
            .iter()
            .map(|i| (i.watched.child.id(), &i.server))
            .collect()
    }

    /// Turns the start and end snapshots into results, stops every instance and counts the
    /// traced instances' syscalls inside the window.
    pub fn finish(self, start: &Snapshot, end: &Snapshot) -> Vec<IdleResult> {
        let window_s = end.epoch - start.epoch;
        let mut results: Vec<IdleResult> = self
            .subjects
            .iter()
            .map(|s| IdleResult {
                name: s.name.clone(),
                settings: s.settings.clone(),
                window_s,
                error: Some("did not run".into()),
                ..Default::default()
            })
            .collect();
        let mut traces = Vec::new();
        for (k, inst) in self.instances.into_iter().enumerate() {
            let r = &mut results[inst.subject];
            if let Some(file) = inst.trace.clone() {
                traces.push((inst.subject, file));
                stop_instance(inst);
                continue;
            }
            match (&start.samples[k], &end.samples[k]) {
                (
                    Sample {
                        cpu: Some(a),
                        pings: p0,
                        ..
                    },
                    Sample {
                        cpu: Some(b),
                        pings: p1,
                        mem: Some(m),
                        top,
                    },
                ) => {
                    r.cpu = b.delta(a);
                    r.mem = *m;
                    r.top_mappings = top.clone();
                    r.pings = p1 - p0;
                    r.error = None;
                }
                _ => r.error = Some("process ended during the window".into()),
            }
            stop_instance(inst);
        }
        for (subject, file) in traces {
            // strace writes its last lines as the tracee dies; give it a moment.
            std::thread::sleep(Duration::from_millis(100));
            results[subject].syscalls = count_syscalls(&file, start.epoch, end.epoch);
        }
        for e in self.errors {
            if let Some(r) = results.iter_mut().find(|r| e.starts_with(&r.name)) {
                if r.error.is_some() {
                    r.error = Some(e.clone());
                }
            }
        }
        results
    }
}

/// Samples every probe now (with `mem`, also memory and the largest mappings).
pub fn snapshot(probes: &[(u32, &Server)], mem: bool) -> Snapshot {
    Snapshot {
        epoch: procfs::epoch_secs(),
        samples: probes
            .iter()
            .map(|(pid, server)| Sample {
                cpu: procfs::process_sample(*pid),
                pings: server.pings(),
                mem: if mem { procfs::mem(*pid) } else { None },
                top: if mem {
                    procfs::top_mappings(*pid, 6)
                } else {
                    Vec::new()
                },
            })
            .collect(),
    }
}

pub struct Sample {
    cpu: Option<CpuSample>,
    pings: u64,
    mem: Option<Mem>,
    top: Vec<(u64, String)>,
}

pub struct Snapshot {
    epoch: f64,
    samples: Vec<Sample>,
}

/// Kills the instance's process (for a traced one, the tracee first: strace would detach
/// and leave it running).
fn stop_instance(inst: Instance) {
    if inst.trace.is_some() {
        let pid = inst.watched.child.id();
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
            for c in children.split_whitespace() {
                if let Ok(c) = c.parse::<i32>() {
                    // SAFETY: kill(2) on a pid we started (strace's child).
                    unsafe {
                        libc::kill(c, libc::SIGKILL);
                    }
                }
            }
        }
        let mut w = inst.watched;
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            if let Ok(Some(_)) = w.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        w.stop();
    } else {
        inst.watched.stop();
    }
}

/// Counts the syscalls `strace -f -ttt` logged between the two epoch instants, by name.
pub fn count_syscalls(file: &Path, from: f64, to: f64) -> Option<BTreeMap<String, u64>> {
    let f = std::fs::File::open(file).ok()?;
    let mut counts = BTreeMap::new();
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        let mut rest = line.as_str();
        // Optional pid, then the timestamp.
        let mut tokens = rest.splitn(2, ' ');
        let first = tokens.next().unwrap_or("");
        if !first.contains('.') {
            rest = tokens.next().unwrap_or("").trim_start();
            tokens = rest.splitn(2, ' ');
            let _ = tokens.next();
        }
        let ts = rest.split(' ').next().and_then(|t| t.parse::<f64>().ok());
        let Some(ts) = ts else { continue };
        if ts < from || ts > to {
            continue;
        }
        let call = rest.split_once(' ').map(|(_, c)| c).unwrap_or("");
        if call.starts_with("<...") || call.starts_with("---") || call.starts_with("+++") {
            continue;
        }
        let name = call.split('(').next().unwrap_or("").trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        *counts.entry(name.to_string()).or_insert(0) += 1;
    }
    Some(counts)
}

/// Whether `strace` runs here.
pub fn have_strace() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
