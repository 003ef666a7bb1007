//! Why a journal operation failed.
#![forbid(unsafe_code)]

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// What went wrong with the journal. File *content* never causes an error (damage is skipped,
/// counted and reported in [`Restored`](super::Restored)); the file system does.
///
/// `Display` is short and lowercase and names the file; the OS error is kept as
/// [`source`](StdError::source), so `ENOSPC` and `EROFS` are told apart by
/// [`io::Error::kind`] (`StorageFull`, `ReadOnlyFilesystem`), never by message text.
#[derive(Debug)]
pub(crate) enum JournalError {
    /// Another process (or another `Journal` in this one) holds the journal's lock.
    Locked {
        /// The lock file, `PATH.lock`.
        lock: PathBuf,
    },
    /// The path exists but is not a regular file (a directory, a device, a socket).
    NotAFile {
        /// The journal path as given.
        path: PathBuf,
    },
    /// A message is larger than a record can hold ([`MAX_PAYLOAD`](super::format::MAX_PAYLOAD)).
    TooLarge {
        /// The payload length.
        len: usize,
    },
    /// A file system operation failed (full disk, read-only file system, I/O error, ...).
    Io {
        /// What was being done, e.g. `"append to"`, `"fsync"`, `"rename"`.
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl JournalError {
    /// An I/O error while doing `op` to `path`.
    pub(super) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        JournalError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The OS error kind, if this is an I/O error (`StorageFull`, `ReadOnlyFilesystem`, ...).
    #[cfg_attr(not(test), allow(dead_code))] // tests tell ENOSPC from EROFS by it
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            JournalError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

impl fmt::Display for JournalError {
    /// Short and lowercase, naming the file; the OS error's text comes last.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Locked { lock } => write!(
                f,
                "outbox journal is in use by another process (lock `{}` is held)",
                lock.display()
            ),
            JournalError::NotAFile { path } => {
                write!(
                    f,
                    "outbox journal `{}` is not a regular file",
                    path.display()
                )
            }
            JournalError::TooLarge { len } => {
                write!(
                    f,
                    "message of {len} bytes is too large for the outbox journal"
                )
            }
            JournalError::Io { op, path, source } => {
                write!(f, "cannot {op} `{}`: {source}", path.display())
            }
        }
    }
}

impl StdError for JournalError {
    /// The OS error of an I/O failure.
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            JournalError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
