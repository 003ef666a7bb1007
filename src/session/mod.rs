//! The sans-IO session: every protocol and timing decision of the client, with time and I/O
//! results as inputs. Modelled on quinn-proto's `Connection`: it never reads the clock and
//! never touches a socket, a file or a thread; the blocking driver (`client.rs`) reads the
//! clock, waits, does the I/O the session asks for and feeds the results back.
//!
//! - In: `handle_timeout(now)`, `handle_resolver(..)`, `handle_datagram(..)`,
//!   `handle_tcp(..)`, `handle_connect_bytes(..)`, `handle_tls(..)`, `handle_inbound(..)`,
//!   `handle_message(..)`, `handle_written(..)`, `handle_link_error(..)`, and the
//!   application's `send`/`close`.
//! - Out: `poll_command()` (what to do now), `poll_event()` (what to tell the application),
//!   `poll_timeout()` (when to call `handle_timeout` next).
//!
//! It owns the phase (including the connect sub-steps), the heartbeat, the backoff, the outbox,
//! delivery accounting and every deadline: connect, DNS, address staggering, write stall,
//! close, probe and reconnect. Its tests step a fake clock (`session/tests.rs`).
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::info;
use tungstenite::Message as Wire;

use crate::backoff::{Backoff, SplitMix64};
use crate::endpoint::Endpoint;
use crate::outbox::{Entry, Outbox};
use crate::proxy::Proxy;
use crate::{AttemptRequest, Config, Error, Event, Message, ReadyState, Stats};

mod candidates;
mod coalesce;
pub(crate) use coalesce::COALESCE_BYTES;
mod connect;
mod delivery;
mod link;
mod network;
mod retry;
mod send;
#[cfg(test)]
mod tests;

use connect::Attempt;
use link::LinkState;
pub(crate) use network::{LinkPath, RouteCheck};

pub(crate) type RequestHook = Box<dyn FnMut(&mut AttemptRequest) + Send>;
pub(crate) type HelloHook = Box<dyn FnMut() -> Vec<Message> + Send>;

/// What the driver must do now, in order.
#[derive(Debug)]
pub(crate) enum Command {
    /// Read the system's resolver configuration (`/etc/resolv.conf`, `/etc/hosts`) and hand
    /// it over with [`Session::handle_resolver`].
    LoadResolver,
    /// Send a DNS query.
    SendDatagram(crate::dns::Datagram),
    /// Start a non-blocking TCP connect to `addr`; report with [`Session::handle_tcp`].
    Connect { id: usize, addr: SocketAddr },
    /// Keep candidate `id` as the attempt's connection; drop every other candidate.
    Choose { id: usize },
    /// Write these bytes on the connection (through TLS once it is up), then read its reply
    /// and report with [`Session::handle_connect_bytes`].
    Write(Vec<u8>),
    /// Bytes that arrived behind the proxy's reply: read them before the socket's.
    Unread(Vec<u8>),
    /// Run the TLS handshake for `host` on the connection; report with
    /// [`Session::handle_tls`]. (Never asked for without the `tls` feature: such builds
    /// refuse wss:// URLs at validation.)
    StartTls {
        #[cfg_attr(not(feature = "tls"), allow(dead_code))]
        host: String,
    },
    /// The upgrade succeeded: open the WebSocket on the connection, `tail` being the first
    /// bytes behind the upgrade reply.
    Open { tail: Vec<u8> },
    /// End the attempt: close every socket of it.
    Abort,
    /// Write a data message on the open link (or an application heartbeat) without flushing
    /// it, then report with [`Session::handle_written`]: tungstenite writes held frames out by
    /// itself past [`COALESCE_BYTES`](coalesce::COALESCE_BYTES), and a `Flush` follows when
    /// the session wants them out (see `coalesce`).
    Send(Wire),
    /// Write a Ping frame whose payload is `seq` (8 bytes, big-endian).
    Ping { seq: u64 },
    /// Flush what tungstenite holds (held data frames, a queued Pong or Close reply).
    Flush,
    /// Send our Close frame.
    SendClose { code: u16, reason: String },
    /// The link is over: close it (its counters go into the totals).
    Release,
    /// Every durable-outbox record up to `through` is proven delivered.
    Ack { through: u64 },
    /// Durable-outbox record `id` was dropped by a full outbox.
    Forget { id: u64 },
    /// Ask the kernel, without sending anything, whether it has a route to `to` (from the
    /// source address `from`, when given); report with [`Session::handle_route_check`].
    CheckRoute {
        from: Option<std::net::IpAddr>,
        to: std::net::IpAddr,
    },
}

