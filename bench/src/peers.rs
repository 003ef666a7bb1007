//! Other clients, run as child processes against the same server: Python `websocket-client`,
//! Python `websockets`, Node `ws` (README heartbeat pattern) and `websocat`.
//!
//! Each peer script (bench/peers/) takes `MODE URL PING_INTERVAL PING_TIMEOUT LIFETIME [COUNT]`,
//! prints `CONNECTED` and `DISCONNECTED ...` lines, and exits by itself after LIFETIME seconds.
//! websocat is driven through its stdin/stdout.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::server::{Mode, Server};

/// Which peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    WebsocketClient,
    Websockets,
    NodeWs,
    Websocat,
}

/// A peer that is installed here.
#[derive(Clone, Debug)]
pub struct Peer {
    pub kind: Kind,
    pub name: &'static str,
    pub version: String,
    program: PathBuf,
    script: Option<PathBuf>,
}

/// The keepalive settings each peer gets: ping every `interval_s`. For the frozen-server test
/// (`detect`) the pong wait is half the interval where the peer has one (wsbeat's test waits
/// 500 ms per ping too); for the idle test it is as long as the peer allows (a shorter one
/// only adds wake-ups). Returns PING_INTERVAL and PING_TIMEOUT arguments and a description.
pub fn keepalive(kind: Kind, interval_s: u64, detect: bool) -> (String, String, String) {
    let i = interval_s as f64;
    match kind {
        // run_forever insists on ping_timeout < ping_interval; it also wakes every
        // ping_timeout seconds to check.
        Kind::WebsocketClient => {
            let t = if detect { i * 0.5 } else { i * 0.9 };
            (
                format!("{i}"),
                format!("{t}"),
                format!("run_forever(ping_interval={i}, ping_timeout={t})"),
            )
        }
        Kind::Websockets => {
            let t = if detect { i * 0.5 } else { i };
            (
                format!("{i}"),
                format!("{t}"),
                format!(
                    "connect(ping_interval={i}, ping_timeout={t}), close_timeout at its \
                     default (10 s)"
                ),
            )
        }
        Kind::NodeWs => (
            format!("{i}"),
            "-".into(),
            format!(
                "ws README heartbeat on the client: setInterval({} ms): terminate() if no pong \
                 since the last tick, else ping()",
                interval_s * 1000
            ),
        ),
        // Whole seconds only; the timeout counts from the last pong and must exceed the
        // interval; without -E a ping timeout does not end the process (websocat's own lint).
        Kind::Websocat => {
            let t = if detect {
                interval_s + 1
            } else {
                interval_s * 2
            };
            (
                format!("{interval_s}"),
                format!("{t}"),
                format!("-t -E --ping-interval {interval_s} --ping-timeout {t}"),
            )
        }
    }
}

/// The peers found under `bench/` (venv, node_modules, .tools) and on PATH.
pub fn discover(bench: &Path) -> (Vec<Peer>, Vec<String>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let python = bench.join(".venv/bin/python");
    for (kind, name, script) in [
        (
            Kind::WebsocketClient,
            "websocket-client",
            "py_websocket_client.py",
        ),
        (Kind::Websockets, "websockets", "py_websockets.py"),
    ] {
        let script = bench.join("peers").join(script);
        match version_of(&python, Some(&script)) {
            Some(v) => found.push(Peer {
                kind,
                name,
                version: format!("{v} ({})", python_version(&python)),
                program: python.clone(),
                script: Some(script),
            }),
            None => missing.push(format!(
                "{name}: not installed in bench/.venv (run bench/run.sh)"
            )),
        }
    }
    let node = PathBuf::from("node");
    let script = bench.join("peers/node_ws.js");
    match version_of(&node, Some(&script)) {
        Some(v) => {
            let nv = Command::new("node")
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            found.push(Peer {
                kind: Kind::NodeWs,
                name: "Node ws",
                version: format!("ws {v} (node {nv})"),
                program: node,
                script: Some(script),
            })
        }
        None => missing.push("Node ws: node or bench/node_modules/ws missing".into()),
    }
    let local = bench.join(".tools/bin/websocat");
    let websocat = if local.exists() {
        local
    } else {
        PathBuf::from("websocat")
    };
    match Command::new(&websocat).arg("--version").output() {
        Ok(o) if o.status.success() => found.push(Peer {
            kind: Kind::Websocat,
            name: "websocat",
            version: String::from_utf8_lossy(&o.stdout)
                .trim()
                .trim_start_matches("websocat ")
                .to_string(),
            program: websocat,
            script: None,
        }),
        _ => missing
            .push("websocat: not installed (cargo install websocat failed or skipped)".into()),
    }
    (found, missing)
}

