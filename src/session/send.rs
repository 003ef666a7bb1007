//! The application's sends: whether a message is accepted (size, phase, outbox room and the
//! drop-oldest policy), and whether it goes straight out on the open link or waits in the
//! outbox behind what is already queued.
#![forbid(unsafe_code)]

use std::time::Instant;

use super::{into_wire, Command, Outgoing, Phase, Session};
use crate::outbox::{from_wire, Entry};
use crate::{Message, SendError};

impl Session {
    /// Whether `msg` would be accepted now (nothing changes): the durable outbox records a
    /// message only once it is sure to be accepted.
    pub fn check_send(&self, msg: Message) -> Result<Message, SendError> {
        if msg.len() > self.config.max_message_size {
            return Err(SendError::TooLarge(msg));
        }
        if matches!(self.phase, Phase::Stopped | Phase::Closing(_)) {
            return Err(SendError::Closed(msg));
        }
        let can_drop = self.config.outbox.when_full == crate::WhenFull::DropOldest
            && self.outbox.queued_len() > 0;
        if !self.outbox.has_room_for(msg.len()) && !can_drop {
            return Err(SendError::OutboxFull(msg));
        }
        Ok(msg)
    }

    /// Whether [`send`](Session::send) needs the time now: only when a message may join a
    /// burst (the application has not polled since the last flush). Otherwise the latest
    /// instant the session was given stands in, and the caller reads no clock.
    pub fn send_needs_clock(&self) -> bool {
        match &self.phase {
            Phase::Open(link) => link.writes.needs_clock(),
            _ => false,
        }
    }

    /// Accepts `msg` for sending at `now` (`None` when
    /// [`send_needs_clock`](Session::send_needs_clock) said no clock was needed):
    /// `Ok(Some(out))` means "write this on the link now" (it is already counted in flight),
    /// flushed at once or held for company as `out.flush` says (see `coalesce`); `Ok(None)`
    /// means it waits in the outbox. `id` is its record in the durable outbox, if there is one.
    pub fn send(
        &mut self,
        msg: Message,
        id: Option<u64>,
        now: Option<Instant>,
    ) -> Result<Option<Outgoing>, SendError> {
        let msg = self.check_send(msg)?;
        if !self.make_room(msg.len()) {
            return Err(SendError::OutboxFull(msg));
        }
        let wire = into_wire(msg);
        match &mut self.phase {
            // Straight out only when nothing waits before it: a send never overtakes the
            // backlog or the hello.
            Phase::Open(link)
                if !link.hold_outbox && self.outbox.queued_len() == 0 && link.can_write() =>
            {
                self.outbox.push_in_flight(Entry {
                    wire: wire.clone(),
                    id,
                });
                let flush = link.writes.flush_at_once(now.unwrap_or(self.latest_now));
                Ok(Some(Outgoing { wire, flush }))
            }
            _ => self
                .outbox
                .push(Entry { wire, id })
                .map(|()| None)
                .map_err(|e| SendError::OutboxFull(from_wire(e.wire))),
        }
    }

    /// Whether a message of `len` bytes fits, after dropping the oldest waiting messages if
    /// the policy says so.
    fn make_room(&mut self, len: usize) -> bool {
        while !self.outbox.has_room_for(len) {
            if self.config.outbox.when_full != crate::WhenFull::DropOldest {
                return false;
            }
            let Some(dropped) = self.outbox.drop_oldest_queued() else {
                return false;
            };
            if let Some(id) = dropped.id {
                self.commands.push_back(Command::Forget { id });
            }
            self.dropped += 1;
        }
        true
    }
}
