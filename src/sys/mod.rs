//! The crate's FFI, and its only `unsafe` code:
//! - `poll(2)` on one socket, to wait for input (or room to write) until a deadline;
//! - `recv(2)`/`send(2)` with `MSG_DONTWAIT`, so that one socket can be read blocking (while
//!   messages flow) and written without ever blocking;
//! - a non-blocking TCP `connect(2)`, which std does not offer (its `connect_timeout` blocks);
//! - `epoll(7)`, the one descriptor the driver waits on in every phase (and that an
//!   application's own `poll(2)` loop can wait on), and an `eventfd(2)` that wakes it;
//! - `flock(2)`, the outbox journal's lock against a second process on the same file;
//! - an rtnetlink socket for address, route and link changes, `getifaddrs(3)` to find the
//!   interface of the link's source address, and `TCP_USER_TIMEOUT`.
//!
//! Why not only the socket read timeout: Linux runs `SO_RCVTIMEO` on the coarse timer wheel,
//! which rounds long timeouts up (measured here: a 1 s timeout fired 26 ms late; the rounding
//! grows to about 1/8 of the timeout, so a 20 s ping interval could slip by seconds).
//! `poll(2)` sleeps on a high-resolution timer, so the heartbeat wakes when it said it would,
//! and the dead-link verdict lands on the documented bound. It is still one wake per deadline.
//! A read timeout is used only where its rounding cannot matter (see `stream::Tcp`): while
//! messages flow, a blocking read saves the `poll(2)` call per message.
#![allow(unsafe_code)]

#[cfg(not(any(target_os = "linux", target_os = "android")))]
compile_error!("wsbeat runs on Linux: it waits with epoll(7) and wakes with eventfd(2)");

mod epoll;
mod flock;
mod netlink;
mod socket;

pub(crate) use epoll::{Epoll, EventFd, Interest, Readiness, MAX_READY};
pub(crate) use flock::try_lock_exclusive;
pub(crate) use netlink::{interface_of, NetlinkSocket};
pub(crate) use socket::{
    connect_nonblocking, recv_nonblocking, send_nonblocking, set_user_timeout,
};
