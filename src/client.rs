//! The blocking driver: owns the socket and the clock, feeds the pure heartbeat and backoff
//! machines, and turns what happens into [`Event`]s.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use log::{info, warn};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message as Wire;

use crate::backoff::{Backoff, Decision, SplitMix64};
use crate::endpoint::Endpoint;
use crate::heartbeat::Heartbeat;
use crate::link::Link;
use crate::outbox::{from_wire, Outbox};
use crate::{Config, Error, Event, Message, ReadyState, SendError, Stats};

mod open;

/// What the next attempt will use, handed to the request hook (see
/// [`Client::set_request_hook`]) so that it can renew a token or switch to a failover host.
#[derive(Clone)]
#[non_exhaustive]
pub struct AttemptRequest {
    /// The attempt's number.
    pub attempt: u64,
    /// The URL to connect to; starts as [`Config::url`].
    pub url: String,
    /// The request headers; start as [`Config::headers`].
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for AttemptRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptRequest")
            .field("attempt", &self.attempt)
            .field("url", &crate::redact::url(&self.url))
            .field("headers", &crate::redact::headers(&self.headers))
            .finish()
    }
}

type RequestHook = Box<dyn FnMut(&mut AttemptRequest) + Send>;

/// One attempt's target and upgrade request, made when the attempt is announced.
struct Prepared {
    url: String,
    endpoint: Endpoint,
    request: tungstenite::handshake::client::Request,
}

/// Frames read past the caller's deadline while input may still be buffered.
const MAX_EXTRA_READS: u32 = 64;

/// Far enough to mean "no deadline" without overflowing `Instant`.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

enum Phase {
    /// The next attempt is due at `at`; `announced` once `Connecting` went out.
    Idle {
        at: Instant,
        announced: bool,
    },
    Open(Box<Link>),
    /// A local close: queued messages go first, then the Close frame, then the reply.
    Closing {
        link: Box<Link>,
        deadline: Instant,
        code: u16,
        reason: String,
        close_sent: bool,
    },
    Stopped,
}

/// A WebSocket client that keeps one connection alive: heartbeat, dead-link detection,
/// reconnection with backoff, and an outbox that loses nothing. Single-threaded and blocking;
/// drive it with [`poll`](Client::poll) or [`run`](Client::run).
///
/// ```no_run
/// use std::time::Duration;
/// use wsbeat::{Client, Config, Event, Message};
///
/// let mut client = Client::new(Config::new("ws://127.0.0.1:9000/")).expect("valid config");
/// client.send(Message::text("hello")).expect("outbox has room"); // sent once connected
/// loop {
///     match client.poll(Duration::from_secs(1)) {
///         Some(Event::Message(msg)) => println!("got {msg:?}"),
///         Some(Event::GaveUp { .. }) | Some(Event::Closed { .. }) => break,
///         Some(other) => println!("{other:?}"),
///         None => {} // nothing within a second: do other work here
///     }
/// }
/// ```
pub struct Client {
    config: Config,
    endpoint: Endpoint,
    #[cfg(feature = "tls")]
    tls: Option<native_tls::TlsConnector>,
    phase: Phase,
    events: VecDeque<Event>,
    outbox: Outbox,
    backoff: Backoff,
    stats: Stats,
    attempt: u64,
    proxy: Option<crate::proxy::Proxy>,
    hook: Option<RequestHook>,
    /// The next attempt, prepared when it was announced.
    prepared: Option<Result<Prepared, Error>>,
    /// The application heartbeat message, built once.
    app_ping: Option<Wire>,
    /// Bytes and messages of links already gone, so stats survive reconnects.
    closed_links: (u64, u64),
    /// When the client was made: what [`next_wakeup`](Client::next_wakeup) answers for "at
    /// once", a past instant that no caller's reading of the clock can precede.
    at_once: Instant,
}

