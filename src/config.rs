//! Plain configuration structs with documented defaults; their validation is in `config/validate.rs`.
#![forbid(unsafe_code)]

use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::Message;

mod backoff;
mod network;
mod outbox;
mod validate;
pub use backoff::{BackoffConfig, Jitter};
pub use network::NetworkConfig;
pub use outbox::{Delivery, OutboxConfig, OutboxSync, WhenFull};

/// The longest any configured duration may be.
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Everything a [`Client`](crate::Client) needs to know. Build it with [`Config::new`], change
/// the public fields or use the chained setters, then hand it to
/// [`Client::new`](crate::Client::new), which validates it and names the first bad field.
///
/// ```
/// use std::time::Duration;
/// use wsbeat::Config;
/// let config = Config::new("ws://gateway.local:8080/telemetry")
///     .ping_interval(Duration::from_secs(10))
///     .pong_timeout(Duration::from_secs(3))
///     .max_missed_pongs(2)
///     .header("X-Device-Id", "gw-0042");
/// // Dead link noticed at most 10 s + 2 x 3 s = 16 s after the last byte from the server.
/// assert_eq!(config.heartbeat.detection_bound(), Duration::from_secs(16));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The server, `ws://host[:port]/path?query` or `wss://...`. No default.
    pub url: String,
    /// Dead-link detection. Defaults to [`HeartbeatConfig::default`].
    pub heartbeat: HeartbeatConfig,
    /// Reconnection policy. Defaults to [`BackoffConfig::default`].
    pub backoff: BackoffConfig,
    /// Messages kept while not connected (and, with at-least-once delivery, until proven
    /// read). Defaults to [`OutboxConfig::default`].
    pub outbox: OutboxConfig,
    /// What a sent message is promised: at most once (today's default) or at least once.
    /// Defaults to [`Delivery::AtMostOnce`].
    pub delivery: Delivery,
    /// Bound on one connect attempt, all steps together: name resolution, TCP connect to
    /// every address (staggered 250 ms apart, so a silent first address costs 250 ms, not
    /// the whole budget), proxy CONNECT, TLS handshake and HTTP upgrade. Every step is
    /// non-blocking and waits in the client's one `poll`, so this bounds the attempt, not
    /// a call. Defaults to 10 s.
    pub connect_timeout: Duration,
    /// How long [`Client::close`](crate::Client::close) waits for the server's Close reply.
    /// Defaults to 5 s.
    pub close_timeout: Duration,
    /// A write that makes no progress for this long declares the link dead (the server is not
    /// reading). Unsent messages go back to the outbox. Defaults to 10 s.
    pub write_timeout: Duration,
    /// How long messages sent back to back (no `poll` between) may wait for company, so that
    /// one `write(2)` takes many frames. A message leaves at once when the application has
    /// called `poll` since the last flush or the last flush is this long ago, so a lone
    /// message is never delayed; held ones leave at the next `poll`, at this deadline (part of
    /// [`Client::next_wakeup`](crate::Client::next_wakeup)), or once 16 KiB wait. Zero flushes
    /// every message at once. Defaults to 1 ms. At most 1 s.
    pub coalesce_window: Duration,
    /// Reaction to the kernel's address, route and link reports. Defaults to off, see
    /// [`NetworkConfig`].
    pub network: NetworkConfig,
    /// Largest message accepted from the server and by [`Client::send`](crate::Client::send);
    /// larger input is a protocol error and a reconnect, never an allocation of that size.
    /// Defaults to 1 MiB (tungstenite's server-sized default is 64 MiB).
    pub max_message_size: usize,
    /// Largest single frame payload accepted from the server. Defaults to 1 MiB.
    pub max_frame_size: usize,
    /// Size of the read buffer, allocated once per link; also the most one `read(2)` takes.
    /// tungstenite zero-fills this much before every read, so it is paid per message received
    /// as well as per byte: defaults to 24 KiB, where a 64 KiB message still takes three reads
    /// (eight KiB would take nine) and a small message costs a 24 KiB fill rather than 64.
    /// In the benchmark's alternating runs that moved 32-byte echo from 0.95-0.96 to
    /// 0.97-1.00 of a bare tungstenite loop, with 64 KiB echo at 0.97 or better (README,
    /// Benchmarks). Raise it where large messages dominate; tungstenite's own default is
    /// 128 KiB.
    pub read_buffer_size: usize,
    /// Extra headers sent with every upgrade request. Defaults to none.
    pub headers: Vec<(String, String)>,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`; a server that picks another one is an
    /// error. Defaults to none.
    pub protocols: Vec<String>,
    /// The `Origin` header, if the server wants one. Defaults to none.
    pub origin: Option<String>,
    /// Close codes from the server that stop reconnecting (e.g. an application's "device
    /// revoked" code). Defaults to none: every close leads to a reconnect.
    pub final_close_codes: Vec<u16>,
    /// HTTP statuses of a refused upgrade that stop reconnecting, e.g. `vec![401, 403]` when a
    /// rejected credential will not get better by retrying. Defaults to none.
    pub final_http_statuses: Vec<u16>,
    /// An HTTP CONNECT proxy, `http://[user:pass@]host:port`. Defaults to none; see
    /// [`Config::proxy_from_env`] for the conventional variables.
    pub proxy: Option<String>,
    /// Seed for the backoff jitter. Defaults to `None`: a random seed per client.
    pub seed: Option<u64>,
    /// TLS settings for `wss://`. Defaults to [`TlsConfig::default`](crate::TlsConfig):
    /// verification on, system roots.
    #[cfg(feature = "tls")]
    pub tls: crate::TlsConfig,
}

