//! The sockets of a connect attempt, and the non-blocking I/O on them that the session asks
//! for: DNS datagrams, TCP candidates, the request and reply bytes of the proxy and the
//! upgrade, the TLS handshake. Every call returns at once; readiness comes from the driver's
//! one `epoll` wait.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use crate::session::Session;
use crate::stream::{MeteredStream, Tcp, Transport};
use crate::sys::{Epoll, Interest};
use crate::Error;

/// Tokens of the driver's epoll set.
pub(super) const TOKEN_WAKE: u64 = 0;
pub(super) const TOKEN_CONN: u64 = 1;
const TOKEN_DNS: u64 = 2; // + 0 for IPv4, + 1 for IPv6
pub(super) const TOKEN_CANDIDATE: u64 = 16;

/// Largest DNS datagram read (longer ones are truncated and then ignored by the lookup).
const DATAGRAM_ROOM: usize = 4096;
/// Reply bytes read per call while connecting.
const READ_CHUNK: usize = 4096;

/// The attempt's connection once TCP is up.
enum Conn {
    Plain(Tcp),
    #[cfg(feature = "tls")]
    Handshaking(native_tls::MidHandshakeTlsStream<Tcp>),
    #[cfg(feature = "tls")]
    Tls(Box<native_tls::TlsStream<Tcp>>),
}

impl Conn {
    fn tcp(&self) -> &Tcp {
        match self {
            Conn::Plain(t) => t,
            #[cfg(feature = "tls")]
            Conn::Handshaking(m) => m.get_ref(),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => s.get_ref(),
        }
    }
}

/// Everything an attempt holds open.
#[derive(Default)]
pub(super) struct Connecting {
    dns: [Option<UdpSocket>; 2],
    candidates: Vec<(usize, TcpStream)>,
    conn: Option<Conn>,
    /// Request bytes not yet taken by the socket.
    out: Vec<u8>,
    /// The interest registered for the connection, to change it only when it changes.
    registered: Option<Interest>,
}

impl Connecting {
    /// Sends a DNS query from the socket of its family (made on first use). A failure is
    /// left to the lookup's timeout: it then tries the next server.
    pub fn send_datagram(&mut self, epoll: &Epoll, to: SocketAddr, payload: &[u8]) {
        let family = usize::from(to.is_ipv6());
        if self.dns[family].is_none() {
            let bind: SocketAddr = if to.is_ipv6() {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            };
            let Ok(socket) = UdpSocket::bind(bind) else {
                return;
            };
            if socket.set_nonblocking(true).is_err()
                || epoll
                    .add(
                        socket.as_raw_fd(),
                        TOKEN_DNS + family as u64,
                        Interest::READ,
                    )
                    .is_err()
            {
                return;
            }
            self.dns[family] = Some(socket);
        }
        if let Some(socket) = &self.dns[family] {
            if let Err(e) = socket.send_to(payload, to) {
                log::debug!("dns query to {to} not sent: {e}");
            }
        }
    }

    /// Hands every datagram waiting on DNS socket `token` to the session.
    fn read_datagrams(&mut self, token: u64, session: &mut Session, now: Instant) {
        let Some(Some(socket)) = self.dns.get((token - TOKEN_DNS) as usize) else {
            return;
        };
        let mut buf = [0u8; DATAGRAM_ROOM];
        // Bounded: a flood of datagrams cannot keep the loop here.
        for _ in 0..16 {
            match socket.recv_from(&mut buf) {
                Ok((n, from)) => session.handle_datagram(from, &buf[..n], now),
                Err(_) => return,
            }
        }
    }

    /// Starts TCP candidate `id`. An error known at once is returned (and reported by the
    /// caller); otherwise the socket reports when it is writable.
    pub fn connect(&mut self, epoll: &Epoll, id: usize, addr: SocketAddr) -> io::Result<()> {
        // Name resolution is over once addresses are tried.
        self.dns = [None, None];
        let stream = crate::sys::connect_nonblocking(&addr)?;
        epoll.add(
            stream.as_raw_fd(),
            TOKEN_CANDIDATE + id as u64,
            Interest::WRITE,
        )?;
        self.candidates.push((id, stream));
        Ok(())
    }

    /// Candidate `id` became writable: connected, or failed.
    fn candidate_ready(&mut self, id: usize, session: &mut Session, now: Instant) {
        let Some(at) = self.candidates.iter().position(|(i, _)| *i == id) else {
            return;
        };
        let result = match self.candidates[at].1.take_error() {
            Ok(None) => Ok(()),
            Ok(Some(e)) | Err(e) => Err(e),
        };
        if result.is_err() {
            self.candidates.swap_remove(at);
        }
        session.handle_tcp(id, result, now);
    }

    /// Keeps candidate `id` as the connection and closes the others.
    pub fn choose(&mut self, epoll: &Epoll, id: usize) -> io::Result<()> {
        let chosen = self
            .candidates
            .drain(..)
            .find(|(i, _)| *i == id)
            .map(|(_, s)| s)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        chosen.set_nodelay(true)?;
        // The others' descriptors left the epoll set as they closed; this one stays in it
        // under the connection's token.
        epoll.modify(chosen.as_raw_fd(), TOKEN_CONN, Interest::READ)?;
        self.registered = Some(Interest::READ);
        self.conn = Some(Conn::Plain(Tcp::new(chosen)));
        Ok(())
    }

