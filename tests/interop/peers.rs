//! WebSocket servers nobody here wrote, run as child processes on 127.0.0.1 for
//! `tests/interop_peers.rs`: Python `websockets`, Node `ws`, libwebsockets' test server, and
//! nginx (`tests/common/nginx.rs`) as a reverse proxy in front of the Python one.
//!
//! `tests/interop/run.sh` installs them: a virtual environment in `target/interop-venv`
//! (`$WSBEAT_INTEROP_VENV` overrides), `tests/interop/node/node_modules`, and Debian's
//! `libwebsockets-test-server`. A peer whose runtime is missing is skipped with a notice,
//! unless `WSBEAT_REQUIRE_PEERS=1`, where that is a failure.
//!
//! Every process is killed on drop (after a SIGCONT, in case a test left it stopped), also
//! when a test fails.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::common::certs::TempDir;
use super::common::nginx::{peers_required, Nginx, NginxOptions};

/// The source tree, for the server scripts and the installed runtimes.
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// How long a peer may take to start listening.
const START_LIMIT: Duration = Duration::from_secs(10);

/// Which server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Python `websockets` (asyncio), `tests/interop/servers/echo_websockets.py`.
    Python,
    /// Node `ws`, `tests/interop/servers/echo_ws.js`.
    Node,
    /// `libwebsockets-test-server` (Debian), its `lws-mirror-protocol` as the echo peer and
    /// `dumb-increment-protocol` for a server-initiated close.
    Lws,
    /// nginx as a plain reverse proxy in front of the Python server.
    NginxPython,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Python => "python-websockets",
            Kind::Node => "node-ws",
            Kind::Lws => "libwebsockets",
            Kind::NginxPython => "nginx+python-websockets",
        }
    }

    /// The process whose signals make the faults (the backend behind nginx).
    fn process_kind(self) -> Kind {
        match self {
            Kind::NginxPython => Kind::Python,
            other => other,
        }
    }
}

/// Keepalive of the Python and Node peers: a Ping every 200 ms, dropped without an answer
/// within 200 ms (Python: 1011; Node: `terminate()` at the next tick).
pub const SERVER_PING_INTERVAL: Duration = Duration::from_millis(200);

/// The venv's Python, if it has `websockets`.
fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("WSBEAT_INTEROP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(ROOT).join("target/interop-venv"));
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import websockets"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(python)
}

fn node_modules() -> PathBuf {
    Path::new(ROOT).join("tests/interop/node/node_modules")
}

/// `node`, if on `PATH` and `ws` is installed.
fn node() -> Option<PathBuf> {
    if !node_modules().join("ws/package.json").is_file() {
        return None;
    }
    on_path("node")
}

