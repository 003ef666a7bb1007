//! Events for C: `wsbeat_client_poll` fills one caller-owned `wsbeat_event` at a time.

use std::ffi::{c_char, CString};
use std::time::{Duration, Instant};

use super::args::{micros, millis_out, write_out};
use super::client::{wsbeat_client, ClientPtr, Inner};
use super::guard::status;
use super::status::wsbeat_status;
use crate::{DisconnectReason, Event, Message};

/// What a `wsbeat_event` reports.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wsbeat_event_type {
    /// Nothing happened within the timeout (or a waker fired).
    WSBEAT_EVENT_NONE = 0,
    /// A connect attempt starts: `attempt`, `at_ms`; `detail` is the URL with secrets
    /// redacted.
    WSBEAT_EVENT_CONNECTING = 1,
    /// The link is open: `attempt`, `handshake_ms`; `detail` is the subprotocol the server
    /// chose ("" if none). Queued messages follow anything sent in reply to this event.
    WSBEAT_EVENT_CONNECTED = 2,
    /// A data message: `message_type`, `data`, `len`.
    WSBEAT_EVENT_MESSAGE = 3,
    /// A heartbeat ping was sent: `seq`.
    WSBEAT_EVENT_PING = 4,
    /// A reply to one of our pings: `seq`, `rtt_us` (-1 if the ping is no longer known).
    WSBEAT_EVENT_PONG = 5,
    /// A ping got no reply within the pong timeout: `missed` of `max_missed`.
    WSBEAT_EVENT_PONG_MISSED = 6,
    /// The link ended: `reason`, `close_code`, `unconfirmed`, `requeued`; `detail` explains.
    /// A reconnect follows unless the application closed it.
    WSBEAT_EVENT_DISCONNECTED = 7,
    /// A connect attempt failed: `attempt`, `http_status` (of a refused upgrade, else 0);
    /// `detail` says why.
    WSBEAT_EVENT_CONNECT_FAILED = 8,
    /// The next attempt is scheduled: `attempt` (its number), `delay_ms`, `at_ms` (when it is
    /// due).
    WSBEAT_EVENT_RECONNECTING = 9,
    /// No more attempts (max retries, or a final close code or HTTP status): `attempt` is the
    /// number of attempts since the last open link. The client is stopped.
    WSBEAT_EVENT_GAVE_UP = 10,
    /// Closed cleanly after `wsbeat_client_close`: `close_code` (0 if no link was open). The
    /// client is stopped.
    WSBEAT_EVENT_CLOSED = 11,
    /// The outbox file was read when the client was made (once, first, whenever an outbox
    /// file is set, also when it was empty or new): `messages` restored, to be sent first
    /// after the hello in their original order; `skipped_bytes` of the file skipped as
    /// damaged (a torn tail after a crash: only those records are lost).
    WSBEAT_EVENT_OUTBOX_RESTORED = 12,
    /// A full outbox with `WSBEAT_WHEN_FULL_DROP_OLDEST` dropped its oldest waiting messages
    /// to take new ones: `messages` dropped since the last such event (once per burst).
    WSBEAT_EVENT_DROPPED = 13,
    /// The kernel reported a network change the client acts on (only with
    /// `wsbeat_config_set_network_watch`): `detail` is `address_removed`, `interface_down`,
    /// `no_route` or `restored`, a colon and an explanation. A probe ping follows (or, for
    /// `restored`, an earlier `WSBEAT_EVENT_RECONNECTING`).
    WSBEAT_EVENT_NETWORK_CHANGED = 14,
}

