//! One open connection: its socket, heartbeat and write bookkeeping.
#![forbid(unsafe_code)]

use std::io;
use std::time::{Duration, Instant};

use tungstenite::Message as Wire;
use tungstenite::WebSocket;

use crate::heartbeat::Heartbeat;
use crate::stream::MeteredStream;
use crate::{DisconnectReason, Error};

/// Room for this many bytes of ping payloads before the buffer is reclaimed.
const PING_PAYLOAD_ROOM: usize = 64;

/// An open link. Dropped when it ends, so nothing of it can leak into the next one.
pub(crate) struct Link {
    pub ws: WebSocket<MeteredStream>,
    pub heartbeat: Heartbeat,
    /// Set at connect: the outbox waits until the application has seen `Connected` and had its
    /// chance to send a hello or auth message.
    pub hold_outbox: bool,
    /// Since when a write has made no progress (the server is not reading).
    pub stalled_since: Option<Instant>,
    /// `bytes_out` when the stall was last checked: more since then is progress.
    bytes_out_at_stall: u64,
    /// A failure met outside `poll` (in `send`), handled at the next `poll`.
    pub broken: Option<DisconnectReason>,
    /// Data messages proven read by the server (by a pong to a later ping).
    pub confirmed: u64,
    /// Whether tungstenite or TLS may hold input already read from the socket (after a message
    /// was returned, or the handshake's tail): then the socket's readiness says nothing.
    maybe_buffered: bool,
    /// Messages tungstenite returned on this link (see `read_once`).
    messages_returned: u64,
    /// How many waits in a row ended because input arrived (see `read`).
    waits_ended_by_input: u8,
    /// Storage for ping payloads, reused once the frames that borrowed it are gone.
    ping_payloads: bytes::BytesMut,
    /// Data frames the kernel took, as already reported to the outbox.
    kernel_frames_seen: u64,
    write_timeout: Duration,
}

impl Link {
    pub fn new(
        ws: WebSocket<MeteredStream>,
        heartbeat: Heartbeat,
        write_timeout: Duration,
    ) -> Link {
        Link {
            ws,
            heartbeat,
            hold_outbox: true,
            stalled_since: None,
            bytes_out_at_stall: 0,
            broken: None,
            confirmed: 0,
            maybe_buffered: true,
            messages_returned: 0,
            waits_ended_by_input: 0,
            ping_payloads: bytes::BytesMut::with_capacity(PING_PAYLOAD_ROOM),
            kernel_frames_seen: 0,
            write_timeout,
        }
    }

    /// The payload of ping `seq` (8 bytes, big-endian). Carved from a reused buffer: once the
    /// frames of earlier pings are written and dropped, `reserve` reclaims the space, so an idle
    /// heartbeat allocates nothing.
    pub fn ping_payload(&mut self, seq: u64) -> bytes::Bytes {
        self.ping_payloads.reserve(8);
        self.ping_payloads.extend_from_slice(&seq.to_be_bytes());
        self.ping_payloads.split().freeze()
    }

    /// Data frames the kernel took since the last call.
    pub fn newly_taken_by_kernel(&mut self) -> u64 {
        let total = self.ws.get_ref().data_frames_out();
        let new = total - self.kernel_frames_seen;
        self.kernel_frames_seen = total;
        new
    }

    /// Data frames the kernel took on this link, in all.
    pub fn taken_by_kernel(&self) -> u64 {
        self.ws.get_ref().data_frames_out()
    }

    /// Tells the heartbeat that bytes arrived, if they did since the last call.
    pub fn note_inbound(&mut self) {
        if self.ws.get_mut().take_inbound() {
            self.heartbeat.on_inbound(Instant::now());
        }
    }

    /// Reads one message, waiting at most until `until` (if that has passed: only what is
    /// already buffered). `Ok(None)` means nothing arrived in time, or the socket takes output
    /// again after a stall (the caller then retries its writes).
    pub fn read(&mut self, until: Instant) -> Result<Option<Wire>, DisconnectReason> {
        let now = Instant::now();
        let zero = until <= now;
        // First what is already buffered, without waiting.
        if self.maybe_buffered || zero {
            if let Some(msg) = self.read_once()? {
                return Ok(Some(msg));
            }
            if zero {
                return Ok(None);
            }
        }
        // While messages keep coming, a blocking read waits for the next one: one system call
        // instead of `poll(2)` and then `recv(2)`. Its timeout is coarse, so it is used only
        // where it surely ends before `until`; after it times out, `poll(2)` takes the rest.
        // An idle link alternates a timeout (its ping) and a pong, so it never gets here and
        // still wakes once per deadline.
        if self.waits_ended_by_input >= 2
            && !self.is_stalled()
            && self.tcp_mut().block_reads_until(until)
        {
            let result = self.read_once();
            self.tcp_mut().stop_blocking_reads();
            if !matches!(result, Ok(Some(_))) {
                self.waits_ended_by_input = 0;
            }
            return result;
        }
        // Sleep until input, room to write (when stalled) or the deadline.
        let socket = self.ws.get_ref().transport().tcp();
        let wait = until.saturating_duration_since(now);
        let ready = crate::sys::wait(socket, self.is_stalled(), wait).map_err(io_reason)?;
        if ready.readable {
            self.waits_ended_by_input = self.waits_ended_by_input.saturating_add(1);
            self.read_once()
        } else {
            self.waits_ended_by_input = 0;
            Ok(None)
        }
    }

