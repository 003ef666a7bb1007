//! The kernel's network reports, judged against the open link or the wait before the next
//! attempt. A report that concerns the link (its source address removed, its interface down,
//! no route to the server left) starts a probe: one ping at once, and the link is dead if its
//! pong does not come within `network.probe_timeout`. The link is never closed on a report
//! alone, because reports can be misleading (libwebsockets, which closes on route events, has
//! open bugs of exactly such false drops). While waiting to reconnect, a report after which
//! the kernel has a route to the server again brings the next attempt forward.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::link::LinkState;
use super::{Command, Phase, Session};
use crate::netlink::{covers, NetChange};
use crate::{DisconnectReason, Event, NetworkChange};

/// Where the open link runs: what a report must name to concern it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LinkPath {
    /// The link's source address (`getsockname`).
    pub local: IpAddr,
    /// The server's address (`getpeername`).
    pub peer: IpAddr,
    /// The interface that holds `local`, when it was found.
    pub ifindex: Option<u32>,
}

/// A probe in flight: ping `seq` must be answered by `deadline`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NetProbe {
    seq: u64,
    sent_at: Instant,
    pub deadline: Instant,
}

/// What the driver found when it asked the kernel for a route (see [`Command::CheckRoute`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RouteCheck {
    /// The kernel has a route from the source (when one was given) to the server.
    Reachable,
    /// It has none, or the source address is gone.
    Unreachable,
    /// The check failed for another reason: nothing is concluded.
    Unknown,
}

impl Session {
    /// The driver found where the link that just opened runs.
    pub fn set_link_path(&mut self, path: LinkPath) {
        self.last_peer = Some(path.peer);
        if let Phase::Open(link) = &mut self.phase {
            debug!(
                "link runs from {} (interface {:?}) to {}",
                path.local, path.ifindex, path.peer
            );
            link.path = Some(path);
        }
    }

    /// The kernel reported `change` at `now`.
    pub fn handle_network(&mut self, change: NetChange, now: Instant) {
        let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
        self.phase = match phase {
            Phase::Open(mut link) => {
                self.judge_for_link(&mut link, change, now);
                Phase::Open(link)
            }
            Phase::Waiting { at } if self.attempt > 0 && at > now => {
                self.judge_for_wait(at, change, now)
            }
            other => {
                debug!("network change ignored: {change:?}");
                other
            }
        };
    }

    /// Judges `change` while the attempt due at `at` waits.
    fn judge_for_wait(&mut self, at: Instant, change: NetChange, now: Instant) -> Phase {
        let back = match change {
            NetChange::AddressAdded { .. } | NetChange::Overrun => true,
            NetChange::Link { up, .. } => up,
            NetChange::Route {
                added,
                dst,
                prefix_len,
            } => added && self.last_peer.is_none_or(|p| covers(dst, prefix_len, p)),
            NetChange::AddressRemoved { .. } => false,
        };
        match (back, self.last_peer) {
            (true, Some(peer)) => self.check_route(None, peer),
            // The server's address was never learnt (its name never resolved): a route or an
            // interface coming back is the only sign worth an attempt.
            (true, None) if !matches!(change, NetChange::AddressAdded { .. }) => {
                return self.bring_forward(at, now);
            }
            _ => debug!("network change while waiting ignored: {change:?}"),
        }
        Phase::Waiting { at }
    }

    /// Judges `change` against the open link.
    fn judge_for_link(&mut self, link: &mut LinkState, change: NetChange, now: Instant) {
        let Some(path) = link.path else {
            debug!("network change ignored (the link's path is unknown): {change:?}");
            return;
        };
        match change {
            NetChange::AddressRemoved { addr, .. } if addr == path.local => {
                self.start_probe(link, NetworkChange::AddressRemoved(addr), now);
            }
            NetChange::Link { ifindex, up: false } if Some(ifindex) == path.ifindex => {
                self.start_probe(link, NetworkChange::InterfaceDown(ifindex), now);
            }
            // Only a removed route that covered the server can have taken the last one away;
            // the kernel says whether another remains. After lost reports, it says too.
            NetChange::Route {
                added: false,
                dst,
                prefix_len,
            } if covers(dst, prefix_len, path.peer) => {
                self.check_route(Some(path.local), path.peer)
            }
            NetChange::Overrun => self.check_route(Some(path.local), path.peer),
            other => debug!("network change does not concern the link: {other:?}"),
        }
    }

