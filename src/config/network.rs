//! Reacting to the operating system's network reports: whether to listen, and how long the
//! probe that follows a report may wait for its answer.
#![forbid(unsafe_code)]

use std::time::Duration;

/// Reaction to address, route and link changes that the kernel reports (rtnetlink), so that a
/// link whose own address or interface is gone is known dead in about `probe_timeout`, not at
/// the heartbeat bound (35 s at the defaults).
///
/// With [`watch`](NetworkConfig::watch) on, the client subscribes to the reports in the same
/// wait as everything else (the socket wakes it only when something changed). Then:
/// - when the open link's own source address is removed, its interface goes down, or no route
///   to the server remains (a removed route that covered the server's address, after which
///   the kernel finds none for the link's source), the client sends a ping at once and
///   declares the link dead ([`DisconnectReason::HeartbeatTimeout`](crate::DisconnectReason)
///   with `missed: 1`) if no pong comes within `probe_timeout`. A pong means the link
///   survived, and nothing else happens. The link is never closed on the report alone.
/// - a change that does not concern the link (another interface, another address or prefix,
///   an IPv6 temporary address rotating) changes nothing.
/// - while waiting to reconnect, an address, route or interface coming back after which the
///   kernel has a route to the last server address brings the next attempt forward: it starts
///   at once, but never sooner than [`BackoffConfig::initial`](crate::BackoffConfig) after the
///   link was lost or the last attempt failed (so a flapping link cannot cause a tight loop),
///   and never before a `Retry-After` the server asked for.
///
/// A failed subscription (no netlink in a container, a seccomp filter) is a warning, and the
/// heartbeat alone detects dead links, as without `watch`. Linux only.
///
/// ```
/// use std::time::Duration;
/// let config = wsbeat::Config::new("ws://gateway.local/ws")
///     .watch_network(true)
///     .probe_timeout(Duration::from_secs(3));
/// assert!(config.network.watch);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetworkConfig {
    /// Listen for the kernel's network reports. Defaults to `false` in the library (one more
    /// socket, and the reaction changes when a link is declared dead); the `wsbeat` CLI turns
    /// it on unless `--no-network-watch` is given.
    pub watch: bool,
    /// How long the probe ping sent after a report that concerns the link waits for its pong
    /// before the link is declared dead. Defaults to 2 s: several round trips of a slow
    /// cellular link, far below the heartbeat bound.
    pub probe_timeout: Duration,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            watch: false,
            probe_timeout: Duration::from_secs(2),
        }
    }
}
