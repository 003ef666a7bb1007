//! The bounded queue of messages the application asked to send and the kernel has not taken yet.
#![forbid(unsafe_code)]

use std::collections::VecDeque;

use tungstenite::Message as Wire;

use crate::Message;

/// One message in the outbox: its frame, and the id of its record in the durable journal, if
/// it has one (hello messages and in-memory outboxes have none).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub wire: Wire,
    pub id: Option<u64>,
}

impl Entry {
    pub fn new(wire: Wire) -> Entry {
        Entry { wire, id: None }
    }
}

/// Messages waiting to be written (`queued`), those handed to tungstenite whose frames the
/// kernel has not fully taken yet (`in_flight`), and, with at-least-once delivery, those the
/// kernel took that no Pong has proven read yet (`unproven`). All count against the limits,
/// so putting them back after a dead link never overflows.
///
/// Messages are kept in tungstenite's form: its payloads are reference-counted, so keeping a
/// copy while tungstenite writes one costs no allocation. An in-flight `None` stands for an
/// application heartbeat message: it occupies a data frame but is never re-sent.
#[derive(Debug)]
pub(crate) struct Outbox {
    queued: VecDeque<Entry>,
    in_flight: VecDeque<Option<Entry>>,
    /// `(frame ordinal on this link, message)`, oldest first.
    unproven: VecDeque<(u64, Entry)>,
    /// Data frames the kernel took on this link: the ordinal of the last one.
    taken: u64,
    keep_until_proven: bool,
    /// Messages in all three queues (heartbeat slots not counted): kept, not counted on each
    /// send.
    messages: usize,
    bytes: usize,
    unproven_bytes: usize,
    max_messages: usize,
    max_bytes: usize,
}

impl Outbox {
    /// An empty outbox; `keep_until_proven` for at-least-once delivery.
    pub fn new(max_messages: usize, max_bytes: usize, keep_until_proven: bool) -> Outbox {
        Outbox {
            queued: VecDeque::new(),
            in_flight: VecDeque::new(),
            unproven: VecDeque::new(),
            taken: 0,
            keep_until_proven,
            messages: 0,
            bytes: 0,
            unproven_bytes: 0,
            max_messages,
            max_bytes,
        }
    }

    /// Whether a message of `len` bytes fits within the limits.
    pub fn has_room_for(&self, len: usize) -> bool {
        self.len() < self.max_messages && self.bytes + len <= self.max_bytes
    }

    /// Queues `entry` behind the others, or hands it back when full.
    pub fn push(&mut self, entry: Entry) -> Result<(), Entry> {
        if !self.has_room_for(entry.wire.len()) {
            return Err(entry);
        }
        self.count_in(&entry);
        self.queued.push_back(entry);
        Ok(())
    }

    /// Puts `entries` in front of everything queued, in their order, whatever the limits:
    /// the hello of a new link, which must go first.
    pub fn push_front(&mut self, entries: Vec<Entry>) {
        for e in entries.into_iter().rev() {
            self.count_in(&e);
            self.queued.push_front(e);
        }
    }

    /// Queues a message restored from the durable outbox behind the others, whatever the
    /// limits: it was accepted once, it is not dropped now.
    pub fn push_restored(&mut self, entry: Entry) {
        self.count_in(&entry);
        self.queued.push_back(entry);
    }

    /// Drops the oldest message still waiting to be written, if there is one.
    pub fn drop_oldest_queued(&mut self) -> Option<Entry> {
        let e = self.queued.pop_front()?;
        self.count_out(&e);
        Some(e)
    }

    /// Records `entry` as handed to tungstenite without queuing it first (a direct send).
    pub fn push_in_flight(&mut self, entry: Entry) {
        self.count_in(&entry);
        self.in_flight.push_back(Some(entry));
    }

    /// Records an application heartbeat message handed to tungstenite.
    pub fn push_heartbeat_in_flight(&mut self) {
        self.in_flight.push_back(None);
    }

