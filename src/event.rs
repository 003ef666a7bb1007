//! What the client tells the application: messages, events and why a link ended.
#![forbid(unsafe_code)]

use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use crate::Error;
pub use tungstenite::{Bytes, Utf8Bytes};

/// A data message, sent or received.
///
/// Payloads are reference-counted ([`Bytes`], [`Utf8Bytes`]): a received message is handed
/// over without copying it out of the read buffer, and cloning one costs no copy either.
///
/// ```
/// use wsbeat::Message;
/// assert_eq!(Message::text("hi").len(), 2);
/// assert_eq!(Message::binary(vec![1, 2, 3]).as_bytes(), &[1, 2, 3]);
/// assert_eq!(Message::text("hi").as_text(), Some("hi"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// A UTF-8 text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(s: impl Into<Utf8Bytes>) -> Message {
        Message::Text(s.into())
    }
    /// A binary message.
    pub fn binary(b: impl Into<Bytes>) -> Message {
        Message::Binary(b.into())
    }
    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }
    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The payload as bytes (UTF-8 for text).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) => b,
        }
    }
    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(s) => Some(s.as_str()),
            Message::Binary(_) => None,
        }
    }
    /// The payload (UTF-8 for text), without copying it.
    ///
    /// ```
    /// let bytes = wsbeat::Message::text("hi").into_bytes();
    /// assert_eq!(&bytes[..], b"hi");
    /// ```
    pub fn into_bytes(self) -> Bytes {
        match self {
            Message::Text(s) => s.into(),
            Message::Binary(b) => b,
        }
    }

    /// Whether a received tungstenite message is this one (for application heartbeats).
    pub(crate) fn matches(&self, other: &tungstenite::Message) -> bool {
        match (self, other) {
            (Message::Text(a), tungstenite::Message::Text(b)) => a.as_str() == b.as_str(),
            (Message::Binary(a), tungstenite::Message::Binary(b)) => a[..] == b[..],
            _ => false,
        }
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(s.into())
    }
}
impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(s.into())
    }
}
impl From<Utf8Bytes> for Message {
    fn from(s: Utf8Bytes) -> Self {
        Message::Text(s)
    }
}
impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::Binary(b.into())
    }
}
impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Binary(b)
    }
}

/// Why a connection ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// `max_missed_pongs` pings in a row went unanswered: nothing arrived for
    /// the detection bound.
    HeartbeatTimeout {
        /// Pings missed.
        missed: u32,
        /// Silence before the verdict.
        silent_for: Duration,
    },
    /// The server sent a Close frame.
    ClosedByServer {
        /// The close code, if the frame had one.
        code: Option<u16>,
        /// The reason text the server gave (may be empty).
        reason: String,
    },
    /// The socket failed or ended without a Close frame (EOF, reset, write timeout).
    Io(Error),
    /// The server sent bytes that break RFC 6455 (invalid UTF-8, bad opcode, oversize).
    Protocol(Error),
    /// The TLS layer failed mid-stream.
    Tls(Error),
    /// The application called [`Client::close`](crate::Client::close).
    LocalClose {
        /// The close code sent.
        code: u16,
    },
}

impl DisconnectReason {
    /// A stable snake-case name: `heartbeat_timeout`, `closed_by_server`, `io_error`,
    /// `protocol_error`, `tls_error` or `local_close`.
    pub fn kind(&self) -> &'static str {
        match self {
            DisconnectReason::HeartbeatTimeout { .. } => "heartbeat_timeout",
            DisconnectReason::ClosedByServer { .. } => "closed_by_server",
            DisconnectReason::Io(_) => "io_error",
            DisconnectReason::Protocol(_) => "protocol_error",
            DisconnectReason::Tls(_) => "tls_error",
            DisconnectReason::LocalClose { .. } => "local_close",
        }
    }

    /// The close code involved, if any.
    pub fn code(&self) -> Option<u16> {
        match self {
            DisconnectReason::ClosedByServer { code, .. } => *code,
            DisconnectReason::LocalClose { code } => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for DisconnectReason {
    /// A human explanation, e.g. "no reply to 3 pings: nothing received for 35 s".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::HeartbeatTimeout { missed, silent_for } => write!(
                f,
                "no reply to {missed} pings: nothing received for {} ms",
                silent_for.as_millis()
            ),
            DisconnectReason::ClosedByServer {
                code: Some(code),
                reason,
            } if !reason.is_empty() => {
                write!(f, "closed by server with code {code}: ")?;
                // The server chose these bytes: escape control characters so that a reason
                // cannot forge lines in a log or an event stream.
                for c in reason.chars() {
                    if c.is_control() {
                        write!(f, "{}", c.escape_default())?;
                    } else {
                        f.write_char(c)?;
                    }
                }
                Ok(())
            }
            DisconnectReason::ClosedByServer {
                code: Some(code), ..
            } => {
                write!(f, "closed by server with code {code}")
            }
            DisconnectReason::ClosedByServer { code: None, .. } => f.write_str("closed by server"),
            DisconnectReason::Io(e) | DisconnectReason::Protocol(e) | DisconnectReason::Tls(e) => {
                write!(f, "{e}")
            }
            DisconnectReason::LocalClose { code } => write!(f, "closed locally with code {code}"),
        }
    }
}

