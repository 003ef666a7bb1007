//! A sans-IO stub resolver: host names to addresses without blocking the client's loop.
//!
//! # Why
//! `ToSocketAddrs` calls glibc's getaddrinfo(3), which blocks the calling thread: with the
//! uplink down it waits `timeout` (5 s) per try, per name server, for `attempts` rounds, and
//! nothing else in the single-threaded client runs meanwhile (no heartbeat, no shutdown). Here
//! name resolution is a state machine like the heartbeat and the backoff: the client's driver
//! owns the UDP sockets and the clock, and waits for DNS answers in the same `poll(2)` as
//! everything else.
//!
//! # What
//! - [`SystemConfig`]: `/etc/resolv.conf` and `/etc/hosts` with glibc's rules
//!   ([`SystemConfig::load`] is the only file access).
//! - [`Lookup`]: one name, A and AAAA in parallel, glibc's search list, retry and rotate rules,
//!   CNAME chains, and RFC 8305's 50 ms resolution delay. It never reads the clock, never
//!   touches a socket and never panics on any datagram.
//! - `wire`: the DNS messages: answers parsed by the `simple-dns` crate, queries framed around
//!   the crate's name encoding; `search`: the candidate names; `query`: one query's tries;
//!   `error`: [`LookupError`].
//!
//! Not done: TCP fallback (a truncated answer is used if it has an address, otherwise it counts
//! as a server failure and the next server is asked), DNSSEC, caching, `sortlist`, RFC 6724
//! address sorting, and nsswitch.conf (always `/etc/hosts`, then DNS).
//!
//! # Driving a lookup
//! ```text
//! let config = SystemConfig::load();                       // once, or when resolv.conf changes
//! let mut lookup = Lookup::new(host, &config, Instant::now(), SplitMix64::random_seed());
//! let socket = UdpSocket::bind("0.0.0.0:0")?;              // a random source port; [::]:0 for IPv6 servers
//! loop {
//!     while let Some(d) = lookup.poll_transmit() { let _ = socket.send_to(&d.payload, d.to); }
//!     if let Some(result) = lookup.poll_result() { break result; }
//!     // poll(2) on the socket (and everything else) until lookup.poll_timeout(), then:
//!     //   readable: recv_from -> lookup.handle_datagram(from, &buf[..n], Instant::now())
//!     //   deadline: lookup.handle_timeout(Instant::now())
//! }
//! ```
//! A send error counts as an unanswered try: the lookup moves on when that try times out.
#![forbid(unsafe_code)]

mod conf;
mod error;
mod lookup;
mod query;
mod search;
#[cfg(test)]
mod tests;
mod wire;

pub(crate) use conf::SystemConfig;
#[cfg(test)]
pub(crate) use error::LookupError;
pub(crate) use lookup::{Datagram, Lookup};
