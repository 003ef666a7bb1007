//! A network namespace per test, for the phases that loopback alone cannot produce: a DNS
//! server that never answers (`nameserver 127.0.0.1` in the namespace's own resolv.conf, with a
//! silent UDP socket on 127.0.0.1:53) and a TCP destination that drops every SYN (a
//! "blackhole" device). Nothing leaves the sandbox: the namespace has only `lo` and the
//! blackhole device, whose packets are dropped inside it.
//!
//! Code runs inside by re-running the current test binary under `ip netns exec`: [`run`]
//! executes `ip netns exec <ns> <this test binary> --exact <this test> --nocapture
//! --test-threads=1` with `WSBEAT_NETNS_CHILD=1`; the same `#[test]` function, seeing the
//! variable, does the inner work. The outer test fails if the child fails, prints the child's
//! figures (see [`figure`]), and kills the child after a hard limit.
//!
//! Needs root and `ip` (iproute2). Without them a test prints
//! `SKIP: <test>: needs root and ip netns (<reason>)` and passes, unless
//! `WSBEAT_REQUIRE_PEERS=1` (CI), where it fails.
//!
//! No `unsafe` here: tests/cli forbids it in this module too.

use std::fmt::Display;
use std::fs;
use std::io::{self, Read};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Set (to `1`) in the child that runs inside the namespace.
pub const CHILD_ENV: &str = "WSBEAT_NETNS_CHILD";
/// The namespace's name, in the child.
pub const NAME_ENV: &str = "WSBEAT_NETNS_NAME";
/// The test the child is to run, in the child (a check against a filter that matched nothing).
const TEST_ENV: &str = "WSBEAT_NETNS_TEST";
/// An address behind the blackhole device: a TCP connect to it is never answered.
pub const BLACKHOLE: Ipv4Addr = Ipv4Addr::new(10, 253, 0, 2);
/// The blackhole device's own address; its /24 routes [`BLACKHOLE`] into the device.
const BLACKHOLE_CIDR: &str = "10.253.0.1/24";
const BLACKHOLE_DEV: &str = "wsbh0";
/// Marks a line of the child's stdout that the outer test prints (see [`figure`]).
const FIGURE_MARK: &str = "WSBEAT_FIGURE: ";
/// The child prints this after the inner work returned.
const DONE_MARK: &str = "WSBEAT_NETNS_CHILD_DONE";

/// What the namespace gets besides `lo`.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    /// Written to `/etc/netns/<ns>/resolv.conf`, which `ip netns exec` bind-mounts over
    /// `/etc/resolv.conf`. An `nsswitch.conf` with `hosts: files dns` goes next to it, so that
    /// names are looked up in `/etc/hosts` and then at that nameserver only (never through a
    /// host daemon such as systemd-resolved, which would reach the real network).
    pub resolv_conf: Option<String>,
    /// A device that swallows everything routed to it, with `10.253.0.1/24`: a TCP connect to
    /// [`BLACKHOLE`] sends SYNs into it and is never answered.
    pub blackhole: bool,
}

/// A network namespace, deleted (with its `/etc/netns/<ns>` files) on drop.
pub struct NetNs {
    name: String,
    etc: Option<PathBuf>,
    /// The kind of device behind [`BLACKHOLE`] (`dummy`; `ifb` or `tun` on kernels without
    /// the dummy driver), if any.
    pub blackhole_kind: Option<&'static str>,
}

/// Whether this process is the child running inside a namespace.
pub fn is_child() -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == "1")
}

/// The namespace's name, in the child.
pub fn child_netns() -> Option<String> {
    if is_child() {
        std::env::var(NAME_ENV).ok()
    } else {
        None
    }
}

/// Prints a figure (a measurement line). In the child it is marked so that the outer test
/// prints it too.
pub fn figure(line: impl Display) {
    if is_child() {
        // A leading newline: libtest may have started a line of its own on stdout.
        println!("\n{FIGURE_MARK}{line}");
    } else {
        println!("{line}");
    }
}

/// Runs `inner` inside a fresh namespace made from `setup`, in a child copy of this test
/// binary that is killed after `limit`; `inner` gets the namespace's name. In the child, runs
/// `inner` directly. Skips (or fails with `WSBEAT_REQUIRE_PEERS=1`) without root and
/// `ip netns`. Call it from the `#[test]` function itself (its thread's name is the test's).
pub fn run(setup: &Setup, limit: Duration, inner: impl FnOnce(&str)) {
    let test = current_test();
    if is_child() {
        let name = std::env::var(NAME_ENV).expect("netns child: WSBEAT_NETNS_NAME unset");
        let wanted = std::env::var(TEST_ENV).unwrap_or_default();
        assert_eq!(wanted, test, "netns child: ran the wrong test");
        inner(&name);
        println!("\n{DONE_MARK}");
        return;
    }
    let Some(ns) = create_or_skip(&test, setup) else {
        return;
    };
    ns.run_test(&test, limit);
}

