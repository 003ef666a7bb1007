//! The outbox journal: every accepted message on flash until the server has proven it read it.
//!
//! With `--outbox-file PATH`, the session appends each message it accepts ([`Journal::append`],
//! fsynced per [`SyncPolicy`]), records each proof of delivery ([`Journal::ack_through`], after
//! a Pong) and, at start-up, gets back every message not proven delivered, in order
//! ([`Journal::open`]). The device may lose power at any moment, run for months, and have little
//! flash; the journal is built for that:
//!
//! - **Format** (`format`): one file, a 16-byte header (magic, version, CRC) then records of 20
//!   bytes + payload, each with its own CRC-32C (`crc`): message records (text or binary, with
//!   a sequence number) and ack records ("everything up to seq N is delivered"). Only appends,
//!   positional (`pwrite` at the known end), never a rewrite in place.
//! - **Reading** (`scan`, `open`): never panics and never refuses to start on any content. A
//!   torn tail is truncated to the last good record, damaged records are skipped (the reader
//!   finds the next good one) and counted, a file of another version or of garbage is moved to
//!   `PATH.corrupt-N` and a new journal started.
//! - **Compaction** (`compact`): when dead bytes reach `max(threshold, live bytes)`, a new file
//!   with only the live records is written, fsynced, renamed over `PATH` and the directory
//!   fsynced: no moment where a crash loses a live record. Since a compaction copies at most
//!   as much as it frees, all compactions together copy at most what was appended (acks
//!   included): write amplification is at most 2, and about 1.01 while acks keep up.
//! - **Disk bound**: `16 + live + max(threshold, live) + one record`, where `live` is the
//!   encoded size of the unacknowledged messages (the outbox's `max_bytes` plus 20 bytes per
//!   message) and `threshold = max(max_bytes, MIN_COMPACT)`: with the default 1 MiB outbox,
//!   about 2 MiB at worst, and about 1 MiB plus the live messages while acks keep up. Add what
//!   is appended between the ack that makes a compaction due and the `handle_timeout` that runs
//!   it (at most one sync period under `Every`).
//! - **Sync** (`sync`): `Always`, `Every(T)` (at most one fsync per T on average: a
//!   compaction's two fsyncs buy 2T of quiet), `Never`; acks are never fsynced on their own; the
//!   journal never reads the clock, `now` is an argument and [`Journal::poll_timeout`] says
//!   when [`Journal::handle_timeout`] must run, like the session's other timers.
//! - **Locking** (`files`): an exclusive `flock(2)` on `PATH.lock`, taken without waiting; a
//!   second process gets [`JournalError::Locked`] naming the lock file. The kernel releases it
//!   when the process dies, so a crash leaves no stale lock.
//!
//! Why not the `queue-file` crate (a port of Square's QueueFile): it rewrites a header in place
//! for every add and remove and trusts that write to be atomic (not so on flash); 1.x has no
//! checksum and refuses to open a damaged file, and 2.0 (its newest release) detects damage
//! with CRC-32 but reports it as an error rather than stepping over it; neither locks the file
//! nor offers an fsync schedule other than on or off; and it adds `snafu` or `thiserror` +
//! `crc32fast`. This module is about 1,500 lines, a quarter of them comments, with no
//! dependency beyond `libc`'s `flock` (in `sys`).
#![forbid(unsafe_code)]

mod compact;
mod crc;
mod error;
mod files;
// Crate-visible for the fuzz target (fuzz/fuzz_targets/journal.rs), which includes this module
// by path and checks restored records against their encoding.
pub(crate) mod format;
mod open;
mod scan;
mod sync;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Message;
use compact::Stop;
pub(crate) use error::JournalError;
use files::Paths;
use format::{encode_ack, encode_message, HEADER_LEN, MAX_PAYLOAD};
use scan::Entry;
use sync::Schedule;
pub(crate) use sync::SyncPolicy;

/// The smallest compaction threshold: below it, compactions (two fsyncs and a rename each)
/// would outnumber the appends they clean up after. One flash page.
pub(crate) const MIN_COMPACT: u64 = 4096;

/// Wait before retrying a compaction that failed (a full disk stays full for a while).
const COMPACT_RETRY: Duration = Duration::from_secs(30);

/// What [`Journal::open`] found in the file.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    /// The messages not yet acknowledged, in the order they were appended, with their
    /// sequence numbers.
    pub messages: Vec<(u64, Message)>,
    /// Bytes of the file that were not restored: damaged or refused records and the torn tail.
    pub skipped_bytes: u64,
    /// Of `skipped_bytes`, those after the last good record (normal after a crash), truncated.
    pub torn_tail_bytes: u64,
    /// Where a file that was not a journal of this version was moved, if one was.
    pub moved_aside: Option<PathBuf>,
}

/// Counters for tests and stats. `fsyncs` counts `fdatasync` of journal files,
/// `dir_fsyncs` those of the directory after a rename.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct JournalStats {
    /// Bytes written to journal files (records, headers, compaction copies).
    pub bytes_written: u64,
    /// `fdatasync` calls on journal files.
    pub fsyncs: u64,
    /// `fsync` calls on the directory.
    pub dir_fsyncs: u64,
    /// Compactions completed.
    pub compactions: u64,
    /// Messages restored at open.
    pub restored: u64,
}

