//! One query of a lookup (the A or the AAAA one) and the tries it has on the wire.
#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::wire::Family;

/// How one query (one family, one candidate name) ended.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Outcome {
    /// Still waiting for an answer.
    Pending,
    /// Addresses, in answer order.
    Addresses(Vec<IpAddr>),
    /// NOERROR without an address: the name exists without this family.
    NoData,
    /// NXDOMAIN.
    NxDomain,
    /// Every try got a server error; the last response code.
    Failed(u16),
    /// Every try went unanswered.
    TimedOut,
}

/// A query on the wire: an answer must come from `to` and carry `id`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sent {
    /// The server it went to.
    pub(super) to: SocketAddr,
    /// Its random message id.
    pub(super) id: u16,
}

/// The A or the AAAA query for the current candidate.
#[derive(Debug)]
pub(super) struct Query {
    /// What it asks for.
    pub(super) family: Family,
    /// Where it stands.
    pub(super) outcome: Outcome,
    /// Every try still awaiting an answer: a late answer from a server we gave up on is still
    /// welcome (on a lossy link it is often the first to arrive). The last one is the current.
    pub(super) sent: Vec<Sent>,
    /// Tries so far (one per datagram).
    pub(super) tries: u32,
    /// Index of the server the current try went to.
    pub(super) server: usize,
    /// When the current try times out.
    pub(super) deadline: Instant,
}

impl Query {
    /// A query for `family` that has not been sent yet.
    pub(super) fn new(family: Family, server: usize, now: Instant) -> Query {
        Query {
            family,
            outcome: Outcome::Pending,
            sent: Vec::new(),
            tries: 0,
            server,
            deadline: now,
        }
    }

    /// Whether it still waits for an answer.
    pub(super) fn is_pending(&self) -> bool {
        self.outcome == Outcome::Pending
    }

    /// Which try (index into `sent`) a datagram with `id` from `from` would answer.
    pub(super) fn try_answered(&self, id: u16, from: SocketAddr) -> Option<usize> {
        self.sent
            .iter()
            .position(|s| s.id == id && same(s.to, from))
    }
}

/// Whether an answer from `from` comes from server `to`: same address and port. An IPv4
/// address seen through a dual-stack socket (`::ffff:a.b.c.d`) is the same server; flow labels
/// and scope ids are not compared (the kernel fills them in on receipt).
fn same(to: SocketAddr, from: SocketAddr) -> bool {
    to.port() == from.port() && to.ip().to_canonical() == from.ip().to_canonical()
}
