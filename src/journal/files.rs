//! The journal's files beside `PATH`, and the lock that makes one process their owner.
//!
//! - `PATH`: the journal.
//! - `PATH.lock`: holds the `flock(2)`. A separate file because compaction renames a new file
//!   over `PATH`: a lock on `PATH` itself would stay on the old inode, and a second process
//!   opening `PATH` after the rename would lock the new one and share the journal. Never
//!   deleted (deleting a lock file races with a process about to lock it); it stays empty.
//!   Like any `flock`, it belongs to the open file description: a child forked while the lock
//!   is held shares it until its `exec` closes the descriptor (close-on-exec), so a journal
//!   dropped and reopened at that moment can briefly see `Locked`.
//! - `PATH.compact`: a compaction in progress; a leftover one is an interrupted compaction,
//!   removed at start-up (`PATH` is still complete then).
//! - `PATH.corrupt-N` (N = 1..=[`MAX_ASIDE`]): files that were not a journal of this version,
//!   kept for a human to look at.
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::JournalError;

/// How many moved-aside files are kept: a device with little flash must not fill up with
/// them if something keeps writing garbage to `PATH`. When all exist, the last is replaced.
pub(super) const MAX_ASIDE: u32 = 3;

/// The journal's path and its siblings.
#[derive(Clone, Debug)]
pub(super) struct Paths {
    /// The journal.
    pub file: PathBuf,
    /// The directory holding it (fsynced after a rename).
    pub dir: PathBuf,
    /// The lock file.
    pub lock: PathBuf,
    /// A compaction's new file before it is renamed over the journal.
    pub tmp: PathBuf,
}

impl Paths {
    /// The paths for a journal at `path`.
    pub fn new(path: &Path) -> Paths {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Paths {
            file: path.to_path_buf(),
            dir,
            lock: with_suffix(path, ".lock"),
            tmp: with_suffix(path, ".compact"),
        }
    }

    /// Where a file that is not a journal of this version goes.
    fn aside(&self, n: u32) -> PathBuf {
        with_suffix(&self.file, &format!(".corrupt-{n}"))
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

/// Opens (creating it if needed) and locks the lock file, without waiting.
pub(super) fn lock(paths: &Paths) -> Result<File, JournalError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&paths.lock)
        .map_err(|e| JournalError::io("open lock file", &paths.lock, e))?;
    match crate::sys::try_lock_exclusive(&file) {
        Ok(true) => Ok(file),
        Ok(false) => Err(JournalError::Locked {
            lock: paths.lock.clone(),
        }),
        Err(e) => Err(JournalError::io("lock", &paths.lock, e)),
    }
}

/// Renames the journal to the first free `PATH.corrupt-N` (the last one when all are taken)
/// and returns that name. The caller fsyncs the directory after creating the new journal.
pub(super) fn move_aside(paths: &Paths) -> Result<PathBuf, JournalError> {
    let free = (1..=MAX_ASIDE).find(|&n| {
        matches!(fs::symlink_metadata(paths.aside(n)), Err(e) if e.kind() == io::ErrorKind::NotFound)
    });
    let aside = paths.aside(free.unwrap_or(MAX_ASIDE));
    fs::rename(&paths.file, &aside).map_err(|e| JournalError::io("move aside", &paths.file, e))?;
    Ok(aside)
}

/// Removes an interrupted compaction's file, if any. Errors are ignored: the compaction that
/// needs the name truncates it anyway, and reports any error then.
pub(super) fn remove_leftover(paths: &Paths) {
    let _ = fs::remove_file(&paths.tmp);
}

/// Makes the renames in the journal's directory durable.
pub(super) fn sync_dir(paths: &Paths) -> Result<(), JournalError> {
    File::open(&paths.dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io("fsync directory", &paths.dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_are_named_after_the_journal() {
        let p = Paths::new(Path::new("/var/lib/app/outbox.wsj"));
        assert_eq!(p.dir, Path::new("/var/lib/app"));
        assert_eq!(p.lock, Path::new("/var/lib/app/outbox.wsj.lock"));
        assert_eq!(p.tmp, Path::new("/var/lib/app/outbox.wsj.compact"));
        assert_eq!(p.aside(2), Path::new("/var/lib/app/outbox.wsj.corrupt-2"));
        assert_eq!(Paths::new(Path::new("outbox")).dir, Path::new("."));
    }
}
