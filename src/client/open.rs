//! The driver's steps while a link is open or closing.
#![forbid(unsafe_code)]

use std::time::Instant;

use log::{debug, info, warn};
use tungstenite::Message as Wire;

use super::{close_frame, Client, Phase};
use crate::heartbeat::HeartbeatAction;
use crate::link::Link;
use crate::outbox::{from_wire, Outbox};
use crate::{DisconnectReason, Event, Stats};

impl Client {
    /// One step of an open link: write what is queued, wait for input (or room to write after
    /// a stall) until the next heartbeat deadline or the caller's deadline, then judge the
    /// heartbeat and the write timeout.
    pub(super) fn step_open(&mut self, mut link: Box<Link>, deadline: Instant) -> Phase {
        if let Some(reason) = link.broken.take() {
            return self.link_lost(link, reason);
        }
        // The application has seen `Connected` and had its chance to send first.
        link.hold_outbox = false;
        if let Err(reason) = self.pump(&mut link) {
            return self.link_lost(link, reason);
        }
        let mut wake = link.heartbeat.next_deadline().min(deadline);
        if let Some(stall) = link.stall_deadline() {
            wake = wake.min(stall);
        }
        match link.read(wake) {
            Ok(Some(msg)) => {
                if let Err(reason) = self.on_message(&mut link, msg) {
                    return self.link_lost(link, reason);
                }
            }
            Ok(None) => {}
            Err(reason) => return self.link_lost(link, reason),
        }
        let now = Instant::now();
        if let Err(reason) = link.check_stall(now) {
            return self.link_lost(link, reason);
        }
        // Buffered input has been read: only now may a deadline be judged.
        match link.heartbeat.poll(now) {
            HeartbeatAction::Wait => {
                // The peer is talking, but that proves nothing about our writes: while sent
                // messages are unconfirmed, a ping per interval bounds the window of loss.
                if link.taken_by_kernel() > link.confirmed {
                    if let Some(seq) = link.heartbeat.poll_probe(now) {
                        if let Err(reason) = self.send_ping(&mut link, seq) {
                            return self.link_lost(link, reason);
                        }
                    }
                }
            }
            HeartbeatAction::SendPing { seq, missed } => {
                let max = self.config.heartbeat.max_missed_pongs;
                if missed > 0 {
                    self.stats.pongs_missed += 1;
                    warn!("missed pong ({missed} of {max})");
                    self.events.push_back(Event::PongMissed { missed, max });
                }
                if let Err(reason) = self.send_ping(&mut link, seq) {
                    return self.link_lost(link, reason);
                }
            }
            HeartbeatAction::Dead { missed, silent_for } => {
                self.stats.pongs_missed += 1;
                warn!(
                    "missed pong ({missed} of {missed}): link dead after {} ms of silence",
                    silent_for.as_millis()
                );
                self.events.push_back(Event::PongMissed {
                    missed,
                    max: missed,
                });
                return self.link_lost(
                    link,
                    DisconnectReason::HeartbeatTimeout { missed, silent_for },
                );
            }
        }
        Phase::Open(link)
    }

    /// A local close in progress: flush the outbox, send Close, await the reply, all within
    /// `close_by`.
    pub(super) fn step_closing(
        &mut self,
        mut link: Box<Link>,
        close_by: Instant,
        code: u16,
        reason: String,
        mut close_sent: bool,
        deadline: Instant,
    ) -> Phase {
        if Instant::now() >= close_by {
            debug!("no close reply within close_timeout");
            return self.finish_close(link, code);
        }
        let step = if close_sent {
            if link.is_stalled() {
                link.flush()
            } else {
                Ok(())
            }
        } else {
            self.pump(&mut link).and_then(|()| {
                if self.outbox.queued_len() == 0 && !link.is_stalled() {
                    close_sent = true;
                    link.send_close(close_frame(code, &reason))
                } else {
                    Ok(())
                }
            })
        };
        if let Err(e) = step {
            debug!("link failed while closing: {e}");
            return self.finish_close(link, code);
        }
        match link.read(close_by.min(deadline)) {
            Ok(Some(Wire::Close(_))) => {
                // The server's reply follows everything we sent before our Close (TCP keeps
                // order): all of it was read.
                link.confirmed = link.taken_by_kernel();
                return self.finish_close(link, code);
            }
            Ok(Some(msg)) => {
                if let Err(e) = self.on_message(&mut link, msg) {
                    debug!("link failed while closing: {e}");
                    return self.finish_close(link, code);
                }
            }
            Ok(None) => {}
            Err(_) => return self.finish_close(link, code),
        }
        Phase::Closing {
            link,
            deadline: close_by,
            code,
            reason,
            close_sent,
        }
    }

    fn finish_close(&mut self, mut link: Box<Link>, code: u16) -> Phase {
        self.account(&mut link);
        self.outbox.requeue_in_flight();
        let unconfirmed = link.taken_by_kernel().saturating_sub(link.confirmed);
        self.retire(&link, "local_close");
        info!("closed with code {code}");
        self.events.push_back(Event::Disconnected {
            reason: DisconnectReason::LocalClose { code },
            unconfirmed,
        });
        self.events.push_back(Event::Closed { code: Some(code) });
        Phase::Stopped
    }

