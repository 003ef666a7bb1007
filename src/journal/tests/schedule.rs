//! The fsync schedule on a fake clock, with real files: `Every(1 s)` never fsyncs more than
//! its budget, `Always` fsyncs each append, `Never` never fsyncs, acks alone ask for nothing.

use std::time::Duration;

use super::*;

/// One `handle_timeout` that fsynced: when, and how many fsyncs (file and directory).
#[derive(Debug)]
struct FsyncEvent {
    /// Fake-clock milliseconds.
    at_ms: u64,
    /// Fsyncs issued (2 for a compaction).
    fsyncs: u64,
}

#[test]
fn every_second_fsyncs_within_its_budget_and_within_two_periods_of_an_append() {
    let dir = TempDir::new("every");
    // The smallest compaction threshold: compactions (two fsyncs each) every few seconds.
    let (mut j, _) = open_with(&dir.journal(), SyncPolicy::Every(Duration::from_secs(1)), 0);
    let clock = Clock::new();
    let total = |j: &Journal| j.stats().fsyncs + j.stats().dir_fsyncs;
    let mut events: Vec<FsyncEvent> = Vec::new();
    let mut unsynced_since: Option<u64> = None;
    let mut longest_wait = 0;
    // 120 s at 10 messages a second, acks every second; the loop wakes every 10 ms of fake time.
    for t in (0..120_000).step_by(10) {
        let now = clock.at(t);
        if t % 100 == 0 {
            j.append(&msg(t / 100 + 1), now).unwrap();
            unsynced_since.get_or_insert(t);
        }
        if t % 1000 == 500 {
            j.ack_through(t / 100 - 3, now).unwrap();
        }
        if j.poll_timeout().is_some_and(|at| at <= now) {
            let before = total(&j);
            j.handle_timeout(now).unwrap();
            if total(&j) > before {
                events.push(FsyncEvent {
                    at_ms: t,
                    fsyncs: total(&j) - before,
                });
                if let Some(since) = unsynced_since.take() {
                    longest_wait = longest_wait.max(t - since);
                }
            }
        }
    }
    assert!(j.stats().compactions >= 10, "{:?}", j.stats());
    for pair in events.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(b.at_ms >= a.at_ms + 1000 * a.fsyncs, "{a:?} then {b:?}");
    }
    let fsyncs: u64 = events.iter().map(|e| e.fsyncs).sum();
    assert!(fsyncs <= 120 + 1, "{fsyncs} fsyncs in 120 s");
    assert!(
        longest_wait <= 2000,
        "an append waited {longest_wait} ms for its fsync"
    );
    println!("Every(1 s), 120 s at 10 msg/s: {fsyncs} fsyncs ({} events, {} compactions), longest wait {longest_wait} ms", events.len(), j.stats().compactions);
}

#[test]
fn always_fsyncs_each_append_before_it_returns() {
    let dir = TempDir::new("always");
    let (mut j, _) = open(&dir.journal(), SyncPolicy::Always);
    let before = j.stats().fsyncs;
    let now = Instant::now();
    for i in 1..=5 {
        j.append(&msg(i), now).unwrap();
        assert_eq!(j.stats().fsyncs, before + i);
    }
    j.ack_through(5, now).unwrap();
    assert_eq!(
        j.stats().fsyncs,
        before + 5,
        "an ack is not fsynced on its own"
    );
    assert_eq!(j.poll_timeout(), None);
}

#[test]
fn never_fsyncs_even_when_compacting() {
    let dir = TempDir::new("never");
    let (mut j, _) = open_with(&dir.journal(), SyncPolicy::Never, 0);
    let now = Instant::now();
    for i in 1..=300 {
        j.append(&msg(i), now).unwrap();
        j.ack_through(i, now).unwrap();
        if j.poll_timeout().is_some_and(|at| at <= now) {
            j.handle_timeout(now).unwrap();
        }
    }
    let s = j.stats();
    assert!(s.compactions > 0, "{s:?}");
    assert_eq!((s.fsyncs, s.dir_fsyncs), (0, 0), "{s:?}");
}

#[test]
fn nothing_pending_means_no_timeout_and_an_ack_alone_asks_for_no_fsync() {
    let dir = TempDir::new("idle");
    let (mut j, _) = open(&dir.journal(), SyncPolicy::Every(Duration::from_secs(1)));
    let clock = Clock::new();
    assert_eq!(j.poll_timeout(), None);
    j.append(&msg(1), clock.at(0)).unwrap();
    assert_eq!(
        j.poll_timeout(),
        Some(clock.at(0)),
        "a quiet journal syncs at once"
    );
    j.handle_timeout(clock.at(0)).unwrap();
    assert_eq!(j.poll_timeout(), None);
    j.append(&msg(2), clock.at(100)).unwrap();
    assert_eq!(
        j.poll_timeout(),
        Some(clock.at(1000)),
        "then at most once a second"
    );
    j.handle_timeout(clock.at(999)).unwrap();
    assert_eq!(
        j.poll_timeout(),
        Some(clock.at(1000)),
        "not yet due: nothing done"
    );
    j.handle_timeout(clock.at(1000)).unwrap();
    j.ack_through(2, clock.at(1500)).unwrap();
    assert_eq!(j.poll_timeout(), None);
}