    /// Asks the driver for a route check, once per burst of reports.
    fn check_route(&mut self, from: Option<IpAddr>, to: IpAddr) {
        if !self.route_check_queued {
            self.route_check_queued = true;
            self.commands.push_back(Command::CheckRoute { from, to });
        }
    }

    /// The result of [`Command::CheckRoute`], at `now`.
    pub fn handle_route_check(&mut self, result: RouteCheck, now: Instant) {
        self.route_check_queued = false;
        let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
        self.phase = match (phase, result) {
            (Phase::Open(mut link), RouteCheck::Unreachable) => {
                let peer = link.path.map(|p| p.peer);
                if let Some(peer) = peer {
                    self.start_probe(&mut link, NetworkChange::NoRoute(peer), now);
                }
                Phase::Open(link)
            }
            (Phase::Waiting { at }, RouteCheck::Reachable) if self.attempt > 0 && at > now => {
                self.bring_forward(at, now)
            }
            (other, result) => {
                debug!("route check: {result:?}: nothing to do");
                other
            }
        };
    }

    /// Sends the probe ping (unless one is in flight already).
    fn start_probe(&mut self, link: &mut LinkState, cause: NetworkChange, now: Instant) {
        if link.net_probe.is_some() {
            debug!("{cause}: a probe is in flight already");
            return;
        }
        self.events
            .push_back(Event::NetworkChanged { change: cause });
        let timeout = self.config.network.probe_timeout;
        warn!(
            "{cause}: probing the link (dead unless answered within {} ms)",
            timeout.as_millis()
        );
        let seq = link.heartbeat.next_seq();
        // A stalled socket takes no ping: then nothing can answer, and the verdict is dead
        // at the deadline, as it should be for a link whose address or route is gone.
        self.ping(link, seq, now);
        link.net_probe = Some(NetProbe {
            seq,
            sent_at: now,
            deadline: now + timeout,
        });
    }

    /// Brings the attempt due at `at` forward to `now`, or to the floor (`backoff.initial`
    /// after the wait began, or a `Retry-After`) when that is later.
    fn bring_forward(&mut self, at: Instant, now: Instant) -> Phase {
        let new_at = self.not_before.map_or(now, |t| t.max(now));
        if new_at >= at {
            debug!("network is back, but the next attempt may not come sooner");
            return Phase::Waiting { at };
        }
        let delay = new_at - now;
        info!(
            "network is back: next attempt in {} ms instead of {} ms",
            delay.as_millis(),
            (at - now).as_millis()
        );
        self.events.push_back(Event::NetworkChanged {
            change: NetworkChange::Restored,
        });
        self.events.push_back(Event::Reconnecting {
            attempt: self.attempt + 1,
            delay,
            at: new_at,
        });
        Phase::Waiting { at: new_at }
    }
}

impl LinkState {
    /// A pong for `seq` arrived at `now`: it answers the probe if it is the probe's or later.
    pub(super) fn probe_answered(&mut self, seq: u64, now: Instant) {
        if let Some(p) = self.net_probe {
            if seq >= p.seq {
                self.net_probe = None;
                warn!(
                    "probe answered after {} ms: the link survived the network change",
                    now.saturating_duration_since(p.sent_at).as_millis()
                );
            }
        }
    }

    /// The probe's verdict at `now`: a reason when it went unanswered until its deadline.
    pub(super) fn probe_verdict(&mut self, now: Instant) -> Option<DisconnectReason> {
        let p = self.net_probe.filter(|p| now >= p.deadline)?;
        self.net_probe = None;
        let waited = now.saturating_duration_since(p.sent_at);
        warn!(
            "probe unanswered for {} ms after a network change: link dead",
            waited.as_millis()
        );
        Some(DisconnectReason::HeartbeatTimeout {
            missed: 1,
            silent_for: now.saturating_duration_since(self.heartbeat.last_inbound()),
        })
    }
}

/// The floor of an attempt brought forward by a network report, for a wait that began at
/// `now` and ends at `at`: `backoff.initial` later, or `at` itself when the server asked
/// for the wait (`Retry-After`).
pub(super) fn floor(initial: Duration, retry_after: bool, now: Instant, at: Instant) -> Instant {
    if retry_after {
        at
    } else {
        (now + initial).min(at)
    }
}
