//! The bounded queue of messages the application asked to send and the kernel has not taken yet.
#![forbid(unsafe_code)]

use std::collections::VecDeque;

use tungstenite::Message as Wire;

use crate::Message;

/// Messages waiting to be written (`queued`) plus those handed to tungstenite whose frames the
/// kernel has not fully taken yet (`in_flight`). Both count against the limits, so putting
/// in-flight messages back after a dead link never overflows.
///
/// Messages are kept in tungstenite's form: its payloads are reference-counted, so keeping a
/// copy while tungstenite writes one costs no allocation. An in-flight `None` stands for an
/// application heartbeat message: it occupies a data frame but is never re-sent.
#[derive(Debug)]
pub(crate) struct Outbox {
    queued: VecDeque<Wire>,
    in_flight: VecDeque<Option<Wire>>,
    /// Messages in both queues (heartbeat slots not counted): kept, not counted on each send.
    messages: usize,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
}

impl Outbox {
    pub fn new(max_messages: usize, max_bytes: usize) -> Outbox {
        Outbox {
            queued: VecDeque::new(),
            in_flight: VecDeque::new(),
            messages: 0,
            bytes: 0,
            max_messages,
            max_bytes,
        }
    }

    /// Whether a message of `len` bytes fits within the limits.
    pub fn has_room_for(&self, len: usize) -> bool {
        self.len() < self.max_messages && self.bytes + len <= self.max_bytes
    }

    /// Queues `msg` behind the others, or hands it back when full.
    pub fn push(&mut self, msg: Wire) -> Result<(), Wire> {
        if !self.has_room_for(msg.len()) {
            return Err(msg);
        }
        self.bytes += msg.len();
        self.messages += 1;
        self.queued.push_back(msg);
        Ok(())
    }

    /// Records `msg` as handed to tungstenite without queuing it first (a direct send).
    pub fn push_in_flight(&mut self, msg: Wire) {
        self.bytes += msg.len();
        self.messages += 1;
        self.in_flight.push_back(Some(msg));
    }

    /// Records an application heartbeat message handed to tungstenite.
    pub fn push_heartbeat_in_flight(&mut self) {
        self.in_flight.push_back(None);
    }

    /// The next queued message, moved to in-flight; returns a cheap clone to write.
    pub fn start_next(&mut self) -> Option<Wire> {
        let msg = self.queued.pop_front()?;
        self.in_flight.push_back(Some(msg.clone()));
        Some(msg)
    }

    /// The kernel took the frames of the `n` oldest in-flight messages.
    pub fn delivered_to_kernel(&mut self, n: u64) {
        for _ in 0..n {
            match self.in_flight.pop_front() {
                Some(Some(m)) => {
                    self.bytes -= m.len();
                    self.messages -= 1;
                }
                Some(None) => {}
                None => break,
            }
        }
    }

    /// The link died: in-flight messages go back to the front, in their order.
    pub fn requeue_in_flight(&mut self) {
        while let Some(m) = self.in_flight.pop_back() {
            if let Some(m) = m {
                self.queued.push_front(m);
            }
        }
    }

    /// Removes and returns everything, in order (for an application that stops).
    pub fn drain_all(&mut self) -> Vec<Message> {
        self.requeue_in_flight();
        self.bytes = 0;
        self.messages = 0;
        self.queued.drain(..).map(from_wire).collect()
    }

    pub fn queued_len(&self) -> usize {
        self.queued.len()
    }
    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }
    pub fn len(&self) -> usize {
        self.messages
    }
    /// Payload bytes not yet taken by the kernel.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Back to the application's form, without copying (data messages only).
pub(crate) fn from_wire(m: Wire) -> Message {
    match m {
        Wire::Text(t) => Message::Text(t),
        other => Message::Binary(other.into_data()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Wire {
        Wire::text(s)
    }

    #[test]
    fn full_outbox_hands_the_message_back() {
        let mut o = Outbox::new(2, 100);
        o.push(text("a")).unwrap();
        o.push(text("b")).unwrap();
        assert_eq!(o.push(text("c")), Err(text("c")));
        let mut o = Outbox::new(10, 5);
        o.push(text("abc")).unwrap();
        assert_eq!(o.push(text("def")), Err(text("def")));
        o.push(text("de")).unwrap();
        assert_eq!(o.bytes(), 5);
    }

    #[test]
    fn in_flight_messages_go_back_to_the_front_in_order() {
        let mut o = Outbox::new(10, 100);
        for s in ["1", "2", "3", "4"] {
            o.push(text(s)).unwrap();
        }
        assert_eq!(o.start_next(), Some(text("1")));
        assert_eq!(o.start_next(), Some(text("2")));
        o.delivered_to_kernel(1);
        assert_eq!(o.len(), 3);
        o.requeue_in_flight();
        assert_eq!(
            o.drain_all(),
            vec![Message::text("2"), Message::text("3"), Message::text("4")]
        );
        assert_eq!(o.bytes(), 0);
    }

    #[test]
    fn in_flight_counts_against_the_limits() {
        let mut o = Outbox::new(2, 100);
        o.push_in_flight(text("x"));
        o.push_in_flight(text("y"));
        assert!(!o.has_room_for(1));
        o.delivered_to_kernel(5);
        assert_eq!((o.len(), o.bytes()), (0, 0));
    }

    #[test]
    fn the_kept_count_matches_the_queues() {
        let mut o = Outbox::new(10, 100);
        let counted = |o: &Outbox| o.queued.len() + o.in_flight.iter().flatten().count();
        o.push(text("a")).unwrap();
        o.push_in_flight(text("b"));
        o.push_heartbeat_in_flight();
        o.push(text("c")).unwrap();
        assert_eq!((o.len(), counted(&o)), (3, 3));
        o.start_next();
        o.delivered_to_kernel(2);
        assert_eq!((o.len(), counted(&o)), (2, 2));
        o.requeue_in_flight();
        assert_eq!((o.len(), counted(&o)), (2, 2));
        o.drain_all();
        assert_eq!((o.len(), counted(&o)), (0, 0));
    }

    #[test]
    fn heartbeat_slots_take_a_frame_but_are_never_resent() {
        let mut o = Outbox::new(10, 100);
        o.push_in_flight(text("a"));
        o.push_heartbeat_in_flight();
        o.push_in_flight(text("b"));
        o.delivered_to_kernel(2);
        assert_eq!(o.len(), 1);
        o.push_heartbeat_in_flight();
        assert_eq!(o.drain_all(), vec![Message::text("b")]);
    }
}
