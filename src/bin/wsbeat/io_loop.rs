//! The one I/O thread: `poll(2)` on stdin and the client's descriptor (readable when any
//! socket of any phase is ready, or a signal woke the client), with the client's own next
//! deadline as the timeout; then `Client::poll(0)` until it has nothing more.
//!
//! The library keeps its clock (heartbeat, dead-link bound, backoff) whether stdin is idle,
//! busy or closed, because every wait here ends at `next_wakeup()`; and a stdin line goes to
//! `Client::send` as soon as poll(2) reports it, so sending adds no latency.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use wsbeat::{Client, Event, Message, ReadyState, SendError, Utf8Bytes};

use crate::device::Device;
use crate::events::EventSink;
use crate::lines::Line;
use crate::output::Output;
use crate::signals::Signals;
use crate::stdin::{Read1, StdinLines};

/// Longest single wait; only a safety net, the client's deadlines normally come first.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Events handled before stdin and signals get a look-in, so a flooding server cannot starve
/// them.
const MAX_EVENTS_PER_ROUND: usize = 256;
/// Wait used when the client wants to run now but made no progress last time: a guard
/// against spinning (the client's descriptor reports writability after a stall itself).
const STALL_WAIT: Duration = Duration::from_millis(10);

/// Exit statuses.
pub const EXIT_OK: i32 = 0;
pub const EXIT_GAVE_UP: i32 = 1;

/// Everything the loop owns.
pub struct IoLoop {
    client: Client,
    events: EventSink,
    output: Output,
    signals: Signals,
    device: Device,
    /// `None` once stdin ended or we stopped reading it.
    stdin: Option<StdinLines>,
    keep_open: bool,
    /// Complete lines the outbox had no room for yet, oldest first. While any wait, stdin is
    /// not read: the producer is slowed down (backpressure) rather than lines dropped.
    pending: VecDeque<Utf8Bytes>,
    eof: bool,
    closing: bool,
    stdout_broken: bool,
    /// The last drain stopped early: frames may wait in the library's buffer, out of sight of
    /// poll(2), so the next wait must not block.
    more: bool,
    /// The last drain or feed did something; a "run now" deadline without it means a stall.
    progress: bool,
    /// Lines refused (not UTF-8, too long) or dropped at a signal, for the final count.
    dropped: usize,
}

impl IoLoop {
    /// A loop over a client that has not been polled yet.
    pub fn new(
        client: Client,
        events: EventSink,
        output: Output,
        signals: Signals,
        device: Device,
        stdin: Option<StdinLines>,
        keep_open: bool,
    ) -> IoLoop {
        let eof = stdin.is_none();
        IoLoop {
            client,
            events,
            output,
            signals,
            device,
            stdin,
            keep_open,
            pending: VecDeque::new(),
            eof,
            closing: false,
            stdout_broken: false,
            more: false,
            progress: true,
            dropped: 0,
        }
    }

    /// Runs until the client is closed (exit 0) or gives up (exit 1).
    pub fn run(mut self) -> i32 {
        self.device.ready(&self.client);
        loop {
            if let Some(code) = self.drain() {
                self.device.stopping(&self.client);
                return code;
            }
            // `Event` is non-exhaustive: should a newer library stop without `Closed` or
            // `GaveUp`, exit rather than wait forever on a client that will do nothing.
            if self.client.is_stopped() {
                warn!("client stopped without a final event");
                self.device.stopping(&self.client);
                return EXIT_GAVE_UP;
            }
            self.device
                .after_drain(&self.client, self.more, &mut self.events);
            self.feed();
            self.maybe_close();
            self.wait();
        }
    }

    /// Calls `Client::poll(0)` until it has nothing more to say.
    ///
    /// `poll` returns `None` after a step that consumed a frame without an event (a Ping from
    /// the server) even when more frames sit in tungstenite's buffer, where poll(2) on the
    /// socket cannot see them. So a `None` counts as "done" only if the byte counters did not
    /// move during that call.
    fn drain(&mut self) -> Option<i32> {
        self.progress = false;
        for _ in 0..MAX_EVENTS_PER_ROUND {
            let before = io_marker(&self.client);
            match self.client.poll(Duration::ZERO) {
                Some(event) => {
                    self.progress = true;
                    if let Some(code) = self.handle(event) {
                        return Some(code);
                    }
                }
                None if io_marker(&self.client) == before => {
                    self.more = false;
                    return None;
                }
                None => self.progress = true,
            }
        }
        self.more = true;
        None
    }

    fn handle(&mut self, event: Event) -> Option<i32> {
        self.device.event(&event, &self.client);
        match &event {
            Event::Message(msg) => self.print(msg),
            Event::Closed { code } => {
                let unsent = self.unsent();
                self.events
                    .event(&event, |l| l.int("unsent", unsent as u64));
                info!("closed (code {code:?})");
                return Some(EXIT_OK);
            }
            Event::GaveUp { attempts } => {
                let unsent = self.unsent();
                self.events
                    .event(&event, |l| l.int("unsent", unsent as u64));
                warn!("gave up after {attempts} attempts");
                return Some(EXIT_GAVE_UP);
            }
            _ => self.events.event(&event, |l| l),
        }
        None
    }