/// A message for the link, from [`Session::send`].
#[derive(Debug)]
pub struct Outgoing {
    /// The frame to write.
    pub wire: Wire,
    /// Flush it at once; otherwise it is held in tungstenite's buffer for company (a `Flush`
    /// command or tungstenite itself writes it out).
    pub flush: bool,
}

/// Where the session is.
enum Phase {
    /// The next attempt is due at `at` (the first one at once).
    Waiting { at: Instant },
    /// An attempt is under way.
    Connecting(Box<Attempt>),
    /// A link is open.
    Open(Box<LinkState>),
    /// A local close: queued messages go first, then the Close frame, then the reply.
    Closing(Box<Closing>),
    /// Closed or gave up: nothing more happens.
    Stopped,
}

/// A local close in progress.
struct Closing {
    link: LinkState,
    /// The reply is awaited until then (`close_timeout` after `close`).
    deadline: Instant,
    code: u16,
    reason: String,
    /// Whether our Close frame went out (after everything queued).
    close_sent: bool,
}

/// The open or closing link of `phase`, if there is one.
fn link_of(phase: &mut Phase) -> Option<&mut LinkState> {
    match phase {
        Phase::Open(link) => Some(link),
        Phase::Closing(c) => Some(&mut c.link),
        _ => None,
    }
}

/// The session (see the module docs).
pub(crate) struct Session {
    config: Config,
    endpoint: Endpoint,
    proxy: Option<Proxy>,
    phase: Phase,
    events: VecDeque<Event>,
    commands: VecDeque<Command>,
    outbox: Outbox,
    backoff: Backoff,
    stats: Stats,
    /// Attempts made since the session began.
    attempt: u64,
    hook: Option<RequestHook>,
    /// Makes the messages that go first on every new link (auth, subscribe).
    hello: Option<HelloHook>,
    /// The application hands the hello over itself after `Connected`
    /// ([`provide_hello`](Session::provide_hello)): the outbox waits for it.
    hello_from_application: bool,
    /// Messages dropped by a full outbox since the last `Dropped` event.
    dropped: u64,
    /// The application heartbeat message, built once.
    app_ping: Option<Wire>,
    /// Seeds DNS query ids.
    rng: SplitMix64,
    /// "At once" for [`poll_timeout`](Session::poll_timeout): an instant no caller's clock
    /// reading can precede (when the session was made).
    at_once: Instant,
    /// The latest instant any input carried: `send` falls back on it when the caller read no
    /// clock (see [`send_needs_clock`](Session::send_needs_clock)).
    latest_now: Instant,
    /// The last open link's server address: while waiting, the route checked for it.
    last_peer: Option<std::net::IpAddr>,
    /// The earliest a network report may bring the waiting attempt forward to.
    not_before: Option<Instant>,
    /// A [`Command::CheckRoute`] is queued or under way: one per burst of reports.
    route_check_queued: bool,
}

impl Session {
    /// A session for a validated `config`; the first attempt is due at `now`.
    pub fn new(config: Config, endpoint: Endpoint, now: Instant) -> Result<Session, Error> {
        let proxy = config.proxy.as_deref().map(Proxy::parse).transpose()?;
        let seed = config.seed.unwrap_or_else(SplitMix64::random_seed);
        Ok(Session {
            backoff: Backoff::new(config.backoff.clone(), SplitMix64::new(seed)),
            rng: SplitMix64::new(seed ^ 0x646e_735f_6964_7321),
            outbox: Outbox::new(
                config.outbox.max_messages,
                config.outbox.max_bytes,
                config.effective_delivery() == crate::Delivery::AtLeastOnce,
            ),
            app_ping: config
                .heartbeat
                .app_heartbeat
                .as_ref()
                .map(|a| into_wire(a.ping.clone())),
            endpoint,
            proxy,
            phase: Phase::Waiting { at: now },
            events: VecDeque::new(),
            commands: VecDeque::new(),
            stats: Stats::default(),
            attempt: 0,
            hook: None,
            hello: None,
            hello_from_application: false,
            dropped: 0,
            at_once: now,
            latest_now: now,
            last_peer: None,
            not_before: None,
            route_check_queued: false,
            config,
        })
    }

