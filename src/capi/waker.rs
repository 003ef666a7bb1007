//! The wake handle: a small object of its own, so that a signal handler or another thread
//! can end a blocked `wsbeat_client_poll` without touching the client.

use super::args::write_out;
use super::client::{wsbeat_client, ClientPtr};
use super::guard::status;
use super::status::wsbeat_status;
use crate::Waker;

/// Ends a blocked `wsbeat_client_poll` at once (opaque). Made by `wsbeat_client_waker`, freed
/// by `wsbeat_waker_free`; it may outlive its client (waking then does nothing).
///
/// `wsbeat_waker_wake` is async-signal-safe and thread-safe: it is one atomic store and one
/// `write(2)` to an eventfd, with no lock, no allocation and no `errno` change that it does
/// not restore. Nothing else in this library is async-signal-safe: not
/// `wsbeat_client_waker`, not `wsbeat_waker_free` (both allocate or free memory).
pub struct wsbeat_waker {
    waker: Waker,
}

/// Makes a wake handle for `client` and writes it to `*waker_out`. Make it before
/// installing the signal handler that uses it, and free it after removing that handler.
///
/// # Safety
/// `client` is NULL or a live handle; `waker_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_client_waker(
    client: *const wsbeat_client,
    waker_out: *mut *mut wsbeat_waker,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL, and a writable pointer or NULL.
    status(
        unsafe { ClientPtr::new(client) }.enter("wsbeat_client_waker", |inner, _| {
            if waker_out.is_null() {
                return Err(wsbeat_status::WSBEAT_NULL_ARGUMENT);
            }
            let handle = Box::new(wsbeat_waker {
                waker: inner.client.waker(),
            });
            // SAFETY: checked not NULL; the caller promises it is writable.
            unsafe { write_out(waker_out, Box::into_raw(handle)) }
        }),
    )
}

/// Wakes the client: a `wsbeat_client_poll` blocked now returns at once (with
/// `WSBEAT_EVENT_NONE` if nothing else happened), and one not blocked returns at once next
/// time. Async-signal-safe and callable from any thread. `WSBEAT_NULL_ARGUMENT` if `waker`
/// is NULL.
///
/// # Safety
/// `waker` is NULL or a live handle from `wsbeat_client_waker`.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_waker_wake(waker: *const wsbeat_waker) -> wsbeat_status {
    // No catch_unwind here: nothing below can panic (an atomic store and a write(2) whose
    // result is ignored), and a signal handler should run as little as possible.
    // SAFETY: the caller promises a live handle or NULL; `wsbeat_waker` is only read.
    match unsafe { waker.as_ref() } {
        Some(handle) => {
            // write(2) may set errno (e.g. EAGAIN on a saturated counter); a signal handler
            // must leave errno as it found it, for the code it interrupted.
            let saved = errno();
            handle.waker.wake();
            set_errno(saved);
            wsbeat_status::WSBEAT_OK
        }
        None => wsbeat_status::WSBEAT_NULL_ARGUMENT,
    }
}

/// Frees a wake handle. NULL does nothing. Not async-signal-safe: free it only once no
/// signal handler or thread can still use it.
///
/// # Safety
/// `waker` is NULL or a live handle from `wsbeat_client_waker`, not used after this returns.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_waker_free(waker: *mut wsbeat_waker) {
    if waker.is_null() {
        return;
    }
    // SAFETY: made by Box::into_raw in wsbeat_client_waker and, as the caller promises, not
    // freed before nor used after.
    let handle = unsafe { Box::from_raw(waker) };
    let _ = super::guard::catch_message(move || drop(handle));
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

fn set_errno(value: i32) {
    // SAFETY: as in `errno`; writing the thread's own errno slot.
    unsafe { *libc::__errno_location() = value };
}
