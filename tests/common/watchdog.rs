//! A per-test watchdog so that no test can hang forever.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::Duration;

/// Returned by [`watchdog`]. Dropping it (including during a panic unwind)
/// disarms the watchdog.
pub struct Watchdog {
    _disarm: Sender<()>,
}

/// Start a watchdog: if the returned guard is not dropped within `limit`,
/// print `watchdog: <name> exceeded <limit>` to stderr and exit the whole
/// test process with status 101.
pub fn watchdog(limit: Duration, name: &str) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let name = name.to_string();
    thread::Builder::new()
        .name(format!("watchdog-{name}"))
        .spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("watchdog: {name} exceeded {limit:?}");
                std::process::exit(101);
            }
        })
        .expect("spawn watchdog thread");
    Watchdog { _disarm: tx }
}
