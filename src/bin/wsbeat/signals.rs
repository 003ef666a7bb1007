//! Signals, without a handler of our own (this binary has no `unsafe`):
//! - SIGINT/SIGTERM through `ctrlc`: the handler (on ctrlc's own thread) counts the signal
//!   and wakes the client through its [`Waker`], whose descriptor the I/O loop's `poll(2)`
//!   already waits on; so a signal is noticed at once in every phase, a stalled connect
//!   included.
//! - SIGUSR1 through a `signalfd`: the signal is blocked and queued on a descriptor that the
//!   I/O loop polls beside the client's, so asking for stats needs no thread and no handler.
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use wsbeat::Waker;

/// The count of termination signals seen, and the SIGUSR1 descriptor.
pub struct Signals {
    count: Arc<AtomicUsize>,
    usr1: SignalFd,
}

/// Exit status after a second signal, as a shell reports a SIGINT death.
pub const SECOND_SIGNAL_EXIT: i32 = 130;

impl Signals {
    /// Installs the handlers. The first SIGINT/SIGTERM wakes the I/O loop for a clean close; a
    /// second one exits at once from ctrlc's thread, because the clean close may be what
    /// hangs.
    ///
    /// SIGUSR1 is blocked before ctrlc starts its thread, which inherits the mask: a signal
    /// sent to the process then waits for the signalfd instead of reaching a thread where its
    /// default action would end the process. Until this runs (the first milliseconds),
    /// SIGUSR1 still has its default action, as for any program.
    pub fn install(waker: Waker) -> io::Result<Signals> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGUSR1);
        mask.thread_block().map_err(io::Error::from)?;
        let usr1 = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(io::Error::from)?;
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        ctrlc::set_handler(move || {
            if seen.fetch_add(1, Ordering::SeqCst) >= 1 {
                eprintln!("wsbeat: second signal, exiting without a clean close");
                std::process::exit(SECOND_SIGNAL_EXIT);
            }
            waker.wake();
        })
        .map_err(io::Error::other)?;
        Ok(Signals { count, usr1 })
    }

    /// Whether a termination signal has arrived.
    pub fn received(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    /// The descriptor that becomes readable when SIGUSR1 is pending.
    pub fn usr1_fd(&self) -> BorrowedFd<'_> {
        self.usr1.as_fd()
    }

    /// Consumes pending SIGUSR1s; whether there was any. Several sent before the loop looked
    /// merge into one (the kernel queues one standard signal at a time anyway).
    pub fn take_usr1(&mut self) -> bool {
        let mut any = false;
        while let Ok(Some(_)) = self.usr1.read_signal() {
            any = true;
        }
        any
    }
}
