//! Start-up: lock, read what the file holds, repair it, and never refuse to start because of
//! what it holds.
//!
//! | the file                                        | what happens                               |
//! |-------------------------------------------------|--------------------------------------------|
//! | missing, empty, or a prefix of a header         | a new journal                              |
//! | this version's header                           | records restored; torn tail truncated      |
//! | our magic, another version                      | moved to `PATH.corrupt-N`, a new journal   |
//! | unrecognised header, good records after it      | records restored, file rewritten           |
//! | unrecognised header, no good record (garbage)   | moved to `PATH.corrupt-N`, a new journal   |
//! | not a regular file; no permission; I/O error    | an error                                   |
//!
//! Damage between good records is skipped and counted; a file with any is rewritten at once
//! (a compaction), so the next start does not count it again. Those repairs are best effort:
//! if the rewrite fails (a full disk) the journal still opens on the file as it is.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use super::compact::{self, Rewritten};
use super::files::{self, Paths};
use super::format::{classify_header, HeaderState, HEADER_LEN};
use super::scan::{scan, Scan};
use super::sync::Schedule;
use super::{Journal, JournalError, JournalStats, Restored, SyncPolicy, MIN_COMPACT};

/// See [`Journal::open`].
pub(super) fn open(
    path: &Path,
    policy: SyncPolicy,
    max_bytes: u64,
    now: Instant,
) -> Result<(Journal, Restored), JournalError> {
    let paths = Paths::new(path);
    match fs::metadata(path) {
        Ok(m) if !m.is_file() => return Err(JournalError::NotAFile { path: paths.file }),
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(JournalError::io("inspect", path, e))
        }
        _ => {}
    }
    let lock = files::lock(&paths)?;
    files::remove_leftover(&paths);
    let mut restored = Restored::default();
    let found = read_existing(&paths, &mut restored)?;
    let schedule = Schedule::new(policy);
    let mut journal = match found {
        Some((file, scan, header_damaged)) => {
            let repair = header_damaged || scan.skipped > scan.torn_tail;
            if scan.torn_tail > 0 {
                // Appends continue at the end of the last good record, so the tail must go
                // (a later scan would otherwise resync past it onto nothing, or onto a stale
                // record the new appends only partly overwrote).
                file.set_len(scan.end)
                    .map_err(|e| JournalError::io("truncate", &paths.file, e))?;
            }
            restored.skipped_bytes = scan.skipped;
            restored.torn_tail_bytes = scan.torn_tail;
            let mut journal = assemble(paths, lock, file, &scan, schedule, max_bytes);
            restored.messages = scan.live.into_iter().map(|(e, m)| (e.seq, m)).collect();
            if repair || journal.compaction_wanted() {
                if let Err(e) = journal.compact(now) {
                    log::warn!("outbox journal: could not rewrite the damaged file: {e}");
                }
            }
            journal
        }
        None => {
            let durable = schedule.durable();
            let new = compact::write_new(&paths, None, &Default::default(), 0, durable, None)?;
            compact::install(&paths)?;
            if durable {
                files::sync_dir(&paths)?;
            }
            let mut journal =
                assemble(paths, lock, new.file, &Scan::default(), schedule, max_bytes);
            journal.end = new.end;
            journal.stats.bytes_written = new.bytes_written;
            journal.stats.fsyncs = u64::from(durable);
            journal.stats.dir_fsyncs = u64::from(durable);
            journal
        }
    };
    journal.stats.restored = restored.messages.len() as u64;
    if restored.torn_tail_bytes > 0 {
        log::info!(
            "outbox journal `{}`: cut off a torn tail of {} bytes (normal after a crash)",
            journal.paths.file.display(),
            restored.torn_tail_bytes
        );
    }
    if restored.skipped_bytes > restored.torn_tail_bytes {
        log::warn!(
            "outbox journal `{}`: skipped {} damaged bytes",
            journal.paths.file.display(),
            restored.skipped_bytes - restored.torn_tail_bytes
        );
    }
    Ok((journal, restored))
}

/// Opens and reads the existing file: `None` when a new journal must be started (no file, an
/// empty one, or one moved aside into `restored.moved_aside`).
fn read_existing(
    paths: &Paths,
    restored: &mut Restored,
) -> Result<Option<(File, Scan, bool)>, JournalError> {
    let file = match OpenOptions::new().read(true).write(true).open(&paths.file) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JournalError::io("open", &paths.file, e)),
    };
    let read_err = |e| JournalError::io("read", &paths.file, e);
    let len = file.metadata().map_err(read_err)?.len();
    let mut head = [0u8; HEADER_LEN as usize];
    let n = len.min(HEADER_LEN) as usize;
    file.read_exact_at(&mut head[..n], 0).map_err(read_err)?;
    let why = match classify_header(&head[..n]) {
        HeaderState::Empty => return Ok(None),
        HeaderState::Current => {
            let scan = scan(&file, len, HEADER_LEN).map_err(read_err)?;
            return Ok(Some((file, scan, false)));
        }
        HeaderState::OtherVersion(v) => format!("journal format version {v}"),
        HeaderState::Unrecognised => {
            // A damaged header need not cost the records behind it: look for them from the
            // first byte (the header's own bytes can never pass for a record).
            let scan = scan(&file, len, 0).map_err(read_err)?;
            if scan.records > 0 {
                return Ok(Some((file, scan, true)));
            }
            "not an outbox journal".to_string()
        }
    };
    drop(file);
    let aside = files::move_aside(paths)?;
    log::warn!(
        "outbox journal `{}`: {why}; moved to `{}`, starting empty",
        paths.file.display(),
        aside.display()
    );
    restored.moved_aside = Some(aside);
    Ok(None)
}

/// A journal on `file`, in the state `scan` found.
fn assemble(
    paths: Paths,
    lock: File,
    file: File,
    scan: &Scan,
    schedule: Schedule,
    max_bytes: u64,
) -> Journal {
    let live: std::collections::VecDeque<_> = scan.live.iter().map(|(e, _)| *e).collect();
    Journal {
        paths,
        file,
        _lock: lock,
        end: scan.end.max(HEADER_LEN),
        live_bytes: live.iter().map(|e| e.len).sum(),
        live,
        acked: scan.acked,
        next_seq: scan.last_seq.max(scan.acked) + 1,
        compact_threshold: max_bytes.max(MIN_COMPACT),
        schedule,
        compact_due: None,
        stats: JournalStats::default(),
        scratch: Vec::new(),
        dir_unsynced: false,
        stop: None,
    }
}

/// Installs a compaction's result: the caller's bookkeeping after [`compact::install`].
pub(super) fn switch_to(journal: &mut Journal, new: Rewritten) {
    journal.file = new.file;
    journal.end = new.end;
    journal.live = new.live;
    journal.stats.bytes_written += new.bytes_written;
    journal.stats.fsyncs += u64::from(new.synced);
}