fn version_of(program: &Path, script: Option<&Path>) -> Option<String> {
    let mut cmd = Command::new(program);
    if let Some(s) = script {
        cmd.arg(s);
    }
    let o = cmd.arg("version").stderr(Stdio::null()).output().ok()?;
    let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.success() && !v.is_empty()).then_some(v)
}

fn python_version(python: &Path) -> String {
    Command::new(python)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

impl Peer {
    /// The command for `mode` (idle, detect) with keepalive at `interval_s`.
    pub fn keepalive_command(
        &self,
        mode: &str,
        url: &str,
        interval_s: u64,
        lifetime_s: u64,
        detect: bool,
    ) -> Command {
        let (i, t, _) = keepalive(self.kind, interval_s, detect);
        match &self.script {
            Some(script) => {
                let mut c = Command::new(&self.program);
                c.arg(script)
                    .args([mode, url, &i, &t, &lifetime_s.to_string()]);
                c
            }
            None => {
                // websocat: keep stdin open (a pipe nobody writes) and leave the rest alone.
                let mut c = Command::new(&self.program);
                c.args(["-t", "-E", "--ping-interval", &i, "--ping-timeout", &t, url]);
                c
            }
        }
    }
}

/// When set, throughput runs use the same placement as the overhead runs: the client process
/// on `CLIENT_CPU` (children inherit the spawning thread's affinity), the server's connection
/// threads and the benchmark's driving thread on `SERVER_CPU` (the same CPU, see
/// examples/bench.rs).
pub static PIN: AtomicBool = AtomicBool::new(false);

/// Spawns `cmd` on `CLIENT_CPU` when [`PIN`] is set; the calling thread continues on
/// `SERVER_CPU`.
fn spawn_placed(cmd: &mut Command) -> std::io::Result<Child> {
    if !PIN.load(Ordering::SeqCst) {
        return cmd.spawn();
    }
    crate::procfs::pin_thread(&[crate::procfs::CLIENT_CPU]);
    let child = cmd.spawn();
    crate::procfs::pin_thread(&[crate::procfs::SERVER_CPU]);
    child
}

fn start_server() -> Result<Server, String> {
    let server = Server::start(Mode::Echo).map_err(|e| e.to_string())?;
    if PIN.load(Ordering::SeqCst) {
        server.pin_connections(crate::procfs::SERVER_CPU);
    }
    Ok(server)
}

/// A child process whose stdout lines are timestamped as they arrive.
pub struct Watched {
    pub child: Child,
    pub lines: mpsc::Receiver<(Instant, Option<String>)>,
    /// Held so that the child's stdin stays open (websocat and the CLI read it).
    pub _stdin: Option<std::process::ChildStdin>,
}

/// Spawns `cmd` with piped stdin/stdout (stderr discarded) and a reader thread for stdout.
/// `None` in the channel means end of stdout (the process exited).
pub fn spawn_watched(mut cmd: Command) -> std::io::Result<Watched> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = spawn_placed(&mut cmd)?;
    let stdout = child.stdout.take().expect("piped");
    let stdin = child.stdin.take();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.send((Instant::now(), None));
                    return;
                }
                Ok(_) => {
                    if tx
                        .send((Instant::now(), Some(line.trim_end().to_string())))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    Ok(Watched {
        child,
        lines: rx,
        _stdin: stdin,
    })
}

