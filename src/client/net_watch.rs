//! The driver's side of network reports: the rtnetlink socket in the one `epoll` set, its
//! datagrams parsed and handed to the session, the route checks the session asks for, and
//! where a new link runs (source address, interface). Every judgement is the session's.
#![forbid(unsafe_code)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use crate::netlink::{for_each_change, NetChange};
use crate::session::{LinkPath, RouteCheck, Session};
use crate::sys::{Epoll, Interest, NetlinkSocket};

/// The netlink socket's token in the driver's epoll set.
pub(super) const TOKEN_NETLINK: u64 = 8;
/// Room for one datagram: the kernel sends one report per datagram (a link report with its
/// statistics is about 1.5 KB); a longer one is cut and its cut message ignored.
const DATAGRAM_ROOM: usize = 8192;
/// Datagrams read per wake: a burst beyond that waits for the next round (the socket stays
/// readable), so a storm of reports cannot hold the loop.
const MAX_DATAGRAMS: usize = 64;

/// The subscription and its buffer.
pub(super) struct NetWatch {
    socket: NetlinkSocket,
    buf: Vec<u8>,
}

impl NetWatch {
    /// Subscribes and joins `epoll`; a failure is a warning and the heartbeat alone judges.
    pub fn start(epoll: &Epoll) -> Option<NetWatch> {
        let subscribed = NetlinkSocket::subscribe().and_then(|socket| {
            epoll.add(socket.as_fd().as_raw_fd(), TOKEN_NETLINK, Interest::READ)?;
            Ok(socket)
        });
        match subscribed {
            Ok(socket) => Some(NetWatch {
                socket,
                buf: vec![0; DATAGRAM_ROOM],
            }),
            Err(e) => {
                log::warn!("cannot watch network changes (rtnetlink: {e}): the heartbeat alone will notice a lost link");
                None
            }
        }
    }

    /// Reads what the kernel reported and hands it to `session`.
    pub fn read(&mut self, session: &mut Session, now: Instant) {
        for _ in 0..MAX_DATAGRAMS {
            match self.socket.recv(&mut self.buf) {
                Ok(None) => return,
                Ok(Some(n)) => {
                    let datagram = self.buf.get(..n).unwrap_or_default();
                    for_each_change(datagram, |change| session.handle_network(change, now));
                }
                // The kernel dropped reports: anything may have changed.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    log::debug!("netlink: reports lost ({e})");
                    session.handle_network(NetChange::Overrun, now);
                }
                Err(e) => {
                    log::debug!("netlink: {e}");
                    return;
                }
            }
        }
    }
}

/// Where the link on `tcp` runs.
pub(super) fn link_path(tcp: &TcpStream) -> Option<LinkPath> {
    let local = tcp.local_addr().ok()?.ip();
    let peer = tcp.peer_addr().ok()?.ip();
    Some(LinkPath {
        local,
        peer,
        ifindex: crate::sys::interface_of(local),
    })
}

/// Whether the kernel has a route to `to` from `from` (any source when `None`): a UDP socket
/// bound to the source and connected to the server. A UDP `connect` only looks the route up
/// (no packet leaves, nothing waits), and it fails with `ENETUNREACH`/`EHOSTUNREACH` when
/// none exists; binding fails with `EADDRNOTAVAIL` when the source address is gone.
pub(super) fn check_route(from: Option<IpAddr>, to: IpAddr) -> RouteCheck {
    let any = match to {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let result = UdpSocket::bind(SocketAddr::new(from.unwrap_or(any), 0))
        // The port is never used: no datagram is sent.
        .and_then(|socket| socket.connect(SocketAddr::new(to, 9)));
    match result {
        Ok(()) => RouteCheck::Reachable,
        Err(e) if is_unreachable(&e) => RouteCheck::Unreachable,
        Err(e) => {
            log::debug!("route check to {to}: {e}");
            RouteCheck::Unknown
        }
    }
}

fn is_unreachable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EADDRNOTAVAIL | libc::EACCES)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_reachable_and_a_foreign_source_is_not() {
        let lo = IpAddr::from([127, 0, 0, 1]);
        assert_eq!(check_route(Some(lo), lo), RouteCheck::Reachable);
        assert_eq!(check_route(None, lo), RouteCheck::Reachable);
        // An address no interface holds cannot be a source.
        let foreign = IpAddr::from([192, 0, 2, 77]);
        assert_eq!(check_route(Some(foreign), lo), RouteCheck::Unreachable);
    }
}
