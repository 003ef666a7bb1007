//! SIGINT/SIGTERM through `ctrlc` and a self-pipe, so the single I/O thread learns about a
//! signal inside the same `poll(2)` that waits for stdin and the socket.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The reading end of the self-pipe plus the count of signals seen.
pub struct Signals {
    reader: UnixStream,
    count: Arc<AtomicUsize>,
}

/// Exit status after a second signal, as a shell reports a SIGINT death.
pub const SECOND_SIGNAL_EXIT: i32 = 130;

impl Signals {
    /// Installs the handler. The first signal wakes the I/O loop for a clean close; a second
    /// one exits at once from ctrlc's thread, because the clean close may be what hangs.
    pub fn install() -> io::Result<Signals> {
        let (reader, writer) = UnixStream::pair()?;
        // Neither end may block: the handler must never wait, and the loop reads only what
        // poll(2) reported. Both are our own sockets, so no one else's file is affected.
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        ctrlc::set_handler(move || {
            if seen.fetch_add(1, Ordering::SeqCst) >= 1 {
                eprintln!("wsbeat: second signal, exiting without a clean close");
                std::process::exit(SECOND_SIGNAL_EXIT);
            }
            // A full pipe already holds a wake-up byte; nothing is lost by ignoring it.
            let _ = (&writer).write(&[1]);
        })
        .map_err(io::Error::other)?;
        Ok(Signals { reader, count })
    }

    /// The file descriptor to wait on.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.reader.as_fd()
    }

    /// Empties the pipe after poll(2) reported it readable; returns whether a signal arrived.
    pub fn drain(&mut self) -> bool {
        let mut buf = [0u8; 16];
        while let Ok(n) = self.reader.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        self.received()
    }

    /// Whether a signal has arrived (also when the byte is still in the pipe).
    pub fn received(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }
}
