//! The open and closing phases: heartbeat verdicts, the write-stall verdict, the delivery
//! probe, what the server sent, and a local close with its timeout.
#![forbid(unsafe_code)]

use std::io;
use std::time::Instant;

use log::{debug, info, warn};
use tungstenite::Message as Wire;

use super::coalesce::Coalesce;
use super::delivery::Delivery;
use super::{Closing, Command, Phase, Session};
use crate::heartbeat::{Heartbeat, HeartbeatAction};
use crate::outbox::{from_wire, Outbox};
use crate::{Config, DisconnectReason, Error, Event};

/// One open link's state. Made new for every link, so nothing leaks into the next one.
pub(super) struct LinkState {
    pub heartbeat: Heartbeat,
    /// The outbox waits for the application's hello (`Session::provide_hello`): set at
    /// connect when the application hands its hello over itself.
    pub hold_outbox: bool,
    /// Since when a write has made no progress (the server is not reading).
    stalled_since: Option<Instant>,
    /// `bytes_out` at the last stall report: more since then is progress.
    bytes_out_at_stall: u64,
    /// A failure reported outside `handle_timeout` (a write in `send`), judged at the next one.
    broken: Option<DisconnectReason>,
    delivery: Delivery,
    write_timeout: std::time::Duration,
    /// Frames held for company, and when they must leave.
    pub writes: Coalesce,
    /// Where the link runs, once the driver found out (for network reports).
    pub path: Option<super::network::LinkPath>,
    /// A probe sent after a network report, waiting for its pong.
    pub net_probe: Option<super::network::NetProbe>,
}

impl LinkState {
    pub fn new(config: &Config, now: Instant, hold_outbox: bool) -> LinkState {
        LinkState {
            heartbeat: Heartbeat::new(&config.heartbeat, now),
            hold_outbox,
            stalled_since: None,
            bytes_out_at_stall: 0,
            broken: None,
            delivery: Delivery::default(),
            write_timeout: config.write_timeout,
            writes: Coalesce::new(config.coalesce_window),
            path: None,
            net_probe: None,
        }
    }

    pub fn is_stalled(&self) -> bool {
        self.stalled_since.is_some()
    }

    /// Whether a message may be written now: no stall, no failure waiting to be judged.
    pub fn can_write(&self) -> bool {
        self.stalled_since.is_none() && self.broken.is_none()
    }

    pub fn stall_deadline(&self) -> Option<Instant> {
        self.stalled_since.map(|s| s + self.write_timeout)
    }

    /// When the open phase next needs the clock.
    pub fn next_timeout(&self, outbox: &Outbox, at_once: Instant) -> Instant {
        if self.broken.is_some()
            || (!self.hold_outbox && outbox.queued_len() > 0 && self.can_write())
        {
            return at_once;
        }
        // No wake of its own for the delivery probe: it is for a server that keeps talking
        // (so no liveness ping goes out), and its traffic wakes the loop anyway; a silent
        // server gets the liveness pings, which prove delivery too.
        let mut t = self.heartbeat.next_deadline();
        if let Some(p) = &self.net_probe {
            t = t.min(p.deadline);
        }
        let t = self.writes.deadline().map_or(t, |held| t.min(held));
        match self.stall_deadline() {
            Some(stall) => t.min(stall),
            None => t,
        }
    }
}

