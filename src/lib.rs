//! A blocking WebSocket client for embedded Linux devices that keeps one connection alive on
//! bad networks: it notices a dead link within a bound you can compute, reconnects on its own
//! with capped, jittered backoff, and never loses what it was told to send without saying so.
//!
//! # Why
//! A gateway on a cellular or Wi-Fi link holds one WebSocket for months. Links die without a
//! FIN or RST (NAT timeouts, radio loss, a frozen server): TCP keeps saying "connected" while
//! nothing arrives. wsbeat counts any inbound byte as proof of life, pings after silence, and
//! declares the link dead after
//!
//! ```text
//! detection bound = ping_interval + max_missed_pongs × pong_timeout   (after the last inbound byte)
//! ```
//!
//! 20 s + 3 × 5 s = 35 s with the defaults ([`HeartbeatConfig`]). The verdict never comes
//! earlier, and on loopback lands within a few milliseconds of the bound.
//!
//! # Why blocking
//! One thread, no async runtime: the socket wait *is* the heartbeat clock. Each wait lasts
//! until the next deadline, so an idle healthy link wakes about once per ping interval, not on
//! a busy tick. The library spawns no threads and installs no logger or signal handler.
//!
//! # Never blocked
//! Every decision lives in a sans-IO session (a pure state machine fed with
//! [`Instant`](std::time::Instant)s and I/O results, unit-tested on a fake clock); a thin
//! driver reads the clock, waits in one `epoll` set and does the I/O the session asks for.
//! Every connect step is non-blocking: name resolution (a stub resolver reading
//! `/etc/resolv.conf` and `/etc/hosts`, never `getaddrinfo`), TCP to each address (staggered,
//! RFC 8305 style), proxy CONNECT, TLS handshake and HTTP upgrade all wait in that one set,
//! under the one `connect_timeout`. So [`Client::poll`] returns by its timeout in every phase,
//! and a [`Waker`] interrupts it at once from another thread (a signal handler's, say).
//!
//! # Quick start
//! ```no_run
//! use std::time::Duration;
//! use wsbeat::{Client, Config, Event, Message};
//!
//! let config = Config::new("ws://127.0.0.1:9001/telemetry")
//!     .ping_interval(Duration::from_secs(20))
//!     .pong_timeout(Duration::from_secs(5))
//!     .max_missed_pongs(3);
//! let mut client = Client::new(config)?; // validates; errors name the field
//! client.send(Message::text("boot"))?;   // kept in the outbox until connected
//! loop {
//!     match client.poll(Duration::from_secs(1)) {
//!         Some(Event::Connected { attempt, .. }) => println!("up (attempt {attempt})"),
//!         Some(Event::Message(msg)) => println!("got {msg:?}"),
//!         Some(Event::Disconnected { reason, .. }) => println!("down: {reason}"),
//!         Some(Event::GaveUp { .. }) | Some(Event::Closed { .. }) => break,
//!         _ => {} // pings, pongs, reconnect scheduling, or nothing within a second
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//! Daemons with their own `poll(2)` loop add [`Client::fd`] (one descriptor for every phase)
//! to their set, wait until it is readable or [`Client::next_wakeup`] has come, then call
//! `poll(Duration::ZERO)` until it returns `None`; others use [`Client::run`] with a
//! [`Handler`].
//!
//! # Under systemd
//! The library sends nothing to the service manager; the daemon speaks `sd_notify` (one
//! datagram per message to `NOTIFY_SOCKET`) from its loop. What to send, and when:
//! - `READY=1` when the loop starts, before the first connect: a server that is down must not
//!   fail the unit's start;
//! - `STATUS=` from the events that change the link's state ([`Event::Connected`],
//!   [`Event::Reconnecting`], [`Event::GaveUp`]);
//! - `WATCHDOG=1` every half `WATCHDOG_USEC`, as one more deadline of the same loop, not a
//!   thread: with `poll`, wait until the earlier of your deadlines and the ping's (the
//!   client's own are inside `poll`, or [`Client::next_wakeup`] if you wait on
//!   [`Client::fd`] yourself), and ping only when the loop got there on time; with
//!   [`Client::run`], return the time left until the ping from
//!   [`Handler::tick_interval`] and ping in [`Handler::on_tick`]. An outage needs no
//!   special case: the client retries on schedule, so the loop keeps meeting its deadlines;
//! - `STOPPING=1` when it calls [`Client::close`] at shutdown.
//!
//! With `run`, the ping is the handler's deadline (`notify` stands for the datagram send):
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use std::time::{Duration, Instant};
//! use wsbeat::{Client, Config, Handler};
//!
//! # fn notify(_: &str) {}
//! struct Daemon {
//!     half: Duration, // WATCHDOG_USEC / 2
//!     next_ping: Instant,
//! }
//! impl Handler for Daemon {
//!     fn tick_interval(&self) -> Duration {
//!         // `run` waits no longer than this: the ping is one more deadline of its wait.
//!         self.next_ping.saturating_duration_since(Instant::now())
//!     }
//!     fn on_tick(&mut self, _client: &mut Client) {
//!         let now = Instant::now();
//!         if now >= self.next_ping {
//!             // Late by more than a quarter period: the loop was stopped or stuck; ping
//!             // after one more on-time round instead.
//!             if now <= self.next_ping + self.half / 4 {
//!                 notify("WATCHDOG=1");
//!                 self.next_ping = now + self.half;
//!             } else {
//!                 self.next_ping = now + self.half / 4;
//!             }
//!         }
//!     }
//! }
//! static STOP: AtomicBool = AtomicBool::new(false); // set by the SIGTERM handler
//! let mut client = Client::new(Config::new("ws://127.0.0.1:9001/"))?;
//! let half = Duration::from_secs(15);
//! notify("READY=1");
//! client.run(&mut Daemon { half, next_ping: Instant::now() + half }, &STOP);
//! # Ok::<(), wsbeat::Error>(())
//! ```
//! `examples/telemetry.rs` does all four in a few lines of std (its `Notify` type), with the
//! unit in `examples/systemd/telemetry.service`; the `wsbeat` command does the same, and its
//! watchdog also checks that no deadline is left undone and no write stalls past
//! `write_timeout` (see the README's "Running on a device").
//!
//! # Features
//! - `tls` (default): `wss://` through native-tls (OpenSSL on Linux), see [`TlsConfig`].
//! - `vendored-openssl`: builds OpenSSL from source, for cross builds.
//! - `cli` (default, so that `cargo install wsbeat` gives the command): the `wsbeat`
//!   command; it brings `ctrlc`, `nix`, `lexopt` and `env_logger`. A firmware daemon using
//!   the library depends with `default-features = false, features = ["tls"]` (or no
//!   features for plain `ws://`), and none of the CLI's crates reach its dependency tree.
//! - `fleet-sim` (off): exposes the backoff state machine, doc-hidden and unstable, for the
//!   fleet simulation `examples/fleet.rs` and its check against real clients `tests/fleet.rs`.
//! - `capi` (off): the C API (`include/wsbeat.h`), built as a static and a shared library by
//!   `capi/build.sh`; it adds no Rust API. See `docs/from-c.md`.
//!
//! # Logging
//! Through the `log` crate: `info` for connect, disconnect and reconnect; `warn` for missed
//! pongs and giving up; `debug` for pings and RTT. Secrets (Authorization and Cookie headers,
//! URL passwords, token-like query values) never appear in logs or `Debug` output.
#![deny(unsafe_code)] // forbidden in every module but `sys` (epoll, eventfd, sockets) and `capi`
#![warn(missing_docs)]