fn lws() -> Option<PathBuf> {
    let usr = Path::new("/usr/bin/libwebsockets-test-server");
    if usr.is_file() {
        return Some(usr.to_path_buf());
    }
    on_path("libwebsockets-test-server")
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// One peer server process.
pub struct PeerProcess {
    kind: Kind,
    program: PathBuf,
    child: Option<Child>,
    port: u16,
    /// What the peer reported about itself (library and version).
    pub version: String,
    /// How long the last start took until the port accepted.
    pub started_in: Duration,
    dir: TempDir,
    starts: u32,
}

impl PeerProcess {
    /// Starts `kind` (for `NginxPython`: the Python backend) on a free port. `None` when its
    /// runtime is not installed and `WSBEAT_REQUIRE_PEERS` is not `1`.
    fn start(kind: Kind) -> Option<PeerProcess> {
        let program = match kind {
            Kind::Python | Kind::NginxPython => python(),
            Kind::Node => node(),
            Kind::Lws => lws(),
        };
        let Some(program) = program else {
            let hint = "run tests/interop/run.sh";
            assert!(
                !peers_required(),
                "{} is not installed but WSBEAT_REQUIRE_PEERS=1 ({hint})",
                kind.name()
            );
            eprintln!("skipped: {} not installed ({hint})", kind.name());
            return None;
        };
        let mut peer = PeerProcess {
            kind: kind.process_kind(),
            program,
            child: None,
            port: 0,
            version: String::new(),
            started_in: Duration::ZERO,
            dir: TempDir::new("wsbeat-interop"),
            starts: 0,
        };
        // A free port may be taken between the probe and the peer's bind: try a few.
        let mut last = String::new();
        for _ in 0..3 {
            let port = match peer.kind {
                Kind::Lws => free_port(),
                _ => 0, // the peer picks one and says which
            };
            match peer.spawn(port) {
                Ok(()) => return Some(peer),
                Err(e) => last = e,
            }
        }
        panic!("{} did not start: {last}", kind.name());
    }

    /// Starts the process listening on `port` (0: any, reported on stdout).
    fn spawn(&mut self, port: u16) -> Result<(), String> {
        self.starts += 1;
        let log = self.dir.path().join(format!("server-{}.log", self.starts));
        let stderr = File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let servers = Path::new(ROOT).join("tests/interop/servers");
        let mut cmd = Command::new(&self.program);
        match self.kind {
            Kind::Python | Kind::NginxPython => {
                cmd.arg(servers.join("echo_websockets.py"))
                    .args(["--port", &port.to_string()])
                    .args(["--ping-interval", "0.2", "--ping-timeout", "0.2"])
                    .args(["--max-size", &(1 << 20).to_string()]);
            }
            Kind::Node => {
                cmd.arg(servers.join("echo_ws.js"))
                    .env("NODE_PATH", node_modules())
                    .args(["--port", &port.to_string()])
                    .args(["--ping-interval", "200"])
                    .args(["--max-size", &(1 << 20).to_string()]);
            }
            Kind::Lws => {
                // -i lo: loopback only; -n: no dumb-increment traffic; -d 7: errors, warnings
                // and notices to stderr.
                cmd.args(["-p", &port.to_string(), "-i", "lo", "-n", "-d", "7"]);
            }
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.program.display()))?;
        let started = Instant::now();
        let stdout = child.stdout.take().expect("stdout");
        self.child = Some(child);
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let end = started + START_LIMIT;
        match self.kind {
            Kind::Lws => {
                self.port = port;
                loop {
                    if let Some(status) = self.try_wait() {
                        return Err(format!("exited with {status}: {}", self.log_text()));
                    }
                    // The port was free a moment ago; another test may have taken it since,
                    // and a connect would then reach that listener: the socket must be lws's.
                    let pid = self.child.as_ref().map_or(0, std::process::Child::id);
                    if crate::common::listen::pid_listens_on(pid, port)
                        && TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
                    {
                        break;
                    }
                    if Instant::now() >= end {
                        self.kill();
                        return Err(format!("port {port} not open: {}", self.log_text()));
                    }
                    thread::sleep(Duration::from_millis(10));
                }
                let log = self.log_text();
                self.version = log
                    .split("LWS: ")
                    .nth(1)
                    .and_then(|s| s.split([',', ' ', '\n']).next())
                    .map_or("libwebsockets (version not printed)".into(), |v| {
                        format!("libwebsockets {}", v.trim_end_matches('-'))
                    });
            }
            _ => loop {
                let left = end.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(line) => {
                        if let Some(rest) = line.strip_prefix("LISTENING ") {
                            let mut words = rest.split_whitespace();
                            self.port = words.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                            self.version = words.collect::<Vec<_>>().join(" ");
                            break;
                        }
                    }
                    Err(_) => {
                        self.kill();
                        return Err(format!("no LISTENING line: {}", self.log_text()));
                    }
                }
            },
        }
        self.started_in = started.elapsed();
        Ok(())
    }

    fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn pid(&self) -> Pid {
        let child = self.child.as_ref().expect("peer process running");
        Pid::from_raw(child.id() as i32)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's stderr so far (its log), for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("server-{}.log", self.starts)))
            .unwrap_or_default()
    }

    /// SIGSTOP: the process stops; the kernel still ACKs and accepts.
    pub fn freeze(&self) {
        kill(self.pid(), Signal::SIGSTOP).expect("SIGSTOP");
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        kill(self.pid(), Signal::SIGCONT).expect("SIGCONT");
    }

    /// SIGKILL and reap: the kernel closes its sockets.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(child.id() as i32);
            let _ = kill(pid, Signal::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same server again on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after kill");
        let port = self.port;
        let deadline = Instant::now() + START_LIMIT;
        loop {
            match self.spawn(port) {
                Ok(()) => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restart on port {port} failed, retrying: {e}");
                    thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("{:?} did not restart on port {port}: {e}", self.kind),
            }
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running peer: the server process, and nginx in front of it for `NginxPython`.
pub struct Peer {
    pub kind: Kind,
    pub process: PeerProcess,
    nginx: Option<Nginx>,
}

impl Peer {
    /// Starts `kind`, or `None` (after a skip notice) when it is not installed.
    pub fn start(kind: Kind) -> Option<Peer> {
        let process = PeerProcess::start(kind)?;
        let nginx = match kind {
            Kind::NginxPython => {
                let opts = NginxOptions {
                    tls: false,
                    verify_client: false,
                };
                let Some(nginx) = Nginx::start(process.port(), opts) else {
                    eprintln!("skipped: nginx not installed");
                    return None;
                };
                Some(nginx)
            }
            _ => None,
        };
        eprintln!(
            "{}: {} on port {} (started in {:?})",
            kind.name(),
            process.version,
            process.port(),
            process.started_in
        );
        Some(Peer {
            kind,
            process,
            nginx,
        })
    }

    /// Where the client connects: the server, or nginx in front of it.
    pub fn url(&self) -> String {
        match &self.nginx {
            Some(n) => n.url(),
            None => format!("ws://127.0.0.1:{}/", self.process.port()),
        }
    }

    /// Everything the peer logged, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = self.process.log_text();
        if let Some(n) = &self.nginx {
            s.push_str("\n--- nginx error.log ---\n");
            s.push_str(&n.error_log());
        }
        s
    }
}
