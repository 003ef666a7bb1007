//! The driver's steps while a link is open or closing.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use log::{debug, info, warn};
use tungstenite::Message as Wire;

use super::{close_frame, Client, Phase};
use crate::heartbeat::HeartbeatAction;
use crate::link::Link;
use crate::outbox::from_wire;
use crate::{DisconnectReason, Event};

impl Client {
    /// One step of an open link: write what is queued, read (waiting at most until the next
    /// heartbeat deadline or the caller's deadline), then judge the heartbeat.
    pub(super) fn step_open(&mut self, mut link: Box<Link>, deadline: Instant) -> Phase {
        if let Some(reason) = link.broken.take() {
            return self.link_lost(link, reason);
        }
        // The application has seen `Connected` and had its chance to send first.
        link.hold_outbox = false;
        if let Err(reason) = self.pump(&mut link, deadline) {
            return self.link_lost(link, reason);
        }
        // A stalled write is retried by the next pump, which is what waits; reading must not.
        let wait = if link.is_stalled() {
            Duration::ZERO
        } else {
            link.heartbeat
                .next_deadline()
                .min(deadline)
                .saturating_duration_since(Instant::now())
        };
        match link.read(wait, deadline) {
            Ok(Some(msg)) => {
                if let Err(reason) = self.on_message(&mut link, msg, deadline) {
                    return self.link_lost(link, reason);
                }
            }
            Ok(None) => {}
            Err(reason) => return self.link_lost(link, reason),
        }
        // Buffered input has been read: only now may a deadline be judged.
        match link.heartbeat.poll(Instant::now()) {
            HeartbeatAction::Wait => {}
            HeartbeatAction::SendPing { seq, missed } => {
                let max = self.config.heartbeat.max_missed_pongs;
                if missed > 0 {
                    self.stats.pongs_missed += 1;
                    warn!("missed pong ({missed} of {max})");
                    self.events.push_back(Event::PongMissed { missed, max });
                }
                if let Err(reason) = self.send_ping(&mut link, seq, deadline) {
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

    /// A local close in progress: flush the outbox, send Close, await the reply.
    pub(super) fn step_closing(
        &mut self,
        mut link: Box<Link>,
        close_by: Instant,
        code: u16,
        reason: String,
        mut close_sent: bool,
        deadline: Instant,
    ) -> Phase {
        let until = close_by.min(deadline);
        let finished = |client: &mut Client, link: Box<Link>| client.finish_close(link, code);
        if Instant::now() >= close_by {
            debug!("no close reply within close_timeout");
            return finished(self, link);
        }
        if !close_sent {
            if let Err(reason) = self.pump(&mut link, until) {
                debug!("link failed while closing: {reason}");
                return finished(self, link);
            }
            if self.outbox.queued_len() == 0 && !link.is_stalled() {
                if let Err(e) = link.ws.close(Some(close_frame(code, &reason))) {
                    debug!("close frame not queued: {e}");
                    return finished(self, link);
                }
                if link.flush(until).is_err() {
                    return finished(self, link);
                }
                close_sent = true;
            }
        }
        let wait = if close_sent {
            until.saturating_duration_since(Instant::now())
        } else {
            Duration::ZERO
        };
        match link.read(wait, until) {
            Ok(Some(Wire::Close(_))) => return finished(self, link),
            Ok(Some(msg)) => {
                if let Err(reason) = self.on_message(&mut link, msg, until) {
                    debug!("link failed while closing: {reason}");
                    return finished(self, link);
                }
            }
            Ok(None) => {}
            Err(_) => return finished(self, link),
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
        let taken = link.newly_taken_by_kernel();
        self.outbox.delivered_to_kernel(taken);
        self.stats.messages_out += taken;
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

    /// Writes queued messages in order until the outbox is empty or a write stalls.
    fn pump(&mut self, link: &mut Link, deadline: Instant) -> Result<(), DisconnectReason> {
        if link.is_stalled() {
            link.flush(deadline)?;
        }
        while !link.is_stalled() {
            let Some(msg) = self.outbox.start_next() else {
                break;
            };
            link.write(msg, deadline)?;
            let taken = link.newly_taken_by_kernel();
            self.outbox.delivered_to_kernel(taken);
            self.stats.messages_out += taken;
        }
        let taken = link.newly_taken_by_kernel();
        self.outbox.delivered_to_kernel(taken);
        self.stats.messages_out += taken;
        Ok(())
    }

    fn send_ping(
        &mut self,
        link: &mut Link,
        seq: u64,
        deadline: Instant,
    ) -> Result<(), DisconnectReason> {
        // Every data message handed over before this ping is proven read by its pong.
        let data_before = link.taken_by_kernel() + self.outbox.in_flight_len() as u64;
        match &self.app_ping {
            // A clone of reference-counted bytes: no allocation per heartbeat.
            Some(ping) => {
                self.outbox.push_heartbeat_in_flight();
                link.write(ping.clone(), deadline)?;
            }
            None => {
                let payload = link.ping_payload(seq);
                link.write(Wire::Ping(payload), deadline)?;
            }
        }
        link.heartbeat.ping_sent(seq, Instant::now(), data_before);
        self.stats.pings_sent += 1;
        debug!("ping {seq}");
        self.events.push_back(Event::Ping { seq });
        Ok(())
    }

    fn on_message(
        &mut self,
        link: &mut Link,
        msg: Wire,
        deadline: Instant,
    ) -> Result<(), DisconnectReason> {
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
            Wire::Ping(_) => link.flush(deadline)?,
            Wire::Pong(payload) => {
                if let Ok(bytes) = <[u8; 8]>::try_from(&payload[..]) {
                    self.on_pong(link, u64::from_be_bytes(bytes));
                }
            }
            Wire::Close(frame) => {
                // tungstenite queued the reply; a failure to send it changes nothing now.
                let _ = link.flush(deadline);
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
        let taken = link.newly_taken_by_kernel();
        self.outbox.delivered_to_kernel(taken);
        self.stats.messages_out += taken;
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