    /// The next queued message, moved to in-flight; returns a cheap clone to write.
    pub fn start_next(&mut self) -> Option<Wire> {
        let e = self.queued.pop_front()?;
        let wire = e.wire.clone();
        self.in_flight.push_back(Some(e));
        Some(wire)
    }

    /// The kernel took the frames of the `n` oldest in-flight messages: they are forgotten,
    /// or, with at-least-once delivery, kept until proven.
    pub fn delivered_to_kernel(&mut self, n: u64) {
        for _ in 0..n {
            let Some(slot) = self.in_flight.pop_front() else {
                break;
            };
            self.taken += 1;
            match slot {
                Some(e) if self.keep_until_proven => {
                    self.unproven_bytes += e.wire.len();
                    self.unproven.push_back((self.taken, e));
                }
                Some(e) => self.count_out(&e),
                None => {}
            }
        }
    }

    /// A Pong proved the server read the first `frames` data frames of this link: their
    /// messages are forgotten. Returns the highest journal id among them.
    pub fn proven(&mut self, frames: u64) -> Option<u64> {
        let mut last_id = None;
        while let Some((ordinal, _)) = self.unproven.front() {
            if *ordinal > frames {
                break;
            }
            if let Some((_, e)) = self.unproven.pop_front() {
                self.unproven_bytes -= e.wire.len();
                self.count_out(&e);
                last_id = e.id.or(last_id);
            }
        }
        last_id
    }

    /// The link ended: unproven and in-flight messages go back to the front of the queue, in
    /// their order, for the next link. Returns how many the kernel had taken (sent once
    /// already: possible duplicates).
    pub fn requeue(&mut self) -> u64 {
        while let Some(slot) = self.in_flight.pop_back() {
            if let Some(e) = slot {
                self.queued.push_front(e);
            }
        }
        let resent = self.unproven.len() as u64;
        while let Some((_, e)) = self.unproven.pop_back() {
            self.queued.push_front(e);
        }
        self.unproven_bytes = 0;
        self.taken = 0;
        resent
    }

    /// Whether messages awaiting proof hold half the room or more: time to ask for proof
    /// rather than wait for the next ping interval.
    pub fn unproven_heavy(&self) -> bool {
        !self.unproven.is_empty()
            && (self.unproven.len() * 2 >= self.max_messages
                || self.unproven_bytes * 2 >= self.max_bytes)
    }

    /// Removes and returns everything, in order (for an application that stops).
    pub fn drain_all(&mut self) -> Vec<Message> {
        self.requeue();
        self.bytes = 0;
        self.messages = 0;
        self.queued.drain(..).map(|e| from_wire(e.wire)).collect()
    }

    fn count_in(&mut self, e: &Entry) {
        self.bytes += e.wire.len();
        self.messages += 1;
    }