impl Client {
    /// Validates `config` and creates a client. No I/O happens until the first
    /// [`poll`](Client::poll). Errors name the offending field.
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = wsbeat::Client::new(wsbeat::Config::new("ws://h/").ping_interval(Duration::ZERO));
    /// assert!(err.unwrap_err().to_string().contains("heartbeat.ping_interval"));
    /// ```
    pub fn new(config: Config) -> Result<Client, Error> {
        let endpoint = config.validate()?;
        #[cfg(feature = "tls")]
        let tls = match endpoint.scheme {
            crate::endpoint::Scheme::Wss => Some(crate::tls::connector(&config.tls)?),
            crate::endpoint::Scheme::Ws => None,
        };
        let proxy = config
            .proxy
            .as_deref()
            .map(crate::proxy::Proxy::parse)
            .transpose()?;
        let seed = config.seed.unwrap_or_else(SplitMix64::random_seed);
        Ok(Client {
            backoff: Backoff::new(config.backoff.clone(), SplitMix64::new(seed)),
            outbox: Outbox::new(config.outbox.max_messages, config.outbox.max_bytes),
            endpoint,
            #[cfg(feature = "tls")]
            tls,
            phase: Phase::Idle {
                at: Instant::now(),
                announced: false,
            },
            events: VecDeque::new(),
            stats: Stats::default(),
            attempt: 0,
            proxy,
            hook: None,
            prepared: None,
            app_ping: config
                .heartbeat
                .app_heartbeat
                .as_ref()
                .map(|a| into_wire(a.ping.clone())),
            closed_links: (0, 0),
            at_once: Instant::now(),
            config,
        })
    }

    /// Installs a hook called before every connect attempt with the URL and headers it will
    /// use: renew an expiring token, or switch to a failover host, as ReconnectingWebSocket's
    /// URL provider does. An invalid URL or header from the hook fails that attempt (and the
    /// backoff applies), it does not panic.
    ///
    /// ```
    /// use wsbeat::{Client, Config};
    /// let mut client = Client::new(Config::new("ws://127.0.0.1:9000/")).unwrap();
    /// client.set_request_hook(|req| {
    ///     req.headers.retain(|(name, _)| name != "Authorization");
    ///     req.headers.push(("Authorization".into(), format!("Bearer token-{}", req.attempt)));
    /// });
    /// ```
    pub fn set_request_hook(&mut self, hook: impl FnMut(&mut AttemptRequest) + Send + 'static) {
        self.hook = Some(Box::new(hook));
    }

