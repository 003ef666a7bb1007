//! SIGKILL at random moments, again and again, on the same file: a child process appends
//! numbered messages with `SyncPolicy::Always` and acknowledges some, printing each step once
//! it has returned; the parent kills it after a random 0-30 ms (during start-up, an append, an
//! ack, a compaction; 0-300 ms under qemu, where start-up alone takes about 100 ms), opens the
//! journal itself and checks that every message the child
//! reported as appended and did not acknowledge is restored, in order, with its content, and
//! that start-up never failed.
//!
//! The child is this test binary run again (`--exact` this test) with [`CHILD_SEED`] set: the
//! same `#[test]` function, seeing the variable, runs the child loop instead.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use super::*;

/// Set in the child: the seed of its random choices.
const CHILD_SEED: &str = "WSBEAT_JOURNAL_CRASH_SEED";
/// Set in the child: the journal path.
const CHILD_PATH: &str = "WSBEAT_JOURNAL_CRASH_PATH";

#[test]
fn sigkill_at_random_moments_loses_no_appended_message() {
    if let (Ok(seed), Ok(path)) = (std::env::var(CHILD_SEED), std::env::var(CHILD_PATH)) {
        return child(seed.parse().unwrap_or(1), Path::new(&path));
    }
    let cycles = if under_qemu() { 100 } else { 500 };
    let figures = crash_loop(cycles, 0xC0FFEE);
    println!("{figures}");
}

#[test]
#[ignore = "about 4 minutes: cargo test --release --lib sigkill_loop_10000 -- --ignored --nocapture"]
fn sigkill_loop_10000_cycles() {
    let figures = crash_loop(10_000, 0xBADC0DE);
    println!("{figures}");
}

/// What the parent knows of the child's work across cycles.
#[derive(Default)]
struct Knowledge {
    /// Reported appended, not acknowledged: must be restored.
    must: BTreeSet<u64>,
    /// Acknowledged through this, reported done: must never come back.
    acked: u64,
    /// An ack through this was started and maybe done.
    maybe_acked: u64,
    /// The highest sequence number reported appended.
    highest: u64,
}

/// Runs `cycles` kill-and-restart cycles and returns the figures as a line.
fn crash_loop(cycles: u32, seed: u64) -> String {
    let dir = TempDir::new("crashloop");
    let path = dir.journal();
    let name = test_name(
        module_path!(),
        "sigkill_at_random_moments_loses_no_appended_message",
    );
    let mut rng = Rng::new(seed);
    let mut know = Knowledge::default();
    let started = Instant::now();
    let (mut appends, mut acks, mut compactions, mut killed_in_open) = (0u64, 0u64, 0u64, 0u32);
    let mut slowest_open = Duration::ZERO;
    let kill_window = if under_qemu() { 300_000 } else { 30_000 };
    for cycle in 0..cycles {
        let mut child = self_command(&[], &name)
            .env(CHILD_SEED, rng.next().to_string())
            .env(CHILD_PATH, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        std::thread::sleep(Duration::from_micros(rng.below(kill_window)));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "cycle {cycle}: the child ended by itself:\n{out}"
        );
        // The last line may be cut short by the kill: only whole lines count.
        let whole = out.rfind('\n').map_or("", |i| &out[..i]);
        if !whole.lines().any(|l| l.starts_with("O ")) {
            killed_in_open += 1;
        }
        for line in whole.lines() {
            let (tag, arg) = line.split_once(' ').unwrap_or((line, ""));
            let seq = arg.parse::<u64>().ok();
            match (tag, seq) {
                ("A", Some(s)) => {
                    know.must.insert(s);
                    know.highest = know.highest.max(s);
                    appends += 1;
                }
                ("k", Some(s)) => know.maybe_acked = know.maybe_acked.max(s),
                ("K", Some(s)) => {
                    know.acked = know.acked.max(s);
                    know.must.retain(|&m| m > s);
                    acks += 1;
                }
                ("C", _) => compactions += 1,
                ("E", _) => panic!("cycle {cycle}: start-up failed in the child: {line}"),
                _ => {}
            }
        }
        let opened = Instant::now();
        let (j, r) = match try_open(&path, SyncPolicy::Always, 0) {
            Ok(x) => x,
            Err(e) => panic!("cycle {cycle}: start-up failed: {e}"),
        };
        slowest_open = slowest_open.max(opened.elapsed());
        let got = seqs(&r);
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "cycle {cycle}: out of order {got:?}"
        );
        assert_contents(&r);
        assert_eq!(
            r.skipped_bytes - r.torn_tail_bytes,
            0,
            "cycle {cycle}: damage mid-file"
        );
        for &s in &got {
            assert!(
                s > know.acked,
                "cycle {cycle}: {s} was acknowledged (through {})",
                know.acked
            );
            assert!(
                s <= know.highest + 1,
                "cycle {cycle}: {s} was never appended"
            );
        }
        for &s in know.must.iter().filter(|&&s| s > know.maybe_acked) {
            assert!(
                got.contains(&s),
                "cycle {cycle}: appended {s} lost; restored {got:?}"
            );
        }
        // What was restored is what the next child starts from.
        know.must = got.iter().copied().collect();
        know.maybe_acked = know.acked;
        know.highest = know.highest.max(j.next_seq() - 1);
        drop(j);
    }
    format!(
        "FIGURE crash loop: {cycles} SIGKILL cycles in {:.1} s; {appends} appends and {acks} acks \
         reported, {compactions} compactions, {killed_in_open} kills during start-up; slowest \
         parent start-up {:.1} ms; {} messages pending at the end",
        started.elapsed().as_secs_f64(),
        slowest_open.as_secs_f64() * 1e3,
        know.must.len()
    )
}

/// The child: open, then append and acknowledge at random until killed, reporting each step
/// on stdout once it returned.
fn child(seed: u64, path: &Path) {
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let (mut j, r) = match try_open(path, SyncPolicy::Always, 0) {
        Ok(x) => x,
        Err(e) => {
            // libtest has written "test <name> ... " without a newline: start a line of our own.
            say(format!("\nE {e}"));
            std::process::exit(2);
        }
    };
    let mut live: std::collections::VecDeque<u64> = seqs(&r).into();
    say(format!("\nO {}", live.len()));
    let mut rng = Rng::new(seed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let now = Instant::now();
        let pick = rng.below(100);
        if pick < 70 || live.is_empty() {
            let seq = j.next_seq();
            match j.append(&msg(seq), now) {
                Ok(s) if s == seq => say(format!("A {s}")),
                other => panic!("append: {other:?}"),
            }
            live.push_back(seq);
        } else if pick < 90 {
            let seq = live[rng.below(live.len() as u64) as usize];
            say(format!("k {seq}"));
            j.ack_through(seq, now).unwrap();
            say(format!("K {seq}"));
            live.retain(|&s| s > seq);
        } else {
            let seq = live[0];
            say(format!("k {seq}"));
            assert_eq!(j.drop_oldest(now).unwrap(), Some(seq));
            say(format!("K {seq}"));
            live.pop_front();
        }
        if j.poll_timeout().is_some_and(|at| at <= now) {
            let before = j.stats().compactions;
            j.handle_timeout(now).unwrap();
            if j.stats().compactions > before {
                say("C".to_string());
            }
        }
    }
}
