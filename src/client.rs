//! The blocking driver: reads the clock, waits in one `epoll` set (the link or the attempt's
//! sockets, and the wake eventfd), does the I/O the session asks for and feeds the results
//! back. Every decision is the session's (`session/`); every call here returns by its
//! deadline, in every phase.
#![forbid(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::session::{Session, FOREVER};
use crate::sys::{Epoll, Interest};
use crate::wake::{WakeState, Waker};
use crate::{Config, Error, Event, Message, ReadyState, SendError, Stats};

mod commands;
mod connecting;
mod link_io;
mod net_watch;
mod request;
mod wait;

use connecting::{Connecting, TOKEN_CONN, TOKEN_WAKE};
use link_io::LinkIo;
use net_watch::NetWatch;
pub use request::AttemptRequest;

/// Frames read past the caller's deadline while input may still be buffered.
const MAX_EXTRA_READS: u32 = 64;
/// Rounds in a row in which the session was due but nothing moved before the driver waits a
/// little anyway: a guard against a tight loop, should a deadline ever fail to move on.
const MAX_IDLE_ROUNDS: u32 = 8;

/// A WebSocket client that keeps one connection alive: heartbeat, dead-link detection,
/// reconnection with backoff, and an outbox that loses nothing. Single-threaded and blocking;
/// drive it with [`poll`](Client::poll) or [`run`](Client::run), or wait on
/// [`fd`](Client::fd) in your own `poll(2)` loop.
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
    session: Session,
    epoll: Epoll,
    wake: Arc<WakeState>,
    #[cfg(feature = "tls")]
    tls: Option<native_tls::TlsConnector>,
    connecting: Connecting,
    link: Option<LinkIo>,
    /// The link's registered epoll interest.
    link_interest: Interest,
    /// The link's socket was reported readable and has not been read dry since.
    link_readable: bool,
    /// Counters of links already gone, so stats survive reconnects.
    closed_links: link_io::LinkTotals,
    /// The durable outbox, when `OutboxConfig::file` is set.
    journal: Option<crate::journal::Journal>,
    /// The kernel's network reports, when `NetworkConfig::watch` is on and the
    /// subscription succeeded.
    net_watch: Option<NetWatch>,
}

