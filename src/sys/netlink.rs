//! An rtnetlink socket subscribed to address, route and link changes, and the one lookup
//! that needs `getifaddrs(3)`: which interface holds an address. What the messages say is
//! parsed elsewhere (`net_watch/parse.rs`), without `unsafe`.
#![allow(unsafe_code)]

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The multicast groups: links (up, down, gone), IPv4 and IPv6 addresses and routes.
const GROUPS: u32 = (libc::RTMGRP_LINK
    | libc::RTMGRP_IPV4_IFADDR
    | libc::RTMGRP_IPV6_IFADDR
    | libc::RTMGRP_IPV4_ROUTE
    | libc::RTMGRP_IPV6_ROUTE) as u32;

/// A non-blocking `NETLINK_ROUTE` socket bound to [`GROUPS`]: readable only when the kernel
/// reports a change, so an idle network never wakes the loop.
#[derive(Debug)]
pub(crate) struct NetlinkSocket {
    fd: OwnedFd,
}

impl NetlinkSocket {
    /// Opens and subscribes.
    pub fn subscribe() -> io::Result<NetlinkSocket> {
        // SAFETY: plain integer arguments; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is fresh and owned by nothing else; dropping `socket` closes it.
        let socket = NetlinkSocket {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        };
        // SAFETY: an all-zero sockaddr_nl is valid (integers only); the fields are set below.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = GROUPS;
        // SAFETY: `addr` is a valid sockaddr_nl of the length given, for the whole call.
        let rc = unsafe {
            libc::bind(
                socket.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }

    /// Reads one datagram (several netlink messages) into `buf`, never blocking. `Ok(None)`:
    /// nothing waiting. A datagram longer than `buf` is cut (the parser then ignores the cut
    /// message); one that did not come from the kernel (another process with the right to
    /// send to the group) is dropped. `ENOBUFS` (the kernel dropped reports: too many changes
    /// at once) is an error for the caller to treat as "something changed".
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            // SAFETY: an all-zero sockaddr_nl is valid (integers only); recvfrom fills it.
            let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
            let mut from_len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes, and `from` for
            // `from_len` bytes, for the whole call.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_nl).cast(),
                    &mut from_len,
                )
            };
            if n >= 0 {
                if from.nl_pid != 0 {
                    log::debug!(
                        "netlink: datagram from port {} (not the kernel) dropped",
                        from.nl_pid
                    );
                    continue;
                }
                return Ok(Some(n as usize));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(None),
                _ => return Err(e),
            }
        }
    }
}

impl AsFd for NetlinkSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The index of the interface that holds `ip`, if one does (`getifaddrs(3)`, then
/// `if_nametoindex(3)`). Called once per opened link, only when network changes are watched.
pub(crate) fn interface_of(ip: IpAddr) -> Option<u32> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `list` receives a list that is freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let entry = unsafe { &*cur };
        cur = entry.ifa_next;
        // SAFETY: a non-null `ifa_addr` points at a sockaddr of the family it names.
        if !entry.ifa_addr.is_null() && unsafe { sockaddr_ip(entry.ifa_addr) } == Some(ip) {
            // SAFETY: `ifa_name` is a NUL-terminated string owned by the list.
            let index = unsafe { libc::if_nametoindex(entry.ifa_name) };
            found = (index != 0).then_some(index);
            break;
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// The address in a sockaddr, for the IP families.
///
/// # Safety
/// `sa` points at a valid sockaddr whose size matches its family.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    match i32::from((*sa).sa_family) {
        libc::AF_INET => {
            let sin = &*sa.cast::<libc::sockaddr_in>();
            Some(IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()))
        }
        libc::AF_INET6 => {
            let sin6 = &*sa.cast::<libc::sockaddr_in6>();
            Some(IpAddr::from(sin6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_found_and_an_unheld_address_is_not() {
        assert!(interface_of(IpAddr::from([127, 0, 0, 1])).is_some());
        assert_eq!(interface_of(IpAddr::from([192, 0, 2, 77])), None);
    }

    #[test]
    fn the_subscription_opens_and_reads_nothing_when_nothing_changed() {
        // Subscribing needs no privilege; a kernel without netlink route would fail here.
        let socket = NetlinkSocket::subscribe().expect("netlink socket");
        let mut buf = [0u8; 64];
        // Something may change on a busy test machine; only an error would be wrong.
        assert!(socket.recv(&mut buf).is_ok());
    }
}
