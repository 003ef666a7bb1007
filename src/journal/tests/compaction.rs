//! Compaction: no crash at any step loses a live record, disk use stays bounded, and what is
//! written stays within twice what was appended.

use std::fs;
use std::time::Duration;

use super::*;
use crate::journal::compact::Stop;
use crate::journal::format::{HEADER_LEN, RECORD_HEADER_LEN};
use crate::journal::MIN_COMPACT;

/// Opens with the smallest threshold ([`MIN_COMPACT`]), so that compactions come often.
fn open_small(path: &Path, policy: SyncPolicy) -> (Journal, Restored) {
    open_with(path, policy, 0)
}

/// Runs `handle_timeout` for as long as something is due at `now`.
fn drive(j: &mut Journal, now: Instant) {
    for _ in 0..10 {
        match j.poll_timeout() {
            Some(at) if at <= now => j.handle_timeout(now).unwrap(),
            _ => return,
        }
    }
    panic!("handle_timeout left something due at once");
}

#[test]
fn no_crash_during_a_compaction_loses_an_unacknowledged_record() {
    for stop in [
        Stop::HalfWritten,
        Stop::Written,
        Stop::Synced,
        Stop::Renamed,
    ] {
        let dir = TempDir::new("crashstep");
        let path = dir.journal();
        let tmp = dir.path().join("outbox.wsj.compact");
        let (mut j, _) = open_small(&path, SyncPolicy::Always);
        let now = Instant::now();
        for i in 1..=200 {
            j.append(&msg(i), now).unwrap();
        }
        j.ack_through(190, now).unwrap();
        assert_eq!(j.poll_timeout(), Some(now), "compaction due");
        j.stop = Some(stop);
        let err = j.handle_timeout(now).unwrap_err();
        assert!(
            err.to_string().contains("simulated crash"),
            "{stop:?}: {err}"
        );
        assert_eq!(
            tmp.exists(),
            stop != Stop::Renamed,
            "{stop:?}: new file left behind"
        );
        drop(j); // the process dies here
        let (mut j, r) = open_small(&path, SyncPolicy::Always);
        assert_eq!(seqs(&r), (191..=200).collect::<Vec<_>>(), "{stop:?}");
        assert_contents(&r);
        assert_eq!(r.skipped_bytes, 0, "{stop:?}");
        assert!(!tmp.exists(), "{stop:?}: leftover removed at start-up");
        assert_eq!(j.append(&msg(201), now).unwrap(), 201, "{stop:?}");
    }
}

#[test]
fn a_finished_compaction_leaves_only_the_live_records() {
    let dir = TempDir::new("compact");
    let (mut j, _) = open_small(&dir.journal(), SyncPolicy::Always);
    let now = Instant::now();
    for i in 1..=200 {
        j.append(&msg(i), now).unwrap();
    }
    j.ack_through(190, now).unwrap();
    let live = j.live_bytes;
    j.handle_timeout(now).unwrap();
    assert_eq!(j.stats().compactions, 1);
    // Header, the ack that carries the sequence numbers on, and the live records.
    let expected = HEADER_LEN + RECORD_HEADER_LEN as u64 + live;
    assert_eq!(j.disk_bytes(), expected);
    assert_eq!(fs::metadata(dir.journal()).unwrap().len(), expected);
    assert_eq!(j.poll_timeout(), None);
    j.append(&msg(201), now).unwrap();
    drop(j);
    let (_, r) = open_small(&dir.journal(), SyncPolicy::Always);
    assert_eq!(seqs(&r), (191..=201).collect::<Vec<_>>());
    assert_contents(&r);
}

/// Appends `n` messages, acknowledging so that about `backlog` stay unacknowledged, and checks
/// the disk bound after every step; returns the journal and the bytes appended and acked.
fn run(path: &Path, n: u64, backlog: u64) -> (Journal, u64, u64) {
    let (mut j, _) = open_small(path, SyncPolicy::Never);
    let clock = Clock::new();
    let (mut appended, mut acks) = (0, 0);
    let max_record = (RECORD_HEADER_LEN + 45) as u64;
    for i in 1..=n {
        let now = clock.at(i * 100);
        let m = msg(i);
        j.append(&m, now).unwrap();
        appended += (RECORD_HEADER_LEN + m.len()) as u64;
        if i % 10 == 0 && i > backlog {
            j.ack_through(i - backlog, now).unwrap();
            acks += RECORD_HEADER_LEN as u64;
        }
        drive(&mut j, now);
        let live = j.live_bytes;
        let bound = HEADER_LEN + live + MIN_COMPACT.max(live) + max_record;
        assert!(
            j.disk_bytes() <= bound,
            "step {i}: {} > {bound}",
            j.disk_bytes()
        );
    }
    (j, appended, acks)
}

#[test]
fn disk_use_stays_bounded_while_acks_keep_up() {
    let dir = TempDir::new("bound");
    let (j, _, _) = run(&dir.journal(), 5000, 0);
    assert!(j.stats().compactions > 10, "{:?}", j.stats());
}

#[test]
fn disk_use_stays_bounded_with_a_backlog_larger_than_the_threshold() {
    let dir = TempDir::new("backlog");
    let (j, _, _) = run(&dir.journal(), 5000, 200);
    assert!(
        j.live_bytes > MIN_COMPACT,
        "backlog of {} bytes",
        j.live_bytes
    );
    assert!(j.stats().compactions > 3, "{:?}", j.stats());
}

#[test]
fn compaction_writes_at_most_as_much_as_was_appended() {
    for backlog in [0, 50, 200, 1000] {
        let dir = TempDir::new("amplification");
        let (j, appended, acks) = run(&dir.journal(), 5000, backlog);
        let s = j.stats();
        // Each compaction writes a header and an ack of its own.
        let overhead = HEADER_LEN + (HEADER_LEN + RECORD_HEADER_LEN as u64) * s.compactions;
        let amplification = (s.bytes_written - overhead) as f64 / (appended + acks) as f64;
        println!("backlog {backlog}: amplification {amplification:.3}, {s:?}");
        assert!(amplification <= 2.0, "backlog {backlog}: {amplification}");
    }
}

#[test]
fn a_failed_compaction_is_retried_later_not_at_once() {
    let dir = TempDir::new("retry");
    let (mut j, _) = open_small(&dir.journal(), SyncPolicy::Always);
    let clock = Clock::new();
    for i in 1..=200 {
        j.append(&msg(i), clock.at(0)).unwrap();
    }
    j.ack_through(200, clock.at(0)).unwrap();
    // Something in the way of the new file: the compaction cannot create it.
    let tmp = dir.path().join("outbox.wsj.compact");
    fs::create_dir(&tmp).unwrap();
    assert!(j.handle_timeout(clock.at(0)).is_err());
    assert_eq!(
        j.poll_timeout(),
        Some(clock.at(0) + Duration::from_secs(30))
    );
    fs::remove_dir(&tmp).unwrap();
    j.handle_timeout(clock.at(30_000)).unwrap();
    assert_eq!((j.stats().compactions, j.poll_timeout()), (1, None));
}

#[test]
fn a_leftover_compaction_file_is_removed_and_never_read() {
    let dir = TempDir::new("leftover");
    let (mut j, _) = open(&dir.journal(), SyncPolicy::Always);
    j.append(&msg(1), Instant::now()).unwrap();
    drop(j);
    let tmp = dir.path().join("outbox.wsj.compact");
    fs::write(&tmp, b"half a compaction").unwrap();
    let (_, r) = open(&dir.journal(), SyncPolicy::Always);
    assert_eq!(seqs(&r), vec![1]);
    assert!(!tmp.exists());
}