    /// Queues request bytes for the connection.
    pub fn write(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Puts back bytes that arrived behind the proxy's reply.
    pub fn unread(&mut self, bytes: Vec<u8>) {
        if let Some(Conn::Plain(tcp)) = &mut self.conn {
            tcp.unread(bytes);
        }
    }

    /// Starts the TLS handshake on the connection.
    #[cfg(feature = "tls")]
    pub fn start_tls(
        &mut self,
        connector: &native_tls::TlsConnector,
        host: &str,
        session: &mut Session,
        now: Instant,
    ) {
        if let Some(Conn::Plain(tcp)) = self.conn.take() {
            let step = crate::tls::start(connector, host, tcp);
            self.tls_step(step, session, now);
        }
    }

    #[cfg(feature = "tls")]
    fn tls_step(&mut self, step: crate::tls::Handshake, session: &mut Session, now: Instant) {
        match step {
            crate::tls::Handshake::Done(s) => {
                self.conn = Some(Conn::Tls(Box::new(s)));
                session.handle_tls(Ok(()), now);
            }
            crate::tls::Handshake::Pending(mid) => self.conn = Some(Conn::Handshaking(mid)),
            crate::tls::Handshake::Failed(e) => session.handle_tls(Err(e), now),
        }
    }

    /// Does what the connection's readiness allows: the next handshake round, the request
    /// bytes, the reply bytes.
    fn progress(&mut self, session: &mut Session, now: Instant) {
        #[cfg(feature = "tls")]
        if let Some(Conn::Handshaking(_)) = &self.conn {
            if let Some(Conn::Handshaking(mid)) = self.conn.take() {
                self.tls_step(crate::tls::resume(mid), session, now);
            }
        }
        self.flush(session, now);
        if self.out.is_empty() {
            self.read_reply(session, now);
        }
    }

    /// Writes what the socket takes of the request.
    pub fn flush(&mut self, session: &mut Session, now: Instant) {
        while !self.out.is_empty() {
            let r = match &mut self.conn {
                Some(Conn::Plain(tcp)) => tcp.write(&self.out),
                #[cfg(feature = "tls")]
                Some(Conn::Tls(s)) => s.write(&self.out),
                _ => return,
            };
            match r {
                Ok(0) => {
                    session.handle_connect_error(None, now);
                    return;
                }
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let e = self.error(e);
                    session.handle_connect_error(Some(e), now);
                    return;
                }
            }
        }
    }

    /// Reads what has arrived of the reply.
    fn read_reply(&mut self, session: &mut Session, now: Instant) {
        let mut buf = [0u8; READ_CHUNK];
        let r = match &mut self.conn {
            Some(Conn::Plain(tcp)) => tcp.read(&mut buf),
            #[cfg(feature = "tls")]
            Some(Conn::Tls(s)) => s.read(&mut buf),
            _ => return,
        };
        match r {
            Ok(0) => session.handle_connect_error(None, now),
            Ok(n) => session.handle_connect_bytes(&buf[..n], now),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                let e = self.error(e);
                session.handle_connect_error(Some(e), now);
            }
        }
    }

    /// An I/O error on the connection: through TLS, a failure of TLS itself (by type) is the
    /// server refusing us.
    fn error(&self, e: io::Error) -> Error {
        match &self.conn {
            #[cfg(feature = "tls")]
            Some(Conn::Tls(_)) => crate::tls::io_error(e, true),
            _ => Error::Io(e),
        }
    }

    /// The readiness of `token` arrived: hand it to whatever waits on it.
    pub fn ready(&mut self, token: u64, session: &mut Session, now: Instant) {
        match token {
            TOKEN_CONN => self.progress(session, now),
            t if t >= TOKEN_CANDIDATE => {
                self.candidate_ready((t - TOKEN_CANDIDATE) as usize, session, now)
            }
            t if t >= TOKEN_DNS => self.read_datagrams(t, session, now),
            _ => {}
        }
    }

    /// Keeps the connection's epoll interest in line with what it waits for.
    pub fn update_interest(&mut self, epoll: &Epoll) {
        let Some(conn) = &self.conn else {
            return;
        };
        let want = Interest {
            read: true,
            write: !self.out.is_empty() || conn.tcp().write_blocked(),
        };
        if self.registered != Some(want) && epoll.modify(self.fd(), TOKEN_CONN, want).is_ok() {
            self.registered = Some(want);
        }
    }

    fn fd(&self) -> RawFd {
        self.conn
            .as_ref()
            .map_or(-1, |c| c.tcp().socket().as_raw_fd())
    }

    /// The connection as the link's stream, once the upgrade succeeded.
    pub fn take_stream(&mut self) -> Option<MeteredStream> {
        self.registered = None;
        let transport = match self.conn.take()? {
            Conn::Plain(tcp) => Transport::Plain(tcp),
            #[cfg(feature = "tls")]
            Conn::Tls(s) => Transport::Tls(s),
            #[cfg(feature = "tls")]
            Conn::Handshaking(_) => return None,
        };
        Some(MeteredStream::new(transport))
    }

    /// Closes everything of the attempt.
    pub fn abort(&mut self) {
        *self = Connecting::default();
    }
}
