//! Runs one C test case as a child process and follows its `MARK` lines, so that the Rust
//! side can act on the test server at the right moment (freeze, restart, close, drop).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use crate::cbuild::{Built, Variant};

/// A running C test case.
pub struct CaseRun {
    child: Child,
    lines: Receiver<String>,
    stderr: thread::JoinHandle<String>,
    what: String,
}

impl CaseRun {
    /// Starts `capi_test CASE PORT` in `variant`.
    pub fn start(built: &Built, variant: Variant, case: &str, port: u16) -> CaseRun {
        let mut cmd = match variant {
            Variant::Plain if built.is_cross() => {
                let mut c = Command::new(&built.runner[0]);
                c.args(&built.runner[1..]).arg(&built.plain);
                c
            }
            Variant::Plain => Command::new(&built.plain),
            Variant::Asan => {
                let mut c = Command::new(built.asan.as_ref().expect("an ASan build natively"));
                // Leak checking is on by default on Linux; say so, and fail on the first error.
                c.env("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1");
                c
            }
            Variant::Valgrind => {
                let mut c = Command::new("valgrind");
                c.args(["-q", "--leak-check=full", "--error-exitcode=1"])
                    .arg(&built.plain)
                    .env("WSBEAT_CAPI_VALGRIND", "1");
                c
            }
        };
        // Timing checks get more room where the code runs many times slower.
        let slack = match variant {
            Variant::Valgrind => 2000,
            _ if built.is_cross() => 1500,
            _ => 300,
        };
        // Heartbeat timings get longer there too (see time_scale in check.h).
        let scale = match variant {
            Variant::Valgrind => 5,
            _ if built.is_cross() => 4,
            _ => 1,
        };
        cmd.arg(case)
            .arg(port.to_string())
            .env("WSBEAT_CAPI_SLACK_MS", slack.to_string())
            .env("WSBEAT_CAPI_SCALE", scale.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = format!("C case `{case}` ({variant:?})");
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text);
            text
        });
        CaseRun {
            child,
            lines,
            stderr,
            what,
        }
    }

    /// Waits for the line `MARK <name> ...`; returns its number.
    pub fn wait_mark(&mut self, name: &str, timeout: Duration) -> i64 {
        let deadline = Instant::now() + timeout;
        let prefix = format!("MARK {name} ");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(n) = line.strip_prefix(&prefix) {
                        return n.trim().parse().unwrap_or(-1);
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    let status = self.child.wait().ok();
                    let stderr = self.stderr_text();
                    panic!(
                        "{}: no `MARK {name}` within {timeout:?} (exit {status:?}); stderr:\n{stderr}",
                        self.what
                    );
                }
            }
        }
    }

    /// Waits for the case to end; panics with its stderr unless it exited 0.
    pub fn finish(mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let status: ExitStatus = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let stderr = self.stderr_text();
                    panic!(
                        "{}: still running after {timeout:?}; stderr:\n{stderr}",
                        self.what
                    );
                }
            }
        };
        let stderr = self.stderr_text();
        assert!(
            status.success(),
            "{} failed ({status}); stderr:\n{stderr}",
            self.what
        );
    }

    fn stderr_text(&mut self) -> String {
        let handle = std::mem::replace(&mut self.stderr, thread::spawn(String::new));
        handle.join().unwrap_or_default()
    }
}

impl Drop for CaseRun {
    fn drop(&mut self) {
        // A panicking test must not leave its C process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
