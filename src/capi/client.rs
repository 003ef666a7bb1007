//! The client handle: creation, sending, closing, and the entry discipline every client
//! function follows (NULL, re-entrancy from a callback, and poisoning after a caught panic).

use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_char, c_void, CString};
use std::time::Instant;

use super::args::{bytes_arg, str_arg, write_out};
use super::config::wsbeat_config;
use super::event::wsbeat_message_type;
use super::guard::{catch, catch_message, status};
use super::status::{wsbeat_status, LastError};
use crate::{Client, Error, Message, SendError};

/// A WebSocket client (opaque): heartbeat, reconnection and an outbox, driven by
/// `wsbeat_client_poll`. Create with `wsbeat_client_new`, free with `wsbeat_client_free`.
/// Not thread-safe: use it from one thread at a time (it may move between threads). Only a
/// `wsbeat_waker` may be used from other threads and signal handlers.
pub struct wsbeat_client {
    inner: UnsafeCell<Inner>,
    entry: Cell<Entry>,
    last_error: LastError,
}

/// What the handle owns besides the client: the buffers the last event points into.
pub(super) struct Inner {
    pub client: Client,
    /// The payload of the last `WSBEAT_EVENT_MESSAGE`, kept until the next poll.
    pub payload: Option<Message>,
    /// The last event's `detail` text, kept until the next poll.
    pub detail: CString,
    /// When the client was made: the origin of the events' `at_ms`.
    pub created: Instant,
}

/// Whether a call is running on the handle.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    Idle,
    /// A call is running: a callback it runs is calling back in.
    Busy,
    /// A panic was caught during a call: the client's state is unknown.
    Poisoned,
}

/// A client pointer from C, vouched for by the caller of [`ClientPtr::new`].
pub(super) struct ClientPtr(*const wsbeat_client);

impl ClientPtr {
    /// # Safety
    /// `ptr` is NULL or a live handle from `wsbeat_client_new`, used from this thread only
    /// until the call returns (the C contract: one thread at a time).
    pub unsafe fn new(ptr: *const wsbeat_client) -> ClientPtr {
        ClientPtr(ptr)
    }

    /// Runs `f` with exclusive access to the client: NULL gives `WSBEAT_NULL_ARGUMENT`, a
    /// call from inside one of this client's callbacks `WSBEAT_BUSY`, a poisoned handle
    /// `WSBEAT_PANIC`; a panic in `f` poisons the handle. Errors go to the last error.
    pub fn enter<R>(
        self,
        what: &str,
        f: impl FnOnce(&mut Inner, &LastError) -> Result<R, wsbeat_status>,
    ) -> Result<R, wsbeat_status> {
        // SAFETY: `new`'s caller vouched for a live handle or NULL. Only a shared
        // reference is made here: an outer call on this handle may hold `&mut Inner` (we are
        // then inside its callback), which the `Busy` check below keeps us from touching.
        let Some(handle) = (unsafe { self.0.as_ref() }) else {
            return Err(wsbeat_status::WSBEAT_NULL_ARGUMENT);
        };
        match handle.entry.get() {
            Entry::Idle => {}
            Entry::Busy => {
                handle.last_error.set(format!(
                    "{what}: called from inside a callback of this client"
                ));
                return Err(wsbeat_status::WSBEAT_BUSY);
            }
            Entry::Poisoned => {
                handle
                    .last_error
                    .set(format!("{what}: the client is unusable after a panic"));
                return Err(wsbeat_status::WSBEAT_PANIC);
            }
        }
        handle.entry.set(Entry::Busy);
        // SAFETY: the state was Idle, so no other reference to `inner` exists (single
        // thread: the handle is not Sync, and the C contract is one thread at a time); Busy
        // keeps re-entrant calls from making a second one until this returns.
        let inner = unsafe { &mut *handle.inner.get() };
        handle.last_error.settle();
        match catch_message(|| f(inner, &handle.last_error)) {
            Ok(result) => {
                handle.entry.set(Entry::Idle);
                if let Err(s) = &result {
                    note(&handle.last_error, what, *s);
                }
                result
            }
            Err(message) => {
                handle.entry.set(Entry::Poisoned);
                handle.last_error.set(format!("{what}: {message}"));
                Err(wsbeat_status::WSBEAT_PANIC)
            }
        }
    }
}

/// Records a generic message for `status` unless the call already gave a detailed one.
pub(super) fn note(last_error: &LastError, what: &str, status: wsbeat_status) {
    if !last_error.is_fresh() {
        last_error.set(format!("{what}: {}", status.text()));
    }
    last_error.settle();
}