/// What happened, as returned by [`Client::poll`](crate::Client::poll).
///
/// `attempt` numbers count every connect attempt since the client was created, from 1.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A connect attempt starts (resolve, TCP, TLS, upgrade, each step non-blocking).
    Connecting {
        /// Attempt number.
        attempt: u64,
        /// The URL with credentials and tokens redacted.
        url: String,
        /// When the attempt started, by the client's clock: never before the `at` of the
        /// [`Event::Reconnecting`] that scheduled it.
        at: Instant,
    },
    /// The link is open. Messages queued while offline are sent at the next
    /// [`poll`](crate::Client::poll), after anything the application sends in reply to this
    /// event (a hello or auth message goes first).
    Connected {
        /// Attempt number.
        attempt: u64,
        /// Time for TCP connect, TLS and upgrade.
        handshake: Duration,
        /// The subprotocol the server chose, if any.
        protocol: Option<String>,
    },
    /// A data message from the server.
    Message(Message),
    /// A heartbeat ping was sent.
    Ping {
        /// Its sequence number (the Ping payload, 8 bytes big-endian).
        seq: u64,
    },
    /// A reply to one of our pings arrived.
    Pong {
        /// The sequence number it answers.
        seq: u64,
        /// Round-trip time, when the ping is still known.
        rtt: Option<Duration>,
    },
    /// A ping got no reply within `pong_timeout`.
    PongMissed {
        /// Consecutive pings missed so far.
        missed: u32,
        /// `max_missed_pongs`.
        max: u32,
    },
    /// The link ended. Unless the application closed it, a reconnect follows.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
        /// Messages handed to the kernel after the last proof of delivery (a pong): the
        /// window of possible loss. Zero after a local close that got the server's reply.
        unconfirmed: u64,
        /// Of those, how many go back to the outbox to be sent again on the next link
        /// ([`Delivery::AtLeastOnce`](crate::Delivery::AtLeastOnce)); always 0 with
        /// at-most-once delivery. The server may see these twice.
        requeued: u64,
    },
    /// The durable outbox file was read at start (once, when
    /// [`OutboxConfig::file`](crate::OutboxConfig::file) is set, also when it was empty or
    /// new).
    OutboxRestored {
        /// Messages restored, to be sent first after the hello, in their original order.
        messages: u64,
        /// Bytes of the file skipped as damaged (a torn tail after a crash, corrupt records):
        /// only those records are lost.
        skipped_bytes: u64,
    },
    /// A full outbox with [`WhenFull::DropOldest`](crate::WhenFull::DropOldest) dropped its
    /// oldest waiting messages to take new ones. Reported once per burst.
    Dropped {
        /// Messages dropped since the last `Dropped` event.
        messages: u64,
    },
    /// A connect attempt failed.
    ConnectFailed {
        /// Attempt number.
        attempt: u64,
        /// What went wrong; [`Error::http_status`] gives a refused upgrade's status.
        error: Error,
    },
    /// The next attempt is scheduled.
    Reconnecting {
        /// The next attempt's number.
        attempt: u64,
        /// Wait before it.
        delay: Duration,
        /// When it is due: the instant the delay was counted from, plus `delay`.
        at: Instant,
    },
    /// No more attempts: `max_retries` failed retries in a row, or the server used a final
    /// close code. The client is stopped.
    GaveUp {
        /// Attempts made since the last open link (or since start).
        attempts: u64,
    },
    /// The kernel reported a network change that the client acts on (only with
    /// [`NetworkConfig::watch`](crate::NetworkConfig::watch)): the open link's path went, so
    /// a probe [`Ping`](Event::Ping) follows and, unanswered within
    /// [`NetworkConfig::probe_timeout`](crate::NetworkConfig::probe_timeout), a
    /// [`Disconnected`](Event::Disconnected); or, while waiting to reconnect, the network
    /// came back, and a [`Reconnecting`](Event::Reconnecting) with an earlier `at` follows.
    /// Changes that concern neither give no event.
    NetworkChanged {
        /// What changed.
        change: NetworkChange,
    },
    /// The client closed cleanly after [`Client::close`](crate::Client::close) and is stopped.
    Closed {
        /// The close code sent, if a link was open.
        code: Option<u16>,
    },
}

/// A network change the client acts on (see [`Event::NetworkChanged`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetworkChange {
    /// The open link's source address was removed.
    AddressRemoved(std::net::IpAddr),
    /// The interface of the open link went down, lost its carrier or is gone (its index).
    InterfaceDown(u32),
    /// A route was removed and the kernel has none left to the server (its address).
    NoRoute(std::net::IpAddr),
    /// While waiting to reconnect, the kernel routes to the server again.
    Restored,
}

impl NetworkChange {
    /// A stable snake-case name: `address_removed`, `interface_down`, `no_route` or
    /// `restored`.
    pub fn kind(&self) -> &'static str {
        match self {
            NetworkChange::AddressRemoved(_) => "address_removed",
            NetworkChange::InterfaceDown(_) => "interface_down",
            NetworkChange::NoRoute(_) => "no_route",
            NetworkChange::Restored => "restored",
        }
    }
}

impl fmt::Display for NetworkChange {
    /// A human explanation, e.g. "source address 10.0.0.1 removed".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkChange::AddressRemoved(a) => write!(f, "source address {a} removed"),
            NetworkChange::InterfaceDown(i) => write!(f, "interface {i} down"),
            NetworkChange::NoRoute(a) => write!(f, "no route to {a} left"),
            NetworkChange::Restored => f.write_str("a route to the server is back"),
        }
    }
}

/// The connection state, like the browser's `readyState` plus the wait between attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadyState {
    /// A connect attempt is due or in progress.
    Connecting,
    /// The link is open.
    Open,
    /// A local close is waiting for the server's reply.
    Closing,
    /// Waiting for the backoff delay before the next attempt.
    WaitingToReconnect,
    /// Stopped: closed by the application, or gave up.
    Closed,
}
