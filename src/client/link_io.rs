//! The I/O of one open link: tungstenite over the metered stream. Decisions (heartbeat,
//! stall verdict, delivery) are the session's; this only reads, writes and reports.
#![forbid(unsafe_code)]

use std::io;

use tungstenite::Message as Wire;
use tungstenite::WebSocket;

use crate::stream::{MeteredStream, Transport};
use crate::{DisconnectReason, Error};

/// Room for this many bytes of ping payloads before the buffer is reclaimed.
const PING_PAYLOAD_ROOM: usize = 64;

/// An open link's socket side. Dropped when the link ends.
pub(super) struct LinkIo {
    pub ws: WebSocket<MeteredStream>,
    /// Whether tungstenite or TLS may hold input already read from the socket (after a message
    /// was returned, or the handshake's tail): then the socket's readiness says nothing.
    maybe_buffered: bool,
    /// Messages tungstenite returned on this link (see `read_once`).
    messages_returned: u64,
    /// How many waits in a row ended because input arrived: after two, the driver waits with
    /// a blocking read instead of `epoll` + read (one system call per message, not two).
    pub waits_ended_by_input: u8,
    /// Storage for ping payloads, reused once the frames that borrowed it are gone.
    ping_payloads: bytes::BytesMut,
}

/// Counters of one link, or summed over links gone (so stats survive reconnects).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct LinkTotals {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub write_calls: u64,
}

impl LinkTotals {
    pub fn add(&mut self, other: LinkTotals) {
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.write_calls += other.write_calls;
    }
}

/// What a write did: everything went to the kernel, or the socket is full and the rest waits
/// in tungstenite's buffer until it is writable again.
pub(super) type Stalled = bool;

impl LinkIo {
    pub fn new(ws: WebSocket<MeteredStream>) -> LinkIo {
        LinkIo {
            ws,
            maybe_buffered: true,
            messages_returned: 0,
            waits_ended_by_input: 0,
            ping_payloads: bytes::BytesMut::with_capacity(PING_PAYLOAD_ROOM),
        }
    }

    /// Data frames the kernel took on this link, in all.
    pub fn frames_taken(&self) -> u64 {
        self.ws.get_ref().data_frames_out()
    }

    /// Bytes received, bytes the kernel took, and write calls, on this link.
    pub fn totals(&self) -> LinkTotals {
        let s = self.ws.get_ref();
        LinkTotals {
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            write_calls: s.write_calls,
        }
    }

    /// Whether bytes arrived since the last call.
    pub fn take_inbound(&mut self) -> bool {
        self.ws.get_mut().take_inbound()
    }

    pub fn tcp_mut(&mut self) -> &mut crate::stream::Tcp {
        self.ws.get_mut().transport_mut().tcp_mut()
    }

    /// Whether tungstenite or TLS may still hold input that the socket's readiness cannot show.
    pub fn has_buffered_input(&self) -> bool {
        self.maybe_buffered
    }

    /// Whether the socket had nothing more when the last message was read: plain TCP, nothing
    /// complete left in tungstenite, and the last `recv` came back short (the kernel's queue
    /// was empty then; later input shows as readiness, `epoll` being level-triggered). The
    /// driver then skips the `recv` that would only say "would block": one system call less
    /// per message, and per idle pong.
    pub fn socket_drained(&self) -> bool {
        !self.maybe_buffered && !is_tls(self.ws.get_ref()) && self.ws.get_ref().last_read_short()
    }

    /// Reads one message if one is complete, never waiting (unless the driver let the socket
    /// block for a bounded time, see `Tcp::block_reads_until`).
    pub fn read_once(&mut self) -> Result<Option<Wire>, DisconnectReason> {
        match self.ws.read() {
            Ok(msg) => {
                self.messages_returned += 1;
                // Plain TCP: tungstenite holds another message exactly when more complete
                // messages arrived than it returned. TLS may also hold decrypted bytes that the
                // socket cannot show, so there the next read always looks first.
                self.maybe_buffered = is_tls(self.ws.get_ref())
                    || self.ws.get_ref().messages_in() > self.messages_returned;
                Ok(Some(msg))
            }
            Err(e) if is_would_block(&e) => {
                self.maybe_buffered = false;
                // Everything complete has been consumed (a frame that made no message, such as
                // a repeated close, would otherwise leave the counts apart for good).
                self.messages_returned = self.ws.get_ref().messages_in();
                Ok(None)
            }
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Writes `msg`, never blocking, and flushes it if `flush`; otherwise the frame waits in
    /// tungstenite's buffer for company (it writes out by itself past `COALESCE_BYTES`).
    pub fn write(&mut self, msg: Wire, flush: bool) -> Result<Stalled, DisconnectReason> {
        match self.ws.write(msg) {
            Ok(()) if flush => self.flush(),
            Ok(()) => Ok(false),
            Err(e) if is_would_block(&e) => Ok(true),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Writes Ping `seq` (8 bytes, big-endian). The payload is carved from a reused buffer:
    /// once the frames of earlier pings are written and dropped, `reserve` reclaims the space,
    /// so an idle heartbeat allocates nothing.
    pub fn ping(&mut self, seq: u64) -> Result<Stalled, DisconnectReason> {
        self.ping_payloads.reserve(8);
        self.ping_payloads.extend_from_slice(&seq.to_be_bytes());
        let payload = self.ping_payloads.split().freeze();
        self.write(Wire::Ping(payload), true)
    }

    /// Flushes what tungstenite holds (a stalled write, a queued pong or close reply).
    pub fn flush(&mut self) -> Result<Stalled, DisconnectReason> {
        match self.ws.flush() {
            Ok(()) => Ok(false),
            Err(e) if is_would_block(&e) => Ok(true),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Queues our Close frame and flushes it.
    pub fn send_close(&mut self, code: u16, reason: &str) -> Result<Stalled, DisconnectReason> {
        let frame = tungstenite::protocol::CloseFrame {
            code: tungstenite::protocol::frame::coding::CloseCode::from(code),
            reason: reason.into(),
        };
        match self.ws.close(Some(frame)) {
            Ok(()) => Ok(false),
            Err(e) if is_would_block(&e) => Ok(true),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Maps a tungstenite error on an open link to why the link ended.
    fn classify(&self, e: tungstenite::Error) -> DisconnectReason {
        use tungstenite::error::ProtocolError;
        use tungstenite::Error as T;
        match e {
            // A failure of TLS itself carries the TLS library's error; a socket failure is
            // a plain OS error (see `tls::io_error`).
            #[cfg(feature = "tls")]
            T::Io(e) if is_tls(self.ws.get_ref()) && e.get_ref().is_some() => {
                DisconnectReason::Tls(crate::tls::io_error(e, false))
            }
            T::Io(e) => io_reason(e),
            T::Protocol(ProtocolError::ResetWithoutClosingHandshake)
            | T::ConnectionClosed
            | T::AlreadyClosed => io_reason(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed without a close frame",
            )),
            #[allow(unreachable_patterns)]
            T::Tls(e) => DisconnectReason::Tls(Error::Tls {
                detail: e.to_string(),
                source: None,
            }),
            other => DisconnectReason::Protocol(Error::Protocol(other)),
        }
    }
}

fn is_tls(stream: &MeteredStream) -> bool {
    match stream.transport() {
        Transport::Plain(_) => false,
        #[cfg(feature = "tls")]
        Transport::Tls(_) => true,
    }
}

fn is_would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
}

fn io_reason(e: io::Error) -> DisconnectReason {
    DisconnectReason::Io(Error::Io(e))
}
