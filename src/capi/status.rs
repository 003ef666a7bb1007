//! Status codes, their static messages, and the detailed last error kept by each handle.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CString};

/// What a fallible function of the C API did. `WSBEAT_OK` is 0; every other value is a
/// failure, and the function wrote none of its out-parameters.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wsbeat_status {
    /// Success.
    WSBEAT_OK = 0,
    /// A pointer argument was NULL.
    WSBEAT_NULL_ARGUMENT = 1,
    /// An argument is out of range, a string is not UTF-8, or an enum value is unknown.
    WSBEAT_INVALID_ARGUMENT = 2,
    /// `wsbeat_client_new` refused the configuration; `wsbeat_config_last_error` names the
    /// field.
    WSBEAT_INVALID_CONFIG = 3,
    /// A system call failed (creating the client's epoll set or eventfd, e.g. out of file
    /// descriptors, or writing a message to the outbox file); the handle's last error says
    /// which.
    WSBEAT_IO = 4,
    /// The outbox is at its message or byte limit: the message was not taken (retry later,
    /// or keep it yourself).
    WSBEAT_OUTBOX_FULL = 5,
    /// The message is larger than `max_message_size`: it was not taken.
    WSBEAT_TOO_LARGE = 6,
    /// The client was closed or gave up; it will not connect again.
    WSBEAT_CLOSED = 7,
    /// Called from inside a callback that this client is running (the request hook, the
    /// logger, `wsbeat_client_take_unsent`'s callback): nothing was done.
    WSBEAT_BUSY = 8,
    /// `wsbeat_log_set`: another logger is installed in this process (the `log` crate allows
    /// one), e.g. by a Rust program that links this library.
    WSBEAT_LOGGER_IN_USE = 9,
    /// A bug in wsbeat: a Rust panic was caught at the boundary. The handle is poisoned
    /// (later calls on it return `WSBEAT_PANIC`); free it. Please report it.
    WSBEAT_PANIC = 10,
}

impl wsbeat_status {
    /// Every status, for tests and for `wsbeat_status_str`.
    pub(super) const ALL: [wsbeat_status; 11] = [
        wsbeat_status::WSBEAT_OK,
        wsbeat_status::WSBEAT_NULL_ARGUMENT,
        wsbeat_status::WSBEAT_INVALID_ARGUMENT,
        wsbeat_status::WSBEAT_INVALID_CONFIG,
        wsbeat_status::WSBEAT_IO,
        wsbeat_status::WSBEAT_OUTBOX_FULL,
        wsbeat_status::WSBEAT_TOO_LARGE,
        wsbeat_status::WSBEAT_CLOSED,
        wsbeat_status::WSBEAT_BUSY,
        wsbeat_status::WSBEAT_LOGGER_IN_USE,
        wsbeat_status::WSBEAT_PANIC,
    ];

    /// The static message, without its NUL.
    pub fn text(self) -> &'static str {
        self.message().trim_end_matches('\0')
    }

    /// The static message, with its NUL.
    fn message(self) -> &'static str {
        match self {
            wsbeat_status::WSBEAT_OK => "ok\0",
            wsbeat_status::WSBEAT_NULL_ARGUMENT => "a pointer argument was null\0",
            wsbeat_status::WSBEAT_INVALID_ARGUMENT => "invalid argument\0",
            wsbeat_status::WSBEAT_INVALID_CONFIG => "invalid configuration\0",
            wsbeat_status::WSBEAT_IO => "a system call failed\0",
            wsbeat_status::WSBEAT_OUTBOX_FULL => "outbox full\0",
            wsbeat_status::WSBEAT_TOO_LARGE => "message larger than max_message_size\0",
            wsbeat_status::WSBEAT_CLOSED => "client is closed\0",
            wsbeat_status::WSBEAT_BUSY => "called from inside one of the client's callbacks\0",
            wsbeat_status::WSBEAT_LOGGER_IN_USE => "another logger is installed\0",
            wsbeat_status::WSBEAT_PANIC => "internal error (a caught panic)\0",
        }
    }
}

/// A static, NUL-terminated message for `status` (never NULL; "unknown status" for a value
/// that is no `wsbeat_status`). Takes an integer so that any value is safe to pass.
#[no_mangle]
pub extern "C" fn wsbeat_status_str(status: u32) -> *const c_char {
    let text = wsbeat_status::ALL
        .iter()
        .find(|s| **s as u32 == status)
        .map_or("unknown status\0", |s| s.message());
    text.as_ptr().cast()
}

/// A handle's last error: a detailed message, NUL-terminated, owned by the handle.
#[derive(Debug)]
pub(super) struct LastError {
    text: RefCell<CString>,
    /// Set since the last `settle`: a detailed message that a generic one must not replace.
    fresh: Cell<bool>,
}

impl Default for LastError {
    fn default() -> Self {
        LastError {
            text: RefCell::new(CString::default()),
            fresh: Cell::new(false),
        }
    }
}

impl LastError {
    /// Replaces the message (interior NULs become spaces: the text is for people).
    pub fn set(&self, text: impl Into<String>) {
        let cleaned: Vec<u8> = text
            .into()
            .into_bytes()
            .into_iter()
            .map(|b| if b == 0 { b' ' } else { b })
            .collect();
        // No NUL is left, so this cannot fail; an empty message is the fallback all the same.
        *self.text.borrow_mut() = CString::new(cleaned).unwrap_or_default();
        self.fresh.set(true);
    }

    /// Whether `set` was called since the last `settle` (during the current call).
    pub fn is_fresh(&self) -> bool {
        self.fresh.get()
    }

    /// Marks the start or end of a call.
    pub fn settle(&self) {
        self.fresh.set(false);
    }

    /// The message: valid until the next `set`, or until the handle is freed.
    pub fn as_ptr(&self) -> *const c_char {
        self.text.borrow().as_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn text(p: *const c_char) -> String {
        // SAFETY: every message is a static NUL-terminated literal.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    #[test]
    fn every_status_has_its_own_message_and_unknown_values_are_safe() {
        let mut seen = std::collections::HashSet::new();
        for (i, s) in wsbeat_status::ALL.iter().enumerate() {
            assert_eq!(*s as u32, i as u32, "statuses are numbered densely from 0");
            assert!(seen.insert(text(wsbeat_status_str(*s as u32))));
        }
        assert_eq!(text(wsbeat_status_str(999)), "unknown status");
        assert_eq!(text(wsbeat_status_str(u32::MAX)), "unknown status");
    }

    #[test]
    fn last_error_replaces_interior_nuls_and_tracks_freshness() {
        let e = LastError::default();
        assert_eq!(text(e.as_ptr()), "");
        assert!(!e.is_fresh());
        e.set("a\0b");
        assert_eq!(text(e.as_ptr()), "a b");
        assert!(e.is_fresh());
        e.settle();
        assert!(!e.is_fresh());
        assert_eq!(text(e.as_ptr()), "a b", "kept until the next failure");
    }
}