/// Creates a client from `config` (which is copied: free or reuse it afterwards) and writes
/// it to `*client_out`. No network I/O happens until the first `wsbeat_client_poll`.
///
/// Returns `WSBEAT_INVALID_CONFIG` when a field is invalid (`wsbeat_config_last_error`
/// names it, e.g. "invalid config field `heartbeat.ping_interval`: must be greater than
/// zero"), `WSBEAT_IO` when the epoll set or eventfd cannot be made.
///
/// # Safety
/// `config` is NULL or a live config handle; `client_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_new(
    config: *mut wsbeat_config,
    client_out: *mut *mut wsbeat_client,
) -> wsbeat_status {
    catch(|| {
        // SAFETY: the caller promises a live config handle or NULL.
        let Some(cfg) = (unsafe { config.as_ref() }) else {
            return wsbeat_status::WSBEAT_NULL_ARGUMENT;
        };
        if client_out.is_null() {
            cfg.last_error.set("wsbeat_client_new: client_out is NULL");
            return wsbeat_status::WSBEAT_NULL_ARGUMENT;
        }
        let created = Instant::now();
        let client = match Client::new(cfg.config.clone()) {
            Ok(client) => client,
            Err(e) => {
                cfg.last_error.set(e.to_string());
                return match e {
                    Error::Config { .. } => wsbeat_status::WSBEAT_INVALID_CONFIG,
                    _ => wsbeat_status::WSBEAT_IO,
                };
            }
        };
        let handle = Box::new(wsbeat_client {
            inner: UnsafeCell::new(Inner {
                client,
                payload: None,
                detail: CString::default(),
                created,
            }),
            entry: Cell::new(Entry::Idle),
            last_error: LastError::default(),
        });
        // SAFETY: checked not NULL above; the caller promises it is writable.
        status(unsafe { write_out(client_out, Box::into_raw(handle)) })
    })
}

/// Frees a client: its sockets close at once, without a Close frame (call `wsbeat_client_close`
/// and poll until `WSBEAT_EVENT_CLOSED` for a graceful end). Messages still in the outbox are
/// lost: take them first with `wsbeat_client_take_unsent`. Wakers made from it stay valid
/// (waking them then does nothing). NULL does nothing. Called from inside one of the
/// client's own callbacks it is refused (the client is not freed; an error is logged).
///
/// # Safety
/// `client` is NULL or a live handle from `wsbeat_client_new`, not used after this returns.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_free(client: *mut wsbeat_client) {
    if client.is_null() {
        return;
    }
    // SAFETY: not NULL and, as the caller promises, a live handle.
    if unsafe { &*client }.entry.get() == Entry::Busy {
        log::error!("wsbeat_client_free called from inside a callback of that client: refused");
        return;
    }
    // SAFETY: made by Box::into_raw in wsbeat_client_new, not freed before (the caller's
    // promise), and no call is running on it (not Busy).
    let handle = unsafe { Box::from_raw(client) };
    // A panic while dropping (not expected) must not unwind into C; the memory is then lost.
    let _ = catch_message(move || drop(handle));
}