    /// Retries a stalled write, then writes queued messages in order until the outbox is
    /// empty or the socket is full. Never blocks.
    fn pump(&mut self, link: &mut Link) -> Result<(), DisconnectReason> {
        if link.is_stalled() {
            link.flush()?;
        }
        while !link.is_stalled() {
            let Some(msg) = self.outbox.start_next() else {
                break;
            };
            link.write(msg)?;
            self.account(link);
        }
        self.account(link);
        Ok(())
    }

    /// Tells the outbox which messages the kernel has taken since the last call.
    fn account(&mut self, link: &mut Link) {
        account(&mut self.outbox, &mut self.stats, link);
    }

    fn send_ping(&mut self, link: &mut Link, seq: u64) -> Result<(), DisconnectReason> {
        // A full socket: the verdict needs no ping (it judges inbound silence), and a ping
        // would only queue behind the stalled bytes.
        if link.is_stalled() {
            return Ok(());
        }
        // Every data message handed over before this ping is proven read by its pong.
        let data_before = link.taken_by_kernel() + self.outbox.in_flight_len() as u64;
        match &self.app_ping {
            // A clone of reference-counted bytes: no allocation per heartbeat.
            Some(ping) => {
                self.outbox.push_heartbeat_in_flight();
                link.write(ping.clone())?;
            }
            None => {
                let payload = link.ping_payload(seq);
                link.write(Wire::Ping(payload))?;
            }
        }
        link.heartbeat.ping_sent(seq, Instant::now(), data_before);
        self.stats.pings_sent += 1;
        debug!("ping {seq}");
        self.events.push_back(Event::Ping { seq });
        Ok(())
    }

    fn on_message(&mut self, link: &mut Link, msg: Wire) -> Result<(), DisconnectReason> {
        match msg {
            Wire::Text(_) | Wire::Binary(_) => {
                let is_app_pong = match &self.config.heartbeat.app_heartbeat {
                    Some(app) => app.pong.matches(&msg),
                    None => false,
                };
                if is_app_pong {
                    if let Some(seq) = link.heartbeat.newest_unanswered() {
                        self.on_pong(link, seq);
                    }
                } else {
                    self.stats.messages_in += 1;
                    self.events.push_back(Event::Message(from_wire(msg)));
                }
            }
            // tungstenite queued the pong; send it now even if the application sends nothing.
            Wire::Ping(_) => link.flush()?,
            Wire::Pong(payload) => {
                if let Ok(bytes) = <[u8; 8]>::try_from(&payload[..]) {
                    self.on_pong(link, u64::from_be_bytes(bytes));
                }
            }
            Wire::Close(frame) => {
                // tungstenite queued the reply; a failure to send it changes nothing now.
                let _ = link.flush();
                let (code, reason) = match frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_string()),
                    None => (None, String::new()),
                };
                return Err(DisconnectReason::ClosedByServer { code, reason });
            }
            Wire::Frame(_) => {}
        }
        Ok(())
    }

    fn on_pong(&mut self, link: &mut Link, seq: u64) {
        let Some((rtt, proven)) = link.heartbeat.on_pong(seq, Instant::now()) else {
            return;
        };
        link.confirmed = link.confirmed.max(proven);
        self.stats.pongs_received += 1;
        self.stats.record_rtt(rtt);
        debug!("pong {seq}, rtt {} us", rtt.as_micros());
        self.events.push_back(Event::Pong {
            seq,
            rtt: Some(rtt),
        });
    }

    /// A link ended without the application asking: account, requeue, report, reschedule.
    pub(super) fn link_lost(&mut self, mut link: Box<Link>, reason: DisconnectReason) -> Phase {
        let now = Instant::now();
        self.account(&mut link);
        self.outbox.requeue_in_flight();
        let unconfirmed = link.taken_by_kernel().saturating_sub(link.confirmed);
        self.retire(&link, reason.kind());
        info!("disconnected: {reason} ({unconfirmed} messages unconfirmed)");
        let is_final = matches!(&reason, DisconnectReason::ClosedByServer { code: Some(c), .. } if self.config.final_close_codes.contains(c));
        self.events.push_back(Event::Disconnected {
            reason,
            unconfirmed,
        });
        drop(link);
        if is_final {
            return self.give_up();
        }
        let decision = self.backoff.on_link_lost(now);
        self.schedule(decision)
    }

    /// Folds a finished link's counters into the client's.
    fn retire(&mut self, link: &Link, kind: &str) {
        self.closed_links.0 += link.ws.get_ref().bytes_in;
        self.closed_links.1 += link.ws.get_ref().bytes_out;
        self.stats.record_disconnect(kind);
    }
}

/// The outbox and the counters learn which messages the kernel took since the last call. A
/// function of the parts, so that `send` can call it while it holds the link borrowed.
pub(super) fn account(outbox: &mut Outbox, stats: &mut Stats, link: &mut Link) {
    let taken = link.newly_taken_by_kernel();
    outbox.delivered_to_kernel(taken);
    stats.messages_out += taken;
}
