//! The crate's FFI: `poll(2)` on the socket, to wait for input (or room to write) until a
//! deadline, and `recv(2)`/`send(2)` with `MSG_DONTWAIT`, so that one socket can be read
//! blocking (while messages flow) and written without ever blocking.
//!
//! Why not only the socket read timeout: Linux runs `SO_RCVTIMEO` on the coarse timer wheel,
//! which rounds long timeouts up (measured here: a 1 s timeout fired 26 ms late; the rounding
//! grows to about 1/8 of the timeout, so a 20 s ping interval could slip by seconds).
//! `poll(2)` sleeps on a high-resolution timer, so the heartbeat wakes when it said it would,
//! and the dead-link verdict lands on the documented bound. It is still one wake per deadline.
//! A read timeout is used only where its rounding cannot matter (see `stream::Tcp`): while
//! messages flow, a blocking read saves the `poll(2)` call per message.
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

/// `recv(2)` that never blocks, whatever the socket's mode.
#[cfg(unix)]
pub(crate) fn recv_nonblocking(socket: &std::net::TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call, and the
        // descriptor belongs to `socket`, which is borrowed for the call.
        let n = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `send(2)` that never blocks, whatever the socket's mode, and never raises SIGPIPE.
#[cfg(unix)]
pub(crate) fn send_nonblocking(socket: &std::net::TcpStream, buf: &[u8]) -> io::Result<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const FLAGS: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const FLAGS: libc::c_int = libc::MSG_DONTWAIT;
    loop {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call, and the
        // descriptor belongs to `socket`, which is borrowed for the call.
        let n = unsafe { libc::send(socket.as_raw_fd(), buf.as_ptr().cast(), buf.len(), FLAGS) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether a socket can be read blocking and written non-blocking at once (per-call flags).
pub(crate) const PER_CALL_NONBLOCKING: bool = cfg!(unix);

/// Elsewhere the socket is switched to non-blocking mode and never read blocking.
#[cfg(not(unix))]
pub(crate) fn recv_nonblocking(socket: &std::net::TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    let mut s = socket;
    s.read(buf)
}

/// Elsewhere the socket is switched to non-blocking mode (see [`PER_CALL_NONBLOCKING`]).
#[cfg(not(unix))]
pub(crate) fn send_nonblocking(socket: &std::net::TcpStream, buf: &[u8]) -> io::Result<usize> {
    use std::io::Write;
    let mut s = socket;
    s.write(buf)
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
