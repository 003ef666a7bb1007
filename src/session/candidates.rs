//! TCP candidates, in the style of RFC 8305 ("happy eyeballs"): families interleaved (the
//! resolver's first family first), and the next address started [`CONNECTION_ATTEMPT_DELAY`]
//! after the previous one, or at once when it fails, while the earlier ones keep going; the
//! first to connect wins. So a silent first address costs 250 ms, not the whole budget.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Command;

/// RFC 8305's recommended "Connection Attempt Delay": the next address starts this long after
/// the previous one unless that one failed sooner.
pub(crate) const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// TCP connects in flight and to come.
pub(super) struct Candidates {
    pub addrs: Vec<SocketAddr>,
    /// Index of the next address to start.
    pub next: usize,
    /// Ids (indices into `addrs`) of connects in flight.
    pub pending: Vec<usize>,
    /// When the next address starts if none failed before.
    pub next_start: Instant,
    pub last_error: Option<io::Error>,
}

/// Starts the TCP step over `addrs`, families interleaved, the first address at once.
pub(super) fn start_tcp(
    commands: &mut VecDeque<Command>,
    addrs: Vec<SocketAddr>,
    now: Instant,
) -> Candidates {
    let mut c = Candidates {
        addrs: interleave(addrs),
        next: 0,
        pending: Vec::new(),
        next_start: now,
        last_error: None,
    };
    start_due(commands, &mut c, now);
    c
}

/// Starts the next address if its time has come.
pub(super) fn start_due(commands: &mut VecDeque<Command>, c: &mut Candidates, now: Instant) {
    if c.next < c.addrs.len() && now >= c.next_start {
        let id = c.next;
        c.next += 1;
        c.pending.push(id);
        c.next_start = now + CONNECTION_ATTEMPT_DELAY;
        commands.push_back(Command::Connect {
            id,
            addr: c.addrs[id],
        });
    }
}

/// Alternates address families, starting with the first address's (RFC 8305 §4).
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return addrs;
    };
    let first_v6 = first.is_ipv6();
    let (a, b): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|x| x.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}
