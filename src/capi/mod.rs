//! The C API (feature `capi`): a thin layer over [`Client`](crate::Client) in the shape of
//! rustls-ffi, adding no behaviour of its own. `include/wsbeat.h` is generated from these
//! items by cbindgen (`capi/build.sh --header`); their doc comments are the header's.
//!
//! Conventions, the same in every function:
//! - Opaque handles (`wsbeat_config`, `wsbeat_client`, `wsbeat_waker`) come from a `_new`
//!   function and go back through their `_free` function; `_free(NULL)` does nothing.
//! - Every fallible function returns a `wsbeat_status`; out-parameters are written only when
//!   it is `WSBEAT_OK`. Every pointer argument is checked: NULL gives
//!   `WSBEAT_NULL_ARGUMENT`. Getters that cannot fail return their value, and a documented
//!   default for NULL.
//! - `wsbeat_status_str` turns a status into a static message; `wsbeat_config_last_error` and
//!   `wsbeat_client_last_error` give the detailed message of a handle's last failure.
//! - No Rust panic crosses the boundary: each entry point catches one and returns
//!   `WSBEAT_PANIC` (the handle is then poisoned: later calls return `WSBEAT_PANIC` too). This
//!   needs a library built with `panic = "unwind"` (the `release-capi` profile); built with
//!   `panic = "abort"` (e.g. `release-small`) a panic ends the process instead.
//! - Callbacks take `void *userdata` first. A callback must not call a function of the
//!   client that is running it: such a call returns `WSBEAT_BUSY` (free: refused, see
//!   `wsbeat_client_free`).
//! - Strings in are NUL-terminated UTF-8 (else `WSBEAT_INVALID_ARGUMENT`); byte buffers are a
//!   pointer and a length. The library copies what it keeps and never frees what it did not
//!   allocate; what it hands out stays its own (see each function for how long it lives).
//!
//! Only this module and `sys` (the system calls) contain `unsafe` code.
#![allow(unsafe_code)] // the FFI boundary: raw pointers from C, `#[no_mangle]` exports
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
// C names: the header is the API, and C has no modules.
#![allow(non_camel_case_types)]

mod args;
mod client;
mod config;
mod config_delivery;
mod config_limits;
mod config_network;
mod event;
mod guard;
mod hello;
mod hook;
mod logger;
mod state;
mod status;
#[cfg(test)]
mod tests;
#[cfg(feature = "tls")]
mod tls;
mod waker;

// The header also defines WSBEAT_VERSION, the string "MAJOR.MINOR.PATCH" (from
// capi/cbindgen.toml, which cannot read a string constant; a test keeps it in step).
/// The major part of WSBEAT_VERSION, the version the header was generated for. There is no
/// ABI stability promise before 1.0: rebuild against each release's header.
#[allow(dead_code)] // read by cbindgen for the header, not by Rust code
pub const WSBEAT_VERSION_MAJOR: u32 = 0;
/// The minor part of WSBEAT_VERSION.
#[allow(dead_code)] // read by cbindgen for the header, not by Rust code
pub const WSBEAT_VERSION_MINOR: u32 = 1;
/// The patch part of WSBEAT_VERSION.
#[allow(dead_code)] // read by cbindgen for the header, not by Rust code
pub const WSBEAT_VERSION_PATCH: u32 = 0;

/// The linked library's version, `MAJOR.MINOR.PATCH` (a static string, never NULL).
#[no_mangle]
pub extern "C" fn wsbeat_version() -> *const std::ffi::c_char {
    // A literal with its NUL: static, never freed.
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
