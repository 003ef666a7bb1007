//! The TCP socket under the WebSocket: non-blocking while connecting, then never blocking
//! except for reads the driver allows to wait.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A TCP stream in two phases.
///
/// While connecting, the socket is in non-blocking mode: the proxy reply, the TLS handshake
/// and the upgrade reply are read as they arrive, in the driver's one wait, and the session
/// judges the one connect deadline. Bytes that arrived behind the proxy's reply are put back
/// ([`unread`](Tcp::unread)) and read first.
///
/// Once open, writes never block (`MSG_DONTWAIT`), and neither do reads, except inside
/// [`block_reads_until`](Tcp::block_reads_until): there a read may wait for input, but only
/// for as long as the socket's read timeout can be trusted to end before the caller's
/// deadline. The socket itself is in blocking mode for that.
pub(crate) struct Tcp {
    stream: TcpStream,
    open: bool,
    /// Bytes to read before the socket's (connect phase only).
    unread: Vec<u8>,
    /// The last write met a full socket (connect phase): wait for writability.
    write_blocked: bool,
    /// Reads may block while the read timeout surely ends before this instant.
    block_until: Option<Instant>,
    /// The next read was already judged by `block_reads_until`.
    first_read_judged: bool,
    /// `SO_RCVTIMEO` as last set here; `None`: unknown (as the connect phase left it).
    read_timeout: Option<Duration>,
}

/// The timer-wheel rounding a read timeout may suffer, beyond its 1/8: a couple of ticks at
/// the lowest common tick rate (100 Hz).
const READ_TIMEOUT_SLACK: Duration = Duration::from_millis(20);
/// Shorter read timeouts are not worth a `setsockopt`: the wait is `epoll`'s then.
const MIN_READ_TIMEOUT: Duration = Duration::from_millis(5);
/// The longest a blocking read may wait: it cannot see a [`Waker`](crate::Waker), so this
/// bounds how late a wake is noticed while messages flow (worst case with the timer's rounding:
/// about 35 ms). Waits longer than this go to `epoll`, which sees the wake at once.
pub(crate) const BLOCKING_READ_CAP: Duration = Duration::from_millis(50);

/// The latest a blocking read with read timeout `t` can return: Linux rounds the timeout up
/// on its timer wheel by at most about 1/8 (one bucket of the wheel level it lands in).
fn read_timeout_worst_case(t: Duration) -> Duration {
    t + t / 8 + READ_TIMEOUT_SLACK
}

impl Tcp {
    /// Wraps a connected socket in non-blocking mode (see [`crate::sys::connect_nonblocking`]).
    pub fn new(stream: TcpStream) -> Tcp {
        Tcp {
            stream,
            open: false,
            unread: Vec::new(),
            write_blocked: false,
            block_until: None,
            first_read_judged: false,
            read_timeout: None,
        }
    }

    pub fn socket(&self) -> &TcpStream {
        &self.stream
    }

    /// Puts `bytes` back in front of what the socket will deliver.
    pub fn unread(&mut self, mut bytes: Vec<u8>) {
        bytes.extend_from_slice(&self.unread);
        self.unread = bytes;
    }

    /// Whether the last connect-phase write met a full socket.
    pub fn write_blocked(&self) -> bool {
        self.write_blocked
    }

    /// Ends the connect phase: from now on I/O does not block (see [`Tcp`]); the socket goes
    /// to blocking mode, where only reads inside `block_reads_until` wait.
    pub fn end_connect_phase(&mut self) -> io::Result<()> {
        self.open = true;
        self.stream.set_nonblocking(false)
    }

    /// Lets reads block, each for at most the socket's read timeout, as long as that surely
    /// ends before `until`. Returns false (and changes nothing) when `until` is too close for
    /// that: the caller then waits with `poll(2)`. The read timeout is set to half of what
    /// would fit, so that the following waits (deadlines move little while messages flow)
    /// need no new `setsockopt`.
    /// `now` is the caller's recent reading of the clock (a few microseconds old at most).
    pub fn block_reads_until(&mut self, until: Instant, now: Instant) -> bool {
        if !self.open {
            return false;
        }
        let until = until.min(now + BLOCKING_READ_CAP);
        let wait = until.saturating_duration_since(now);
        // The longest t with t + t/8 + slack <= wait.
        let longest = wait.saturating_sub(READ_TIMEOUT_SLACK) * 8 / 9;
        if longest < MIN_READ_TIMEOUT {
            return false;
        }
        if self.read_timeout.is_none_or(|t| t > longest) {
            let t = (longest / 2).max(MIN_READ_TIMEOUT);
            if self.stream.set_read_timeout(Some(t)).is_err() {
                self.read_timeout = None;
                return false;
            }
            self.read_timeout = Some(t);
        }
        self.block_until = Some(until);
        self.first_read_judged = true;
        true
    }