    /// Installs the request hook (see `Client::set_request_hook`).
    pub fn set_hook(&mut self, hook: RequestHook) {
        self.hook = Some(hook);
    }

    /// Installs the hello hook: its messages go first on every new link, before the backlog.
    pub fn set_hello(&mut self, hello: HelloHook) {
        self.hello = Some(hello);
    }

    /// Whether the application hands the hello over itself after each `Connected` (see
    /// [`provide_hello`](Session::provide_hello)); `Client::run` does, for `Handler::on_open`.
    pub fn set_hello_from_application(&mut self, on: bool) {
        self.hello_from_application = on;
    }

    /// Messages restored from the durable outbox at start: the backlog, in their order.
    pub fn restore(&mut self, messages: Vec<(u64, Message)>, skipped_bytes: u64) {
        let count = messages.len() as u64;
        for (id, m) in messages {
            self.outbox.push_restored(Entry {
                wire: into_wire(m),
                id: Some(id),
            });
        }
        self.events.push_back(Event::OutboxRestored {
            messages: count,
            skipped_bytes,
        });
    }

    /// The application's hello for the link that just opened: it goes first, then the
    /// backlog flows.
    pub fn provide_hello(&mut self, messages: Vec<Message>) {
        if let Phase::Open(link) = &mut self.phase {
            if link.hold_outbox {
                link.hold_outbox = false;
                self.outbox.push_front(
                    messages
                        .into_iter()
                        .map(|m| Entry::new(into_wire(m)))
                        .collect(),
                );
            }
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        if self.dropped > 0 {
            let messages = std::mem::take(&mut self.dropped);
            log::warn!("outbox full: dropped the {messages} oldest waiting messages");
            return Some(Event::Dropped { messages });
        }
        self.events.pop_front()
    }

    /// Whether events are waiting.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty() || self.dropped > 0
    }

    /// The next thing the driver must do, if any. Call until `None` after every input.
    pub fn poll_command(&mut self) -> Option<Command> {
        if let Some(c) = self.commands.pop_front() {
            return Some(c);
        }
        self.next_link_command()
    }