/// A durable, append-only record of the outbox. See the module docs.
#[derive(Debug)]
pub(crate) struct Journal {
    /// The journal's path and its siblings (lock, compaction file, directory).
    paths: Paths,
    /// The journal file, read and written at explicit offsets only.
    file: File,
    /// Holds the `flock` for as long as the journal lives.
    _lock: File,
    /// Length of the good part of the file: where the next record goes.
    end: u64,
    /// Unacknowledged records, oldest first.
    live: VecDeque<Entry>,
    /// Bytes of the records in `live`.
    live_bytes: u64,
    /// The highest acknowledged sequence number (0: none).
    acked: u64,
    /// The sequence number the next append gets.
    next_seq: u64,
    /// Dead bytes that make a compaction due (when also at least the live bytes).
    compact_threshold: u64,
    /// When appends are fsynced.
    schedule: Schedule,
    /// Since when a compaction is wanted (or, after a failure, when to retry it).
    compact_due: Option<Instant>,
    /// Counters since open.
    stats: JournalStats,
    /// The record being written, kept to reuse its allocation.
    scratch: Vec<u8>,
    /// A compaction's rename whose directory fsync failed: retried with the next fsync.
    dir_unsynced: bool,
    /// Where the crash tests stop the next compaction.
    stop: Option<Stop>,
}

impl Journal {
    /// Opens (or creates) the journal at `path` and takes an exclusive advisory lock on
    /// `PATH.lock` (`flock` `LOCK_EX|LOCK_NB`: a second process gets
    /// [`JournalError::Locked`] naming the lock). Restores the unacknowledged records in order.
    ///
    /// Never panics and never refuses to start on any file content: a torn tail is truncated
    /// to the last good record, damaged records are skipped and counted in
    /// [`Restored::skipped_bytes`], and a file with another version or no recognisable header
    /// and no good record is renamed to `PATH.corrupt-N` (with a warning) and a new journal
    /// started. Errors come only from the file system (permissions, read-only, full, I/O).
    ///
    /// `max_bytes` is the outbox's byte limit; it sets the compaction threshold
    /// (`max(max_bytes, MIN_COMPACT)`) and so the disk bound (module docs).
    pub fn open(
        path: &Path,
        policy: SyncPolicy,
        max_bytes: u64,
        now: Instant,
    ) -> Result<(Journal, Restored), JournalError> {
        open::open(path, policy, max_bytes, now)
    }

    /// Appends `msg` and returns its sequence number; with [`SyncPolicy::Always`] the record is
    /// fsynced before this returns. On error nothing was appended (a partly written record is
    /// cut off again) and the journal stays usable.
    pub fn append(&mut self, msg: &Message, now: Instant) -> Result<u64, JournalError> {
        if msg.len() > MAX_PAYLOAD {
            return Err(JournalError::TooLarge { len: msg.len() });
        }
        let seq = self.next_seq;
        if seq > format::MAX_SEQ {
            // 2^63 appends: unreachable in practice, but the reader would refuse the record.
            return Err(JournalError::io(
                "append to",
                &self.paths.file,
                std::io::Error::other("sequence numbers exhausted"),
            ));
        }
        self.scratch.clear();
        encode_message(&mut self.scratch, seq, msg);
        self.write_scratch()?;
        if self.schedule.sync_each_append() {
            if let Err(e) = self.sync_file() {
                // The caller is told the message was not accepted: it must not come back
                // at the next start either.
                let _ = self.file.set_len(self.end);
                return Err(e);
            }
        }
        let len = self.scratch.len() as u64;
        self.live.push_back(Entry {
            seq,
            offset: self.end,
            len,
        });
        self.end += len;
        self.live_bytes += len;
        self.next_seq += 1;
        self.schedule.appended(now);
        Ok(seq)
    }

    /// Every record with a sequence number up to `seq` is delivered and may be forgotten.
    /// A `seq` beyond the last append counts as the last append; one already acknowledged
    /// writes nothing.
    ///
    /// The records are forgotten in memory even if writing the ack record fails (the error is
    /// still returned): a lost ack only repeats a delivered message after a restart, and the
    /// compaction it makes due writes a file without them.
    pub fn ack_through(&mut self, seq: u64, now: Instant) -> Result<(), JournalError> {
        let seq = seq.min(self.next_seq - 1);
        if seq <= self.acked {
            return Ok(());
        }
        self.scratch.clear();
        encode_ack(&mut self.scratch, seq);
        let written = self.write_scratch();
        if written.is_ok() {
            self.end += self.scratch.len() as u64;
        }
        self.acked = seq;
        while let Some(e) = self.live.front().filter(|e| e.seq <= seq) {
            self.live_bytes -= e.len;
            self.live.pop_front();
        }
        if written.is_err() || self.compaction_wanted() {
            self.compact_due.get_or_insert(now);
        }
        written
    }

