//! The connect phase: resolve, TCP to every address (staggered, see `candidates.rs`), proxy
//! CONNECT, TLS, HTTP upgrade, all under the one `connect_timeout` deadline.
#![forbid(unsafe_code)]

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use log::info;

use super::candidates::{start_due, start_tcp, Candidates};
use super::link::LinkState;
use super::{Command, Phase, Session};
use crate::dns::{Lookup, SystemConfig};
use crate::endpoint::{Endpoint, Scheme};
use crate::head::{HeadReader, Parsed};
use crate::request::UpgradeRequest;
use crate::{AttemptRequest, Error, Event};

/// One attempt's target and upgrade request, made (with the request hook's changes) when the
/// attempt starts.
struct Target {
    url: String,
    endpoint: Endpoint,
    request: UpgradeRequest,
}

/// An attempt under way.
pub(super) struct Attempt {
    pub number: u64,
    started: Instant,
    /// `started + connect_timeout`: every step ends by then.
    deadline: Instant,
    target: Target,
    /// The host looked up and connected to: the proxy's, or the server's.
    host: String,
    port: u16,
    step: Step,
    /// The address that connected.
    peer: Option<SocketAddr>,
}

enum Step {
    /// Waiting for the resolver configuration (`Command::LoadResolver`).
    LoadingResolver,
    Resolving(Box<Lookup>),
    Tcp(Candidates),
    Proxy(HeadReader),
    Tls,
    Upgrade(HeadReader),
}

impl Attempt {
    /// When the attempt next needs the clock: its deadline, or an earlier step deadline.
    pub fn next_timeout(&self) -> Instant {
        let step = match &self.step {
            Step::Resolving(lookup) => lookup.poll_timeout(),
            Step::Tcp(c) if c.next < c.addrs.len() => Some(c.next_start),
            _ => None,
        };
        step.map_or(self.deadline, |t| t.min(self.deadline))
    }
}

impl Session {
    /// The next attempt is due at `now`: announce it, run the request hook, start it.
    pub(super) fn start_attempt(&mut self, now: Instant) -> Phase {
        self.attempt += 1;
        self.stats.attempts += 1;
        self.backoff.on_attempt();
        let number = self.attempt;
        let target = self.prepare(number);
        let url = match &target {
            Ok(t) => crate::redact::url(&t.url),
            Err(_) => crate::redact::url(&self.config.url),
        };
        self.events.push_back(Event::Connecting {
            attempt: number,
            url,
            at: now,
        });
        let target = match target {
            Ok(t) => t,
            Err(e) => return self.attempt_failed(number, e, now),
        };
        info!(
            "connecting to {} (attempt {number})",
            crate::redact::url(&target.url)
        );
        #[cfg(feature = "tls")]
        if self.config.tls.danger_accept_invalid_certs && target.endpoint.scheme == Scheme::Wss {
            log::warn!("insecure TLS: certificate and host name are NOT verified (danger_accept_invalid_certs)");
        }
        let (host, port) = match &self.proxy {
            Some(p) => (p.host.clone(), p.port),
            None => (target.endpoint.host.clone(), target.endpoint.port),
        };
        let mut attempt = Box::new(Attempt {
            number,
            started: now,
            deadline: now + self.config.connect_timeout,
            target,
            step: Step::LoadingResolver,
            host,
            port,
            peer: None,
        });
        // An address literal never touches the resolver.
        if let Ok(ip) = attempt.host.parse::<IpAddr>() {
            let addr = SocketAddr::new(ip, attempt.port);
            attempt.step = self.start_tcp(vec![addr], now);
        } else {
            self.commands.push_back(Command::LoadResolver);
        }
        Phase::Connecting(attempt)
    }

    /// The endpoint and upgrade request of this attempt, after the request hook had its say.
    fn prepare(&mut self, attempt: u64) -> Result<Target, Error> {
        let Some(hook) = self.hook.as_mut() else {
            let request =
                crate::request::build(&self.endpoint, &self.config.headers, &self.config)?;
            return Ok(Target {
                url: self.config.url.clone(),
                endpoint: self.endpoint.clone(),
                request,
            });
        };
        let mut req = AttemptRequest {
            attempt,
            url: self.config.url.clone(),
            headers: self.config.headers.clone(),
        };
        hook(&mut req);
        let endpoint = Endpoint::parse(&req.url)?;
        let request = crate::request::build(&endpoint, &req.headers, &self.config)?;
        Ok(Target {
            url: req.url,
            endpoint,
            request,
        })
    }