/// Why a link ended (`WSBEAT_EVENT_DISCONNECTED`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wsbeat_disconnect_reason {
    /// Not a disconnect event.
    WSBEAT_REASON_NONE = 0,
    /// Nothing arrived for the detection bound (`missed` pings went unanswered).
    WSBEAT_REASON_HEARTBEAT_TIMEOUT = 1,
    /// The server sent a Close frame: `close_code` (0 if it had none); `detail` has its
    /// reason text.
    WSBEAT_REASON_CLOSED_BY_SERVER = 2,
    /// The socket failed or ended without a Close frame (EOF, reset, write timeout).
    WSBEAT_REASON_IO_ERROR = 3,
    /// The server broke RFC 6455.
    WSBEAT_REASON_PROTOCOL_ERROR = 4,
    /// The TLS layer failed mid-stream.
    WSBEAT_REASON_TLS_ERROR = 5,
    /// The application closed the link: `close_code` is the code sent.
    WSBEAT_REASON_LOCAL_CLOSE = 6,
}

/// A data message's type.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wsbeat_message_type {
    /// UTF-8 text (not NUL-terminated: use the length).
    WSBEAT_MESSAGE_TEXT = 1,
    /// Binary.
    WSBEAT_MESSAGE_BINARY = 2,
}

impl wsbeat_message_type {
    pub(super) fn of(msg: &Message) -> Self {
        match msg {
            Message::Text(_) => wsbeat_message_type::WSBEAT_MESSAGE_TEXT,
            Message::Binary(_) => wsbeat_message_type::WSBEAT_MESSAGE_BINARY,
        }
    }

    /// A message of the C `message_type` with a copy of `bytes`: `WSBEAT_INVALID_ARGUMENT`
    /// for an unknown type, or text that is not UTF-8.
    pub(super) fn message(message_type: u32, bytes: &[u8]) -> Result<Message, wsbeat_status> {
        match message_type {
            t if t == wsbeat_message_type::WSBEAT_MESSAGE_TEXT as u32 => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| wsbeat_status::WSBEAT_INVALID_ARGUMENT)?;
                Ok(Message::text(text.to_owned()))
            }
            t if t == wsbeat_message_type::WSBEAT_MESSAGE_BINARY as u32 => {
                Ok(Message::binary(bytes.to_vec()))
            }
            _ => Err(wsbeat_status::WSBEAT_INVALID_ARGUMENT),
        }
    }
}

/// One event, written by `wsbeat_client_poll` into memory the caller owns. Fields that do
/// not apply to `type` are zero (`rtt_us`: -1), `data` NULL and `detail` "".
///
/// `data` and `detail` point into the client: valid until the next `wsbeat_client_poll` on
/// it or until it is freed; copy what you keep. Never free them.
#[repr(C)]
#[derive(Debug)]
pub struct wsbeat_event {
    /// What happened.
    pub r#type: wsbeat_event_type,
    /// CONNECTING, CONNECTED, CONNECT_FAILED: the attempt's number (from 1, counting every
    /// attempt); RECONNECTING: the next attempt's; GAVE_UP: attempts since the last link.
    pub attempt: u64,
    /// DISCONNECTED: why.
    pub reason: wsbeat_disconnect_reason,
    /// DISCONNECTED (closed by server, local close) and CLOSED: the close code, 0 if none.
    pub close_code: u16,
    /// CONNECT_FAILED: the HTTP status of a refused upgrade (e.g. 401, 503), 0 otherwise.
    pub http_status: u16,
    /// DISCONNECTED: messages handed to the kernel after the last proof of delivery (a
    /// pong), the window of possible loss.
    pub unconfirmed: u64,
    /// PONG: the round-trip time in microseconds, -1 if unknown.
    pub rtt_us: i64,
    /// RECONNECTING: the wait before the next attempt, in milliseconds.
    pub delay_ms: u64,
    /// CONNECTED: TCP connect, proxy, TLS and upgrade together, in milliseconds.
    pub handshake_ms: u64,
    /// PING, PONG: the ping's sequence number.
    pub seq: u64,
    /// PONG_MISSED: consecutive pings missed; DISCONNECTED by heartbeat timeout: pings missed.
    pub missed: u32,
    /// PONG_MISSED: the configured maximum.
    pub max_missed: u32,
    /// MESSAGE: text or binary.
    pub message_type: wsbeat_message_type,
    /// MESSAGE: the payload (not NUL-terminated), NULL for other events.
    pub data: *const u8,
    /// MESSAGE: the payload's length in bytes.
    pub len: usize,
    /// A human explanation or name, NUL-terminated, never NULL (see each event type).
    pub detail: *const c_char,
    /// DISCONNECTED: of `unconfirmed`, how many go back to the outbox to be sent again on
    /// the next link (at-least-once delivery; always 0 with at-most-once).
    pub requeued: u64,
    /// OUTBOX_RESTORED: messages restored from the file; DROPPED: messages dropped.
    pub messages: u64,
    /// OUTBOX_RESTORED: bytes of the file skipped as damaged.
    pub skipped_bytes: u64,
    /// CONNECTING: when the attempt started; RECONNECTING: when the next attempt is due.
    /// Milliseconds since the client was made (`wsbeat_client_new`), on the monotonic clock
    /// the client schedules by (rounded down).
    pub at_ms: u64,
}

