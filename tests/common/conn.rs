//! One test-server connection: handshake and per-mode behaviour, driven by
//! a thread that reads with a short timeout so it sees commands and flags.
//! The frame-level part is in `frames.rs`.
//!
//! Every socket error just ends the connection (`End`); nothing here panics
//! because of a client.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::debug;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::handshake::HandshakeError;
use tungstenite::http::StatusCode;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{CloseFrame, Frame, FrameSocket};

use super::frames::Behaviour;
use super::server::{Shared, POLL};
use super::Mode;

/// How long a server-initiated close waits for the client's Close reply.
pub(super) const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Largest request head read in the raw (non-tungstenite) handshake modes.
const MAX_HEAD: usize = 64 << 10;

/// A command from the `TestServer` handle to one connection.
#[derive(Clone)]
pub(crate) enum Cmd {
    /// Write this frame.
    Frame(Frame),
    /// Start the close handshake with this code and reason.
    Close(u16, String),
}

/// The connection is over (client gone, socket error, killed, stopped).
pub(super) struct End;

pub(super) type Step<T> = Result<T, End>;

pub(super) type Ws = FrameSocket<TcpStream>;

pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

pub(super) fn close_frame(code: u16, reason: &str) -> Frame {
    Frame::close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}

/// Parse `Name: value` lines of a raw HTTP request head.
fn parse_head_headers(head: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(head)
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

pub(crate) struct ConnCtx {
    pub(super) shared: Arc<Shared>,
    pub(super) id: u64,
    mode: Mode,
    killed: Arc<AtomicBool>,
    pub(super) cmds: Receiver<Cmd>,
    /// Whether this thread is counted in `Shared::busy` (between passing
    /// `gate` and its next call).
    in_section: Cell<bool>,
}

impl ConnCtx {
    pub(crate) fn new(
        shared: Arc<Shared>,
        id: u64,
        mode: Mode,
        killed: Arc<AtomicBool>,
        cmds: Receiver<Cmd>,
    ) -> ConnCtx {
        ConnCtx {
            shared,
            id,
            mode,
            killed,
            cmds,
            in_section: Cell::new(false),
        }
    }

    /// Thread body: serve the connection, then unregister and shut it down.
    pub(crate) fn run(self, stream: TcpStream) {
        let _ = self.serve(stream);
        self.leave_section();
        debug!("test server: connection {} ended", self.id);
        self.shared.unregister(self.id);
    }

    pub(super) fn alive(&self) -> bool {
        !self.shared.stop.load(SeqCst) && !self.killed.load(SeqCst)
    }

    fn leave_section(&self) {
        if self.in_section.replace(false) {
            self.shared.busy.fetch_sub(1, SeqCst);
        }
    }

    /// Called before every I/O step: waits while the server is frozen;
    /// `End` if the connection must end. Between two calls the thread counts
    /// as busy, so that `freeze()` can wait for in-flight steps to finish.
    pub(super) fn gate(&self) -> Step<()> {
        self.leave_section();
        loop {
            if !self.alive() {
                return Err(End);
            }
            self.shared.busy.fetch_add(1, SeqCst);
            if !self.shared.frozen.load(SeqCst) {
                self.in_section.set(true);
                return Ok(());
            }
            self.shared.busy.fetch_sub(1, SeqCst);
            thread::sleep(POLL);
        }
    }

    fn serve(&self, mut stream: TcpStream) -> Step<()> {
        match self.mode.clone() {
            Mode::SilentHandshake => {
                let head = self.read_request_head(&mut stream)?;
                self.shared.record_headers(parse_head_headers(&head));
                self.discard_until_closed(&mut stream)
            }
            Mode::HttpStatus {
                status,
                retry_after,
            } => {
                let head = self.read_request_head(&mut stream)?;
                self.shared.record_headers(parse_head_headers(&head));
                self.http_status(&mut stream, status, retry_after)
            }
            _ => {
                let ws = FrameSocket::new(self.handshake(stream)?);
                self.after_handshake(ws)
            }
        }
    }

    fn after_handshake(&self, mut ws: Ws) -> Step<()> {
        let echo = Behaviour {
            echo: true,
            pong: true,
            read: true,
            drop_at: None,
        };
        match self.mode.clone() {
            Mode::Echo => self.frame_loop(ws, echo, None),
            Mode::EchoNoPong => self.frame_loop(
                ws,
                Behaviour {
                    pong: false,
                    ..echo
                },
                None,
            ),
            Mode::DropAfter(after) => self.frame_loop(
                ws,
                Behaviour {
                    drop_at: Some(Instant::now() + after),
                    ..echo
                },
                None,
            ),
            Mode::NeverRead => self.frame_loop(
                ws,
                Behaviour {
                    echo: false,
                    pong: false,
                    read: false,
                    drop_at: None,
                },
                None,
            ),
            Mode::CloseAfterHandshake { code, reason } => {
                self.send(&mut ws, close_frame(code, &reason))?;
                let quiet = Behaviour {
                    echo: false,
                    pong: false,
                    ..echo
                };
                self.frame_loop(ws, quiet, Some(Instant::now() + CLOSE_WAIT))
            }
            Mode::RawAfterHandshake(bytes) => {
                let (mut stream, _) = ws.into_inner();
                self.write_raw(&mut stream, &bytes)?;
                self.discard_until_closed(&mut stream)
            }
            // DropAfterHandshake: `run` shuts the socket down.
            Mode::DropAfterHandshake | Mode::SilentHandshake | Mode::HttpStatus { .. } => Ok(()),
        }
    }

    /// The tungstenite server handshake, recording the request headers.
    /// Returns the raw stream, ready for frames.
    // The callback's error type is fixed by tungstenite.
    #[allow(clippy::result_large_err)]
    fn handshake(&self, stream: TcpStream) -> Step<TcpStream> {
        self.gate()?;
        let shared = self.shared.clone();
        let callback = move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            let headers = req
                .headers()
                .iter()
                .map(|(k, v)| {
                    let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (k.as_str().to_ascii_lowercase(), value)
                })
                .collect();
            shared.record_headers(headers);
            shared.handshakes.fetch_add(1, SeqCst);
            Ok(resp)
        };
        let mut result = tungstenite::accept_hdr(stream, callback);
        loop {
            match result {
                Ok(ws) => {
                    debug!("test server: connection {} handshake done", self.id);
                    return Ok(ws.into_inner());
                }
                Err(HandshakeError::Interrupted(mid)) => {
                    self.gate()?;
                    result = mid.handshake();
                }
                Err(HandshakeError::Failure(e)) => {
                    debug!("test server: connection {} handshake failed: {e}", self.id);
                    return Err(End);
                }
            }
        }
    }

    /// Read until the end of an HTTP request head (or `MAX_HEAD` bytes).
    fn read_request_head(&self, stream: &mut TcpStream) -> Step<Vec<u8>> {
        let mut head = Vec::new();
        let mut chunk = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            self.gate()?;
            match stream.read(&mut chunk) {
                Ok(0) => return Err(End),
                Ok(n) => head.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) => {}
                Err(_) => return Err(End),
            }
        }
        Ok(head)
    }

    fn http_status(
        &self,
        stream: &mut TcpStream,
        status: u16,
        retry_after: Option<u32>,
    ) -> Step<()> {
        let reason = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Unknown");
        let mut response = format!("HTTP/1.1 {status} {reason}\r\n");
        if let Some(secs) = retry_after {
            response.push_str(&format!("Retry-After: {secs}\r\n"));
        }
        response.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
        self.write_raw(stream, response.as_bytes())?;
        // Lingering close: FIN first, then drain briefly so that unread
        // client bytes cannot turn our close into a RST.
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut sink = [0u8; 1024];
        while Instant::now() < deadline && self.alive() {
            match stream.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Write all bytes, waiting out write timeouts (and freezes).
    fn write_raw(&self, stream: &mut TcpStream, mut bytes: &[u8]) -> Step<()> {
        while !bytes.is_empty() {
            self.gate()?;
            match stream.write(bytes) {
                Ok(0) => return Err(End),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if is_timeout(&e) => {}
                Err(_) => return Err(End),
            }
        }
        Ok(())
    }

    /// Read and throw away everything until the client goes away.
    fn discard_until_closed(&self, stream: &mut TcpStream) -> Step<()> {
        let mut sink = [0u8; 4096];
        loop {
            self.gate()?;
            match stream.read(&mut sink) {
                Ok(0) => return Err(End),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(_) => return Err(End),
            }
        }
    }
}
