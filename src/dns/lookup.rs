//! One name lookup as a sans-IO state machine: time and datagrams come in as arguments,
//! datagrams to send and the next wake-up go out. No clock, socket or file is touched here, so
//! every retry schedule is exact and testable on a fake clock.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::conf::SystemConfig;
use super::error::LookupError;
use super::query::{Outcome, Query, Sent};
use super::search::candidates;
use super::wire::{self, Family, RCODE_FORMERR, RCODE_NOERROR, RCODE_NXDOMAIN};
use crate::backoff::SplitMix64;

/// RFC 8305 §3 "Resolution Delay": once one family has addresses, the other gets this long.
pub(crate) const RESOLUTION_DELAY: Duration = Duration::from_millis(50);

/// A UDP datagram for the driver to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Datagram {
    /// The name server it goes to (port 53).
    pub to: SocketAddr,
    /// The DNS query.
    pub payload: Vec<u8>,
}

/// Resolves one name to addresses (A and AAAA in parallel) the way glibc's stub resolver does
/// for the common cases: `/etc/hosts` first, then the search list, the name servers in order
/// (or rotated), `timeout` per try and `attempts` rounds. See the module docs for the driver
/// loop.
#[derive(Debug)]
pub(crate) struct Lookup {
    /// The name as the caller gave it, for errors.
    name: String,
    /// The names to ask for, in order (the search list applied).
    candidates: Vec<String>,
    /// Index of the candidate being asked for.
    candidate: usize,
    /// The name servers.
    servers: Vec<SocketAddr>,
    /// The server every query starts with (0 unless `rotate`).
    first_server: usize,
    /// How long one try waits.
    timeout: Duration,
    /// Tries per query: `attempts` rounds over all servers.
    max_tries: u32,
    /// Query ids and the rotate start; only as unpredictable as the seed.
    rng: SplitMix64,
    /// Whether queries carry an EDNS0 OPT record; off after the first FORMERR.
    edns: bool,
    /// The AAAA and the A query, in the order their addresses are returned.
    queries: [Query; 2],
    /// Set when one family has addresses and the other is still pending (RFC 8305 §3).
    resolution_deadline: Option<Instant>,
    /// Some candidate existed without addresses: the final error is NoAddress, not NotFound.
    saw_no_data: bool,
    /// Some candidate failed with server errors: its last response code.
    saw_failure: Option<u16>,
    /// Datagrams for the driver to send.
    outbox: VecDeque<Datagram>,
    /// Set once finished.
    result: Option<Result<Vec<IpAddr>, LookupError>>,
}