    /// When [`handle_timeout`](Session::handle_timeout) must next run: an instant in the past
    /// means at once; `None` when stopped.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.has_events() || !self.commands.is_empty() {
            return Some(self.at_once);
        }
        match &self.phase {
            Phase::Waiting { at } => Some(*at),
            Phase::Connecting(attempt) => Some(attempt.next_timeout()),
            Phase::Open(link) => Some(link.next_timeout(&self.outbox, self.at_once)),
            Phase::Closing(c) => Some(if !c.close_sent && !c.link.is_stalled() {
                self.at_once
            } else {
                c.deadline
                    .min(c.link.stall_deadline().unwrap_or(c.deadline))
            }),
            Phase::Stopped => None,
        }
    }

    /// Whether a deadline due at `now` judges the peer's silence: a missed pong, or a Close
    /// never answered. The driver reads what already arrived before such a verdict (a pong
    /// waiting in the socket after the application paused is not a missed pong); a deadline
    /// that only sends the first ping of a quiet spell needs no read first, so an idle link
    /// spends no `recv` on it.
    pub fn due_judges_silence(&self, now: Instant) -> bool {
        match &self.phase {
            Phase::Open(link) => link.heartbeat.judges_silence_at(now),
            Phase::Closing(c) => c.deadline <= now,
            _ => false,
        }
    }

    /// The application called `Client::poll`: frames held for company leave now, and its next
    /// message leaves at once (see `coalesce`).
    pub fn handle_app_poll(&mut self) {
        if let Phase::Open(link) = &mut self.phase {
            if link.writes.app_polls() {
                self.commands.push_back(Command::Flush);
            }
        }
    }

    /// The instant [`poll_timeout`](Session::poll_timeout) uses for "at once".
    pub fn poll_timeout_at_once(&self) -> Instant {
        self.at_once
    }

    /// Time has come to `now`: judge every deadline of the phase.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.saw(now);
        let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
        self.phase = match phase {
            Phase::Waiting { at } if now >= at => self.start_attempt(now),
            Phase::Connecting(attempt) => self.connect_timeout(attempt, now),
            Phase::Open(link) => self.open_timeout(link, now),
            Phase::Closing(closing) => self.closing_timeout(closing, now),
            other => other,
        };
    }

    /// Records an instant some input carried.
    pub(super) fn saw(&mut self, now: Instant) {
        self.latest_now = self.latest_now.max(now);
    }

    /// Starts a local close with `code` and `reason` at `now`: with a link open, the outbox
    /// goes first, then the Close frame, and the reply is awaited until `close_timeout`;
    /// otherwise (waiting, or an attempt under way, which is abandoned) `Closed` at once.
    pub fn close(&mut self, code: u16, reason: &str, now: Instant) {
        let phase = std::mem::replace(&mut self.phase, Phase::Stopped);
        self.phase = match phase {
            Phase::Open(mut link) => {
                info!("closing with code {code}");
                link.hold_outbox = false;
                Phase::Closing(Box::new(Closing {
                    link: *link,
                    deadline: now + self.config.close_timeout,
                    code,
                    reason: reason.to_string(),
                    close_sent: false,
                }))
            }
            Phase::Waiting { .. } | Phase::Connecting(_) => {
                if matches!(phase, Phase::Connecting(_)) {
                    self.commands.push_back(Command::Abort);
                }
                info!("closed while not connected");
                self.events.push_back(Event::Closed { code: None });
                Phase::Stopped
            }
            other => other,
        };
    }

    /// Messages never handed to the kernel, in order (for an application that stops).
    pub fn take_unsent(&mut self) -> Vec<Message> {
        self.outbox.drain_all()
    }

    /// The connection state at `now`.
    pub fn ready_state(&self, now: Instant) -> ReadyState {
        match &self.phase {
            Phase::Waiting { .. } if self.attempt == 0 => ReadyState::Connecting,
            Phase::Waiting { at } if *at > now => ReadyState::WaitingToReconnect,
            Phase::Waiting { .. } | Phase::Connecting(_) => ReadyState::Connecting,
            Phase::Open(_) => ReadyState::Open,
            Phase::Closing(_) => ReadyState::Closing,
            Phase::Stopped => ReadyState::Closed,
        }
    }

    /// Payload bytes accepted and not yet taken by the kernel.
    pub fn buffered_amount(&self) -> usize {
        self.outbox.bytes()
    }

    /// Messages accepted and not yet taken by the kernel.
    pub fn buffered_messages(&self) -> usize {
        self.outbox.len()
    }

    /// The counters kept here (the driver adds the byte counts).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u64 {
        self.attempt
    }

    /// Whether the session has stopped and every event was taken.
    pub fn is_stopped(&self) -> bool {
        matches!(self.phase, Phase::Stopped) && self.events.is_empty()
    }

    /// Whether a link is open (or closing) whose write is waiting for the socket.
    pub fn link_stalled(&self) -> bool {
        match &self.phase {
            Phase::Open(link) => link.is_stalled(),
            Phase::Closing(c) => c.link.is_stalled(),
            _ => false,
        }
    }
}

/// The application's message in tungstenite's form (no copy: payloads are shared).
pub(crate) fn into_wire(msg: Message) -> Wire {
    match msg {
        Message::Text(s) => Wire::Text(s),
        Message::Binary(b) => Wire::Binary(b),
    }
}

/// The far future: "no deadline" without overflowing `Instant`.
pub(crate) const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
