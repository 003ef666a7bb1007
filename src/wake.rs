//! The wake handle: lets another thread, or a signal handler's thread, end a blocked
//! [`Client::poll`](crate::Client::poll) or [`Client::run`](crate::Client::run) at once.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::sys::EventFd;

/// Shared between the client and its wakers.
#[derive(Debug)]
pub(crate) struct WakeState {
    pub fd: EventFd,
    /// Set by [`Waker::wake`], cleared by the client when it has returned to the caller: a
    /// check of it costs no system call, so the loop looks at it after every read.
    pub flag: AtomicBool,
}

/// Interrupts a blocked [`Client::poll`](crate::Client::poll) or
/// [`Client::run`](crate::Client::run) from another thread: the call returns at once (`poll`
/// with `None` if nothing else happened; `run` checks its stop flag). A wake while the client
/// is not blocked makes the next wait return at once.
///
/// `wake` is one atomic store and one `write(2)` to an eventfd: it never blocks, allocates or
/// locks, so it is fine from a thread that handles signals (ctrlc's, or one blocked in
/// `sigwait`). Cheap to clone; the client and every clone share one eventfd.
///
/// ```no_run
/// use std::time::Duration;
/// let mut client = wsbeat::Client::new(wsbeat::Config::new("ws://127.0.0.1:9000/")).unwrap();
/// let waker = client.waker();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_secs(1));
///     waker.wake();
/// });
/// let started = std::time::Instant::now();
/// while client.poll(Duration::from_secs(60)).is_some() {}
/// assert!(started.elapsed() < Duration::from_secs(2));
/// ```
#[derive(Clone, Debug)]
pub struct Waker {
    pub(crate) state: Arc<WakeState>,
}

impl Waker {
    /// Wakes the client (see [`Waker`]).
    pub fn wake(&self) {
        self.state.flag.store(true, Ordering::Release);
        self.state.fd.signal();
    }
}

impl WakeState {
    pub fn new() -> std::io::Result<WakeState> {
        Ok(WakeState {
            fd: EventFd::new()?,
            flag: AtomicBool::new(false),
        })
    }

    /// Whether a wake arrived since the last [`take`](WakeState::take).
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Consumes a wake: clears the flag and the eventfd; returns whether one had arrived.
    pub fn take(&self) -> bool {
        let drained = self.fd.drain();
        self.flag.swap(false, Ordering::AcqRel) || drained
    }
}