    /// The system's resolver configuration, as the driver read it at `now`.
    pub fn handle_resolver(&mut self, system: &SystemConfig, now: Instant) {
        let Phase::Connecting(attempt) = &mut self.phase else {
            return;
        };
        if !matches!(attempt.step, Step::LoadingResolver) {
            return;
        }
        let port = attempt.port;
        let from_hosts = system.hosts_lookup(&attempt.host);
        if !from_hosts.is_empty() {
            let addrs = from_hosts
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect();
            attempt.step = Step::Tcp(start_tcp(&mut self.commands, addrs, now));
            return;
        }
        let seed = self.rng.next_u64();
        let mut lookup = Box::new(Lookup::new(&attempt.host, system, now, seed));
        while let Some(d) = lookup.poll_transmit() {
            self.commands.push_back(Command::SendDatagram(d));
        }
        attempt.step = Step::Resolving(lookup);
        self.after_lookup(now);
    }

    /// A datagram arrived on a DNS socket.
    pub fn handle_datagram(&mut self, from: SocketAddr, payload: &[u8], now: Instant) {
        if let Phase::Connecting(attempt) = &mut self.phase {
            if let Step::Resolving(lookup) = &mut attempt.step {
                lookup.handle_datagram(from, payload, now);
                self.after_lookup(now);
            }
        }
    }

    /// Sends what the lookup wants sent; moves on when it has finished.
    fn after_lookup(&mut self, now: Instant) {
        let Phase::Connecting(attempt) = &mut self.phase else {
            return;
        };
        let Step::Resolving(lookup) = &mut attempt.step else {
            return;
        };
        while let Some(d) = lookup.poll_transmit() {
            self.commands.push_back(Command::SendDatagram(d));
        }
        match lookup.poll_result() {
            None => {}
            Some(Ok(ips)) if !ips.is_empty() => {
                let port = attempt.port;
                let addrs = ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect();
                attempt.step = Step::Tcp(start_tcp(&mut self.commands, addrs, now));
            }
            Some(result) => {
                let host = attempt.host.clone();
                let source = match result {
                    Err(e) => Some(io::Error::other(e)),
                    Ok(_) => None,
                };
                self.fail_now(Error::Resolve { host, source }, now);
            }
        }
    }

    fn start_tcp(&mut self, addrs: Vec<SocketAddr>, now: Instant) -> Step {
        Step::Tcp(start_tcp(&mut self.commands, addrs, now))
    }

    /// TCP candidate `id` connected (`Ok`) or failed.
    pub fn handle_tcp(&mut self, id: usize, result: io::Result<()>, now: Instant) {
        let Phase::Connecting(attempt) = &mut self.phase else {
            return;
        };
        let Step::Tcp(c) = &mut attempt.step else {
            return;
        };
        let Some(at) = c.pending.iter().position(|&p| p == id) else {
            return;
        };
        c.pending.swap_remove(at);
        match result {
            Ok(()) => {
                attempt.peer = c.addrs.get(id).copied();
                self.commands.push_back(Command::Choose { id });
                let step = self.after_tcp(now);
                if let Phase::Connecting(attempt) = &mut self.phase {
                    attempt.step = step;
                }
            }
            Err(e) => {
                c.last_error = Some(e);
                if c.next < c.addrs.len() {
                    // A failure starts the next address at once (RFC 8305 §5).
                    c.next_start = now;
                    start_due(&mut self.commands, c, now);
                } else if c.pending.is_empty() {
                    let e = c
                        .last_error
                        .take()
                        .unwrap_or_else(|| io::ErrorKind::NotConnected.into());
                    self.fail_now(Error::Io(e), now);
                }
            }
        }
    }

    /// The step after TCP: the proxy's tunnel, TLS, or the upgrade.
    fn after_tcp(&mut self, now: Instant) -> Step {
        let Phase::Connecting(attempt) = &self.phase else {
            return Step::Tls;
        };
        if let Some(p) = &self.proxy {
            let e = &attempt.target.endpoint;
            let target = if e.host.contains(':') {
                format!("[{}]:{}", e.host, e.port)
            } else {
                format!("{}:{}", e.host, e.port)
            };
            self.commands
                .push_back(Command::Write(crate::proxy::connect_request(p, &target)));
            return Step::Proxy(HeadReader::new(crate::proxy::MAX_RESPONSE));
        }
        self.after_tunnel(now)
    }

    /// The step after TCP (and the proxy): TLS for wss, else the upgrade.
    fn after_tunnel(&mut self, _now: Instant) -> Step {
        let Phase::Connecting(attempt) = &self.phase else {
            return Step::Tls;
        };
        match attempt.target.endpoint.scheme {
            Scheme::Wss => {
                self.commands.push_back(Command::StartTls {
                    host: attempt.target.endpoint.host.clone(),
                });
                Step::Tls
            }
            Scheme::Ws => self.start_upgrade(),
        }
    }

    fn start_upgrade(&mut self) -> Step {
        if let Phase::Connecting(attempt) = &self.phase {
            let bytes = attempt.target.request.to_bytes();
            self.commands.push_back(Command::Write(bytes));
        }
        Step::Upgrade(HeadReader::new(crate::upgrade::MAX_REPLY))
    }

