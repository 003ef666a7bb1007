//! Reconnection policy: the backoff envelope, its jitter strategy, and the spread after a
//! lost link.
#![forbid(unsafe_code)]

use std::time::Duration;

/// Reconnection policy: capped exponential backoff with jitter, and a spread of the first
/// attempt after a lost link so that a fleet which lost the same server does not come back at
/// the same instant.
///
/// Failure delays follow the envelope `d_k = min(first × factor^k, max)`, `k` being the
/// failures in a row so far and `first` the sequence's first delay: `initial`, or
/// `first_spread` after a lost link (below). [`strategy`](BackoffConfig::strategy) says how
/// each delay is drawn. A 429 or 503 answer's `Retry-After` (capped at an hour) raises the one
/// delay it answers; the sequence then goes on where it was.
///
/// After an open link that stayed up for `min_uptime` is lost, the first attempt waits a
/// uniform draw from `[0, first_spread]`, and if it fails the sequence starts again at
/// `k = 0` with `first = first_spread` (kept within `[initial, max]`) rather than `initial`,
/// until the next lasting link. A shorter-lived link counts as one more failure and the
/// sequence goes on. A new client's first attempt is made at once, and its failures start
/// from `initial`.
///
/// ```
/// use std::time::Duration;
/// use wsbeat::{Config, Jitter};
/// let mut config = Config::new("wss://cloud.example/ws");
/// // 20,000 devices on a server that accepts about 1,000 connections per second.
/// config.backoff.first_spread = Duration::from_secs(20);
/// assert_eq!(config.backoff.strategy, Jitter::Decorrelated);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// Base of the envelope (the first failure delay) until a link is lost, see
    /// `first_spread`; a floor under decorrelated delays (and, times `1 - jitter`, under
    /// proportional ones). Defaults to 1 s.
    pub initial: Duration,
    /// Upper bound of any delay but a `Retry-After`. Defaults to 60 s.
    pub max: Duration,
    /// Growth of the envelope per consecutive failure ([`Jitter::Decorrelated`] ignores it).
    /// Defaults to 2.0.
    pub factor: f64,
    /// Fraction of the delay that is randomised by [`Jitter::Proportional`], in `[0, 1)`; the
    /// other strategies ignore it. Defaults to 0.2: a delay of 10 s becomes 8-10 s.
    pub jitter: f64,
    /// How each delay is drawn. Defaults to [`Jitter::Decorrelated`]: in the fleet simulation
    /// (`examples/fleet.rs`, 100,000 devices, server down 0/10/60 s then accepting 1,000 or
    /// 10,000 connections/s) it was the only strategy whose peak stayed within
    /// `1.2 × N / first_spread` attempts per second in every scenario and at every window
    /// (at most 0.85 of it at the default window, proportional 1.46, full 1.83). There it
    /// needed 30 % fewer attempts than [`Jitter::Full`] and 24 % fewer than
    /// [`Jitter::Proportional`], with about the mean time until 95 % of the fleet was back
    /// of full jitter (91.2 s against 86.5 s; proportional 146.9 s).
    pub strategy: Jitter,
    /// The first attempt after a lost link (one that stayed up for `min_uptime`) waits a
    /// uniform draw from `[0, first_spread]`, so that devices which lost the same server at
    /// the same instant (a server restart, a cell tower down) spread their returns over the
    /// window instead of arriving together: `N` devices then arrive at about
    /// `N / first_spread` per second. The failures after it start from `first_spread`
    /// instead of `initial` (it becomes the envelope's base), so with the default strategy
    /// every retry waits at least `first_spread` and the fleet stays near that rate while the
    /// server is still down or refusing. Set it near `N / R` for `N` devices per server and a
    /// server accepting `R` connections per second.
    ///
    /// It applies only after a lost link: a failed attempt waits per
    /// [`strategy`](BackoffConfig::strategy), and a new client's first attempt is made at
    /// once (a booting device wants its link now; if a fleet boots together and the server
    /// refuses, its failures are spread by the strategy). Zero reconnects at once and leaves
    /// `initial` as the first failure delay.
    ///
    /// Defaults to 10 s (a mean of 5 s added to a lone device's reconnect): in the fleet
    /// simulation the mean time until 95 % of the fleet was back stayed at 90.5-91.2 s for
    /// windows of 2, 5 and 10 s and rose beyond (102 s at 20 s), while the attempts fell
    /// from 3.3 million (2 s) to 1.7 million (10 s).
    pub first_spread: Duration,
    /// A connection must stay up this long before the delay resets (and the next loss is
    /// spread over `first_spread`), so a server that accepts and drops at once cannot cause a
    /// tight loop. Defaults to 10 s.
    pub min_uptime: Duration,
    /// Give up after this many failed retries in a row. `None` (the default) retries forever.
    /// Against a server dead from the start that is `N + 1` attempts; after a dropped link, `N`.
    pub max_retries: Option<u32>,
}

/// How a failure delay is drawn from the envelope `d_k = min(first × factor^k, max)` (`k`:
/// failures in a row so far; `first`: `initial`, or `first_spread` after a lost link, see
/// [`BackoffConfig`]). Names and formulas follow the AWS Architecture Blog's "Exponential
/// Backoff And Jitter".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// Uniform in `[(1 - jitter) × d_k, d_k]`, and never below the previous delay while
    /// failures continue: every delay is at least `(1 - jitter) × first`. A fleet that failed
    /// together stays bunched, though: each retry wave is only `jitter × d_k` wide. The only
    /// policy before `strategy` existed.
    Proportional,
    /// Uniform in `[0, d_k]` ("full jitter"): each wave spreads over the whole envelope, but
    /// there is no floor (a retry may follow its failure almost at once).
    Full,
    /// `min(max, uniform(first, 3 × previous))`, `previous` being the last delay (`first`
    /// after a reset): "decorrelated jitter". Every delay is at least `first`; delays are not
    /// monotonic, and `factor` is not used. The default (see
    /// [`BackoffConfig::strategy`] for the measurement).
    #[default]
    Decorrelated,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            factor: 2.0,
            jitter: 0.2,
            strategy: Jitter::Decorrelated,
            first_spread: Duration::from_secs(10),
            min_uptime: Duration::from_secs(10),
            max_retries: None,
        }
    }
}