    fn tcp_mut(&mut self) -> &mut crate::stream::Tcp {
        self.ws.get_mut().transport_mut().tcp_mut()
    }

    /// Whether tungstenite or TLS may still hold input that the socket's readiness cannot show.
    pub fn has_buffered_input(&self) -> bool {
        self.maybe_buffered
    }

    fn read_once(&mut self) -> Result<Option<Wire>, DisconnectReason> {
        let result = self.ws.read();
        self.note_inbound();
        match result {
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

    /// Writes `msg` and flushes it, never blocking: what the kernel cannot take now stays in
    /// tungstenite's buffer and the link is stalled until the socket takes output again.
    pub fn write(&mut self, msg: Wire) -> Result<(), DisconnectReason> {
        match self.ws.write(msg) {
            Ok(()) => self.flush(),
            Err(e) if is_would_block(&e) => self.stalled(),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Flushes what tungstenite holds (a stalled write, a queued pong or close reply).
    pub fn flush(&mut self) -> Result<(), DisconnectReason> {
        match self.ws.flush() {
            Ok(()) => {
                self.stalled_since = None;
                Ok(())
            }
            Err(e) if is_would_block(&e) => self.stalled(),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Queues a Close frame and flushes it.
    pub fn send_close(
        &mut self,
        frame: tungstenite::protocol::CloseFrame,
    ) -> Result<(), DisconnectReason> {
        match self.ws.close(Some(frame)) {
            Ok(()) => {
                self.stalled_since = None;
                Ok(())
            }
            Err(e) if is_would_block(&e) => self.stalled(),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Whether a write is waiting for the socket to take output.
    pub fn is_stalled(&self) -> bool {
        self.stalled_since.is_some()
    }

    /// When a stalled write times out, if one is stalled.
    pub fn stall_deadline(&self) -> Option<Instant> {
        self.stalled_since.map(|since| since + self.write_timeout)
    }

    /// The write-timeout verdict: a write without progress for `write_timeout` means the server
    /// is not reading, a dead link.
    pub fn check_stall(&self, now: Instant) -> Result<(), DisconnectReason> {
        match self.stall_deadline() {
            Some(deadline) if now >= deadline => {
                let e = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "write made no progress for {} ms: the server is not reading",
                        self.write_timeout.as_millis()
                    ),
                );
                Err(DisconnectReason::Io(Error::Io(e)))
            }
            _ => Ok(()),
        }
    }

    /// A write could not finish: the stall counts from the last progress the kernel made. That
    /// progress is seen here, in the same call as the write that made it (a flush writes what
    /// the kernel takes, then meets `WouldBlock`), so "now" is its time.
    fn stalled(&mut self) -> Result<(), DisconnectReason> {
        let now = Instant::now();
        let bytes_out = self.ws.get_ref().bytes_out;
        let since = match self.stalled_since {
            Some(since) if bytes_out == self.bytes_out_at_stall => since,
            _ => now,
        };
        self.bytes_out_at_stall = bytes_out;
        self.stalled_since = Some(since);
        self.check_stall(now)
    }

    /// Maps a tungstenite error on an open link to why the link ended.
    pub fn classify(&self, e: tungstenite::Error) -> DisconnectReason {
        use tungstenite::error::ProtocolError;
        use tungstenite::Error as T;
        let tls = is_tls(self.ws.get_ref());
        match e {
            T::Io(e)
                if tls && matches!(e.kind(), io::ErrorKind::Other | io::ErrorKind::InvalidData) =>
            {
                DisconnectReason::Tls(Error::Tls {
                    detail: format!("tls stream failed: {e}"),
                    source: Some(Box::new(e)),
                })
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
        crate::stream::Transport::Plain(_) => false,
        #[cfg(feature = "tls")]
        crate::stream::Transport::Tls(_) => true,
    }
}

fn is_would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
}

pub(crate) fn io_reason(e: io::Error) -> DisconnectReason {
    DisconnectReason::Io(Error::Io(e))
}
