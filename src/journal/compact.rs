//! Compaction: a new file holding only what is still needed, put in place with a rename.
//!
//! ```text
//! 1. write PATH.compact: header, ack(through the last acknowledged seq), live records
//!    (copied byte for byte from the journal, CRCs and all)
//! 2. fsync PATH.compact            (skipped under SyncPolicy::Never)
//! 3. rename PATH.compact -> PATH   (atomic: PATH is the old file or the new, never neither)
//! 4. fsync the directory           (skipped under SyncPolicy::Never)
//! ```
//! A crash before 3 leaves `PATH` whole and a stray `PATH.compact` (removed at start-up); after
//! 3 both names hold every live record. Step 2 comes before the rename so that a power cut can
//! never make the rename durable before the data (the zero-length-file-after-rename case). Step
//! 4 comes before any later append is called durable, so that a power cut cannot bring the
//! old file back after appends went to the new one.
//!
//! Why a rewrite and not segments: one file keeps the `--outbox-file PATH` contract (no
//! directory to own), and since compaction runs only when the dead bytes reach
//! `max(threshold, live)`, copying the live records at most doubles what was written.
//! The ack record at the top keeps sequence numbers growing across restarts when nothing is live.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;

use super::files::Paths;
use super::format::{encode_ack, header};
use super::scan::Entry;
use super::JournalError;

/// Bytes copied per read and write.
const COPY_CHUNK: u64 = 64 << 10;

/// Where the crash tests stop a compaction, as a power cut would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(super) enum Stop {
    /// Half of the new file written.
    HalfWritten,
    /// The new file written, not fsynced.
    Written,
    /// The new file fsynced, not renamed.
    Synced,
    /// Renamed, the directory not fsynced.
    Renamed,
}

/// A new journal file, written and (when durable) fsynced, not yet renamed.
#[derive(Debug)]
pub(super) struct Rewritten {
    /// The new file, open for reading and appending.
    pub file: File,
    /// Its length: where appends continue.
    pub end: u64,
    /// The live records at their new offsets.
    pub live: VecDeque<Entry>,
    /// Bytes written.
    pub bytes_written: u64,
    /// Whether it was fsynced.
    pub synced: bool,
}

/// Steps 1 and 2: writes `PATH.compact` with the live records of `old` (none when `old` is
/// `None`: a fresh journal). On error the new file is removed and the journal is untouched.
pub(super) fn write_new(
    paths: &Paths,
    old: Option<&File>,
    live: &VecDeque<Entry>,
    acked: u64,
    durable: bool,
    stop: Option<Stop>,
) -> Result<Rewritten, JournalError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&paths.tmp)
        .map_err(|e| JournalError::io("create", &paths.tmp, e))?;
    match fill(&file, old, live, acked, stop) {
        Ok((end, new_live)) => {
            let stopped = |at| stop == Some(at);
            if stopped(Stop::HalfWritten) || stopped(Stop::Written) {
                return Err(simulated(paths));
            }
            if durable {
                if let Err(e) = file.sync_data() {
                    let _ = fs::remove_file(&paths.tmp);
                    return Err(JournalError::io("fsync", &paths.tmp, e));
                }
            }
            if stopped(Stop::Synced) {
                return Err(simulated(paths));
            }
            Ok(Rewritten {
                file,
                end,
                live: new_live,
                bytes_written: end,
                synced: durable,
            })
        }
        Err((op, e)) => {
            let _ = fs::remove_file(&paths.tmp);
            let path = if op == "read" {
                &paths.file
            } else {
                &paths.tmp
            };
            Err(JournalError::io(op, path, e))
        }
    }
}

/// Step 3: puts the new file in place. On error the new file is removed.
pub(super) fn install(paths: &Paths) -> Result<(), JournalError> {
    fs::rename(&paths.tmp, &paths.file).map_err(|e| {
        let _ = fs::remove_file(&paths.tmp);
        JournalError::io("rename", &paths.tmp, e)
    })
}

/// The error a [`Stop`] returns, as if the process had died there.
fn simulated(paths: &Paths) -> JournalError {
    JournalError::io("compact", &paths.tmp, io::Error::other("simulated crash"))
}

/// Writes the header, the ack and the live records; returns the new length and entries, or
/// the failed operation and its error.
fn fill(
    new: &File,
    old: Option<&File>,
    live: &VecDeque<Entry>,
    acked: u64,
    stop: Option<Stop>,
) -> Result<(u64, VecDeque<Entry>), (&'static str, io::Error)> {
    let mut top = header().to_vec();
    if acked > 0 {
        encode_ack(&mut top, acked);
    }
    new.write_all_at(&top, 0).map_err(|e| ("write", e))?;
    let mut pos = top.len() as u64;
    let mut new_live = VecDeque::with_capacity(live.len());
    let mut buf = Vec::new();
    let mut i = 0;
    while let (Some(first), Some(old)) = (live.get(i), old) {
        // Live records are usually contiguous (the tail of the file): copy runs, not records.
        let mut run_end = first.offset + first.len;
        let mut j = i + 1;
        while let Some(e) = live.get(j).filter(|e| e.offset == run_end) {
            run_end += e.len;
            j += 1;
        }
        let mut from = first.offset;
        while from < run_end {
            let n = (run_end - from).min(COPY_CHUNK) as usize;
            buf.resize(n, 0);
            old.read_exact_at(&mut buf, from).map_err(|e| ("read", e))?;
            new.write_all_at(&buf, pos + (from - first.offset))
                .map_err(|e| ("write", e))?;
            from += n as u64;
        }
        for e in live.range(i..j) {
            new_live.push_back(Entry {
                offset: pos + (e.offset - first.offset),
                ..*e
            });
        }
        pos += run_end - first.offset;
        i = j;
    }
    if stop == Some(Stop::HalfWritten) {
        new.set_len(pos / 2).map_err(|e| ("truncate", e))?;
    }
    Ok((pos, new_live))
}