/// The detailed message of the last call on `client` that failed, e.g. "outbox full (12
/// bytes; 1000 messages queued)". Never NULL: "" if no call has failed (or `client` is NULL). Owned by the
/// client; valid until the next call on it or until it is freed.
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_last_error(client: *const wsbeat_client) -> *const c_char {
    // SAFETY: the caller promises a live handle or NULL. `last_error` lives outside `inner`,
    // so reading it is fine even from inside a callback.
    match unsafe { client.as_ref() } {
        Some(handle) => handle.last_error.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Queues a text message, copying `len` bytes of UTF-8 at `text` (no NUL needed; the
/// buffer stays yours). Sent at once if the link is open, else kept in the outbox for the
/// next link; never blocks.
///
/// Returns `WSBEAT_INVALID_ARGUMENT` if the bytes are not UTF-8, `WSBEAT_OUTBOX_FULL`,
/// `WSBEAT_TOO_LARGE` or `WSBEAT_CLOSED` if the message was not taken (nothing is lost: it
/// is still only in your buffer), `WSBEAT_IO` if the outbox file could not record it (it
/// was not taken either; the last error says why).
///
/// # Safety
/// `client` is NULL or a live handle; `text` is NULL or points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_send_text(
    client: *mut wsbeat_client,
    text: *const c_char,
    len: usize,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL, and `len` bytes at `text`.
    status(
        unsafe { ClientPtr::new(client) }.enter("wsbeat_client_send_text", |inner, err| {
            // SAFETY: the caller promises `len` readable bytes at `text`, or NULL.
            let bytes = unsafe { bytes_arg(text.cast(), len) }?;
            let Ok(s) = std::str::from_utf8(bytes) else {
                return Err(wsbeat_status::WSBEAT_INVALID_ARGUMENT);
            };
            send(inner, err, Message::text(s.to_owned()))
        }),
    )
}

/// Queues a binary message, copying `len` bytes at `data` (the buffer stays yours). As
/// `wsbeat_client_send_text` otherwise.
///
/// # Safety
/// `client` is NULL or a live handle; `data` is NULL or points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_send_binary(
    client: *mut wsbeat_client,
    data: *const u8,
    len: usize,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL, and `len` bytes at `data`.
    status(
        unsafe { ClientPtr::new(client) }.enter("wsbeat_client_send_binary", |inner, err| {
            // SAFETY: the caller promises `len` readable bytes at `data`, or NULL.
            let bytes = unsafe { bytes_arg(data, len) }?;
            send(inner, err, Message::binary(bytes.to_vec()))
        }),
    )
}

fn send(inner: &mut Inner, err: &LastError, msg: Message) -> Result<(), wsbeat_status> {
    let (len, queued) = (msg.len(), inner.client.buffered_messages());
    inner.client.send(msg).map_err(|e| {
        let status = match e {
            SendError::OutboxFull(_) => wsbeat_status::WSBEAT_OUTBOX_FULL,
            SendError::TooLarge(_) => wsbeat_status::WSBEAT_TOO_LARGE,
            SendError::Closed(_) => wsbeat_status::WSBEAT_CLOSED,
            // The outbox file could not record it (a full or read-only file system): a
            // failed system call, detailed in the last error.
            SendError::Storage(_) => wsbeat_status::WSBEAT_IO,
        };
        err.set(format!("{e} ({len} bytes; {queued} messages queued)"));
        status
    })
}

/// Closes with code 1000: queued messages go first, then a Close frame; keep polling until
/// `WSBEAT_EVENT_CLOSED`. No reconnect follows. Without an open link, `WSBEAT_EVENT_CLOSED`
/// comes at the next poll.
///
/// # Safety
/// `client` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_close(client: *mut wsbeat_client) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    status(
        unsafe { ClientPtr::new(client) }.enter("wsbeat_client_close", |inner, _| {
            inner.client.close();
            Ok(())
        }),
    )
}

/// Like `wsbeat_client_close` with a chosen close code and reason (UTF-8, at most 123
/// bytes, the room a Close frame has). Codes a client may send: 1000-1003, 1007-1014 and
/// 3000-4999; others give `WSBEAT_INVALID_ARGUMENT`.
///
/// # Safety
/// `client` is NULL or a live handle; `reason` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_close_with(
    client: *mut wsbeat_client,
    code: u16,
    reason: *const c_char,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL and a string or NULL.
    status(
        unsafe { ClientPtr::new(client) }.enter("wsbeat_client_close_with", |inner, _| {
            // SAFETY: the caller promises a NUL-terminated string or NULL.
            let reason = unsafe { str_arg(reason) }?;
            let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !sendable || reason.len() > 123 {
                return Err(wsbeat_status::WSBEAT_INVALID_ARGUMENT);
            }
            inner.client.close_with(code, reason);
            Ok(())
        }),
    )
}

/// Receives, in order, one message that was never handed to the kernel.
pub type wsbeat_message_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        message_type: wsbeat_message_type,
        data: *const u8,
        len: usize,
    ),
>;

/// Hands every message still in the outbox (never handed to the kernel) to `callback`, in
/// order, and forgets them: call it after `WSBEAT_EVENT_CLOSED` or `WSBEAT_EVENT_GAVE_UP` to
/// keep them (e.g. on flash). `data` is valid only during the callback; copy what you keep.
/// The callback must not call functions of this client (`WSBEAT_BUSY`).
///
/// # Safety
/// `client` is NULL or a live handle; `callback` is safe to call with `userdata`.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_take_unsent(
    client: *mut wsbeat_client,
    callback: wsbeat_message_callback,
    userdata: *mut c_void,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    status(
        unsafe { ClientPtr::new(client) }.enter("wsbeat_client_take_unsent", |inner, _| {
            let callback = callback.ok_or(wsbeat_status::WSBEAT_NULL_ARGUMENT)?;
            for msg in inner.client.take_unsent() {
                let kind = wsbeat_message_type::of(&msg);
                let bytes = msg.as_bytes();
                // SAFETY: the caller promises the callback is safe to call with userdata;
                // `bytes` outlives the call.
                unsafe { callback(userdata, kind, bytes.as_ptr(), bytes.len()) };
            }
            Ok(())
        }),
    )
}