impl Watched {
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The outcome of a frozen-server test.
#[derive(Clone, Debug)]
pub enum Detect {
    /// Time from the freeze (the server's last byte, a Pong) to the peer giving up the link,
    /// and what it said.
    After(Duration, String),
    /// Nothing within the cap.
    NotWithin(Duration),
    Failed(String),
}

/// Connects `peer` with a 1 s keepalive, freezes the server right after it answered a ping,
/// and times how long until the peer says the link is gone (or exits), at most `cap`.
pub fn detect(peer: &Peer, interval_s: u64, cap: Duration) -> Detect {
    let server = match Server::start(Mode::Echo) {
        Ok(s) => s,
        Err(e) => return Detect::Failed(e.to_string()),
    };
    let lifetime = 10 + interval_s * 4 + cap.as_secs();
    let cmd = peer.keepalive_command("detect", &server.url(), interval_s, lifetime, true);
    let w = match spawn_watched(cmd) {
        Ok(w) => w,
        Err(e) => return Detect::Failed(format!("spawn: {e}")),
    };
    if !server.wait_open(Duration::from_secs(15)) {
        w.stop();
        return Detect::Failed("did not connect within 15 s".into());
    }
    // Let it settle into its ping rhythm, then freeze after the next answered ping.
    thread::sleep(Duration::from_millis(300));
    server.arm_freeze(false);
    let armed = Instant::now();
    let mut result = Detect::NotWithin(cap);
    let hard_end = armed + cap + Duration::from_secs(interval_s * 3);
    loop {
        let left = hard_end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match w.lines.recv_timeout(left) {
            Ok((at, line)) => {
                let what = match line {
                    Some(l) if l.starts_with("DISCONNECTED") => l,
                    Some(_) => continue,
                    None => "process exited".into(),
                };
                result = match server.frozen_at() {
                    Some(f) if at.saturating_duration_since(f) <= cap => {
                        Detect::After(at.saturating_duration_since(f), what)
                    }
                    Some(_) => Detect::NotWithin(cap),
                    None => Detect::Failed(format!("gave up before the server froze: {what}")),
                };
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if matches!(result, Detect::NotWithin(_)) && server.frozen_at().is_none() {
        result = Detect::Failed("no ping reached the server".into());
    }
    w.stop();
    result
}

/// 32-byte request/response echo: messages per second. Scripts time themselves; websocat is
/// timed here, through its stdin and stdout (one line out, wait for the line back).
pub fn echo(peer: &Peer, count: u64) -> Result<f64, String> {
    let server = start_server()?;
    let lifetime = 120;
    if let Some(script) = &peer.script {
        let mut c = Command::new(&peer.program);
        c.arg(script)
            .args(["echo", &server.url(), "-", "-", &lifetime.to_string()])
            .arg(count.to_string());
        let w = spawn_watched(c).map_err(|e| e.to_string())?;
        let end = Instant::now() + Duration::from_secs(lifetime);
        while let Ok((_, line)) = w
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            match line {
                Some(l) if l.starts_with("ECHO ") => {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let n: f64 = f.get(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                    let secs: f64 = f.get(2).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                    w.stop();
                    return if secs > 0.0 {
                        Ok(n / secs)
                    } else {
                        Err(format!("bad line {l:?}"))
                    };
                }
                Some(_) => {}
                None => break,
            }
        }
        w.stop();
        return Err("no ECHO line".into());
    }
    let mut c = Command::new(&peer.program);
    c.args(["-t", &server.url()]);
    stdio_echo(c, count, 32)
}

/// Drives a line-oriented client (websocat, the wsbeat CLI) through its stdin/stdout:
/// writes a line of `size` bytes, waits for it to come back, `count` times (after a warm-up).
pub fn stdio_echo(mut cmd: Command, count: u64, size: usize) -> Result<f64, String> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = spawn_placed(&mut cmd).map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = vec![b'x'; size];
    line.push(b'\n');
    let mut back = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut one = |stdin: &mut std::process::ChildStdin| -> Result<(), String> {
        stdin.write_all(&line).map_err(|e| e.to_string())?;
        stdin.flush().map_err(|e| e.to_string())?;
        back.clear();
        match stdout.read_line(&mut back) {
            Ok(n) if n == size + 1 => Ok(()),
            Ok(n) => Err(format!("echo of {n} bytes")),
            Err(e) => Err(e.to_string()),
        }
    };
    let warm = count.clamp(10, 200);
    let result = (|| {
        for _ in 0..warm {
            one(&mut stdin)?;
        }
        let t0 = Instant::now();
        for _ in 0..count {
            one(&mut stdin)?;
            if Instant::now() > deadline {
                return Err("took longer than 60 s".into());
            }
        }
        Ok(count as f64 / t0.elapsed().as_secs_f64())
    })();
    drop(stdin);
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return result;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    result
}