/// Creates a namespace, or prints the skip line and returns `None` when the machine cannot
/// (no root, no `ip`, no netns support); panics instead if `WSBEAT_REQUIRE_PEERS=1`.
pub fn create_or_skip(test: &str, setup: &Setup) -> Option<NetNs> {
    match NetNs::create(setup) {
        Ok(ns) => Some(ns),
        Err(reason) if super::nginx::peers_required() => {
            panic!("{test}: needs root and ip netns ({reason}) but WSBEAT_REQUIRE_PEERS=1")
        }
        Err(reason) => {
            eprintln!("SKIP: {test}: needs root and ip netns ({reason})");
            None
        }
    }
}

/// The running test's name, as libtest names the thread it runs a test on.
pub fn current_test() -> String {
    match thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => panic!("netns::run must be called from a #[test] thread (libtest names it)"),
    }
}

/// The effective user id, from `/proc/self/status` (no `unsafe` for `geteuid`).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Runs `ip ARGS`; `Err` carries the reason (its stderr).
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e} (install iproute2)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {} {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Deletes the namespaces (and `/etc/netns` files) of test processes that are gone: a
/// watchdog's `exit` skips `Drop`. Only names of this module's form, `wsbeat-<pid>-<n>`.
fn remove_stale() {
    let Ok(entries) = fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("wsbeat-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, n)| n.parse::<u64>().ok().and(pid.parse::<u32>().ok()))
        else {
            continue;
        };
        if pid == std::process::id() || PathBuf::from(format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = ip(&["netns", "del", &name]);
        let _ = fs::remove_dir_all(PathBuf::from("/etc/netns").join(&name));
    }
}

/// Names are unique within this process; the pid keeps parallel test binaries apart.
fn next_name() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "wsbeat-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, SeqCst)
    )
}

impl NetNs {
    /// Creates the namespace with `lo` up and what `setup` asks for. `Err`: why not.
    pub fn create(setup: &Setup) -> Result<NetNs, String> {
        match effective_uid() {
            Some(0) => {}
            Some(uid) => return Err(format!("running as uid {uid}, not root")),
            None => return Err("cannot read the uid from /proc/self/status".into()),
        }
        remove_stale();
        let name = next_name();
        ip(&["netns", "add", &name])?;
        // From here on, dropping `ns` deletes what was made.
        let mut ns = NetNs {
            name,
            etc: None,
            blackhole_kind: None,
        };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        if let Some(resolv) = &setup.resolv_conf {
            let dir = PathBuf::from("/etc/netns").join(&ns.name);
            fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
            ns.etc = Some(dir.clone());
            let write = |file: &str, text: &str| {
                fs::write(dir.join(file), text).map_err(|e| format!("write {file}: {e}"))
            };
            write("resolv.conf", resolv)?;
            write("nsswitch.conf", "hosts: files dns\n")?;
        }
        if setup.blackhole {
            ns.blackhole_kind = Some(ns.add_blackhole()?);
        }
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds the blackhole device: `dummy` where the kernel has it, else `ifb` or a `tun`
    /// device that no process reads (both drop what is sent to them, as `dummy` does).
    fn add_blackhole(&self) -> Result<&'static str, String> {
        let n = self.name.as_str();
        let kinds: [(&'static str, Vec<&str>); 3] = [
            (
                "dummy",
                vec!["-n", n, "link", "add", BLACKHOLE_DEV, "type", "dummy"],
            ),
            (
                "ifb",
                vec!["-n", n, "link", "add", BLACKHOLE_DEV, "type", "ifb"],
            ),
            (
                "tun",
                vec![
                    "-n",
                    n,
                    "tuntap",
                    "add",
                    "mode",
                    "tun",
                    "name",
                    BLACKHOLE_DEV,
                ],
            ),
        ];
        let mut errors = Vec::new();
        for (kind, args) in kinds {
            match ip(&args) {
                Ok(()) => {
                    ip(&["-n", n, "addr", "add", BLACKHOLE_CIDR, "dev", BLACKHOLE_DEV])?;
                    ip(&["-n", n, "link", "set", BLACKHOLE_DEV, "up"])?;
                    return Ok(kind);
                }
                Err(e) => errors.push(e),
            }
        }
        Err(format!("no blackhole device: {}", errors.join("; ")))
    }

    /// `ip netns exec <ns> [$CROSS_TEST_RUNNER] <program>`: a command that runs inside.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]);
        with_runner(&mut cmd, program);
        cmd
    }

