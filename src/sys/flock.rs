//! `flock(2)`: the journal's exclusive advisory lock (see `src/journal/lock.rs`).
//!
//! Why not `std::fs::File::try_lock`: it is stable only since Rust 1.89, and wsbeat's
//! `rust-version` is 1.85 (clippy's `incompatible_msrv` rejects it). This is the same call.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Takes an exclusive `flock(2)` on `file` without waiting: `Ok(true)` when taken, `Ok(false)`
/// when another open file description holds it (this process's or another's).
///
/// The lock lasts until every descriptor of this open file description is closed; the kernel
/// drops it when the process dies, so a crash never leaves a stale lock behind.
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: the descriptor belongs to `file`, which is borrowed for the whole call;
        // flock takes no pointers.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}
