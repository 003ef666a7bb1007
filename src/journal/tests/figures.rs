//! The measured figures: start-up replay time, and what a busy minute costs in bytes written
//! and fsyncs. Run with `--nocapture` to see them (lines start with `FIGURE`).

use std::fs;
use std::time::Duration;

use super::*;
use crate::journal::format::RECORD_HEADER_LEN;

#[test]
#[ignore = "a measurement: cargo test --release --lib figure_replay -- --ignored --nocapture"]
fn figure_replay_of_100000_records_of_200_bytes() {
    let dir = TempDir::new("replay");
    let (mut j, _) = open_with(&dir.journal(), SyncPolicy::Never, 1 << 30);
    let payload = Message::binary(vec![0x5A; 200]);
    for _ in 0..100_000 {
        j.append(&payload, Instant::now()).unwrap();
    }
    drop(j);
    let size = fs::metadata(dir.journal()).unwrap().len();
    // With WSBEAT_FIGURE_DROP_CACHES=1 (root), the first open reads from the disk, not the page
    // cache (this drops the whole machine's clean cache once).
    let cold = std::env::var("WSBEAT_FIGURE_DROP_CACHES").as_deref() == Ok("1")
        && fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok();
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let (_, r) = open_with(&dir.journal(), SyncPolicy::Always, 1 << 30);
        times.push(started.elapsed());
        assert_eq!(r.messages.len(), 100_000);
    }
    let best = times.iter().min().copied().unwrap_or_default();
    let first = if cold { "first (cold cache)" } else { "first" };
    println!(
        "FIGURE replay: 100000 records of 200 B ({:.1} MB file) restored in {:.0} ms (best of 3, \
         page cache warm); {first} {:.0} ms",
        size as f64 / 1e6,
        best.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
    assert!(best < Duration::from_secs(if cfg!(debug_assertions) { 10 } else { 1 }));
}

/// Simulates `minutes` at 10 messages of 200 B a second under `Every(1 s)`, acks keeping up
/// (each second, everything sent more than half a second ago), the outbox's default 1 MiB
/// limit; real files, fake clock. Returns the per-minute fsync counts and prints the figures.
fn busy_minutes(minutes: u64) -> Vec<u64> {
    let dir = TempDir::new("minute");
    let policy = SyncPolicy::Every(Duration::from_secs(1));
    let (mut j, _) = open_with(&dir.journal(), policy, 1 << 20);
    let clock = Clock::new();
    let start = j.stats();
    let payload = Message::binary(vec![0x5A; 200]);
    let (mut sent, mut per_minute, mut biggest) = (0u64, Vec::new(), 0u64);
    let mut minute_start = start.fsyncs + start.dir_fsyncs;
    for t in (0..minutes * 60_000).step_by(10) {
        let now = clock.at(t);
        if t % 100 == 0 {
            j.append(&payload, now).unwrap();
            sent += 1;
        }
        if t % 1000 == 500 {
            j.ack_through(sent - 5, now).unwrap();
        }
        if j.poll_timeout().is_some_and(|at| at <= now) {
            j.handle_timeout(now).unwrap();
        }
        biggest = biggest.max(j.disk_bytes());
        if (t + 10) % 60_000 == 0 {
            let total = j.stats().fsyncs + j.stats().dir_fsyncs;
            per_minute.push(total - minute_start);
            minute_start = total;
        }
    }
    let s = j.stats();
    let written = s.bytes_written - start.bytes_written;
    let payload_bytes = sent * 200;
    let record_bytes = sent * (200 + RECORD_HEADER_LEN as u64);
    println!(
        "FIGURE {minutes} min at 10 msg/s x 200 B, Every(1 s), acks keeping up: {written} bytes \
         written for {payload_bytes} payload bytes (x{:.3}; x{:.3} of the records' own bytes), \
         fsyncs per minute {per_minute:?} ({} file + {} directory), {} compactions, disk at most \
         {biggest} bytes",
        written as f64 / payload_bytes as f64,
        written as f64 / record_bytes as f64,
        s.fsyncs - start.fsyncs,
        s.dir_fsyncs - start.dir_fsyncs,
        s.compactions,
    );
    assert!(written as f64 / payload_bytes as f64 <= 2.0);
    per_minute
}

#[test]
fn a_busy_minute_costs_at_most_60_fsyncs_and_twice_the_bytes() {
    let per_minute = busy_minutes(1);
    assert!(per_minute[0] <= 60, "{per_minute:?}");
}

#[test]
#[ignore = "a measurement over compactions: cargo test --release --lib figure_busy -- --ignored --nocapture"]
fn figure_busy_ten_minutes() {
    let per_minute = busy_minutes(10);
    // A compaction costs two fsyncs and buys two seconds of quiet: a minute that ends on one
    // may count 61.
    assert!(per_minute.iter().all(|&n| n <= 61), "{per_minute:?}");
    assert!(per_minute.iter().sum::<u64>() <= 600 + 1, "{per_minute:?}");
}