/// Waits at most `timeout_ms` milliseconds (negative: no limit) for the next event and
/// writes it to `*event_out`: `WSBEAT_EVENT_NONE` if nothing happened, or a waker fired.
/// Returns at the timeout in every phase (DNS, TCP, proxy, TLS, upgrade, open, closing,
/// waiting to reconnect); returns at once with NONE when the client is stopped.
///
/// With your own `poll(2)` loop: wait for `wsbeat_client_fd` to be readable or for
/// `wsbeat_client_next_timeout_ms`, then call this with 0 until it gives NONE.
///
/// The last event's `data` and `detail` become invalid when this is called again.
///
/// # Safety
/// `client` is NULL or a live handle; `event_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_poll(
    client: *mut wsbeat_client,
    timeout_ms: i32,
    event_out: *mut wsbeat_event,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL, and a writable event or NULL.
    status(
        unsafe { ClientPtr::new(client) }.enter("wsbeat_client_poll", |inner, _| {
            if event_out.is_null() {
                return Err(wsbeat_status::WSBEAT_NULL_ARGUMENT);
            }
            let timeout = u64::try_from(timeout_ms).map_or(Duration::MAX, Duration::from_millis);
            // The previous event's buffers go now, as documented.
            inner.payload = None;
            let event = inner.client.poll(timeout);
            let out = convert(inner, event);
            // SAFETY: the caller promises a writable `event_out`, or NULL.
            unsafe { write_out(event_out, out) }
        }),
    )
}