/// Dead-link detection settings.
///
/// A dead peer is declared exactly `ping_interval + max_missed_pongs × pong_timeout` after the
/// last byte received from it ([`HeartbeatConfig::detection_bound`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeartbeatConfig {
    /// Silence (no inbound byte) after which a ping is sent. Defaults to 20 s, which also keeps
    /// most NAT mappings alive (Python `websockets` also pings every 20 s).
    pub ping_interval: Duration,
    /// How long a ping waits for any inbound byte before it counts as missed; the next ping
    /// follows at once. Defaults to 5 s, enough for a cellular radio to wake up.
    pub pong_timeout: Duration,
    /// Consecutive missed pings that declare the link dead. Defaults to 3, the classic
    /// browser pattern (three unanswered heartbeats, then reconnect).
    pub max_missed_pongs: u32,
    /// Application-level heartbeat instead of Ping frames. Defaults to `None` (Ping frames).
    pub app_heartbeat: Option<AppHeartbeat>,
}

/// An application-level heartbeat for servers that want a message rather than a Ping frame
/// (the browser pattern: send text `ping`, expect text `pong`).
///
/// The reply counts as the pong and is not handed to the application.
///
/// ```
/// use wsbeat::{AppHeartbeat, Config, Message};
/// let config = Config::new("ws://127.0.0.1:9000/")
///     .app_heartbeat(AppHeartbeat::new(Message::text("ping"), Message::text("pong")));
/// assert!(config.heartbeat.app_heartbeat.is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppHeartbeat {
    /// Sent instead of a Ping frame.
    pub ping: Message,
    /// The reply that counts as a pong.
    pub pong: Message,
}

impl AppHeartbeat {
    /// An application heartbeat sending `ping` and expecting `pong`.
    pub fn new(ping: Message, pong: Message) -> Self {
        AppHeartbeat { ping, pong }
    }
}

impl HeartbeatConfig {
    /// Time from the last inbound byte to the dead verdict:
    /// `ping_interval + max_missed_pongs × pong_timeout`.
    ///
    /// ```
    /// let hb = wsbeat::HeartbeatConfig::default();
    /// assert_eq!(hb.detection_bound(), std::time::Duration::from_secs(35));
    /// ```
    pub fn detection_bound(&self) -> Duration {
        self.ping_interval
            .saturating_add(self.pong_timeout.saturating_mul(self.max_missed_pongs))
    }
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(5),
            max_missed_pongs: 3,
            app_heartbeat: None,
        }
    }
}

impl Config {
    /// The delivery promise in force: at-least-once whenever the outbox has a file.
    pub(crate) fn effective_delivery(&self) -> Delivery {
        if self.outbox.file.is_some() {
            Delivery::AtLeastOnce
        } else {
            self.delivery
        }
    }