    fn print(&mut self, msg: &Message) {
        if self.stdout_broken {
            return;
        }
        if let Err(e) = self.output.message(msg) {
            // Usually the reader went away (`wsbeat ... | head -1`): nothing more can be
            // delivered, so close cleanly rather than keep a link nobody listens to.
            warn!("cannot write to stdout ({e}): closing");
            self.stdout_broken = true;
        }
    }

    /// Lines that never reached the kernel, for the final report.
    fn unsent(&mut self) -> usize {
        let n = self.client.take_unsent().len() + self.pending.len() + self.dropped;
        if n > 0 {
            warn!("{n} input lines were not sent");
        }
        n
    }

    /// Hands pending lines to the client, in order, until the outbox is full. `Client::send`
    /// never blocks: what the socket cannot take waits in the client, counted against the
    /// outbox, so a full outbox is the back-pressure that stops stdin being read.
    fn feed(&mut self) {
        while let Some(line) = self.pending.pop_front() {
            match self.client.send(Message::Text(line)) {
                Ok(()) => self.progress = true,
                Err(SendError::OutboxFull(msg)) | Err(SendError::Closed(msg)) => {
                    if let Message::Text(line) = msg {
                        self.pending.push_front(line);
                    }
                    return;
                }
                Err(e) => {
                    // TooLarge cannot happen (lines are cut at max_message_size), but the
                    // error type may grow: never drop silently.
                    warn!("line not sent: {e}");
                    self.dropped += 1;
                }
            }
        }
    }

    /// Starts the clean close once a signal, end of input or a dead stdout asks for it.
    fn maybe_close(&mut self) {
        if self.closing {
            return;
        }
        let signal = self.signals.received();
        // At end of input, lines still queued are worth waiting for: close once the link is
        // open (close() sends the outbox first) or nothing is queued at all.
        let input_done = self.eof
            && !self.keep_open
            && self.pending.is_empty()
            && (self.client.ready_state() == ReadyState::Open
                || self.client.buffered_messages() == 0);
        if !(signal || input_done || self.stdout_broken) {
            return;
        }
        if signal {
            info!("signal received: closing");
        } else if input_done {
            info!("end of input: closing");
        }
        self.closing = true;
        self.progress = true;
        self.device.stopping(&self.client);
        // Lines not yet accepted by the outbox are given up on a signal: the user asked to
        // stop now. They are counted in `unsent`.
        self.stdin = None;
        self.client.close();
    }

    fn wait(&mut self) {
        let now = Instant::now();
        // The device's deadlines (watchdog ping, periodic stats) are the loop's own.
        let next = match (self.client.next_wakeup(), self.device.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut timeout = match next {
            _ if self.more => Duration::ZERO,
            Some(at) => at.saturating_duration_since(now).min(MAX_WAIT),
            None => MAX_WAIT,
        };
        if timeout.is_zero() && !self.more && !self.progress {
            timeout = STALL_WAIT;
        }
        // Whole milliseconds, rounded up: waking a little early would only find the deadline
        // not yet due and wait again.
        let millis = timeout.as_micros().div_ceil(1000);
        let poll_timeout =
            PollTimeout::try_from(millis.min(i32::MAX as u128) as u32).unwrap_or(PollTimeout::MAX);

        let read_stdin = !self.closing && self.pending.is_empty();
        let mut fds = Vec::with_capacity(3);
        // The client's descriptor: any socket of any phase ready, or a signal's wake. What it
        // reports is handled by the next `drain`.
        fds.push(PollFd::new(self.client.fd(), PollFlags::POLLIN));
        fds.push(PollFd::new(self.signals.usr1_fd(), PollFlags::POLLIN));
        let stdin_at = match (&self.stdin, read_stdin) {
            (Some(s), true) => {
                fds.push(PollFd::new(s.fd(), PollFlags::POLLIN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        match nix::poll::poll(&mut fds, poll_timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                warn!("poll failed: {e}");
                std::thread::sleep(STALL_WAIT);
            }
        }
        // Whether the loop met the deadline it asked for, for the watchdog.
        self.device
            .waited(now + Duration::from_millis(millis as u64), Instant::now());
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        let stdin_ready = stdin_at.is_some_and(ready);
        let usr1 = ready(1);
        drop(fds);

        if usr1 && self.signals.take_usr1() {
            self.device.stats(&self.client, &mut self.events);
        }
        if stdin_ready {
            self.read_stdin();
        }
    }

    fn read_stdin(&mut self) {
        let Some(stdin) = &mut self.stdin else {
            return;
        };
        let (lines, eof) = match stdin.read_ready() {
            Read1::Lines(lines) => (lines, false),
            Read1::Eof(lines) => (lines, true),
        };
        for line in lines {
            match line {
                Line::Text(text) => self.pending.push_back(text.into()),
                Line::NotUtf8 { number } => {
                    warn!("stdin line {number} is not valid UTF-8: not sent");
                    self.dropped += 1;
                }
                Line::TooLong { number, len } => {
                    warn!("stdin line {number} has {len} bytes, more than --max-message-size: not sent");
                    self.dropped += 1;
                }
            }
        }
        if eof {
            debug!("end of stdin");
            self.stdin = None;
            self.eof = true;
        }
        // Send at once: a line must not wait for the next wake-up.
        self.feed();
    }
}

/// Changes whenever the client moved bytes, with or without an event.
fn io_marker(client: &Client) -> (u64, u64) {
    let s = client.stats();
    (s.bytes_in, s.bytes_out)
}
