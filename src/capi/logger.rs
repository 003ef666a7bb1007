//! Log routing for C: a `log::Log` that hands each record to a C callback (the daemon's
//! syslog, say). Installed only when the C program asks (`wsbeat_log_set`); the library
//! never installs a logger of its own accord.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CString};
use std::sync::{OnceLock, RwLock};

use super::guard::catch;
use super::status::wsbeat_status;

/// A log record's level; also the most verbose level `wsbeat_log_set` passes on.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wsbeat_log_level {
    /// Nothing (as a maximum only).
    WSBEAT_LOG_OFF = 0,
    /// Errors.
    WSBEAT_LOG_ERROR = 1,
    /// Missed pongs, giving up, insecure TLS.
    WSBEAT_LOG_WARN = 2,
    /// Connects, disconnects, reconnects.
    WSBEAT_LOG_INFO = 3,
    /// Pings, RTTs, connect steps.
    WSBEAT_LOG_DEBUG = 4,
    /// Everything, including tungstenite's frame traces (which print payloads).
    WSBEAT_LOG_TRACE = 5,
}

/// Receives one log record: `userdata`, its level, its target (the module, e.g.
/// "wsbeat::session") and its message, both NUL-terminated and valid only during the call.
pub type wsbeat_log_callback = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        level: wsbeat_log_level,
        target: *const c_char,
        message: *const c_char,
    ),
>;

/// The installed callback and its userdata.
#[derive(Clone, Copy)]
struct Sink {
    callback: unsafe extern "C" fn(*mut c_void, wsbeat_log_level, *const c_char, *const c_char),
    userdata: *mut c_void,
}

// SAFETY: the C caller of wsbeat_log_set promises that the callback may be called with its
// userdata from any thread that uses wsbeat (the documented contract); the pointer is only
// passed back to that callback, never dereferenced here.
unsafe impl Send for Sink {}
// SAFETY: as for Send: shared use is only passing the pointer back to the callback.
unsafe impl Sync for Sink {}

struct CLogger {
    sink: RwLock<Option<Sink>>,
}

static LOGGER: CLogger = CLogger {
    sink: RwLock::new(None),
};
/// Whether `log::set_logger(&LOGGER)` succeeded; tried once per process.
static INSTALLED: OnceLock<bool> = OnceLock::new();

thread_local! {
    /// Set while this thread runs the callback: a record logged from inside it (by wsbeat
    /// called from the callback) is dropped rather than deadlocking or recursing.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

impl log::Log for CLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        // The level filter is log's global maximum, set by wsbeat_log_set.
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if IN_CALLBACK.with(Cell::get) {
            return;
        }
        // A poisoned lock only means a callback panicked; the sink itself is still whole.
        let guard = self.sink.read().unwrap_or_else(|e| e.into_inner());
        let Some(sink) = *guard else { return };
        let level = match record.level() {
            log::Level::Error => wsbeat_log_level::WSBEAT_LOG_ERROR,
            log::Level::Warn => wsbeat_log_level::WSBEAT_LOG_WARN,
            log::Level::Info => wsbeat_log_level::WSBEAT_LOG_INFO,
            log::Level::Debug => wsbeat_log_level::WSBEAT_LOG_DEBUG,
            log::Level::Trace => wsbeat_log_level::WSBEAT_LOG_TRACE,
        };
        let target = c_text(record.target().to_owned());
        let message = c_text(record.args().to_string());
        IN_CALLBACK.with(|c| c.set(true));
        // SAFETY: the caller of wsbeat_log_set promised the callback is safe to call with its
        // userdata; both strings outlive the call. The read guard keeps wsbeat_log_set (on
        // another thread) from returning while the old userdata is still in use.
        unsafe { (sink.callback)(sink.userdata, level, target.as_ptr(), message.as_ptr()) };
        IN_CALLBACK.with(|c| c.set(false));
    }

    fn flush(&self) {}
}

/// `text` as a C string; interior NULs become spaces.
fn c_text(text: String) -> CString {
    CString::new(text.replace('\0', " ")).unwrap_or_default()
}

/// Routes wsbeat's log records (and those of the Rust crates inside it) up to `max_level`
/// to `callback`, called with `userdata`. Replaces an earlier callback: once this returns,
/// the old one is no longer called. The first call installs the library's logger
/// (process-wide); without one, nothing is logged and nothing is formatted.
///
/// The callback runs on whichever thread logs (the one calling `wsbeat_client_poll` and the
/// other client functions); it must not call `wsbeat_log_set` or `wsbeat_log_clear`
/// (`WSBEAT_BUSY`), and wsbeat functions it calls log nothing.
///
/// Returns `WSBEAT_INVALID_ARGUMENT` for an unknown level, `WSBEAT_LOGGER_IN_USE` if another
/// logger already serves this process (a Rust program that linked this library installed
/// its own).
///
/// # Safety
/// `callback` is NULL or safe to call with `userdata`, from any thread that uses wsbeat,
/// until replaced or cleared.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_log_set(
    callback: wsbeat_log_callback,
    userdata: *mut c_void,
    max_level: u32,
) -> wsbeat_status {
    catch(|| {
        let Some(callback) = callback else {
            return wsbeat_status::WSBEAT_NULL_ARGUMENT;
        };
        use wsbeat_log_level as L;
        let levels = [
            (L::WSBEAT_LOG_OFF, log::LevelFilter::Off),
            (L::WSBEAT_LOG_ERROR, log::LevelFilter::Error),
            (L::WSBEAT_LOG_WARN, log::LevelFilter::Warn),
            (L::WSBEAT_LOG_INFO, log::LevelFilter::Info),
            (L::WSBEAT_LOG_DEBUG, log::LevelFilter::Debug),
            (L::WSBEAT_LOG_TRACE, log::LevelFilter::Trace),
        ];
        // An integer, not the enum: C may pass any value, and an unknown one is refused.
        let Some(&(_, filter)) = levels.iter().find(|(l, _)| *l as u32 == max_level) else {
            return wsbeat_status::WSBEAT_INVALID_ARGUMENT;
        };
        if IN_CALLBACK.with(Cell::get) {
            return wsbeat_status::WSBEAT_BUSY;
        }
        if !*INSTALLED.get_or_init(|| log::set_logger(&LOGGER).is_ok()) {
            return wsbeat_status::WSBEAT_LOGGER_IN_USE;
        }
        *LOGGER.sink.write().unwrap_or_else(|e| e.into_inner()) = Some(Sink { callback, userdata });
        log::set_max_level(filter);
        wsbeat_status::WSBEAT_OK
    })
}

/// Stops routing log records: once this returns, the callback is no longer called (the
/// logger stays installed, passing nothing on). `WSBEAT_BUSY` from inside the callback.
#[no_mangle]
pub extern "C" fn wsbeat_log_clear() -> wsbeat_status {
    catch(|| {
        if IN_CALLBACK.with(Cell::get) {
            return wsbeat_status::WSBEAT_BUSY;
        }
        log::set_max_level(log::LevelFilter::Off);
        *LOGGER.sink.write().unwrap_or_else(|e| e.into_inner()) = None;
        wsbeat_status::WSBEAT_OK
    })
}
