//! Doing what the session asks: each command's I/O, its result fed back at once.
#![forbid(unsafe_code)]

use std::os::fd::AsRawFd;
use std::time::Instant;

use tungstenite::protocol::Role;
use tungstenite::WebSocket;

use super::link_io::{self, LinkIo};
use super::{Client, TOKEN_CONN};
use crate::session::Command;
use crate::sys::Interest;
use crate::Error;

impl Client {
    pub(super) fn execute(&mut self, command: Command, now: Instant) {
        let c = &mut self.connecting;
        match command {
            Command::LoadResolver => {
                let system = crate::dns::SystemConfig::load();
                self.session.handle_resolver(&system, now);
            }
            Command::SendDatagram(d) => c.send_datagram(&self.epoll, d.to, &d.payload),
            Command::Connect { id, addr } => {
                if let Err(e) = c.connect(&self.epoll, id, addr) {
                    self.session.handle_tcp(id, Err(e), now);
                }
            }
            Command::Choose { id } => {
                if let Err(e) = c.choose(&self.epoll, id) {
                    self.session.handle_connect_error(Some(Error::Io(e)), now);
                }
            }
            Command::Write(bytes) => {
                c.write(&bytes);
                c.flush(&mut self.session, now);
            }
            Command::Unread(bytes) => c.unread(bytes),
            #[cfg(feature = "tls")]
            Command::StartTls { host } => {
                if self.tls.is_none() {
                    // A request hook switched to wss: build the connector once, now.
                    match crate::tls::connector(&self.session.config().tls) {
                        Ok(t) => self.tls = Some(t),
                        Err(e) => return self.session.handle_tls(Err(e), now),
                    }
                }
                if let Some(tls) = &self.tls {
                    self.connecting
                        .start_tls(tls, &host, &mut self.session, now);
                }
            }
            #[cfg(not(feature = "tls"))]
            Command::StartTls { host: _ } => {
                let e = Error::config("url", "wss:// needs the `tls` cargo feature");
                self.session.handle_tls(Err(e), now);
            }
            Command::Open { tail } => self.open(tail, now),
            Command::Abort => self.connecting.abort(),
            Command::Send(wire) => self.link_io(now, |l| l.write(wire, false)),
            Command::Ping { seq } => self.link_io(now, |l| l.ping(seq)),
            Command::Flush => self.link_io(now, LinkIo::flush),
            Command::SendClose { code, reason } => {
                self.link_io(now, |l| l.send_close(code, &reason))
            }
            Command::Ack { through } => {
                if let Some(journal) = &mut self.journal {
                    if let Err(e) = journal.ack_through(through, now) {
                        // A lost ack only repeats a delivered message after a restart.
                        log::warn!("outbox file: {e}");
                    }
                }
            }
            Command::Forget { id } => {
                // Records leave the journal from the front only: a dropped message that is
                // not the oldest is forgotten when the acks pass it (until then a restart
                // would send it after all; it is never lost).
                if let Some(journal) = &mut self.journal {
                    if journal.oldest() == Some(id) {
                        if let Err(e) = journal.drop_oldest(now) {
                            log::warn!("outbox file: {e}");
                        }
                    }
                }
            }
            Command::CheckRoute { from, to } => {
                let result = super::net_watch::check_route(from, to);
                self.session.handle_route_check(result, now);
            }
            Command::Release => {
                if let Some(link) = self.link.take() {
                    self.closed_links.add(link.totals());
                }
                self.link_readable = false;
            }
        }
    }

    /// Opens the WebSocket on the attempt's connection.
    fn open(&mut self, tail: Vec<u8>, now: Instant) {
        let Some(mut stream) = self.connecting.take_stream() else {
            let e = std::io::Error::from(std::io::ErrorKind::NotConnected);
            return self
                .session
                .handle_link_error(crate::DisconnectReason::Io(Error::Io(e)), now);
        };
        if let Err(e) = stream.end_connect_phase(&tail) {
            return self
                .session
                .handle_link_error(crate::DisconnectReason::Io(Error::Io(e)), now);
        }
        let config = crate::transport::websocket_config(self.session.config());
        let ws = WebSocket::from_partially_read(stream, tail, Role::Client, Some(config));
        self.connecting.abort();
        self.link = Some(LinkIo::new(ws));
        self.link_interest = Interest::READ;
        if let Some(link) = &self.link {
            let tcp = link.ws.get_ref().transport().tcp();
            let _ = self
                .epoll
                .modify(tcp.as_raw_fd(), TOKEN_CONN, Interest::READ);
            // The kernel gives up on unacknowledged data in the bound the session judges a
            // stalled write by, rather than after its ~15 minutes of retransmissions.
            let write_timeout = self.session.config().write_timeout;
            if let Err(e) = crate::sys::set_user_timeout(tcp, write_timeout) {
                log::debug!("TCP_USER_TIMEOUT not set: {e}");
            }
            if self.net_watch.is_some() {
                if let Some(path) = super::net_watch::link_path(tcp) {
                    self.session.set_link_path(path);
                }
            }
        }
    }

    /// A write on the link, reported to the session.
    pub(super) fn link_io(
        &mut self,
        now: Instant,
        op: impl FnOnce(&mut LinkIo) -> Result<link_io::Stalled, crate::DisconnectReason>,
    ) {
        let Some(link) = &mut self.link else {
            return;
        };
        match op(link) {
            Ok(stalled) => {
                let (frames, bytes) = (link.frames_taken(), link.totals().bytes_out);
                self.session
                    .handle_written(frames, bytes, stalled.then(Instant::now));
            }
            Err(reason) => self.session.handle_link_error(reason, now),
        }
    }
}
