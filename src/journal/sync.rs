//! When the journal calls `fsync`: the policy, and a schedule that runs on the caller's clock.
//!
//! Every fsync is flash wear and, on a busy SD card, tens of milliseconds of a blocked loop,
//! so the policy is the user's trade between them and the window of loss after a power cut:
//! - [`SyncPolicy::Always`]: `append` returns only after `fdatasync`; nothing accepted is lost.
//! - [`SyncPolicy::Every`]`(T)`: at most one fsync per `T`; a power cut loses at most the
//!   messages of the last `T` (two `T` right after a compaction, see below). The CLI's default
//!   is `Every(1 s)`.
//! - [`SyncPolicy::Never`]: the kernel writes back when it likes (about 30 s on Linux). A
//!   process crash or SIGKILL loses nothing, a power cut may lose anything not yet written back.
//!
//! Acks never ask for an fsync of their own under any policy: losing one only sends a delivered
//! message again (at-least-once allows it), and the next fsync or the kernel's write-back makes
//! it durable anyway.
//!
//! The budget: an fsync event at `t` that issued `k` fsyncs (1 for a plain sync, 2 for a
//! compaction: the new file and its directory) is followed by `k × T` without one, so over any
//! window there are at most `window / T + 1` fsyncs.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

/// When appended records are made durable with `fsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncPolicy {
    /// `fdatasync` before every `append` returns.
    Always,
    /// At most one fsync per period, as soon as the budget allows after an append.
    Every(Duration),
    /// Never: the kernel's write-back only.
    Never,
}

impl Default for SyncPolicy {
    /// `Every(1 s)`, the CLI's default: at most 60 fsyncs a minute, at most about a second of
    /// messages lost to a power cut.
    fn default() -> Self {
        SyncPolicy::Every(Duration::from_secs(1))
    }
}

/// The longest period honoured: longer ones are taken as this, so that `now + period` can
/// never overflow an `Instant` (a configuration value must not be able to cause a panic).
const MAX_PERIOD: Duration = Duration::from_secs(24 * 3600);

/// Shortest wait before retrying a failed periodic fsync, so that a failing disk (or a zero
/// period) cannot turn the caller's loop into a busy one.
const MIN_RETRY: Duration = Duration::from_secs(1);

/// The fsync schedule: which appends are not yet durable and when the next fsync may run.
#[derive(Debug)]
pub(super) struct Schedule {
    policy: SyncPolicy,
    /// When the oldest append not yet fsynced was made (`Every` only).
    dirty_since: Option<Instant>,
    /// No fsync before this instant (`Every` only): the budget of the last fsync event.
    quiet_until: Option<Instant>,
}

impl Schedule {
    /// A schedule with nothing pending.
    pub fn new(policy: SyncPolicy) -> Schedule {
        let policy = match policy {
            SyncPolicy::Every(period) => SyncPolicy::Every(period.min(MAX_PERIOD)),
            other => other,
        };
        Schedule {
            policy,
            dirty_since: None,
            quiet_until: None,
        }
    }

    /// Whether anything is ever fsynced (compactions included).
    pub fn durable(&self) -> bool {
        self.policy != SyncPolicy::Never
    }

    /// Whether `append` must fsync before it returns.
    pub fn sync_each_append(&self) -> bool {
        self.policy == SyncPolicy::Always
    }

    /// An append at `now` was written and not fsynced.
    pub fn appended(&mut self, now: Instant) {
        if let SyncPolicy::Every(_) = self.policy {
            self.dirty_since.get_or_insert(now);
        }
    }

    /// When the periodic fsync is due, if one is pending.
    pub fn sync_due(&self) -> Option<Instant> {
        self.dirty_since.map(|since| self.earliest_fsync(since))
    }

    /// The earliest instant, not before `wanted`, at which the budget allows an fsync.
    pub fn earliest_fsync(&self, wanted: Instant) -> Instant {
        match self.quiet_until {
            Some(quiet) => quiet.max(wanted),
            None => wanted,
        }
    }

    /// `fsyncs` fsyncs ran at `now` and made every append durable.
    pub fn synced(&mut self, now: Instant, fsyncs: u32) {
        self.dirty_since = None;
        if let SyncPolicy::Every(period) = self.policy {
            self.quiet_until = Some(now + period.saturating_mul(fsyncs));
        }
    }

    /// The periodic fsync failed at `now`: try again a period (at least [`MIN_RETRY`]) later.
    pub fn failed(&mut self, now: Instant) {
        if let SyncPolicy::Every(period) = self.policy {
            self.quiet_until = Some(now + period.max(MIN_RETRY));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One period.
    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn every_waits_a_period_after_the_last_fsync() {
        let t0 = Instant::now();
        let mut s = Schedule::new(SyncPolicy::Every(SEC));
        assert_eq!(s.sync_due(), None);
        s.appended(t0);
        assert_eq!(
            s.sync_due(),
            Some(t0),
            "first fsync as soon as something is written"
        );
        s.synced(t0, 1);
        s.appended(t0 + SEC / 10);
        assert_eq!(s.sync_due(), Some(t0 + SEC));
        s.synced(t0 + SEC, 2); // a compaction: two fsyncs buy two periods of quiet
        s.appended(t0 + SEC + SEC / 10);
        assert_eq!(s.sync_due(), Some(t0 + 3 * SEC));
    }

    #[test]
    fn a_quiet_journal_syncs_an_append_at_once() {
        let t0 = Instant::now();
        let mut s = Schedule::new(SyncPolicy::Every(SEC));
        s.appended(t0);
        s.synced(t0, 1);
        s.appended(t0 + 10 * SEC);
        assert_eq!(s.sync_due(), Some(t0 + 10 * SEC));
    }

    #[test]
    fn a_failed_fsync_is_retried_later_not_at_once() {
        let t0 = Instant::now();
        let mut s = Schedule::new(SyncPolicy::Every(Duration::ZERO));
        s.appended(t0);
        s.failed(t0);
        assert_eq!(s.sync_due(), Some(t0 + MIN_RETRY));
    }

    #[test]
    fn a_huge_period_is_capped_rather_than_overflowing_the_clock() {
        let t0 = Instant::now();
        let mut s = Schedule::new(SyncPolicy::Every(Duration::MAX));
        s.appended(t0);
        s.synced(t0, 2);
        s.failed(t0);
        s.appended(t0);
        assert_eq!(s.sync_due(), Some(t0 + MAX_PERIOD));
    }

    #[test]
    fn always_and_never_schedule_nothing() {
        let t0 = Instant::now();
        for policy in [SyncPolicy::Always, SyncPolicy::Never] {
            let mut s = Schedule::new(policy);
            s.appended(t0);
            assert_eq!(s.sync_due(), None);
        }
        assert!(Schedule::new(SyncPolicy::Always).sync_each_append());
        assert!(!Schedule::new(SyncPolicy::Never).durable());
    }
}
