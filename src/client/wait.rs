//! Waiting: one `epoll` set for every phase (or, while messages keep coming, one bounded
//! blocking read), and handing out what became ready.
#![forbid(unsafe_code)]

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::link_io::LinkIo;
use super::{Client, TOKEN_CONN, TOKEN_WAKE};
use crate::sys::{Interest, Readiness, MAX_READY};

impl Client {
    /// Reads one message from the link if input is known to be there. Returns whether
    /// anything happened.
    pub(super) fn read_link(&mut self, now: Instant) -> bool {
        let Some(link) = &mut self.link else {
            return false;
        };
        if !(self.link_readable || link.has_buffered_input()) {
            return false;
        }
        let result = link.read_once();
        self.after_read(result, now)
    }

    /// Reads one message from the link if one has arrived, whatever the last readiness said.
    pub(super) fn read_link_now(&mut self, now: Instant) -> bool {
        self.link_readable = true;
        self.read_link(now)
    }

    /// Feeds a read's result to the session; returns whether anything happened.
    fn after_read(
        &mut self,
        result: Result<Option<tungstenite::Message>, crate::DisconnectReason>,
        now: Instant,
    ) -> bool {
        let Some(link) = &mut self.link else {
            return false;
        };
        // Liveness is any byte, stamped once per message read.
        let inbound = link.take_inbound();
        let at = if inbound { Instant::now() } else { now };
        if inbound {
            self.session.handle_inbound(at);
        }
        match result {
            Ok(Some(msg)) => {
                if link.socket_drained() {
                    self.link_readable = false;
                }
                self.session.handle_message(msg, at);
                true
            }
            Ok(None) => {
                self.link_readable = false;
                inbound
            }
            Err(reason) => {
                self.link_readable = false;
                self.session.handle_link_error(reason, at);
                true
            }
        }
    }

    /// Waits until `until` for readiness and hands it out. Returns whether a wake arrived.
    pub(super) fn wait(&mut self, until: Instant, now: Instant) -> bool {
        let timeout = until.saturating_duration_since(now);
        // While messages keep coming, one blocking read replaces `epoll_wait` + `recv`. It is
        // bounded (`BLOCKING_READ_CAP`), and the wake flag is checked after it.
        if let Some(link) = &mut self.link {
            if link.waits_ended_by_input >= 2
                && !self.session.link_stalled()
                && !self.wake.is_set()
                && link.tcp_mut().block_reads_until(until, now)
            {
                let result = link.read_once();
                link.tcp_mut().stop_blocking_reads();
                if !matches!(result, Ok(Some(_))) {
                    link.waits_ended_by_input = 0;
                }
                self.after_read(result, now);
                return self.wake.is_set() && self.wake.take();
            }
        }
        let mut ready = [Readiness::default(); MAX_READY];
        let n = match self.epoll.wait(timeout, &mut ready) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("epoll_wait failed: {e}");
                std::thread::sleep(timeout.min(Duration::from_millis(10)));
                0
            }
        };
        let now = Instant::now();
        let mut woken = false;
        let mut link_ready = false;
        for r in &ready[..n] {
            match r.token {
                TOKEN_WAKE => woken = self.wake.take(),
                super::net_watch::TOKEN_NETLINK => {
                    if let Some(watch) = &mut self.net_watch {
                        watch.read(&mut self.session, now);
                    }
                }
                TOKEN_CONN if self.link.is_some() => {
                    link_ready = true;
                    if r.readable {
                        self.link_readable = true;
                    }
                    if r.writable && self.session.link_stalled() {
                        self.link_io(now, LinkIo::flush);
                    }
                }
                token => self.connecting.ready(token, &mut self.session, now),
            }
        }
        if let Some(link) = &mut self.link {
            link.waits_ended_by_input = if link_ready && self.link_readable {
                link.waits_ended_by_input.saturating_add(1)
            } else {
                0
            };
        }
        woken
    }

    /// Waits for writability too while the link is stalled.
    pub(super) fn update_link_interest(&mut self) {
        let Some(link) = &self.link else {
            return;
        };
        let want = Interest {
            read: true,
            write: self.session.link_stalled(),
        };
        if want != self.link_interest {
            let fd = link.ws.get_ref().transport().tcp().as_raw_fd();
            if self.epoll.modify(fd, TOKEN_CONN, want).is_ok() {
                self.link_interest = want;
            }
        }
    }
}