mod backoff;
#[cfg(feature = "capi")]
mod capi;
mod client;
mod config;
mod dns;
mod endpoint;
mod error;
mod event;
mod handler;
mod head;
mod heartbeat;
// The durable outbox (`--outbox-file`): written for the at-least-once session, which does not
// call it yet; until it is wired in, only its tests do.
mod journal;
mod netlink;
mod outbox;
mod proxy;
mod redact;
mod request;
mod session;
mod stats;
mod stream;
mod sys;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod upgrade;
mod wake;

/// The real backoff state machine for the fleet simulation (`examples/fleet.rs`) and its check
/// against real clients (`tests/fleet.rs`), behind the `fleet-sim` feature (off by default):
/// no stable API, not compiled into normal builds.
#[cfg(feature = "fleet-sim")]
#[doc(hidden)]
pub mod __sim {
    use std::time::{Duration, Instant};

    use crate::backoff::{Backoff, Decision, SplitMix64};
    use crate::BackoffConfig;

    /// One client's backoff, driven on a virtual clock. Delays are `Some`, giving up `None`.
    #[derive(Debug)]
    pub struct SimBackoff(Backoff);

    impl SimBackoff {
        /// A backoff for `config` (valid, as `Client::new` would check it) with the jitter
        /// sequence of `seed`.
        pub fn new(config: BackoffConfig, seed: u64) -> SimBackoff {
            SimBackoff(Backoff::new(config, SplitMix64::new(seed)))
        }
        /// An attempt starts.
        pub fn on_attempt(&mut self) {
            self.0.on_attempt();
        }
        /// A link opened at `now`.
        pub fn on_connected(&mut self, now: Instant) {
            self.0.on_connected(now);
        }
        /// An attempt failed: the delay before the next one, or `None` to give up.
        pub fn on_attempt_failed(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
            delay(self.0.on_attempt_failed(retry_after))
        }
        /// An open link was lost at `now`: the delay before the next attempt, or `None`.
        pub fn on_link_lost(&mut self, now: Instant) -> Option<Duration> {
            delay(self.0.on_link_lost(now))
        }
    }

    fn delay(d: Decision) -> Option<Duration> {
        match d {
            Decision::RetryAfter(d) => Some(d),
            Decision::GiveUp => None,
        }
    }
}

pub use client::{AttemptRequest, Client};
pub use config::{
    AppHeartbeat, BackoffConfig, Config, Delivery, HeartbeatConfig, Jitter, NetworkConfig,
    OutboxConfig, OutboxSync, WhenFull,
};
pub use error::{Error, SendError};
pub use event::{Bytes, DisconnectReason, Event, Message, NetworkChange, ReadyState, Utf8Bytes};
pub use handler::{Handler, RunEnd};
pub use stats::Stats;
#[cfg(feature = "tls")]
pub use tls::{ClientIdentity, TlsConfig};
pub use wake::Waker;