    /// Ends [`block_reads_until`](Tcp::block_reads_until): reads no longer wait.
    pub fn stop_blocking_reads(&mut self) {
        self.block_until = None;
        self.first_read_judged = false;
    }

    /// Whether a blocking read started now surely returns before `block_until`. The first
    /// read after [`block_reads_until`](Tcp::block_reads_until) was judged there, a moment
    /// ago; later ones (the rest of a message that arrives in pieces) read the clock.
    fn read_may_block(&mut self) -> bool {
        match (self.block_until, self.read_timeout) {
            (Some(_), Some(_)) if std::mem::take(&mut self.first_read_judged) => true,
            (Some(until), Some(t)) => Instant::now() + read_timeout_worst_case(t) <= until,
            _ => false,
        }
    }
}

impl Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.open {
            if !self.unread.is_empty() {
                let n = buf.len().min(self.unread.len());
                buf[..n].copy_from_slice(&self.unread[..n]);
                self.unread.drain(..n);
                return Ok(n);
            }
            return self.stream.read(buf);
        }
        if self.read_may_block() {
            return match self.stream.read(buf) {
                // A signal ends the wait early, like the timeout (which reports WouldBlock).
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                other => other,
            };
        }
        crate::sys::recv_nonblocking(&self.stream, buf)
    }
}

impl Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.open {
            return crate::sys::send_nonblocking(&self.stream, buf);
        }
        let r = self.stream.write(buf);
        self.write_blocked = matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        r
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn open_pair() -> (Tcp, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        let mut tcp = Tcp::new(client);
        tcp.end_connect_phase().unwrap();
        (tcp, server)
    }

    #[test]
    fn an_open_socket_never_blocks_unless_allowed() {
        let (mut tcp, _server) = open_pair();
        let mut buf = [0u8; 16];
        let start = Instant::now();
        let err = tcp.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(start.elapsed() < Duration::from_millis(50));
        // Writes stop at a full socket instead of waiting (nobody reads the other end).
        let chunk = vec![0u8; 1 << 16];
        let mut total = 0usize;
        let err = loop {
            match tcp.write(&chunk) {
                Ok(n) => total += n,
                Err(e) => break e,
            }
            assert!(total < 1 << 30, "the socket never filled");
        };
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn a_deadline_too_close_for_the_read_timeout_is_refused() {
        let (mut tcp, _server) = open_pair();
        let now = Instant::now();
        assert!(!tcp.block_reads_until(now, Instant::now()));
        assert!(!tcp.block_reads_until(now + Duration::from_millis(20), Instant::now()));
        assert!(tcp.block_reads_until(now + Duration::from_secs(1), Instant::now()));
        // Half of what fits within the cap: a wake is never held up past the cap.
        let t = tcp.read_timeout.unwrap();
        assert!(read_timeout_worst_case(t) <= BLOCKING_READ_CAP, "{t:?}");
        assert!(t >= MIN_READ_TIMEOUT, "{t:?}");
    }

    #[test]
    fn a_blocking_read_ends_before_the_deadline_when_nothing_comes() {
        for wait_ms in [60u64, 400, 1500] {
            let (mut tcp, _server) = open_pair();
            let mut buf = [0u8; 16];
            let start = Instant::now();
            let until = start + Duration::from_millis(wait_ms);
            assert!(tcp.block_reads_until(until, Instant::now()));
            let timeout = tcp.read_timeout.unwrap();
            let err = tcp.read(&mut buf).unwrap_err();
            let end = Instant::now();
            tcp.stop_blocking_reads();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            // It really waited (its timeout), and the timer wheel's rounding did not carry
            // it past the deadline (the 10 ms allow for the scheduler, not for the timer).
            assert!(end - start >= timeout, "{:?} < {timeout:?}", end - start);
            assert!(
                end <= until + Duration::from_millis(10),
                "{:?}",
                end - start
            );
        }
    }

    #[test]
    fn a_blocking_read_returns_input_as_soon_as_it_arrives() {
        let (mut tcp, mut server) = open_pair();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            server.write_all(b"hello").unwrap();
            server
        });
        let start = Instant::now();
        let mut buf = [0u8; 16];
        // Each blocking read lasts at most its (capped) timeout; the input ends one early.
        let n = loop {
            assert!(tcp.block_reads_until(start + Duration::from_secs(5), Instant::now()));
            match tcp.read(&mut buf) {
                Ok(n) => break n,
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
            tcp.stop_blocking_reads();
        };
        assert_eq!(&buf[..n], b"hello");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        tcp.stop_blocking_reads();
        drop(writer.join().unwrap());
    }
}