impl Session {
    /// Open-phase deadlines at `now`: a failure met earlier, the write stall, the heartbeat
    /// (ping, missed pong, dead), the delivery probe.
    pub(super) fn open_timeout(&mut self, mut link: Box<LinkState>, now: Instant) -> Phase {
        if let Some(reason) = link.broken.take() {
            return self.link_lost(link, reason, now);
        }
        if let Err(reason) = check_stall(&link, now) {
            return self.link_lost(link, reason, now);
        }
        if let Some(reason) = link.probe_verdict(now) {
            self.stats.pongs_missed += 1;
            self.events
                .push_back(Event::PongMissed { missed: 1, max: 1 });
            return self.link_lost(link, reason, now);
        }
        match link.heartbeat.poll(now) {
            HeartbeatAction::Wait => {
                // The peer is talking, but that proves nothing about our writes: while sent
                // messages are unconfirmed, a ping per interval bounds the window of loss.
                // Messages kept for proof filling half the outbox ask for it at once (one
                // ping in flight at a time), so at-least-once never stalls the producer for
                // a whole ping interval.
                if link.delivery.unconfirmed() > 0 && !link.is_stalled() {
                    let probe = link.heartbeat.poll_probe(now).or_else(|| {
                        (self.outbox.unproven_heavy()
                            && link.heartbeat.newest_unanswered().is_none())
                        .then(|| link.heartbeat.next_seq())
                    });
                    if let Some(seq) = probe {
                        self.ping(&mut link, seq, now);
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
                self.ping(&mut link, seq, now);
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
                let reason = DisconnectReason::HeartbeatTimeout { missed, silent_for };
                return self.link_lost(link, reason, now);
            }
        }
        // Frames held for company are due (a ping asked for above takes them along).
        if link.writes.deadline().is_some_and(|t| t <= now) {
            link.writes.flushed();
            self.commands.push_back(Command::Flush);
        }
        Phase::Open(link)
    }

    /// Asks for ping `seq` at `now`. A full socket needs none: the verdict judges inbound
    /// silence, and a ping would only queue behind the stalled bytes.
    pub(super) fn ping(&mut self, link: &mut LinkState, seq: u64, now: Instant) {
        if link.is_stalled() {
            return;
        }
        // Every data message handed over before this ping is proven read by its pong.
        let before = link.delivery.before_ping(&self.outbox);
        match &self.app_ping {
            // A clone of reference-counted bytes: no allocation per heartbeat.
            Some(ping) => {
                self.outbox.push_heartbeat_in_flight();
                self.commands.push_back(Command::Send(ping.clone()));
                self.commands.push_back(Command::Flush);
            }
            // Its write flushes whatever frames were held before it.
            None => self.commands.push_back(Command::Ping { seq }),
        }
        link.writes.flushed();
        link.heartbeat.ping_sent(seq, now, before);
        self.stats.pings_sent += 1;
        debug!("ping {seq}");
        self.events.push_back(Event::Ping { seq });
    }

    /// The queued message to write next, if the link can take one now.
    pub(super) fn next_link_command(&mut self) -> Option<Command> {
        match &mut self.phase {
            // The backlog leaves as one burst: one flush after its last frame.
            Phase::Open(link) if !link.hold_outbox && link.can_write() => {
                match self.outbox.start_next() {
                    Some(msg) => {
                        link.writes.hold_backlog();
                        Some(Command::Send(msg))
                    }
                    None => link.writes.backlog_drained().then_some(Command::Flush),
                }
            }
            Phase::Closing(c) if !c.close_sent && c.link.can_write() => {
                match self.outbox.start_next() {
                    Some(msg) => Some(Command::Send(msg)),
                    None => {
                        c.close_sent = true;
                        Some(Command::SendClose {
                            code: c.code,
                            reason: c.reason.clone(),
                        })
                    }
                }
            }
            _ => None,
        }
    }

    /// Bytes arrived on the link at `now`: the peer is alive.
    pub fn handle_inbound(&mut self, now: Instant) {
        self.saw(now);
        if let Some(link) = super::link_of(&mut self.phase) {
            link.heartbeat.on_inbound(now);
        }
    }

    /// The result of writes: the kernel has taken `frames_taken` data frames and `bytes_out`
    /// bytes on this link in all; `stalled_at` is the time of a write that could not finish
    /// (the socket is full), `None` when everything was written.
    pub fn handle_written(
        &mut self,
        frames_taken: u64,
        bytes_out: u64,
        stalled_at: Option<Instant>,
    ) {
        let Some(link) = super::link_of(&mut self.phase) else {
            return;
        };
        self.stats.messages_out += link.delivery.kernel_took(frames_taken, &mut self.outbox);
        match stalled_at {
            None => link.stalled_since = None,
            Some(now) => {
                // The stall counts from the last progress the kernel made.
                let since = match link.stalled_since {
                    Some(since) if bytes_out == link.bytes_out_at_stall => since,
                    _ => now,
                };
                link.bytes_out_at_stall = bytes_out;
                link.stalled_since = Some(since);
            }
        }
    }

    /// The link failed (a read or write error, an end of stream). Judged at once.
    pub fn handle_link_error(&mut self, reason: DisconnectReason, now: Instant) {
        let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
        self.phase = match phase {
            // A verdict already reached (the server's Close) is the reason, not what its
            // aftermath (the reply's flush) ran into.
            Phase::Open(mut link) => {
                let reason = link.broken.take().unwrap_or(reason);
                self.link_lost(link, reason, now)
            }
            Phase::Closing(c) => {
                debug!("link failed while closing: {reason}");
                self.finish_close(c.link, c.code)
            }
            other => other,
        };
    }

    /// A failure the driver met while the application was sending (`Client::send`): judged at
    /// the next `handle_timeout`, so that `send` itself reports nothing but the acceptance.
    pub fn handle_send_error(&mut self, reason: DisconnectReason) {
        if let Phase::Open(link) = &mut self.phase {
            link.broken.get_or_insert(reason);
        }
    }

    /// A message from the server arrived at `now`.
    pub fn handle_message(&mut self, msg: Wire, now: Instant) {
        self.saw(now);
        let closing = matches!(self.phase, Phase::Closing(_));
        match msg {
            Wire::Text(_) | Wire::Binary(_) => {
                let is_app_pong = match &self.config.heartbeat.app_heartbeat {
                    Some(app) => app.pong.matches(&msg),
                    None => false,
                };
                if is_app_pong {
                    self.on_pong(None, now);
                } else {
                    self.stats.messages_in += 1;
                    self.events.push_back(Event::Message(from_wire(msg)));
                }
            }
            // tungstenite queued the pong; send it now even if the application sends nothing
            // (frames held for company go with it).
            Wire::Ping(_) => {
                if let Phase::Open(link) = &mut self.phase {
                    link.writes.flushed();
                }
                self.commands.push_back(Command::Flush);
            }
            Wire::Pong(payload) => {
                if let Ok(bytes) = <[u8; 8]>::try_from(&payload[..]) {
                    self.on_pong(Some(u64::from_be_bytes(bytes)), now);
                }
            }
            Wire::Close(_) if closing => {
                let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
                if let Phase::Closing(mut c) = phase {
                    // The server's reply follows everything we sent before our Close (TCP
                    // keeps order): all of it was read.
                    if let Some(through) = c.link.delivery.all_proven(&mut self.outbox) {
                        self.commands.push_back(Command::Ack { through });
                    }
                    self.phase = self.finish_close(c.link, c.code);
                }
            }
            Wire::Close(frame) => {
                // tungstenite queued the reply. Its flush may also finish a data frame that a
                // stall left half written, which the server then reads: so the link is judged
                // (and its unsent messages requeued) only after the driver reported that
                // flush, at the next `handle_timeout`, or a message would go out twice.
                self.commands.push_back(Command::Flush);
                let (code, reason) = match frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_string()),
                    None => (None, String::new()),
                };
                if let Phase::Open(link) = &mut self.phase {
                    link.broken
                        .get_or_insert(DisconnectReason::ClosedByServer { code, reason });
                }
            }
            Wire::Frame(_) => {}
        }
    }

