//! The one error type of the crate.
#![forbid(unsafe_code)]

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

/// Everything that can go wrong in wsbeat.
///
/// `Display` strings are short and lowercase; the underlying cause, where there is one, is kept
/// and reachable through [`std::error::Error::source`].
///
/// ```
/// use wsbeat::{Client, Config, Error};
/// let err = Client::new(Config::new("http://example.com/")).unwrap_err();
/// assert!(matches!(err, Error::Config { field: "url", .. }));
/// assert!(err.to_string().starts_with("invalid config field `url`"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid. `field` names it as in [`Config`](crate::Config).
    Config {
        /// The offending field, e.g. `"heartbeat.ping_interval"`.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The host name did not resolve, or resolved to no address.
    Resolve {
        /// The host that was looked up.
        host: String,
        /// The resolver's error, if it gave one.
        source: Option<io::Error>,
    },
    /// A socket operation failed (connect refused, reset, broken pipe, ...).
    Io(io::Error),
    /// The TCP connect, TLS handshake and HTTP upgrade together took longer than
    /// `connect_timeout`.
    ConnectTimeout(Duration),
    /// The server answered the upgrade request with an HTTP status other than 101.
    HttpStatus {
        /// The status code, e.g. 503.
        status: u16,
        /// The reason phrase the server sent, or the canonical one.
        reason: String,
        /// The `Retry-After` delay the server asked for (429 and 503 answers).
        retry_after: Option<Duration>,
    },
    /// The upgrade handshake failed for a reason other than an HTTP status.
    Handshake(tungstenite::Error),
    /// The peer broke RFC 6455 (invalid UTF-8, bad opcode, oversized message, ...).
    Protocol(tungstenite::Error),
    /// The HTTP CONNECT proxy refused or failed the tunnel.
    Proxy {
        /// The proxy's HTTP status (407, 502, ...), when it answered with one.
        status: Option<u16>,
        /// What went wrong.
        detail: String,
    },
    /// TLS failed (unknown CA, host name mismatch, expired certificate, ...).
    Tls {
        /// What failed, in words.
        detail: String,
        /// The TLS library's error, where there is one.
        source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    },
}

impl Error {
    /// The HTTP status of a refused upgrade, if this error is one.
    ///
    /// ```
    /// let err = wsbeat::Error::HttpStatus { status: 503, reason: "Service Unavailable".into(), retry_after: None };
    /// assert_eq!(err.http_status(), Some(503));
    /// ```
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::HttpStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn config(field: &'static str, problem: impl Into<String>) -> Error {
        Error::Config {
            field,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { field, problem } => {
                write!(f, "invalid config field `{field}`: {problem}")
            }
            Error::Resolve { host, source } => match source {
                Some(e) => write!(f, "could not resolve host `{host}`: {e}"),
                None => write!(f, "host `{host}` resolved to no address"),
            },
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::ConnectTimeout(d) => write!(f, "connect timed out after {} ms", d.as_millis()),
            Error::HttpStatus { status, reason, .. } => {
                write!(f, "server refused the upgrade: http {status} {reason}")
            }
            Error::Handshake(e) => write!(f, "websocket handshake failed: {e}"),
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::Proxy { detail, .. } => write!(f, "proxy error: {detail}"),
            Error::Tls { detail, .. } => write!(f, "tls error: {detail}"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Resolve {
                source: Some(e), ..
            }
            | Error::Io(e) => Some(e),
            Error::Handshake(e) | Error::Protocol(e) => Some(e),
            Error::Tls {
                source: Some(e), ..
            } => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// A message that [`Client::send`](crate::Client::send) could not accept, handed back to the
/// caller so that nothing is dropped silently.
///
/// ```
/// use wsbeat::{Client, Config, Message, SendError};
/// let mut config = Config::new("ws://127.0.0.1:9/");
/// config.outbox.max_messages = 1;
/// let mut client = Client::new(config).unwrap();
/// client.send(Message::text("first")).unwrap(); // kept in the outbox while not connected
/// match client.send(Message::text("second")) {
///     Err(SendError::OutboxFull(msg)) => assert_eq!(msg, Message::text("second")),
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The outbox is at its message or byte limit.
    OutboxFull(crate::Message),
    /// The message is larger than `max_message_size`.
    TooLarge(crate::Message),
    /// The client was closed or gave up; it will not connect again.
    Closed(crate::Message),
    /// The durable outbox file could not record the message (a full or read-only file
    /// system, an I/O error; the cause is logged): it was not accepted. Retry later, or keep
    /// it elsewhere.
    Storage(crate::Message),
}

impl SendError {
    /// The message that was not accepted.
    pub fn into_message(self) -> crate::Message {
        match self {
            SendError::OutboxFull(m)
            | SendError::TooLarge(m)
            | SendError::Closed(m)
            | SendError::Storage(m) => m,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::OutboxFull(_) => f.write_str("outbox full"),
            SendError::TooLarge(_) => f.write_str("message larger than max_message_size"),
            SendError::Closed(_) => f.write_str("client is closed"),
            SendError::Storage(_) => f.write_str("outbox file could not record the message"),
        }
    }
}

impl StdError for SendError {}