    /// Runs `test` of this test binary inside the namespace (see [`run`]) and fails if it
    /// fails, does not run, or outlives `limit` (then it is killed). Prints its figures.
    pub fn run_test(&self, test: &str, limit: Duration) {
        let exe = std::env::current_exe().expect("current_exe");
        let exe = exe.to_str().expect("test binary path is UTF-8");
        let mut cmd = self.command(exe);
        cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env(NAME_ENV, &self.name)
            .env(TEST_ENV, test)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ip netns exec");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        let deadline = Instant::now() + limit;
        let status = loop {
            match child.try_wait().expect("try_wait") {
                Some(status) => break Some(status),
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                None => thread::sleep(Duration::from_millis(10)),
            }
        };
        let out = stdout.join().unwrap_or_default();
        let err = stderr.join().unwrap_or_default();
        // Figures first: a failing phase's figure says how far off it was.
        for line in out.lines() {
            if let Some(i) = line.find(FIGURE_MARK) {
                println!("{}", &line[i + FIGURE_MARK.len()..]);
            }
        }
        let dump = || format!("--- child stdout:\n{out}\n--- child stderr:\n{err}");
        let Some(status) = status else {
            panic!(
                "{test} in netns {}: killed after {limit:?}\n{}",
                self.name,
                dump()
            );
        };
        assert!(
            status.success(),
            "{test} in netns {}: child failed ({status})\n{}",
            self.name,
            dump()
        );
        assert!(
            out.lines().any(|l| l.trim() == DONE_MARK),
            "{test} in netns {}: the child did not run the test\n{}",
            self.name,
            dump()
        );
    }
}

/// Adds `[$CROSS_TEST_RUNNER] program` to `cmd` (qemu-user when cross-testing).
fn with_runner(cmd: &mut Command, program: &str) {
    let runner = std::env::var("CROSS_TEST_RUNNER").unwrap_or_default();
    cmd.args(runner.split_whitespace()).arg(program);
}

/// Reads `from` to the end on a thread; the handle gives the text.
fn collect(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Processes still inside keep the namespace alive; deleting only unmounts its name.
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("netns: {e}");
        }
        if let Some(dir) = &self.etc {
            if let Err(e) = fs::remove_dir_all(dir) {
                eprintln!("netns: remove {}: {e}", dir.display());
            }
        }
    }
}

/// A DNS server that never answers: a UDP socket on 127.0.0.1:53 (of the namespace the
/// process is in) that reads and counts queries. Stops on drop.
pub struct SilentDns {
    queries: Arc<AtomicUsize>,
    names: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentDns {
    pub fn start() -> io::Result<SilentDns> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 53))?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let queries = Arc::new(AtomicUsize::new(0));
        let names = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, n, s) = (queries.clone(), names.clone(), stop.clone());
        let thread = thread::Builder::new()
            .name("silent-dns".into())
            .spawn(move || {
                let mut buf = [0u8; 1500];
                while !s.load(SeqCst) {
                    if let Ok((len, _)) = socket.recv_from(&mut buf) {
                        q.fetch_add(1, SeqCst);
                        n.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(query_name(&buf[..len]));
                    }
                }
            })?;
        Ok(SilentDns {
            queries,
            names,
            stop,
            thread: Some(thread),
        })
    }

    /// Datagrams received so far.
    pub fn queries(&self) -> usize {
        self.queries.load(SeqCst)
    }

    /// The name asked in each query (`?` where it does not parse).
    pub fn names(&self) -> Vec<String> {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits up to `limit` for a query; whether one came.
    pub fn wait_for_query(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.queries() == 0 {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }
}

impl Drop for SilentDns {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The question name of a DNS query, dotted (`?` if it does not parse).
fn query_name(msg: &[u8]) -> String {
    let mut labels = Vec::new();
    let mut i = 12; // after the header
    while let Some(&len) = msg.get(i) {
        let len = len as usize;
        if len == 0 {
            return labels.join(".");
        }
        match msg.get(i + 1..i + 1 + len) {
            Some(label) if len < 64 => labels.push(String::from_utf8_lossy(label).into_owned()),
            _ => break,
        }
        i += 1 + len;
    }
    "?".into()
}