    /// A configuration for `url` with every other field at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            heartbeat: HeartbeatConfig::default(),
            backoff: BackoffConfig::default(),
            outbox: OutboxConfig::default(),
            delivery: Delivery::AtMostOnce,
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            coalesce_window: Duration::from_millis(1),
            network: NetworkConfig::default(),
            max_message_size: 1 << 20,
            max_frame_size: 1 << 20,
            read_buffer_size: 24 << 10,
            headers: Vec::new(),
            protocols: Vec::new(),
            origin: None,
            final_close_codes: Vec::new(),
            final_http_statuses: Vec::new(),
            proxy: None,
            seed: None,
            #[cfg(feature = "tls")]
            tls: crate::TlsConfig::default(),
        }
    }

    /// Sets [`HeartbeatConfig::ping_interval`].
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.heartbeat.ping_interval = d;
        self
    }
    /// Sets [`HeartbeatConfig::pong_timeout`].
    pub fn pong_timeout(mut self, d: Duration) -> Self {
        self.heartbeat.pong_timeout = d;
        self
    }
    /// Sets [`HeartbeatConfig::max_missed_pongs`].
    pub fn max_missed_pongs(mut self, n: u32) -> Self {
        self.heartbeat.max_missed_pongs = n;
        self
    }
    /// Sets [`HeartbeatConfig::app_heartbeat`].
    pub fn app_heartbeat(mut self, hb: AppHeartbeat) -> Self {
        self.heartbeat.app_heartbeat = Some(hb);
        self
    }
    /// Sets [`BackoffConfig::initial`] and [`BackoffConfig::max`].
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff.initial = initial;
        self.backoff.max = max;
        self
    }
    /// Sets [`BackoffConfig::min_uptime`].
    pub fn min_uptime(mut self, d: Duration) -> Self {
        self.backoff.min_uptime = d;
        self
    }
    /// Sets [`BackoffConfig::max_retries`].
    pub fn max_retries(mut self, n: Option<u32>) -> Self {
        self.backoff.max_retries = n;
        self
    }
    /// Sets [`Config::connect_timeout`].
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// Sets [`Config::close_timeout`].
    pub fn close_timeout(mut self, d: Duration) -> Self {
        self.close_timeout = d;
        self
    }
    /// Sets [`Config::coalesce_window`] (zero: every message flushed at once).
    pub fn coalesce_window(mut self, d: Duration) -> Self {
        self.coalesce_window = d;
        self
    }
    /// Sets [`Config::max_message_size`] and [`Config::max_frame_size`] together.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self.max_frame_size = bytes;
        self
    }
    /// Adds a header to every upgrade request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Offers a subprotocol.
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.protocols.push(name.into());
        self
    }
    /// Adds a close code that stops reconnecting.
    pub fn final_close_code(mut self, code: u16) -> Self {
        self.final_close_codes.push(code);
        self
    }
    /// Uses the proxy named by `https_proxy` (for `wss://`) or `http_proxy` (for `ws://`),
    /// upper or lower case, unless `no_proxy` lists the server's host. Opt-in: nothing reads
    /// the environment unless this is called. Leaves [`Config::proxy`] as it is when no
    /// variable applies.
    ///
    /// ```
    /// let config = wsbeat::Config::new("wss://cloud.example/ws").proxy_from_env();
    /// # let _ = config;
    /// ```
    pub fn proxy_from_env(mut self) -> Self {
        if let Ok(endpoint) = Endpoint::parse(&self.url) {
            let secure = endpoint.scheme == crate::endpoint::Scheme::Wss;
            if let Some(p) = crate::proxy::from_env(secure, &endpoint.host) {
                self.proxy = Some(p);
            }
        }
        self
    }
    /// Sets [`Config::proxy`].
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(url.into());
        self
    }
    /// Sets [`Config::delivery`].
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }
    /// Sets [`NetworkConfig::watch`].
    pub fn watch_network(mut self, on: bool) -> Self {
        self.network.watch = on;
        self
    }

    /// Sets [`NetworkConfig::probe_timeout`].
    pub fn probe_timeout(mut self, d: Duration) -> Self {
        self.network.probe_timeout = d;
        self
    }

    /// Sets [`Config::seed`], making the jitter sequence repeatable.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

impl std::fmt::Debug for Config {
    /// Header values and URL credentials are redacted: `Debug` output may reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Config");
        d.field("url", &crate::redact::url(&self.url))
            .field("heartbeat", &self.heartbeat)
            .field("backoff", &self.backoff)
            .field("outbox", &self.outbox)
            .field("delivery", &self.delivery)
            .field("connect_timeout", &self.connect_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("network", &self.network)
            .field("max_message_size", &self.max_message_size)
            .field("max_frame_size", &self.max_frame_size)
            .field("coalesce_window", &self.coalesce_window)
            .field("read_buffer_size", &self.read_buffer_size)
            .field("headers", &crate::redact::headers(&self.headers))
            .field("protocols", &self.protocols)
            .field("origin", &self.origin)
            .field("final_close_codes", &self.final_close_codes)
            .field("final_http_statuses", &self.final_http_statuses)
            .field("proxy", &self.proxy.as_deref().map(crate::redact::url));
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls);
        d.field("seed", &self.seed).finish()
    }
}