    fn count_out(&mut self, e: &Entry) {
        self.bytes -= e.wire.len();
        self.messages -= 1;
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
    /// Payload bytes kept (not yet taken by the kernel, or not yet proven read).
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

    fn text(s: &str) -> Entry {
        Entry::new(Wire::text(s))
    }

    #[test]
    fn full_outbox_hands_the_message_back() {
        let mut o = Outbox::new(2, 100, false);
        o.push(text("a")).unwrap();
        o.push(text("b")).unwrap();
        assert_eq!(o.push(text("c")), Err(text("c")));
        let mut o = Outbox::new(10, 5, false);
        o.push(text("abc")).unwrap();
        assert_eq!(o.push(text("def")), Err(text("def")));
        o.push(text("de")).unwrap();
        assert_eq!(o.bytes(), 5);
    }

    #[test]
    fn in_flight_messages_go_back_to_the_front_in_order() {
        let mut o = Outbox::new(10, 100, false);
        for s in ["1", "2", "3", "4"] {
            o.push(text(s)).unwrap();
        }
        assert_eq!(o.start_next(), Some(Wire::text("1")));
        assert_eq!(o.start_next(), Some(Wire::text("2")));
        o.delivered_to_kernel(1);
        assert_eq!(o.len(), 3);
        o.requeue();
        assert_eq!(
            o.drain_all(),
            vec![Message::text("2"), Message::text("3"), Message::text("4")]
        );
        assert_eq!(o.bytes(), 0);
    }

    #[test]
    fn in_flight_counts_against_the_limits() {
        let mut o = Outbox::new(2, 100, false);
        o.push_in_flight(text("x"));
        o.push_in_flight(text("y"));
        assert!(!o.has_room_for(1));
        o.delivered_to_kernel(5);
        assert_eq!((o.len(), o.bytes()), (0, 0));
    }

    #[test]
    fn the_kept_count_matches_the_queues() {
        let mut o = Outbox::new(10, 100, false);
        let counted = |o: &Outbox| o.queued.len() + o.in_flight.iter().flatten().count();
        o.push(text("a")).unwrap();
        o.push_in_flight(text("b"));
        o.push_heartbeat_in_flight();
        o.push(text("c")).unwrap();
        assert_eq!((o.len(), counted(&o)), (3, 3));
        o.start_next();
        o.delivered_to_kernel(2);
        assert_eq!((o.len(), counted(&o)), (2, 2));
        o.requeue();
        assert_eq!((o.len(), counted(&o)), (2, 2));
        o.drain_all();
        assert_eq!((o.len(), counted(&o)), (0, 0));
    }

    #[test]
    fn heartbeat_slots_take_a_frame_but_are_never_resent() {
        let mut o = Outbox::new(10, 100, false);
        o.push_in_flight(text("a"));
        o.push_heartbeat_in_flight();
        o.push_in_flight(text("b"));
        o.delivered_to_kernel(2);
        assert_eq!(o.len(), 1);
        o.push_heartbeat_in_flight();
        assert_eq!(o.drain_all(), vec![Message::text("b")]);
    }

    #[test]
    fn at_least_once_keeps_taken_messages_until_proven_and_requeues_them_in_order() {
        let mut o = Outbox::new(10, 100, true);
        for s in ["1", "2", "3"] {
            o.push(text(s)).unwrap();
        }
        o.start_next();
        o.start_next();
        o.start_next();
        o.delivered_to_kernel(3);
        assert_eq!(o.len(), 3, "taken but unproven: still kept");
        o.proven(1);
        assert_eq!(o.len(), 2);
        o.push(text("4")).unwrap();
        assert_eq!(o.requeue(), 2, "2 and 3 were sent once already");
        assert_eq!(
            o.drain_all(),
            vec![Message::text("2"), Message::text("3"), Message::text("4")]
        );
    }

    #[test]
    fn frame_ordinals_count_heartbeat_slots_and_restart_per_link() {
        let mut o = Outbox::new(10, 100, true);
        o.push_in_flight(text("a"));
        o.push_heartbeat_in_flight();
        o.push_in_flight(text("b"));
        o.delivered_to_kernel(3);
        o.proven(2);
        assert_eq!(o.len(), 1, "b is frame 3");
        o.requeue();
        o.start_next();
        o.delivered_to_kernel(1);
        o.proven(1);
        assert_eq!(o.len(), 0, "b is frame 1 of the new link");
    }

    #[test]
    fn drop_oldest_takes_only_what_waits_and_the_hello_goes_first() {
        let mut o = Outbox::new(2, 100, false);
        o.push_in_flight(text("on-the-wire"));
        o.push(text("old")).unwrap();
        assert_eq!(
            o.drop_oldest_queued().map(|e| e.wire),
            Some(Wire::text("old"))
        );
        assert_eq!(o.drop_oldest_queued(), None, "never one already written");
        o.push(text("new")).unwrap();
        o.push_front(vec![text("hello")]);
        o.requeue();
        assert_eq!(
            o.drain_all(),
            vec![
                Message::text("on-the-wire"),
                Message::text("hello"),
                Message::text("new")
            ]
        );
    }
}
