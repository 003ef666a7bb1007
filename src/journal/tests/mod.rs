//! The journal's tests: behaviour on a fake clock with real files, damage of every kind, file
//! system errors, compaction crashes, a SIGKILL loop, and the measured figures.
//!
//! Every test works in its own directory under `std::env::temp_dir()` ([`TempDir`]), removed
//! when the test ends.

mod compaction;
mod crash_loop;
mod damage;
mod figures;
mod fs_errors;
mod roundtrip;
mod schedule;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{Journal, JournalError, Restored, SyncPolicy};
use crate::Message;

/// A unique directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory whose name contains `name`, the process id and a counter.
    pub fn new(name: &str) -> TempDir {
        /// Directories made so far by this process.
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("wsbeat-journal-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The journal path inside it.
    pub fn journal(&self) -> PathBuf {
        self.0.join("outbox.wsj")
    }
}

impl Drop for TempDir {
    /// Removes the directory and everything in it.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fake clock: `at(ms)` is a fixed origin plus `ms` milliseconds.
#[derive(Clone, Copy)]
pub(super) struct Clock(Instant);

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Clock {
        Clock(Instant::now())
    }
    /// The origin plus `ms` milliseconds.
    pub fn at(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

/// The message the tests append as number `i`: text for odd numbers, binary for even ones,
/// lengths varying from 0 up, contents derived from `i` (so a restored one can be checked).
pub(super) fn msg(i: u64) -> Message {
    let len = (i % 41 * 7 % 41) as usize;
    if i % 2 == 1 {
        let mut s = format!("m{i}:");
        s.extend((0..len).map(|k| char::from(b'a' + ((i as usize).wrapping_add(k) % 26) as u8)));
        Message::text(s)
    } else {
        let base = (i as usize).wrapping_mul(31);
        Message::binary(
            (0..len)
                .map(|k| base.wrapping_add(k) as u8)
                .collect::<Vec<u8>>(),
        )
    }
}

/// Opens the journal at `path` (1 MiB outbox limit) or fails the test.
pub(super) fn open(path: &Path, policy: SyncPolicy) -> (Journal, Restored) {
    open_with(path, policy, 1 << 20)
}

/// Opens the journal at `path` with the outbox limit `max_bytes`, or fails the test.
pub(super) fn open_with(path: &Path, policy: SyncPolicy, max_bytes: u64) -> (Journal, Restored) {
    match try_open(path, policy, max_bytes) {
        Ok(opened) => opened,
        Err(e) => panic!("open {}: {e}", path.display()),
    }
}

/// [`Journal::open`], retrying `Locked` for up to a second.
///
/// Why: other tests in this binary spawn processes, and a `flock` belongs to the open file
/// description, which a fork shares until the child's `exec` closes it (close-on-exec): for
/// that moment a just-closed journal still looks locked. A real device restarts a dead process,
/// which holds nothing.
pub(super) fn try_open(
    path: &Path,
    policy: SyncPolicy,
    max_bytes: u64,
) -> Result<(Journal, Restored), JournalError> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match Journal::open(path, policy, max_bytes, Instant::now()) {
            Err(JournalError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            other => return other,
        }
    }
}

/// The sequence numbers of what was restored.
pub(super) fn seqs(r: &Restored) -> Vec<u64> {
    r.messages.iter().map(|(s, _)| *s).collect()
}

/// Asserts that every restored message is `msg(seq)` for its sequence number.
pub(super) fn assert_contents(r: &Restored) {
    for (seq, m) in &r.messages {
        assert_eq!(m, &msg(*seq), "content of restored message {seq}");
    }
}

/// A seeded xorshift for tests that pick offsets and timings.
pub(super) struct Rng(u64);

impl Rng {
    /// A generator from `seed` (never stuck at zero).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A command that runs `test` (a path like `journal::tests::x::y`) of this test binary alone,
/// prefixed with `$CROSS_TEST_RUNNER` (qemu-user) when cross-testing: without binfmt_misc the
/// kernel cannot exec an ARM binary itself. `prefix` goes first (e.g. `unshare ...`).
pub(super) fn self_command(prefix: &[&str], test: &str) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let runner = std::env::var("CROSS_TEST_RUNNER").unwrap_or_default();
    let mut words = prefix.iter().copied().chain(runner.split_whitespace());
    let mut cmd = match words.next() {
        Some(first) => {
            let mut c = Command::new(first);
            c.args(words).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    cmd
}

/// Whether the tests run under qemu-user (cross tests): long loops run fewer rounds there.
pub(super) fn under_qemu() -> bool {
    std::env::var_os("CROSS_TEST_RUNNER").is_some()
}

/// The libtest name of test `name` in the module whose `module_path!()` is `module`.
pub(super) fn test_name(module: &str, name: &str) -> String {
    let path = module.split_once("::").map_or(module, |(_, rest)| rest);
    format!("{path}::{name}")
}