impl Client {
    /// Validates `config` and creates a client. No network I/O happens until the first
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
        let epoll = Epoll::new()?;
        let wake = Arc::new(WakeState::new()?);
        epoll.add(wake.fd.as_fd().as_raw_fd(), TOKEN_WAKE, Interest::READ)?;
        let net_watch = if config.network.watch {
            NetWatch::start(&epoll)
        } else {
            None
        };
        let now = Instant::now();
        let opened = config
            .outbox
            .file
            .as_deref()
            .map(|path| open_journal(path, &config, now))
            .transpose()?;
        let mut session = Session::new(config, endpoint, now)?;
        let journal = opened.map(|(journal, restored)| {
            session.restore(restored.messages, restored.skipped_bytes);
            journal
        });
        Ok(Client {
            session,
            epoll,
            wake,
            #[cfg(feature = "tls")]
            tls,
            connecting: Connecting::default(),
            link: None,
            link_interest: Interest::READ,
            link_readable: false,
            closed_links: link_io::LinkTotals::default(),
            journal,
            net_watch,
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
        self.session.set_hook(Box::new(hook));
    }

    /// Installs the hello: messages that go first on every new link (authentication, a
    /// subscription), before anything queued while offline and before anything sent after
    /// [`Event::Connected`]. `hello` runs when the link opens, so it can build a fresh token.
    /// (With [`run`](Client::run), [`Handler::on_open`](crate::Handler::on_open) returns the
    /// hello instead.)
    ///
    /// ```
    /// use wsbeat::{Client, Config, Message};
    /// let mut client = Client::new(Config::new("ws://127.0.0.1:9000/")).unwrap();
    /// client.set_hello(|| vec![Message::text(r#"{"type":"auth","token":"..."}"#)]);
    /// client.send(Message::text("reading 1")).unwrap(); // goes after the hello
    /// ```
    pub fn set_hello(&mut self, hello: impl FnMut() -> Vec<Message> + Send + 'static) {
        self.session.set_hello(Box::new(hello));
    }

    /// Whether the application hands over the hello itself, after each `Connected`, with
    /// `provide_hello` (as `run` does for `Handler::on_open`).
    pub(crate) fn set_hello_from_application(&mut self, on: bool) {
        self.session.set_hello_from_application(on);
    }

    /// The hello for the link that just opened (see `set_hello_from_application`).
    pub(crate) fn provide_hello(&mut self, hello: Vec<Message>) {
        self.session.provide_hello(hello);
    }

    /// A handle that interrupts a blocked [`poll`](Client::poll) or [`run`](Client::run) from
    /// another thread (see [`Waker`]).
    pub fn waker(&self) -> Waker {
        Waker {
            state: self.wake.clone(),
        }
    }

    /// Waits at most `timeout` for the next event and returns it, or `None` if nothing
    /// happened (or a [`Waker`] fired). In every phase (name resolution, TCP connect, proxy,
    /// TLS handshake, upgrade, open, closing, waiting to reconnect) it returns by `timeout`,
    /// give or take the scheduler: every connect step is non-blocking and waits here.
    ///
    /// While connected, the wait lasts until the next heartbeat deadline, so an idle link wakes
    /// once per ping interval. Returns `None` at once when the client is stopped.
    pub fn poll(&mut self, timeout: Duration) -> Option<Event> {
        let start = Instant::now();
        let deadline = start + timeout.min(FOREVER);
        // The application is done producing for now: frames held for company leave.
        self.session.handle_app_poll();
        let mut waited = false;
        let mut extra_reads = 0;
        let mut idle_rounds = 0;
        // The first round uses the reading above: one clock reading less per call.
        let mut fresh = Some(start);
        loop {
            let now = fresh.take().unwrap_or_else(Instant::now);
            // What the last round's input asked for (open the link, answer a ping) is done
            // before its event reaches the application, which may send in reply.
            self.run_commands(now);
            if let Some(event) = self.session.poll_event() {
                return Some(event);
            }
            // A verdict on silence is due: what already arrived counts first (a pong waiting
            // in the socket after the application paused is not a missed pong).
            if self.link.is_some()
                && self.session.due_judges_silence(now)
                && self.read_link_now(now)
            {
                continue;
            }
            self.session.handle_timeout(now);
            self.run_commands(now);
            self.journal_timeout(now);
            if self.session.has_events() {
                continue;
            }
            if self.session.is_stopped() {
                return None;
            }
            if self.read_link(now) {
                idle_rounds = 0;
                continue;
            }
            let next = self.next_deadline().unwrap_or(deadline);
            if waited && now >= deadline && next > now {
                // A frame that made no event may hide more input in tungstenite's buffer,
                // where readiness cannot show it: read that, a bounded number of frames.
                extra_reads += 1;
                if !self.has_buffered_input() || extra_reads > MAX_EXTRA_READS {
                    return None;
                }
                continue;
            }
            let mut until = next.min(deadline);
            if until <= now {
                idle_rounds += 1;
                if idle_rounds > MAX_IDLE_ROUNDS {
                    log::warn!("session due at once without progress; waiting 1 ms");
                    until = now + Duration::from_millis(1);
                    idle_rounds = 0;
                }
            } else {
                idle_rounds = 0;
            }
            let woken = self.wait(until, now);
            waited = true;
            if woken {
                return self.session.poll_event();
            }
        }
    }

    /// Sends `msg` now if the link is open and nothing waits before it, else keeps it in the
    /// outbox for the next link. Never blocks: what the socket cannot take now waits until it
    /// can. A message sent back to back with the previous one (no [`poll`](Client::poll)
    /// between, within [`Config::coalesce_window`]) is held for company and leaves with the
    /// next `poll`, at [`next_wakeup`](Client::next_wakeup), or once 16 KiB wait; a lone
    /// message leaves at once.
    ///
    /// Order is kept: the hello (see [`set_hello`](Client::set_hello)) goes first on every
    /// link, then messages queued while offline, then newer ones; a message sent at any time
    /// after [`Event::Connected`] never overtakes the backlog. A message that does not fit is
    /// handed back, or, with [`WhenFull::DropOldest`](crate::WhenFull::DropOldest), makes room
    /// by dropping the oldest waiting one.
    pub fn send(&mut self, msg: impl Into<Message>) -> Result<(), SendError> {
        let mut msg = msg.into();
        let mut id = None;
        // The clock is read only when the session needs it to decide whether the message
        // joins a burst (or the journal stamps it): not for request/response traffic.
        let now = (self.journal.is_some() || self.session.send_needs_clock()).then(Instant::now);
        if let Some(journal) = &mut self.journal {
            // On flash before `send` returns, and only what will surely be accepted.
            msg = self.session.check_send(msg)?;
            match journal.append(&msg, now.unwrap_or_else(Instant::now)) {
                Ok(seq) => id = Some(seq),
                Err(e) => {
                    log::warn!("outbox file: {e}: message not accepted");
                    return Err(SendError::Storage(msg));
                }
            }
        }
        let Some(out) = self.session.send(msg, id, now)? else {
            return Ok(());
        };
        if let Some(link) = &mut self.link {
            match link.write(out.wire, out.flush) {
                Ok(stalled) => {
                    let (frames, bytes) = (link.frames_taken(), link.totals().bytes_out);
                    let stalled_at = stalled.then(|| now.unwrap_or_else(Instant::now));
                    self.session.handle_written(frames, bytes, stalled_at);
                    self.update_link_interest();
                }
                // Judged at the next poll; `send` only reports the acceptance.
                Err(reason) => self.session.handle_send_error(reason),
            }
        }
        Ok(())
    }

    /// Closes with code 1000 (normal closure): queued messages are sent first, then a Close
    /// frame; the server's reply is awaited for at most `close_timeout`. Keep polling until
    /// [`Event::Closed`]. No reconnect follows. Without an open link (waiting to reconnect,
    /// or an attempt under way, which is abandoned) `Closed` comes at the next poll.
    pub fn close(&mut self) {
        self.close_with(1000, "");
    }

    /// Like [`close`](Client::close) with a chosen code (e.g. 1001, going away) and reason.
    pub fn close_with(&mut self, code: u16, reason: &str) {
        let now = Instant::now();
        self.session.close(code, reason, now);
        self.run_commands(now);
    }

    /// Messages that were never handed to the kernel: call after [`Event::Closed`] or
    /// [`Event::GaveUp`] to keep them (e.g. on flash) rather than lose them.
    pub fn take_unsent(&mut self) -> Vec<Message> {
        self.session.take_unsent()
    }

    /// The connection state.
    pub fn ready_state(&self) -> ReadyState {
        self.session.ready_state(Instant::now())
    }

    /// Payload bytes accepted by [`send`](Client::send) and not yet taken by the kernel.
    pub fn buffered_amount(&self) -> usize {
        self.session.buffered_amount()
    }

    /// Messages accepted by [`send`](Client::send) and not yet taken by the kernel.
    pub fn buffered_messages(&self) -> usize {
        self.session.buffered_messages()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.session.stats().clone();
        let mut totals = self.closed_links;
        if let Some(link) = &self.link {
            totals.add(link.totals());
        }
        s.bytes_in = totals.bytes_in;
        s.bytes_out = totals.bytes_out;
        s.write_calls = totals.write_calls;
        s
    }

    /// When the client next has something to do, for applications that wait on
    /// [`fd`](Client::fd) themselves; exact in every phase. `None` when stopped. "At once" is
    /// an instant in the past, so `next_wakeup() <= now` holds whenever the caller read `now`.
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
        // No clock reading: a producer calls this after every message.
        let next = self.next_deadline();
        if self.has_buffered_input() || self.wake.is_set() {
            return next.map(|_| self.session.poll_timeout_at_once());
        }
        next
    }