/// The C view of `event`; keeps its payload and text in `inner` for the caller to read.
fn convert(inner: &mut Inner, event: Option<Event>) -> wsbeat_event {
    let mut out = wsbeat_event {
        r#type: wsbeat_event_type::WSBEAT_EVENT_NONE,
        attempt: 0,
        reason: wsbeat_disconnect_reason::WSBEAT_REASON_NONE,
        close_code: 0,
        http_status: 0,
        unconfirmed: 0,
        rtt_us: -1,
        delay_ms: 0,
        handshake_ms: 0,
        seq: 0,
        missed: 0,
        max_missed: 0,
        message_type: wsbeat_message_type::WSBEAT_MESSAGE_TEXT,
        data: std::ptr::null(),
        len: 0,
        detail: std::ptr::null(),
        requeued: 0,
        messages: 0,
        skipped_bytes: 0,
        at_ms: 0,
    };
    let since_new = |at: Instant| millis_out(at.saturating_duration_since(inner.created));
    use wsbeat_event_type as T;
    let detail: String = match event {
        None => String::new(),
        Some(Event::Connecting { attempt, url, at }) => {
            (out.r#type, out.attempt) = (T::WSBEAT_EVENT_CONNECTING, attempt);
            out.at_ms = since_new(at);
            url
        }
        Some(Event::Connected {
            attempt,
            handshake,
            protocol,
        }) => {
            (out.r#type, out.attempt) = (T::WSBEAT_EVENT_CONNECTED, attempt);
            out.handshake_ms = millis_out(handshake);
            protocol.unwrap_or_default()
        }
        Some(Event::Message(msg)) => {
            out.r#type = T::WSBEAT_EVENT_MESSAGE;
            out.message_type = wsbeat_message_type::of(&msg);
            let bytes = msg.as_bytes();
            // The payload's heap buffer does not move when `msg` moves into `inner`.
            (out.data, out.len) = (bytes.as_ptr(), bytes.len());
            inner.payload = Some(msg);
            String::new()
        }
        Some(Event::Ping { seq }) => {
            (out.r#type, out.seq) = (T::WSBEAT_EVENT_PING, seq);
            String::new()
        }
        Some(Event::Pong { seq, rtt }) => {
            (out.r#type, out.seq) = (T::WSBEAT_EVENT_PONG, seq);
            out.rtt_us = rtt.map_or(-1, micros);
            String::new()
        }
        Some(Event::PongMissed { missed, max }) => {
            out.r#type = T::WSBEAT_EVENT_PONG_MISSED;
            (out.missed, out.max_missed) = (missed, max);
            String::new()
        }
        Some(Event::Disconnected {
            reason,
            unconfirmed,
            requeued,
        }) => {
            out.r#type = T::WSBEAT_EVENT_DISCONNECTED;
            (out.unconfirmed, out.requeued) = (unconfirmed, requeued);
            out.close_code = reason.code().unwrap_or(0);
            out.reason = disconnect_reason(&reason);
            if let DisconnectReason::HeartbeatTimeout { missed, .. } = reason {
                out.missed = missed;
            }
            reason.to_string()
        }
        Some(Event::ConnectFailed { attempt, error }) => {
            (out.r#type, out.attempt) = (T::WSBEAT_EVENT_CONNECT_FAILED, attempt);
            out.http_status = error.http_status().unwrap_or(0);
            error.to_string()
        }
        Some(Event::Reconnecting { attempt, delay, at }) => {
            (out.r#type, out.attempt) = (T::WSBEAT_EVENT_RECONNECTING, attempt);
            (out.delay_ms, out.at_ms) = (millis_out(delay), since_new(at));
            String::new()
        }
        Some(Event::GaveUp { attempts }) => {
            (out.r#type, out.attempt) = (T::WSBEAT_EVENT_GAVE_UP, attempts);
            String::new()
        }
        Some(Event::Closed { code }) => {
            out.r#type = T::WSBEAT_EVENT_CLOSED;
            out.close_code = code.unwrap_or(0);
            String::new()
        }
        Some(Event::OutboxRestored {
            messages,
            skipped_bytes,
        }) => {
            out.r#type = T::WSBEAT_EVENT_OUTBOX_RESTORED;
            (out.messages, out.skipped_bytes) = (messages, skipped_bytes);
            String::new()
        }
        Some(Event::Dropped { messages }) => {
            (out.r#type, out.messages) = (T::WSBEAT_EVENT_DROPPED, messages);
            String::new()
        }
        Some(Event::NetworkChanged { change }) => {
            out.r#type = T::WSBEAT_EVENT_NETWORK_CHANGED;
            format!("{}: {change}", change.kind())
        }
    };
    // Interior NULs (a server's close reason may carry one) become spaces: text for people.
    inner.detail = CString::new(detail.replace('\0', " ")).unwrap_or_default();
    out.detail = inner.detail.as_ptr();
    out
}

fn disconnect_reason(reason: &DisconnectReason) -> wsbeat_disconnect_reason {
    use wsbeat_disconnect_reason as R;
    match reason {
        DisconnectReason::HeartbeatTimeout { .. } => R::WSBEAT_REASON_HEARTBEAT_TIMEOUT,
        DisconnectReason::ClosedByServer { .. } => R::WSBEAT_REASON_CLOSED_BY_SERVER,
        DisconnectReason::Io(_) => R::WSBEAT_REASON_IO_ERROR,
        DisconnectReason::Protocol(_) => R::WSBEAT_REASON_PROTOCOL_ERROR,
        DisconnectReason::Tls(_) => R::WSBEAT_REASON_TLS_ERROR,
        DisconnectReason::LocalClose { .. } => R::WSBEAT_REASON_LOCAL_CLOSE,
    }
}