    /// Blocks for at most `timeout` (longer only while a connect attempt runs, which
    /// `connect_timeout` bounds) and returns the next event, or `None` if nothing happened.
    ///
    /// While connected, the socket read waits until the next heartbeat deadline, so an idle
    /// link wakes once per ping interval. Returns `None` at once when the client is stopped.
    pub fn poll(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout.min(FOREVER);
        let mut extra_reads = 0;
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
            self.phase = match phase {
                Phase::Stopped => return None,
                Phase::Idle { at, announced } => self.step_idle(at, announced, deadline),
                Phase::Open(link) => self.step_open(link, deadline),
                Phase::Closing {
                    link,
                    deadline: close_by,
                    code,
                    reason,
                    close_sent,
                } => self.step_closing(link, close_by, code, reason, close_sent, deadline),
            };
            if self.events.is_empty() && Instant::now() >= deadline {
                // A frame that made no event (a ping, a pong) may hide more input in
                // tungstenite's buffer, where the socket's readiness cannot show it: keep
                // reading that, a bounded number of frames, before reporting "nothing".
                extra_reads += 1;
                if !self.has_buffered_input() || extra_reads > MAX_EXTRA_READS {
                    return None;
                }
            }
        }
    }

    /// Sends `msg` now if the link is open, else keeps it in the outbox for the next link.
    ///
    /// Queued messages keep their order and go before newer ones, but after anything sent in
    /// reply to [`Event::Connected`]. A message that does not fit is handed back.
    pub fn send(&mut self, msg: impl Into<Message>) -> Result<(), SendError> {
        let msg = msg.into();
        if msg.len() > self.config.max_message_size {
            return Err(SendError::TooLarge(msg));
        }
        if !self.outbox.has_room_for(msg.len()) {
            return Err(SendError::OutboxFull(msg));
        }
        let wire = into_wire(msg);
        match &mut self.phase {
            Phase::Stopped | Phase::Closing { .. } => Err(SendError::Closed(from_wire(wire))),
            Phase::Open(link)
                if (link.hold_outbox || self.outbox.queued_len() == 0)
                    && !link.is_stalled()
                    && link.broken.is_none() =>
            {
                self.outbox.push_in_flight(wire.clone());
                // Never blocks: what the socket cannot take now waits in the stalled link.
                if let Err(reason) = link.write(wire) {
                    link.broken = Some(reason);
                }
                open::account(&mut self.outbox, &mut self.stats, link);
                Ok(())
            }
            _ => self
                .outbox
                .push(wire)
                .map_err(|w| SendError::OutboxFull(from_wire(w))),
        }
    }

    /// Closes with code 1000 (normal closure): queued messages are sent first, then a Close
    /// frame; the server's reply is awaited for at most `close_timeout`. Keep polling until
    /// [`Event::Closed`]. No reconnect follows.
    pub fn close(&mut self) {
        self.close_with(1000, "");
    }

    /// Like [`close`](Client::close) with a chosen code (e.g. 1001, going away) and reason.
    pub fn close_with(&mut self, code: u16, reason: &str) {
        let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
        self.phase = match phase {
            Phase::Open(link) => {
                info!("closing with code {code}");
                let mut link = link;
                link.hold_outbox = false;
                Phase::Closing {
                    link,
                    deadline: Instant::now() + self.config.close_timeout,
                    code,
                    reason: reason.to_string(),
                    close_sent: false,
                }
            }
            Phase::Idle { .. } => {
                info!("closed while not connected");
                self.events.push_back(Event::Closed { code: None });
                Phase::Stopped
            }
            other => other,
        };
    }

    /// Messages that were never handed to the kernel: call after [`Event::Closed`] or
    /// [`Event::GaveUp`] to keep them (e.g. on flash) rather than lose them.
    pub fn take_unsent(&mut self) -> Vec<Message> {
        self.outbox.drain_all()
    }

    /// The connection state.
    pub fn ready_state(&self) -> ReadyState {
        match &self.phase {
            Phase::Idle { .. } if self.attempt == 0 => ReadyState::Connecting,
            Phase::Idle { at, .. } if *at > Instant::now() => ReadyState::WaitingToReconnect,
            Phase::Idle { .. } => ReadyState::Connecting,
            Phase::Open(_) => ReadyState::Open,
            Phase::Closing { .. } => ReadyState::Closing,
            Phase::Stopped => ReadyState::Closed,
        }
    }

    /// Payload bytes accepted by [`send`](Client::send) and not yet taken by the kernel.
    pub fn buffered_amount(&self) -> usize {
        self.outbox.bytes()
    }

    /// Messages accepted by [`send`](Client::send) and not yet taken by the kernel.
    pub fn buffered_messages(&self) -> usize {
        self.outbox.len()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.bytes_in = self.closed_links.0;
        s.bytes_out = self.closed_links.1;
        if let Some(link) = self.link() {
            s.bytes_in += link.ws.get_ref().bytes_in;
            s.bytes_out += link.ws.get_ref().bytes_out;
        }
        s
    }

    /// When the client next has something to do, for applications that wait on the socket
    /// themselves (see [`socket`](Client::socket)); `None` when stopped. "At once" is an
    /// instant in the past, so `next_wakeup() <= now` holds whenever the caller read `now`.
    ///
    /// ```
    /// use std::time::Instant;
    /// let mut client = wsbeat::Client::new(wsbeat::Config::new("ws://127.0.0.1:9/")).unwrap();
    /// client.close(); // not connected yet: the `Closed` event waits to be polled
    /// let now = Instant::now();
    /// assert!(client.next_wakeup().is_some_and(|t| t <= now), "due at once");
    /// assert!(matches!(client.poll(std::time::Duration::ZERO), Some(wsbeat::Event::Closed { .. })));
    /// ```
    pub fn next_wakeup(&self) -> Option<Instant> {
        // No clock reading: a producer calls this after every message. "At once" must not be a
        // fresh `Instant::now()`, which would be later than the caller's `now` and never due.
        let at_once = self.at_once;
        if !self.events.is_empty() {
            return Some(at_once);
        }
        match &self.phase {
            Phase::Idle { at, .. } => Some(*at),
            // Something to write, report or read from a buffer: at once.
            Phase::Open(link)
                if link.broken.is_some()
                    || link.hold_outbox
                    || link.has_buffered_input()
                    || (self.outbox.queued_len() > 0 && !link.is_stalled()) =>
            {
                Some(at_once)
            }
            // A stalled write waits for writability (see `wants_write`) or its timeout.
            Phase::Open(link) => Some(
                link.stall_deadline()
                    .map_or(link.heartbeat.next_deadline(), |s| {
                        s.min(link.heartbeat.next_deadline())
                    }),
            ),
            Phase::Closing {
                deadline,
                link,
                close_sent,
                ..
            } if link.has_buffered_input() || (!close_sent && !link.is_stalled()) => Some(at_once),
            Phase::Closing { deadline, .. } => Some(*deadline),
            Phase::Stopped => None,
        }
    }

    /// Whether the open link has output the socket could not take yet: an application waiting
    /// on [`socket`](Client::socket) itself should then also wait for it to be writable.
    pub fn wants_write(&self) -> bool {
        self.link().is_some_and(Link::is_stalled)
    }

    /// The TCP socket of the open link, for applications that wait on several sources with
    /// `poll(2)`: when it is readable (or writable, if [`wants_write`](Client::wants_write)),
    /// or [`next_wakeup`](Client::next_wakeup) has passed, call [`poll`](Client::poll) with a
    /// zero timeout until it returns `None`.
    pub fn socket(&self) -> Option<&TcpStream> {
        self.link().map(|l| l.ws.get_ref().transport().tcp())
    }

    /// Whether the client has stopped (closed or gave up) and will do nothing more.
    pub fn is_stopped(&self) -> bool {
        matches!(self.phase, Phase::Stopped) && self.events.is_empty()
    }

    fn has_buffered_input(&self) -> bool {
        self.link().is_some_and(Link::has_buffered_input)
    }

    fn link(&self) -> Option<&Link> {
        match &self.phase {
            Phase::Open(link) | Phase::Closing { link, .. } => Some(link),
            _ => None,
        }
    }

    fn step_idle(&mut self, at: Instant, announced: bool, deadline: Instant) -> Phase {
        let now = Instant::now();
        if now < at {
            if now < deadline {
                std::thread::sleep(at.min(deadline) - now);
            }
            return Phase::Idle { at, announced };
        }
        if !announced {
            // The hook runs now, so the event names the URL this attempt will really use.
            let prepared = self.prepare(self.attempt + 1);
            let url = match &prepared {
                Ok(p) => crate::redact::url(&p.url),
                Err(_) => crate::redact::url(&self.config.url),
            };
            self.prepared = Some(prepared);
            self.events.push_back(Event::Connecting {
                attempt: self.attempt + 1,
                url,
            });
            return Phase::Idle {
                at,
                announced: true,
            };
        }
        self.connect()
    }

    fn connect(&mut self) -> Phase {
        self.attempt += 1;
        self.stats.attempts += 1;
        self.backoff.on_attempt();
        let attempt = self.attempt;
        let started = Instant::now();
        let prepared = match self.prepared.take() {
            Some(p) => p,
            None => self.prepare(attempt),
        };
        let opened = prepared.and_then(|Prepared { url, endpoint, request }| {
            info!("connecting to {} (attempt {attempt})", crate::redact::url(&url));
            #[cfg(feature = "tls")]
            if self.config.tls.danger_accept_invalid_certs
                && endpoint.scheme == crate::endpoint::Scheme::Wss
            {
                warn!("insecure TLS: certificate and host name are NOT verified (danger_accept_invalid_certs)");
            }
            crate::transport::open(
                &endpoint,
                &self.config,
                request,
                self.proxy.as_ref(),
                #[cfg(feature = "tls")]
                self.tls.as_ref(),
                started + self.config.connect_timeout,
            )
        });
        match opened {
            Ok(opened) => {
                let now = Instant::now();
                self.backoff.on_connected(now);
                self.stats.connects += 1;
                self.stats.connected_since = Some(now);
                info!(
                    "connected to {} (attempt {attempt}, {} ms)",
                    opened.peer,
                    now.duration_since(started).as_millis()
                );
                self.events.push_back(Event::Connected {
                    attempt,
                    handshake: now.duration_since(started),
                    protocol: opened.protocol,
                });
                let heartbeat = Heartbeat::new(&self.config.heartbeat, now);
                Phase::Open(Box::new(Link::new(
                    opened.ws,
                    heartbeat,
                    self.config.write_timeout,
                )))
            }
            Err(error) => {
                warn!("connect attempt {attempt} failed: {error}");
                let retry_after = match &error {
                    Error::HttpStatus {
                        status: 429 | 503,
                        retry_after,
                        ..
                    } => *retry_after,
                    _ => None,
                };
                let is_final = error
                    .http_status()
                    .is_some_and(|s| self.config.final_http_statuses.contains(&s));
                self.events
                    .push_back(Event::ConnectFailed { attempt, error });
                if is_final {
                    return self.give_up();
                }
                let decision = self.backoff.on_attempt_failed(retry_after);
                self.schedule(decision)
            }
        }
    }

    /// The endpoint and upgrade request of this attempt, after the request hook had its say.
    fn prepare(&mut self, attempt: u64) -> Result<Prepared, Error> {
        let Some(hook) = self.hook.as_mut() else {
            let request =
                crate::request::build(&self.endpoint, &self.config.headers, &self.config)?;
            return Ok(Prepared {
                url: self.config.url.clone(),
                endpoint: self.endpoint.clone(),
                request,
            });
        };
        let mut req = AttemptRequest {
            attempt,
            url: self.config.url.clone(),
            headers: self.config.headers.clone(),
        };
        hook(&mut req);
        let endpoint = Endpoint::parse(&req.url)?;
        #[cfg(feature = "tls")]
        if endpoint.scheme == crate::endpoint::Scheme::Wss && self.tls.is_none() {
            self.tls = Some(crate::tls::connector(&self.config.tls)?);
        }
        let request = crate::request::build(&endpoint, &req.headers, &self.config)?;
        Ok(Prepared {
            url: req.url,
            endpoint,
            request,
        })
    }

    /// Turns a backoff decision into the next phase and its event.
    fn schedule(&mut self, decision: Decision) -> Phase {
        match decision {
            Decision::RetryAfter(delay) => {
                info!(
                    "reconnecting in {} ms (attempt {})",
                    delay.as_millis(),
                    self.attempt + 1
                );
                self.events.push_back(Event::Reconnecting {
                    attempt: self.attempt + 1,
                    delay,
                });
                Phase::Idle {
                    at: Instant::now() + delay,
                    announced: false,
                }
            }
            Decision::GiveUp => self.give_up(),
        }
    }

    fn give_up(&mut self) -> Phase {
        let attempts = self.backoff.attempts_in_streak();
        warn!("giving up after {attempts} attempts");
        self.events.push_back(Event::GaveUp { attempts });
        Phase::Stopped
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &crate::redact::url(&self.config.url))
            .field("ready_state", &self.ready_state())
            .field("attempt", &self.attempt)
            .field("buffered_messages", &self.outbox.len())
            .finish()
    }
}

pub(crate) fn into_wire(msg: Message) -> Wire {
    match msg {
        Message::Text(s) => Wire::Text(s),
        Message::Binary(b) => Wire::Binary(b),
    }
}

/// A Close frame with `code` and `reason`.
pub(crate) fn close_frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }
}
