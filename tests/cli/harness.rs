//! Runs the built `wsbeat` binary as a child process: stdin is a pipe the test writes to,
//! stdout lines and `--events -` lines (on stderr) arrive on channels with the instant they
//! were read. The child is killed when the guard drops, also when a test fails.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::json::{self, Object};

/// Generous bound for things that should take milliseconds; only a guard against hangs.
pub const SLOW: Duration = Duration::from_secs(10);

/// The `wsbeat` command, prefixed with `$CROSS_TEST_RUNNER` (qemu) when cross-testing.
pub fn command(args: &[&str]) -> Command {
    prefixed(&[], args)
}

/// `ip netns exec NETNS wsbeat ARGS` (with `$CROSS_TEST_RUNNER` before wsbeat): the command
/// runs inside a network namespace (see `tests/common/netns.rs`). `ip` execs it, so the child's
/// pid is wsbeat's.
pub fn command_in_netns(netns: &str, args: &[&str]) -> Command {
    prefixed(&["ip", "netns", "exec", netns], args)
}

/// `PREFIX [$CROSS_TEST_RUNNER] wsbeat ARGS`.
fn prefixed(prefix: &[&str], args: &[&str]) -> Command {
    let bin = env!("CARGO_BIN_EXE_wsbeat");
    let runner = std::env::var("CROSS_TEST_RUNNER").unwrap_or_default();
    let mut words = prefix
        .iter()
        .copied()
        .chain(runner.split_whitespace())
        .chain([bin]);
    let mut cmd = Command::new(words.next().expect("a program"));
    cmd.args(words).args(args);
    cmd
}

/// A running `wsbeat`; killed on drop.
pub struct Wsbeat {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    /// Event lines as parsed, or the parse error with the line.
    events: Receiver<Result<Object, String>>,
    /// Every stderr line, for failure messages.
    stderr: Arc<Mutex<Vec<String>>>,
    /// Every event seen so far, in order.
    pub seen: Vec<Object>,
    status: Option<ExitStatus>,
}

impl Wsbeat {
    /// Starts `wsbeat --events - <args>` with piped stdin.
    pub fn spawn(args: &[&str]) -> Wsbeat {
        let mut all = vec!["--events", "-"];
        all.extend_from_slice(args);
        Wsbeat::spawn_command(command(&all))
    }

    /// Like [`spawn`](Wsbeat::spawn), with `env` added to the child's environment.
    pub fn spawn_env(env: &[(&str, &str)], args: &[&str]) -> Wsbeat {
        let mut all = vec!["--events", "-"];
        all.extend_from_slice(args);
        let mut cmd = command(&all);
        cmd.envs(env.iter().copied());
        Wsbeat::spawn_command(cmd)
    }

    /// Like [`spawn`](Wsbeat::spawn), inside network namespace `netns` (see
    /// [`command_in_netns`]).
    pub fn spawn_in_netns(netns: &str, args: &[&str]) -> Wsbeat {
        let mut all = vec!["--events", "-"];
        all.extend_from_slice(args);
        Wsbeat::spawn_command(command_in_netns(netns, &all))
    }

    /// Starts `cmd` (a wsbeat command line with `--events -`) with piped stdin.
    fn spawn_command(mut cmd: Command) -> Wsbeat {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wsbeat");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (out_tx, out_rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if out_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (ev_tx, ev_rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log_w = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("{\"event\"") {
                    // A line that does not parse fails the test in the test's own thread.
                    let parsed = json::parse(&line)
                        .map_err(|e| format!("invalid event line ({e}): {line:?}"));
                    let _ = ev_tx.send(parsed);
                }
                log_w.lock().unwrap().push(line);
            }
        });
        Wsbeat {
            child,
            stdin,
            stdout: out_rx,
            events: ev_rx,
            stderr: log,
            seen: Vec::new(),
            status: None,
        }
    }

    /// Writes `text` to the child's stdin (as is: add `\n` for a line).
    pub fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin
            .write_all(text.as_bytes())
            .expect("write to wsbeat stdin");
        stdin.flush().expect("flush wsbeat stdin");
    }

    /// Writes raw bytes to the child's stdin.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(bytes).expect("write to wsbeat stdin");
        stdin.flush().expect("flush wsbeat stdin");
    }

    /// Closes the child's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Kills the child with SIGKILL (a crash or a power cut, as far as the process can
    /// tell) and reaps it.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        self.status = self.child.wait().ok();
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `INT`) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Everything wsbeat wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The next stdout line, or a panic with the child's stderr after `timeout`.
    pub fn stdout_line(&self, timeout: Duration) -> String {
        match self.stdout.recv_timeout(timeout) {
            Ok(line) => line,
            Err(e) => panic!(
                "no stdout line within {timeout:?} ({e:?}); stderr:\n{}",
                self.stderr_text()
            ),
        }
    }

    /// Whether a stdout line arrives within `timeout`.
    pub fn stdout_line_within(&self, timeout: Duration) -> Option<String> {
        self.stdout.recv_timeout(timeout).ok()
    }

    /// Waits for the next event called `name`, keeping every event in `seen`.
    pub fn event(&mut self, name: &str, timeout: Duration) -> Object {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Err(bad)) => panic!("{bad}"),
                Ok(Ok(ev)) => {
                    self.seen.push(ev.clone());
                    if ev.name() == name {
                        return ev;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "no {name:?} event within {timeout:?}; events: {:?}\nstderr:\n{}",
                    self.seen
                        .iter()
                        .map(|e| e.name().to_string())
                        .collect::<Vec<_>>(),
                    self.stderr_text()
                ),
            }
        }
    }

    /// Collects the events still to come until the child exits (stderr closes).
    pub fn remaining_events(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Ok(ev)) => self.seen.push(ev),
                Ok(Err(bad)) => panic!("{bad}"),
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "stderr still open after {timeout:?}; stderr:\n{}",
                    self.stderr_text()
                ),
            }
        }
    }

    /// Waits for the child to exit; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.status = Some(status);
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "wsbeat did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr_text()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether the child is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// The events seen so far called `name`.
    pub fn seen_named(&self, name: &str) -> Vec<&Object> {
        self.seen.iter().filter(|e| e.name() == name).collect()
    }
}

impl Drop for Wsbeat {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs wsbeat to completion with `args`, stdin closed; returns (status, stderr).
pub fn run_to_exit(args: &[&str]) -> (ExitStatus, String) {
    let child = command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsbeat");
    let mut guard = KillOnDrop(Some(child));
    let (tx, rx) = mpsc::channel();
    let mut stderr = guard.0.as_mut().unwrap().stderr.take().expect("stderr");
    thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        let _ = tx.send(text);
    });
    let stderr = rx
        .recv_timeout(SLOW)
        .unwrap_or_else(|_| panic!("wsbeat {args:?} did not finish"));
    let status = guard.0.take().unwrap().wait().expect("wait");
    (status, stderr)
}

/// Kills a child that a failing test leaves behind.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
