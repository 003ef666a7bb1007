//! SIGINT/SIGTERM through `ctrlc`: the handler (on ctrlc's own thread) counts the signal and
//! wakes the client through its [`Waker`], whose descriptor the I/O loop's `poll(2)` already
//! waits on; so a signal is noticed at once in every phase, a stalled connect included.
#![forbid(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use wsbeat::Waker;

/// The count of signals seen.
pub struct Signals {
    count: Arc<AtomicUsize>,
}

/// Exit status after a second signal, as a shell reports a SIGINT death.
pub const SECOND_SIGNAL_EXIT: i32 = 130;

impl Signals {
    /// Installs the handler. The first signal wakes the I/O loop for a clean close; a second
    /// one exits at once from ctrlc's thread, because the clean close may be what hangs.
    pub fn install(waker: Waker) -> io::Result<Signals> {
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
        Ok(Signals { count })
    }

    /// Whether a signal has arrived.
    pub fn received(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }
}
