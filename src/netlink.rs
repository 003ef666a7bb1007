//! rtnetlink messages, parsed without `unsafe` and without trusting a single length: the
//! address, route and link reports the kernel multicasts (the socket is in `sys/netlink.rs`).
//! Only the few fields the session judges are read: which address came or went on which
//! interface, whether an interface is up, which prefix a route covers. Anything truncated,
//! oversized or unknown is skipped with a debug log, never a panic.
//!
//! Hand-written rather than `netlink-packet-route` (a dozen crates and tens of KB on armv7
//! for a few fixed layouts: `nlmsghdr`, `ifinfomsg`, `ifaddrmsg`, `rtmsg` and their
//! attributes). The layouts are the kernel's UAPI, in the host's byte order.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use log::debug;

/// A change the kernel reported, as the session judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NetChange {
    /// `addr` was added on interface `ifindex`.
    AddressAdded { ifindex: u32, addr: IpAddr },
    /// `addr` was removed from interface `ifindex`.
    AddressRemoved { ifindex: u32, addr: IpAddr },
    /// Interface `ifindex` is up and has carrier (`up`), or is down, lost carrier or is gone.
    Link { ifindex: u32, up: bool },
    /// A unicast route to `dst/prefix_len` was added or removed (the local table's entries
    /// and cached clones are not routes to a peer and are left out).
    Route {
        added: bool,
        dst: IpAddr,
        prefix_len: u8,
    },
    /// The kernel dropped reports (a burst overran the socket): anything may have changed.
    Overrun,
}

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_OVERRUN: u16 = 4;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;

const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;

const IFF_UP: u32 = 0x1;
const IFF_RUNNING: u32 = 0x40;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_TABLE: u16 = 15;
const RTN_UNICAST: u8 = 1;
const RT_TABLE_LOCAL: u32 = 255;
const RTM_F_CLONED: u32 = 0x200;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// Calls `each` with every change in one datagram from the socket, in order. A malformed
/// message ends the datagram (its length cannot be trusted to find the next one).
pub(crate) fn for_each_change(datagram: &[u8], mut each: impl FnMut(NetChange)) {
    let mut rest = datagram;
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32_at(rest, 0).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            debug!(
                "netlink: message length {len} with {} bytes left: ignored",
                rest.len()
            );
            return;
        }
        let kind = u16_at(rest, 4).unwrap_or(0);
        let body = rest.get(NLMSG_HDRLEN..len).unwrap_or_default();
        match parse_message(kind, body) {
            Some(Some(change)) => each(change),
            Some(None) => {}
            None => debug!("netlink: malformed message of type {kind}: ignored"),
        }
        // Messages are padded to 4 bytes; the last one may omit its padding.
        rest = rest.get(align4(len)..).unwrap_or_default();
    }
}

/// One message: `Some(None)` for a well-formed message that says nothing the session
/// needs, `None` for a malformed one.
fn parse_message(kind: u16, body: &[u8]) -> Option<Option<NetChange>> {
    match kind {
        RTM_NEWLINK | RTM_DELLINK => {
            let ifindex = u32_at(body, 4)?;
            let flags = u32_at(body, 8)?;
            attributes(body.get(IFINFOMSG_LEN..)?, |_, _| {})?;
            let up = kind == RTM_NEWLINK && flags & IFF_UP != 0 && flags & IFF_RUNNING != 0;
            Some(Some(NetChange::Link { ifindex, up }))
        }
        RTM_NEWADDR | RTM_DELADDR => {
            let family = *body.first()?;
            let ifindex = u32_at(body, 4)?;
            let (mut local, mut address) = (None, None);
            attributes(body.get(IFADDRMSG_LEN..)?, |t, v| match t {
                IFA_LOCAL => local = ip(family, v),
                IFA_ADDRESS => address = ip(family, v),
                _ => {}
            })?;
            // IPv4 gives the address itself as IFA_LOCAL (IFA_ADDRESS is the far end of a
            // point-to-point link); IPv6 gives only IFA_ADDRESS.
            let Some(addr) = local.or(address) else {
                return Some(None);
            };
            Some(Some(if kind == RTM_NEWADDR {
                NetChange::AddressAdded { ifindex, addr }
            } else {
                NetChange::AddressRemoved { ifindex, addr }
            }))
        }
        RTM_NEWROUTE | RTM_DELROUTE => {
            let family = *body.first()?;
            let prefix_len = *body.get(1)?;
            let mut table = u32::from(*body.get(4)?);
            let route_type = *body.get(7)?;
            let flags = u32_at(body, 8)?;
            let mut dst = None;
            attributes(body.get(RTMSG_LEN..)?, |t, v| match t {
                RTA_DST => dst = ip(family, v),
                RTA_TABLE => table = u32_at(v, 0).unwrap_or(table),
                _ => {}
            })?;
            let unspecified = match family {
                AF_INET => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                AF_INET6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                _ => return Some(None),
            };
            if route_type != RTN_UNICAST || table == RT_TABLE_LOCAL || flags & RTM_F_CLONED != 0 {
                return Some(None);
            }
            let max = if family == AF_INET { 32 } else { 128 };
            if prefix_len > max || (dst.is_none() && prefix_len != 0) {
                return None;
            }
            Some(Some(NetChange::Route {
                added: kind == RTM_NEWROUTE,
                dst: dst.unwrap_or(unspecified),
                prefix_len,
            }))
        }
        NLMSG_OVERRUN => Some(Some(NetChange::Overrun)),
        NLMSG_ERROR => Some(None),
        _ => Some(None),
    }
}

/// Calls `each(type, value)` for every attribute; `None` if one's length is out of bounds.
fn attributes(mut rest: &[u8], mut each: impl FnMut(u16, &[u8])) -> Option<()> {
    while !rest.is_empty() {
        let len = usize::from(u16_at(rest, 0)?);
        // The top bits of the type are flags (nested, network byte order).
        let kind = u16_at(rest, 2)? & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        each(kind, rest.get(4..len)?);
        rest = rest.get(align4(len)..).unwrap_or_default();
    }
    Some(())
}

/// An address attribute's value, for the message's family.
fn ip(family: u8, v: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
        AF_INET6 => Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
        _ => None,
    }
}

fn align4(len: usize) -> usize {
    len.saturating_add(3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Whether `addr` lies in `dst/prefix_len` (false across families).
pub(crate) fn covers(dst: IpAddr, prefix_len: u8, addr: IpAddr) -> bool {
    fn masked(bytes: &[u8], bits: u8) -> impl Iterator<Item = u8> + '_ {
        bytes.iter().enumerate().map(move |(i, b)| {
            let keep = (usize::from(bits)).saturating_sub(i * 8).min(8);
            let mask = if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
            b & mask
        })
    }
    match (dst, addr) {
        (IpAddr::V4(d), IpAddr::V4(a)) => {
            masked(&d.octets(), prefix_len).eq(masked(&a.octets(), prefix_len))
        }
        (IpAddr::V6(d), IpAddr::V6(a)) => {
            masked(&d.octets(), prefix_len).eq(masked(&a.octets(), prefix_len))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