    /// A pong for ping `seq` (an application pong answers the newest unanswered ping).
    fn on_pong(&mut self, seq: Option<u64>, now: Instant) {
        let Some(link) = super::link_of(&mut self.phase) else {
            return;
        };
        let Some(seq) = seq.or_else(|| link.heartbeat.newest_unanswered()) else {
            return;
        };
        link.probe_answered(seq, now);
        let Some((rtt, proven)) = link.heartbeat.on_pong(seq, now) else {
            return;
        };
        if let Some(through) = link.delivery.proven(proven, &mut self.outbox) {
            self.commands.push_back(Command::Ack { through });
        }
        self.stats.pongs_received += 1;
        self.stats.record_rtt(rtt);
        debug!("pong {seq}, rtt {} us", rtt.as_micros());
        self.events.push_back(Event::Pong {
            seq,
            rtt: Some(rtt),
        });
    }

    /// Closing-phase deadlines at `now`: the reply's timeout, a failure, the write stall.
    pub(super) fn closing_timeout(&mut self, mut c: Box<Closing>, now: Instant) -> Phase {
        if now >= c.deadline {
            debug!("no close reply within close_timeout");
            return self.finish_close(c.link, c.code);
        }
        if let Some(e) = c.link.broken.take() {
            debug!("link failed while closing: {e}");
            return self.finish_close(c.link, c.code);
        }
        if check_stall(&c.link, now).is_err() {
            debug!("close stalled past write_timeout");
            return self.finish_close(c.link, c.code);
        }
        Phase::Closing(c)
    }

    fn finish_close(&mut self, link: LinkState, code: u16) -> Phase {
        let requeued = self.outbox.requeue();
        let unconfirmed = link.delivery.unconfirmed();
        self.stats.record_disconnect("local_close");
        self.commands.push_back(Command::Release);
        info!("closed with code {code}");
        self.events.push_back(Event::Disconnected {
            reason: DisconnectReason::LocalClose { code },
            unconfirmed,
            requeued,
        });
        self.events.push_back(Event::Closed { code: Some(code) });
        Phase::Stopped
    }

    /// A link ended without the application asking: requeue, report, reschedule.
    pub(super) fn link_lost(
        &mut self,
        link: Box<LinkState>,
        reason: DisconnectReason,
        now: Instant,
    ) -> Phase {
        let requeued = self.outbox.requeue();
        let unconfirmed = link.delivery.unconfirmed();
        self.stats.record_disconnect(reason.kind());
        self.commands.push_back(Command::Release);
        info!("disconnected: {reason} ({unconfirmed} messages unconfirmed, {requeued} requeued)");
        let is_final = matches!(&reason, DisconnectReason::ClosedByServer { code: Some(c), .. } if self.config.final_close_codes.contains(c));
        self.events.push_back(Event::Disconnected {
            reason,
            unconfirmed,
            requeued,
        });
        if is_final {
            return self.give_up();
        }
        let decision = self.backoff.on_link_lost(now);
        self.schedule(decision, now)
    }
}

/// The write-timeout verdict: a write without progress for `write_timeout` means the server
/// is not reading, a dead link.
fn check_stall(link: &LinkState, now: Instant) -> Result<(), DisconnectReason> {
    match link.stall_deadline() {
        Some(deadline) if now >= deadline => {
            let e = io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "write made no progress for {} ms: the server is not reading",
                    link.write_timeout.as_millis()
                ),
            );
            Err(DisconnectReason::Io(Error::Io(e)))
        }
        _ => Ok(()),
    }
}
