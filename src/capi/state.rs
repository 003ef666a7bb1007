//! What a C loop asks the client between polls: the descriptor and deadline for its own
//! `poll(2)`, the connection state, the outbox level and the counters.

use std::os::fd::AsRawFd;
use std::time::Instant;

use super::args::{ceil_millis, micros, write_out};
use super::client::{wsbeat_client, ClientPtr};
use super::guard::status;
use super::status::wsbeat_status;
use crate::ReadyState;

/// The connection state, like the browser's `readyState` plus the wait between attempts.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wsbeat_ready_state {
    /// A connect attempt is due or in progress.
    WSBEAT_STATE_CONNECTING = 0,
    /// The link is open.
    WSBEAT_STATE_OPEN = 1,
    /// A local close is waiting for the server's reply.
    WSBEAT_STATE_CLOSING = 2,
    /// Waiting for the backoff delay before the next attempt.
    WSBEAT_STATE_WAITING_TO_RECONNECT = 3,
    /// Stopped: closed by the application, or gave up.
    WSBEAT_STATE_CLOSED = 4,
}

/// Counters since the client was created (`wsbeat_client_stats`). Durations are in
/// microseconds; -1 means "none yet" (no RTT measured, no link open).
#[repr(C)]
#[derive(Debug, Default)]
pub struct wsbeat_stats {
    /// Connect attempts made.
    pub attempts: u64,
    /// Links opened.
    pub connects: u64,
    /// Links lost because the heartbeat declared them dead.
    pub heartbeat_timeouts: u64,
    /// Links the server closed with a Close frame.
    pub closed_by_server: u64,
    /// Links lost to socket errors, EOF or write timeouts.
    pub io_errors: u64,
    /// Links lost to protocol violations by the server.
    pub protocol_errors: u64,
    /// Links lost to TLS failures.
    pub tls_errors: u64,
    /// Links the application closed.
    pub local_closes: u64,
    /// Heartbeat pings sent.
    pub pings_sent: u64,
    /// Replies to our pings received.
    pub pongs_received: u64,
    /// Pings that got no reply within the pong timeout.
    pub pongs_missed: u64,
    /// Bytes received, including frame headers.
    pub bytes_in: u64,
    /// Bytes the kernel took, including frame headers.
    pub bytes_out: u64,
    /// Data messages received.
    pub messages_in: u64,
    /// Data messages whose frames the kernel took completely.
    pub messages_out: u64,
    /// The latest round-trip time, or -1.
    pub last_rtt_us: i64,
    /// Smoothed round-trip time (RFC 6298 weights), or -1.
    pub smoothed_rtt_us: i64,
    /// How long the current link has been open, or -1 if none is.
    pub uptime_us: i64,
}

/// The descriptor to wait on in your own `poll(2)`/`epoll` loop: readable whenever the client
/// has something to do, in every phase. Stable for the client's life; only for waiting (do
/// not read, write or close it). -1 if `client` is NULL (or inside its own callback).
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_fd(client: *const wsbeat_client) -> i32 {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ClientPtr::new(client) }
        .enter("wsbeat_client_fd", |inner, _| {
            Ok(inner.client.fd().as_raw_fd())
        })
        .unwrap_or(-1)
}

/// Milliseconds until the client next has something to do, rounded up, for the timeout of
/// your `poll(2)`: 0 when due now, -1 when nothing is due (stopped). Wait for the fd or this
/// timeout, whichever comes first. -1 if `client` is NULL.
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_next_timeout_ms(client: *const wsbeat_client) -> i32 {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ClientPtr::new(client) }
        .enter("wsbeat_client_next_timeout_ms", |inner, _| {
            Ok(match inner.client.next_wakeup() {
                Some(at) => ceil_millis(at.saturating_duration_since(Instant::now())),
                None => -1,
            })
        })
        .unwrap_or(-1)
}

/// Whether the open link has output the socket could not take yet. The fd reports the
/// socket's writability too, so a loop needs no `POLLOUT` of its own; this is for logging
/// and back-pressure decisions. false if `client` is NULL.
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_wants_write(client: *const wsbeat_client) -> bool {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ClientPtr::new(client) }
        .enter("wsbeat_client_wants_write", |inner, _| {
            Ok(inner.client.wants_write())
        })
        .unwrap_or(false)
}

/// The connection state; `WSBEAT_STATE_CLOSED` if `client` is NULL.
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_ready_state(
    client: *const wsbeat_client,
) -> wsbeat_ready_state {
    use wsbeat_ready_state as S;
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ClientPtr::new(client) }
        .enter("wsbeat_client_ready_state", |inner, _| {
            Ok(match inner.client.ready_state() {
                ReadyState::Connecting => S::WSBEAT_STATE_CONNECTING,
                ReadyState::Open => S::WSBEAT_STATE_OPEN,
                ReadyState::Closing => S::WSBEAT_STATE_CLOSING,
                ReadyState::WaitingToReconnect => S::WSBEAT_STATE_WAITING_TO_RECONNECT,
                ReadyState::Closed => S::WSBEAT_STATE_CLOSED,
            })
        })
        .unwrap_or(S::WSBEAT_STATE_CLOSED)
}

/// Whether the client has stopped (closed or gave up) and will do nothing more; true if
/// `client` is NULL.
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_is_stopped(client: *const wsbeat_client) -> bool {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ClientPtr::new(client) }
        .enter("wsbeat_client_is_stopped", |inner, _| {
            Ok(inner.client.is_stopped())
        })
        .unwrap_or(true)
}

/// Payload bytes accepted by the send functions and not yet taken by the kernel; 0 if
/// `client` is NULL.
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_buffered_amount(client: *const wsbeat_client) -> usize {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ClientPtr::new(client) }
        .enter("wsbeat_client_buffered_amount", |inner, _| {
            Ok(inner.client.buffered_amount())
        })
        .unwrap_or(0)
}

/// Messages accepted by the send functions and not yet taken by the kernel; 0 if `client`
/// is NULL.
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_buffered_messages(client: *const wsbeat_client) -> usize {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ClientPtr::new(client) }
        .enter("wsbeat_client_buffered_messages", |inner, _| {
            Ok(inner.client.buffered_messages())
        })
        .unwrap_or(0)
}

/// Writes a snapshot of the counters to `*stats_out`.
///
/// # Safety
/// `client` is NULL or a live handle; `stats_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_stats(
    client: *const wsbeat_client,
    stats_out: *mut wsbeat_stats,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL, and a writable struct or NULL.
    status(
        unsafe { ClientPtr::new(client) }.enter("wsbeat_client_stats", |inner, _| {
            let s = inner.client.stats();
            let out = wsbeat_stats {
                attempts: s.attempts,
                connects: s.connects,
                heartbeat_timeouts: s.heartbeat_timeouts,
                closed_by_server: s.closed_by_server,
                io_errors: s.io_errors,
                protocol_errors: s.protocol_errors,
                tls_errors: s.tls_errors,
                local_closes: s.local_closes,
                pings_sent: s.pings_sent,
                pongs_received: s.pongs_received,
                pongs_missed: s.pongs_missed,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                messages_in: s.messages_in,
                messages_out: s.messages_out,
                last_rtt_us: s.last_rtt.map_or(-1, micros),
                smoothed_rtt_us: s.smoothed_rtt.map_or(-1, micros),
                uptime_us: s.uptime(Instant::now()).map_or(-1, micros),
            };
            // SAFETY: the caller promises a writable `stats_out`, or NULL.
            unsafe { write_out(stats_out, out) }
        }),
    )
}
