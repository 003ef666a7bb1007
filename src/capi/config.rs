//! The config handle: a `Config` built field by field from C. Setters only store values;
//! `wsbeat_client_new` validates them all, as `Client::new` does, and names the bad field.
//! Durations are in milliseconds; zero is stored as is (and refused by `wsbeat_client_new`).

use std::ffi::c_char;

use super::args::{bytes_arg, str_arg, write_out};
use super::event::wsbeat_message_type;
use super::guard::{catch, status};
use super::status::{wsbeat_status, LastError};
use crate::{AppHeartbeat, Config};

/// A client configuration (opaque), every field at its documented default until set. Create
/// with `wsbeat_config_new`, free with `wsbeat_config_free`; `wsbeat_client_new` copies it.
pub struct wsbeat_config {
    pub(super) config: Config,
    pub(super) last_error: LastError,
}

/// A config pointer from C, vouched for by the caller of [`ConfigPtr::new`].
pub(super) struct ConfigPtr(*mut wsbeat_config);

impl ConfigPtr {
    /// # Safety
    /// `ptr` is NULL or a live config handle, used by no other call until this one returns
    /// (the C contract: one thread at a time).
    pub unsafe fn new(ptr: *mut wsbeat_config) -> ConfigPtr {
        ConfigPtr(ptr)
    }

    /// Runs a setter on the config; NULL gives `WSBEAT_NULL_ARGUMENT`, a panic
    /// `WSBEAT_PANIC`, and failures go to its last error.
    pub fn with(
        self,
        what: &str,
        f: impl FnOnce(&mut Config) -> Result<(), wsbeat_status>,
    ) -> wsbeat_status {
        catch(|| {
            // SAFETY: `new`'s caller vouched for a live handle (or NULL) not in use elsewhere.
            let Some(handle) = (unsafe { self.0.as_mut() }) else {
                return wsbeat_status::WSBEAT_NULL_ARGUMENT;
            };
            handle.last_error.settle();
            let result = f(&mut handle.config);
            if let Err(s) = result {
                super::client::note(&handle.last_error, what, s);
            }
            status(result)
        })
    }
}

/// Creates a configuration for `url` (`ws://host[:port]/path?query` or `wss://...`, copied)
/// with every other field at its default, and writes it to `*config_out`.
///
/// # Safety
/// `url` is NULL or a NUL-terminated string; `config_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_new(
    url: *const c_char,
    config_out: *mut *mut wsbeat_config,
) -> wsbeat_status {
    catch(|| {
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let url = match unsafe { str_arg(url) } {
            Ok(url) => url,
            Err(s) => return s,
        };
        if config_out.is_null() {
            return wsbeat_status::WSBEAT_NULL_ARGUMENT;
        }
        let handle = Box::new(wsbeat_config {
            config: Config::new(url),
            last_error: LastError::default(),
        });
        // SAFETY: checked not NULL; the caller promises it is writable.
        status(unsafe { write_out(config_out, Box::into_raw(handle)) })
    })
}

/// Frees a configuration. NULL does nothing. Clients made from it are unaffected.
///
/// # Safety
/// `config` is NULL or a live handle from `wsbeat_config_new`, not used after this returns.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_free(config: *mut wsbeat_config) {
    if config.is_null() {
        return;
    }
    // SAFETY: made by Box::into_raw in wsbeat_config_new and, as the caller promises, not
    // freed before nor used after.
    let handle = unsafe { Box::from_raw(config) };
    let _ = super::guard::catch_message(move || drop(handle));
}

/// The detailed message of the last call on `config` that failed, including
/// `wsbeat_client_new` refusing it (it names the field). Never NULL: "" if none failed (or
/// `config` is NULL). Owned by the config; valid until its next failing call or its free.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_last_error(config: *const wsbeat_config) -> *const c_char {
    // SAFETY: the caller promises a live handle or NULL.
    match unsafe { config.as_ref() } {
        Some(handle) => handle.last_error.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Reads the proxy from `https_proxy` (for wss://) or `http_proxy` (for ws://), upper or
/// lower case, unless `no_proxy` lists the host; leaves the proxy as it is when no variable
/// applies. Opt-in: nothing reads the environment unless this is called.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_proxy_from_env(config: *mut wsbeat_config) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_proxy_from_env", |c| {
        *c = c.clone().proxy_from_env();
        Ok(())
    })
}

/// Offers a subprotocol in `Sec-WebSocket-Protocol` (copied); the one the server picks is
/// the `detail` of `WSBEAT_EVENT_CONNECTED`. Defaults to none.
///
/// # Safety
/// `config` is NULL or a live handle; `name` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_add_protocol(
    config: *mut wsbeat_config,
    name: *const c_char,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_add_protocol", |c| {
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let s = unsafe { str_arg(name) }?.to_owned();
        c.protocols.push(s);
        Ok(())
    })
}

/// Sets the `Origin` header (copied). Defaults to none.
///
/// # Safety
/// `config` is NULL or a live handle; `origin` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_origin(
    config: *mut wsbeat_config,
    origin: *const c_char,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_origin", |c| {
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let s = unsafe { str_arg(origin) }?.to_owned();
        c.origin = Some(s);
        Ok(())
    })
}

/// Tunnels through an HTTP CONNECT proxy, `http://[user:pass@]host:port` (copied).
/// Defaults to none.
///
/// # Safety
/// `config` is NULL or a live handle; `url` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_proxy(
    config: *mut wsbeat_config,
    url: *const c_char,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_proxy", |c| {
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let s = unsafe { str_arg(url) }?.to_owned();
        c.proxy = Some(s);
        Ok(())
    })
}

/// Adds a header to every upgrade request (both strings copied). Names and values are
/// checked by `wsbeat_client_new`. A request hook may change them per attempt.
///
/// # Safety
/// `config` is NULL or a live handle; `name` and `value` are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_add_header(
    config: *mut wsbeat_config,
    name: *const c_char,
    value: *const c_char,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL, and strings or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_add_header", |c| {
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let (name, value) = unsafe { (str_arg(name)?, str_arg(value)?) };
        c.headers.push((name.to_owned(), value.to_owned()));
        Ok(())
    })
}

/// Removes every header added with `wsbeat_config_add_header`.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_clear_headers(config: *mut wsbeat_config) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_clear_headers", |c| {
        c.headers.clear();
        Ok(())
    })
}

/// Uses an application-level heartbeat instead of Ping frames: `ping` (copied) is sent, and
/// a message equal to `pong` (copied) counts as the reply and is not handed to the
/// application. Both are of `message_type`. Defaults to Ping frames.
///
/// # Safety
/// `config` is NULL or a live handle; `ping` and `pong` are NULL or point to their lengths
/// of readable bytes.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_app_heartbeat(
    config: *mut wsbeat_config,
    message_type: u32,
    ping: *const u8,
    ping_len: usize,
    pong: *const u8,
    pong_len: usize,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL, and the buffers.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_app_heartbeat", |c| {
        let make = |bytes: &[u8]| wsbeat_message_type::message(message_type, bytes);
        // SAFETY: the caller promises the lengths of readable bytes at `ping` and `pong`.
        let (ping, pong) = unsafe { (bytes_arg(ping, ping_len)?, bytes_arg(pong, pong_len)?) };
        let (ping, pong) = (make(ping)?, make(pong)?);
        c.heartbeat.app_heartbeat = Some(AppHeartbeat::new(ping, pong));
        Ok(())
    })
}