    /// The TLS handshake ended.
    pub fn handle_tls(&mut self, result: Result<(), Error>, now: Instant) {
        let Phase::Connecting(attempt) = &self.phase else {
            return;
        };
        if !matches!(attempt.step, Step::Tls) {
            return;
        }
        match result {
            Ok(()) => {
                let step = self.start_upgrade();
                if let Phase::Connecting(attempt) = &mut self.phase {
                    attempt.step = step;
                }
            }
            Err(e) => self.fail_now(e, now),
        }
    }

    /// Reply bytes arrived on the connection (proxy or upgrade step).
    pub fn handle_connect_bytes(&mut self, bytes: &[u8], now: Instant) {
        let Phase::Connecting(attempt) = &mut self.phase else {
            return;
        };
        match &mut attempt.step {
            Step::Proxy(reader) => match reader.feed(bytes) {
                Ok(Parsed::Partial) => {}
                Ok(Parsed::Complete(head, tail)) => match crate::proxy::check_reply(&head) {
                    Ok(()) => {
                        if !tail.is_empty() {
                            self.commands.push_back(Command::Unread(tail));
                        }
                        let step = self.after_tunnel(now);
                        if let Phase::Connecting(attempt) = &mut self.phase {
                            attempt.step = step;
                        }
                    }
                    Err(e) => self.fail_now(e, now),
                },
                Err(e) => self.fail_now(crate::proxy::head_error(e), now),
            },
            Step::Upgrade(reader) => match reader.feed(bytes) {
                Ok(Parsed::Partial) => {}
                Ok(Parsed::Complete(head, tail)) => {
                    match crate::upgrade::check_reply(&attempt.target.request, &head) {
                        Ok(protocol) => self.opened(protocol, tail, now),
                        Err(e) => self.fail_now(e, now),
                    }
                }
                Err(e) => self.fail_now(crate::upgrade::head_error(e), now),
            },
            _ => {}
        }
    }

    /// The connection ended or failed during the proxy, TLS or upgrade step. An end of
    /// stream is `None`.
    pub fn handle_connect_error(&mut self, error: Option<Error>, now: Instant) {
        let Phase::Connecting(attempt) = &self.phase else {
            return;
        };
        let error = match (error, &attempt.step) {
            (Some(e), _) => e,
            (None, Step::Proxy(_)) => crate::proxy::closed_early(),
            (None, _) => Error::Io(io::ErrorKind::UnexpectedEof.into()),
        };
        self.fail_now(error, now);
    }

    /// The upgrade succeeded: the link is open.
    fn opened(&mut self, protocol: Option<String>, tail: Vec<u8>, now: Instant) {
        let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
        let Phase::Connecting(attempt) = phase else {
            self.phase = phase;
            return;
        };
        self.commands.push_back(Command::Open { tail });
        self.backoff.on_connected(now);
        self.stats.connects += 1;
        self.stats.connected_since = Some(now);
        let handshake = now.saturating_duration_since(attempt.started);
        match attempt.peer {
            Some(peer) => info!(
                "connected to {peer} (attempt {}, {} ms)",
                attempt.number,
                handshake.as_millis()
            ),
            None => info!("connected (attempt {})", attempt.number),
        }
        self.events.push_back(Event::Connected {
            attempt: attempt.number,
            handshake,
            protocol,
        });
        let hold = self.hello_from_application;
        if !hold {
            if let Some(hello) = self.hello.as_mut() {
                let first = hello()
                    .into_iter()
                    .map(|m| crate::outbox::Entry::new(super::into_wire(m)))
                    .collect();
                self.outbox.push_front(first);
            }
        }
        self.phase = Phase::Open(Box::new(LinkState::new(&self.config, now, hold)));
    }

    /// Deadlines of the connect phase at `now`.
    pub(super) fn connect_timeout(&mut self, mut attempt: Box<Attempt>, now: Instant) -> Phase {
        if now >= attempt.deadline {
            let timeout = self.config.connect_timeout;
            return self.attempt_failed(attempt.number, Error::ConnectTimeout(timeout), now);
        }
        match &mut attempt.step {
            Step::Resolving(lookup) => {
                lookup.handle_timeout(now);
                self.phase = Phase::Connecting(attempt);
                self.after_lookup(now);
                return std::mem::replace(&mut self.phase, Phase::Stopped);
            }
            Step::Tcp(c) => start_due(&mut self.commands, c, now),
            _ => {}
        }
        Phase::Connecting(attempt)
    }
}

#[cfg(test)]
impl Session {
    /// Puts the attempt in its TCP step over `addrs`, as a resolver answer would.
    pub(super) fn start_tcp_for_test(&mut self, addrs: Vec<SocketAddr>, now: Instant) {
        if let Phase::Connecting(attempt) = &mut self.phase {
            attempt.step = Step::Tcp(start_tcp(&mut self.commands, addrs, now));
        }
    }
}