    /// Whether the open link has output the socket could not take yet (it waits for the
    /// socket to become writable; [`fd`](Client::fd) reports that too).
    pub fn wants_write(&self) -> bool {
        self.session.link_stalled()
    }

    /// One descriptor for applications that wait on several sources with `poll(2)` or
    /// `epoll`: it is readable whenever the client has something to do in any phase (the link
    /// or a connect attempt's sockets are ready, the kernel reported a network change while
    /// [`NetworkConfig::watch`](crate::NetworkConfig::watch) is on, or a [`Waker`] fired).
    /// Wait for it to be readable, or for [`next_wakeup`](Client::next_wakeup), then call
    /// [`poll`](Client::poll) with a zero timeout until it returns `None`. The descriptor
    /// stays the same for the client's whole life; it is only for waiting (do not read it).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    /// Whether the client has stopped (closed or gave up) and will do nothing more.
    pub fn is_stopped(&self) -> bool {
        self.session.is_stopped()
    }

    /// The session's next deadline, or the durable outbox's (its periodic fsync), whichever
    /// comes first.
    fn next_deadline(&self) -> Option<Instant> {
        let journal = self.journal.as_ref().and_then(|j| j.poll_timeout());
        match (self.session.poll_timeout(), journal) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, _) => a,
        }
    }

    /// Runs the durable outbox's periodic fsync or compaction when due. A failure is logged
    /// and retried later (the journal spaces the retries): a failing flash never spins the
    /// loop and never stops the link.
    fn journal_timeout(&mut self, now: Instant) {
        if let Some(journal) = &mut self.journal {
            if journal.poll_timeout().is_some_and(|t| t <= now) {
                if let Err(e) = journal.handle_timeout(now) {
                    log::warn!("outbox file: {e}");
                }
            }
        }
    }

    fn has_buffered_input(&self) -> bool {
        self.link.as_ref().is_some_and(LinkIo::has_buffered_input)
    }

    /// Does what the session asks, in order, feeding each result back at once.
    fn run_commands(&mut self, now: Instant) {
        while let Some(command) = self.session.poll_command() {
            self.execute(command, now);
        }
        self.connecting.update_interest(&self.epoll);
        self.update_link_interest();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &crate::redact::url(&self.session.config().url))
            .field("ready_state", &self.ready_state())
            .field("attempt", &self.session.attempts())
            .field("buffered_messages", &self.session.buffered_messages())
            .finish()
    }
}

/// Opens the durable outbox at `path`: a failure (or another process holding it) is a
/// configuration error naming `outbox.file`.
fn open_journal(
    path: &std::path::Path,
    config: &Config,
    now: Instant,
) -> Result<(crate::journal::Journal, crate::journal::Restored), Error> {
    use crate::journal::{Journal, SyncPolicy};
    let policy = match config.outbox.sync {
        crate::OutboxSync::Always => SyncPolicy::Always,
        crate::OutboxSync::Every(t) => SyncPolicy::Every(t),
        crate::OutboxSync::Never => SyncPolicy::Never,
    };
    let (journal, restored) = Journal::open(path, policy, config.outbox.max_bytes as u64, now)
        .map_err(|e| Error::config("outbox.file", e.to_string()))?;
    if let Some(aside) = &restored.moved_aside {
        log::warn!(
            "outbox file {} was not a journal of this version: moved to {}",
            path.display(),
            aside.display()
        );
    }
    if restored.skipped_bytes > 0 {
        log::warn!(
            "outbox file {}: {} damaged bytes skipped",
            path.display(),
            restored.skipped_bytes
        );
    }
    Ok((journal, restored))
}
