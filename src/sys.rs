//! The one FFI call of the crate: `poll(2)` on the socket, to wait for input (or room to
//! write) until a deadline.
//!
//! Why not only the socket read timeout: Linux runs `SO_RCVTIMEO` on the coarse timer wheel,
//! which rounds long timeouts up (measured here: a 1 s timeout fired 26 ms late; the rounding
//! grows to about 1/8 of the timeout, so a 20 s ping interval could slip by seconds).
//! `poll(2)` sleeps on a high-resolution timer, so the heartbeat wakes when it said it would,
//! and the dead-link verdict lands on the documented bound. It is still one wake per deadline.
#![allow(unsafe_code)]

use std::io;
use std::time::Duration;

#[cfg(unix)]
use std::os::fd::AsRawFd;

/// What [`wait`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ready {
    /// Input, a hang-up or an error is waiting: a read will not block.
    pub readable: bool,
    /// The socket takes output again.
    pub writable: bool,
}

/// Waits until `socket` has input (or a hang-up or error to report), or, if `want_write`, can
/// take output, or `timeout` passes. A signal ends the wait early with nothing ready; the
/// caller re-judges its deadlines either way.
#[cfg(unix)]
pub(crate) fn wait(
    socket: &std::net::TcpStream,
    want_write: bool,
    timeout: Duration,
) -> io::Result<Ready> {
    let mut events = libc::POLLIN;
    if want_write {
        events |= libc::POLLOUT;
    }
    let mut fds = libc::pollfd {
        fd: socket.as_raw_fd(),
        events,
        revents: 0,
    };
    // Round up so that a wake is never before the deadline; cap to what c_int holds.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is one valid, initialised pollfd that outlives the call, and nfds is 1.
    let n = unsafe { libc::poll(&mut fds, 1, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(Ready::default())
        } else {
            Err(e)
        };
    }
    let r = fds.revents;
    Ok(Ready {
        readable: r & (libc::POLLIN | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
        writable: r & libc::POLLOUT != 0,
    })
}

/// Elsewhere: sleep out the timeout and report both ready (reads and writes then find out).
#[cfg(not(unix))]
pub(crate) fn wait(
    _socket: &std::net::TcpStream,
    _want_write: bool,
    timeout: Duration,
) -> io::Result<Ready> {
    std::thread::sleep(timeout.min(Duration::from_millis(10)));
    Ok(Ready {
        readable: true,
        writable: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::Instant;

    #[test]
    fn times_out_on_an_idle_socket_without_waking_early() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _server = listener.accept().unwrap();
        let start = Instant::now();
        assert_eq!(
            wait(&client, false, Duration::from_millis(50)).unwrap(),
            Ready::default()
        );
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn reports_input_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(b"x").unwrap();
        assert!(
            wait(&client, false, Duration::from_secs(5))
                .unwrap()
                .readable
        );
        assert!(
            wait(&client, true, Duration::from_secs(5))
                .unwrap()
                .writable
        );
    }
}