impl Lookup {
    /// Starts resolving `name` (A and AAAA in parallel). `seed` randomises query ids: pass a
    /// fresh random one (an off-path attacker must guess id and source port, so the driver
    /// should also send from a socket bound to port 0). An IP literal or an `/etc/hosts` entry
    /// finishes at once, without a datagram.
    pub fn new(name: &str, config: &SystemConfig, now: Instant, seed: u64) -> Lookup {
        let mut rng = SplitMix64::new(seed);
        let servers = config.nameservers.clone();
        let first_server = match (config.rotate, servers.len()) {
            (true, n) if n > 1 => (rng.next_u64() % n as u64) as usize,
            _ => 0,
        };
        let mut lookup = Lookup {
            name: name.to_owned(),
            candidates: candidates(name, config),
            candidate: 0,
            max_tries: config.attempts.max(1).saturating_mul(servers.len() as u32),
            servers,
            first_server,
            timeout: config.timeout,
            rng,
            queries: [
                Query::new(Family::V6, first_server, now),
                Query::new(Family::V4, first_server, now),
            ],
            edns: true,
            resolution_deadline: None,
            saw_no_data: false,
            saw_failure: None,
            outbox: VecDeque::new(),
            result: None,
        };
        let local = match name.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => config.hosts_lookup(name),
        };
        if !local.is_empty() {
            lookup.finish(Ok(v6_first(local)));
        } else if lookup.candidates.is_empty() {
            lookup.finish(Err(LookupError::NotFound {
                name: name.to_owned(),
            }));
        } else if lookup.servers.is_empty() {
            lookup.finish(Err(LookupError::Timeout));
        } else {
            lookup.start_candidate(now);
        }
        lookup
    }

    /// The next datagram to send now (call until None after every `handle_*`).
    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.outbox.pop_front()
    }

    /// A datagram arrived from `from`. Anything that does not answer an outstanding query
    /// (wrong source address/port, id, question name/type/class, not a response) is ignored:
    /// an off-path attacker must guess id and port.
    pub fn handle_datagram(&mut self, from: SocketAddr, payload: &[u8], now: Instant) {
        if self.result.is_some() {
            return;
        }
        let Some(id) = wire::answer_id(payload) else {
            return;
        };
        let Some(name) = self.candidates.get(self.candidate) else {
            return;
        };
        let found = self.queries.iter().enumerate().find_map(|(index, query)| {
            if !query.is_pending() {
                return None;
            }
            let position = query.try_answered(id, from)?;
            // Parsed per query: a matching id and source is not enough, the question must be
            // ours too (and the A and AAAA ids may collide).
            let answer = wire::parse_answer(payload, name, query.family)?;
            Some((index, position, answer))
        });
        if let Some((index, position, answer)) = found {
            let sent = &mut self.queries[index].sent;
            let current = position + 1 == sent.len();
            sent.remove(position); // answered: a replay of it is ignored
            self.on_answer(index, current, answer, now);
            self.settle(now);
        }
    }

    /// Time passed: retransmit to the next server / next attempt, or fail.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.result.is_some() {
            return;
        }
        if self.resolution_deadline.is_some_and(|at| at <= now) {
            let addresses = self.addresses();
            self.finish(Ok(addresses));
            return;
        }
        for index in 0..self.queries.len() {
            let query = &self.queries[index];
            if query.is_pending() && query.deadline <= now {
                self.next_try(index, true, Outcome::TimedOut, now);
            }
        }
        self.settle(now);
    }

    /// When `handle_timeout` must next be called; None when finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.result.is_some() {
            return None;
        }
        let tries = self.queries.iter().filter(|q| q.is_pending());
        tries
            .map(|q| q.deadline)
            .chain(self.resolution_deadline)
            .min()
    }

    /// Some once finished: the addresses (IPv6 first, then IPv4, each in answer order), or why
    /// not. The same value on every call after that.
    pub fn poll_result(&mut self) -> Option<Result<Vec<IpAddr>, LookupError>> {
        self.result.clone()
    }

    /// Acts on an answer to query `index`; `current` says whether it answers the latest try.
    fn on_answer(&mut self, index: usize, current: bool, answer: wire::Answer, now: Instant) {
        let outcome = match answer.rcode {
            RCODE_NOERROR if !answer.addresses.is_empty() => Outcome::Addresses(answer.addresses),
            // A cut answer without addresses says nothing; without TCP, another server may
            // answer in full.
            RCODE_NOERROR if answer.truncated => Outcome::Failed(0),
            RCODE_NOERROR => Outcome::NoData,
            RCODE_NXDOMAIN => Outcome::NxDomain,
            rcode => Outcome::Failed(rcode),
        };
        match outcome {
            // An EDNS-intolerant server (RFC 6891 §7): ask it again, and everyone after it,
            // without the OPT record (glibc sends none unless told to).
            Outcome::Failed(RCODE_FORMERR) if current && self.edns => {
                self.edns = false;
                self.next_try(index, false, outcome, now);
            }
            // A server error moves on to the next server at once, but only from the try in
            // charge: an old server's late error must not cut short the wait on the new one.
            Outcome::Failed(_) if current => self.next_try(index, true, outcome, now),
            Outcome::Failed(_) => {}
            outcome => self.queries[index].outcome = outcome,
        }
    }

    /// Sends query `index` again (to the next server if `next_server`), or ends it with
    /// `exhausted` when every try is spent.
    fn next_try(&mut self, index: usize, next_server: bool, exhausted: Outcome, now: Instant) {
        let query = &mut self.queries[index];
        if query.tries >= self.max_tries {
            query.outcome = exhausted;
            return;
        }
        if next_server {
            query.server = (query.server + 1) % self.servers.len().max(1);
        }
        self.transmit(index, now);
    }

    /// Sends query `index` for the current candidate to its current server.
    fn transmit(&mut self, index: usize, now: Instant) {
        let id = (self.rng.next_u64() >> 48) as u16;
        let query = &mut self.queries[index];
        let (Some(&to), Some(name)) = (
            self.servers.get(query.server),
            self.candidates.get(self.candidate),
        ) else {
            return; // unreachable: `new` finishes at once without servers or candidates
        };
        query.tries += 1;
        query.deadline = now + self.timeout;
        // Candidates were checked with `wire::is_queryable`; should encoding fail anyway, the
        // try simply goes unanswered.
        if let Some(payload) = wire::encode_query(id, name, query.family, self.edns) {
            query.sent.push(Sent { to, id });
            self.outbox.push_back(Datagram { to, payload });
        }
    }

    /// Asks for the current candidate from the first server, both families at once.
    fn start_candidate(&mut self, now: Instant) {
        for index in 0..self.queries.len() {
            let family = self.queries[index].family;
            self.queries[index] = Query::new(family, self.first_server, now);
            self.transmit(index, now);
        }
    }

    /// Decides what the queries' outcomes mean: finish, wait a little for the other family,
    /// or go on with the next candidate.
    fn settle(&mut self, now: Instant) {
        if self.result.is_some() {
            return;
        }
        let [v6, v4] = [
            self.queries[0].outcome.clone(),
            self.queries[1].outcome.clone(),
        ];
        let has_addresses = |o: &Outcome| matches!(o, Outcome::Addresses(_));
        match (&v6, &v4) {
            (Outcome::Pending, Outcome::Pending) => {}
            (Outcome::Pending, other) | (other, Outcome::Pending) => {
                if has_addresses(other) && self.resolution_deadline.is_none() {
                    self.resolution_deadline = Some(now + RESOLUTION_DELAY);
                }
            }
            (v6, v4) if has_addresses(v6) || has_addresses(v4) => {
                let addresses = self.addresses();
                self.finish(Ok(addresses));
            }
            _ => {
                // Neither family has an address for this candidate: glibc's res_search rules.
                let outcomes = [v6, v4];
                if outcomes.contains(&Outcome::TimedOut) {
                    // The servers are unreachable; more candidates would only wait longer.
                    return self.finish(Err(LookupError::Timeout));
                }
                if outcomes.contains(&Outcome::NoData) {
                    self.saw_no_data = true;
                } else if let Some(rcode) = outcomes.iter().find_map(|o| match o {
                    Outcome::Failed(rcode) => Some(*rcode),
                    _ => None,
                }) {
                    self.saw_failure = Some(rcode);
                }
                if self.candidate + 1 < self.candidates.len() {
                    self.candidate += 1;
                    self.start_candidate(now);
                } else {
                    let name = self.name.clone();
                    self.finish(Err(match self.saw_failure {
                        _ if self.saw_no_data => LookupError::NoAddress { name },
                        Some(rcode) => LookupError::ServerFailure { rcode },
                        None => LookupError::NotFound { name },
                    }));
                }
            }
        }
    }

    /// The addresses found so far, IPv6 first.
    fn addresses(&self) -> Vec<IpAddr> {
        let found = self.queries.iter().filter_map(|q| match &q.outcome {
            Outcome::Addresses(addresses) => Some(addresses.iter().copied()),
            _ => None,
        });
        dedup(found.flatten().collect())
    }

    /// Ends the lookup: nothing more is sent or awaited.
    fn finish(&mut self, result: Result<Vec<IpAddr>, LookupError>) {
        self.result = Some(result);
        self.outbox.clear();
        self.resolution_deadline = None;
    }
}

/// IPv6 addresses first, then IPv4, each group in its original order.
fn v6_first(addresses: Vec<IpAddr>) -> Vec<IpAddr> {
    let (v6, v4): (Vec<IpAddr>, Vec<IpAddr>) = addresses.into_iter().partition(IpAddr::is_ipv6);
    dedup(v6.into_iter().chain(v4).collect())
}

/// Drops repeated addresses, keeping the first of each.
fn dedup(addresses: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut unique = Vec::with_capacity(addresses.len());
    for address in addresses {
        if !unique.contains(&address) {
            unique.push(address);
        }
    }
    unique
}
