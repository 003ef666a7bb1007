//! Which sent messages the server has proven to have read: the one owner of that fact.
//!
//! The driver reports how many data frames the kernel has taken on the link (whole frames,
//! counted by the stream meter); the session moves that many messages out of the outbox's
//! in-flight list. A pong proves that the server read every data message handed over before
//! its ping (TCP keeps order); what the kernel took after the last such proof is the window of
//! possible loss if the link dies now (`unconfirmed` in `Event::Disconnected`).
#![forbid(unsafe_code)]

use crate::outbox::Outbox;

/// Delivery accounting of one link.
#[derive(Debug, Default)]
pub(crate) struct Delivery {
    /// Data frames the kernel took on this link, as last reported.
    taken: u64,
    /// Data frames proven read by the server.
    confirmed: u64,
}

impl Delivery {
    /// The kernel has taken `taken_total` data frames on this link since it opened: the
    /// outbox forgets the messages newly taken. Returns how many that was.
    pub fn kernel_took(&mut self, taken_total: u64, outbox: &mut Outbox) -> u64 {
        let new = taken_total.saturating_sub(self.taken);
        self.taken = self.taken.max(taken_total);
        outbox.delivered_to_kernel(new);
        new
    }

    /// Data frames handed to the link before a ping written now: the kernel's count plus
    /// those still in flight (written to tungstenite, not yet all taken by the kernel).
    pub fn before_ping(&self, outbox: &Outbox) -> u64 {
        self.taken + outbox.in_flight_len() as u64
    }

    /// A pong proved the server read the first `proven` data frames: the outbox forgets
    /// the messages it kept for that proof. Returns the highest journal id among them.
    pub fn proven(&mut self, proven: u64, outbox: &mut Outbox) -> Option<u64> {
        self.confirmed = self.confirmed.max(proven);
        outbox.proven(self.confirmed)
    }

    /// The server's Close reply follows everything we sent before our Close: all read.
    pub fn all_proven(&mut self, outbox: &mut Outbox) -> Option<u64> {
        self.proven(self.taken, outbox)
    }

    /// Frames the kernel took that no pong has proven read yet.
    pub fn unconfirmed(&self) -> u64 {
        self.taken.saturating_sub(self.confirmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Entry;
    use tungstenite::Message as Wire;

    #[test]
    fn a_pong_proves_only_what_was_handed_over_before_its_ping() {
        let mut outbox = Outbox::new(10, 100, false);
        let mut d = Delivery::default();
        outbox.push_in_flight(Entry::new(Wire::text("a")));
        outbox.push_in_flight(Entry::new(Wire::text("b")));
        assert_eq!(d.kernel_took(1, &mut outbox), 1);
        let before = d.before_ping(&outbox);
        assert_eq!(before, 2, "one taken, one still in flight");
        d.kernel_took(2, &mut outbox);
        outbox.push_in_flight(Entry::new(Wire::text("c")));
        d.kernel_took(3, &mut outbox);
        d.proven(before, &mut outbox);
        assert_eq!(d.unconfirmed(), 1, "c went after the ping");
        assert_eq!(outbox.len(), 0);
        d.all_proven(&mut outbox);
        assert_eq!(d.unconfirmed(), 0);
    }

    #[test]
    fn a_stale_report_never_moves_the_count_back() {
        let mut outbox = Outbox::new(10, 100, false);
        let mut d = Delivery::default();
        d.kernel_took(5, &mut outbox);
        assert_eq!(d.kernel_took(3, &mut outbox), 0);
        assert_eq!(d.unconfirmed(), 5);
    }
}