    /// Drops the oldest unacknowledged record (the outbox's drop-oldest policy) and returns its
    /// sequence number, or `None` when there is none.
    ///
    /// Records only ever leave from the front, so this is `ack_through(oldest)`: one record
    /// kind serves both, and a restart cannot tell (nor needs to) a dropped message from a
    /// delivered one. Errors as for [`ack_through`](Self::ack_through).
    pub fn drop_oldest(&mut self, now: Instant) -> Result<Option<u64>, JournalError> {
        let Some(seq) = self.live.front().map(|e| e.seq) else {
            return Ok(None);
        };
        self.ack_through(seq, now).map(|()| Some(seq))
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run: the periodic fsync under
    /// `Every`, or a compaction. `None` when nothing is due. May be in the past.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let compact = self.compact_due.map(|t| self.schedule.earliest_fsync(t));
        match (self.schedule.sync_due(), compact) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the compaction or the periodic fsync if due at `now` (a compaction fsyncs
    /// everything, so it stands in for the periodic fsync). A failure is retried later, not at
    /// once: a failing disk cannot make the caller's loop spin.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), JournalError> {
        let compact_at = self.compact_due.map(|t| self.schedule.earliest_fsync(t));
        if compact_at.is_some_and(|at| at <= now) {
            return self.compact(now);
        }
        if self.schedule.sync_due().is_some_and(|at| at <= now) {
            if let Err(e) = self.sync_file() {
                self.schedule.failed(now);
                return Err(e);
            }
            self.schedule.synced(now, 1);
        }
        Ok(())
    }

    /// Bytes on disk: the journal file's length.
    #[cfg_attr(not(test), allow(dead_code))] // tests and measurements
    pub fn disk_bytes(&self) -> u64 {
        self.end
    }

    /// The sequence number the next [`append`](Self::append) will return.
    #[cfg_attr(not(test), allow(dead_code))] // tests and measurements
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The sequence number of the oldest unacknowledged record.
    pub fn oldest(&self) -> Option<u64> {
        self.live.front().map(|e| e.seq)
    }

    /// Unacknowledged messages.
    #[cfg_attr(not(test), allow(dead_code))] // tests and measurements
    pub fn pending(&self) -> usize {
        self.live.len()
    }

    /// Counters since open.
    #[cfg_attr(not(test), allow(dead_code))] // tests and measurements
    pub fn stats(&self) -> JournalStats {
        self.stats
    }

    /// Whether the dead bytes have reached `max(threshold, live bytes)`.
    fn compaction_wanted(&self) -> bool {
        let dead = self.end - HEADER_LEN - self.live_bytes.min(self.end - HEADER_LEN);
        dead >= self.compact_threshold.max(self.live_bytes)
    }

    /// Fsyncs the journal file, and the directory too if a rename is not yet durable.
    fn sync_file(&mut self) -> Result<(), JournalError> {
        self.file
            .sync_data()
            .map_err(|e| JournalError::io("fsync", &self.paths.file, e))?;
        self.stats.fsyncs += 1;
        if self.dir_unsynced {
            files::sync_dir(&self.paths)?;
            self.stats.dir_fsyncs += 1;
            self.dir_unsynced = false;
        }
        Ok(())
    }

    /// Writes `scratch` at the end of the file; on error cuts off whatever part was written.
    fn write_scratch(&mut self) -> Result<(), JournalError> {
        match self.file.write_all_at(&self.scratch, self.end) {
            Ok(()) => {
                self.stats.bytes_written += self.scratch.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.end);
                Err(JournalError::io("append to", &self.paths.file, e))
            }
        }
    }

    /// Rewrites the file with only the live records (see `compact`).
    fn compact(&mut self, now: Instant) -> Result<(), JournalError> {
        let durable = self.schedule.durable();
        let stop = self.stop.take();
        let new = compact::write_new(
            &self.paths,
            Some(&self.file),
            &self.live,
            self.acked,
            durable,
            stop,
        )
        .and_then(|new| compact::install(&self.paths).map(|()| new));
        let new = match new {
            Ok(new) => new,
            Err(e) => {
                self.compact_due = Some(now + COMPACT_RETRY);
                return Err(e);
            }
        };
        open::switch_to(self, new);
        self.compact_due = None;
        self.stats.compactions += 1;
        if stop == Some(Stop::Renamed) {
            return Err(JournalError::io(
                "compact",
                &self.paths.tmp,
                std::io::Error::other("simulated crash"),
            ));
        }
        if durable {
            // The rename must be durable before any later append is: otherwise a power cut
            // could bring back the old file, without those appends.
            if let Err(e) = files::sync_dir(&self.paths) {
                self.dir_unsynced = true;
                return Err(e);
            }
            self.stats.dir_fsyncs += 1;
            self.schedule.synced(now, 2);
        }
        Ok(())
    }
}

impl Drop for Journal {
    /// A clean shutdown under `Every` fsyncs what is still pending (best effort: errors cannot
    /// be reported from here).
    fn drop(&mut self) {
        if self.schedule.sync_due().is_some() {
            let _ = self.file.sync_data();
        }
    }
}
