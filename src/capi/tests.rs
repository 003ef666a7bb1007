//! The version the header names, and the status paths a C program cannot provoke: a panic inside a call (caught, the handle
//! poisoned) and another logger already installed. Everything else is tested from C
//! (`tests/capi/`).

use std::ptr;

use super::client::{wsbeat_client, wsbeat_client_free, wsbeat_client_new, ClientPtr};
use super::config::{wsbeat_config, wsbeat_config_free, wsbeat_config_new};
use super::logger::wsbeat_log_set;
use super::state::wsbeat_client_fd;
use super::status::wsbeat_status;
use super::{WSBEAT_VERSION_MAJOR, WSBEAT_VERSION_MINOR, WSBEAT_VERSION_PATCH};

#[test]
fn header_version_matches_the_crate_version() {
    let header = include_str!("../../include/wsbeat.h");
    let define = format!("#define WSBEAT_VERSION \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(header.contains(&define), "include/wsbeat.h lacks {define}");
    let parts = [
        WSBEAT_VERSION_MAJOR,
        WSBEAT_VERSION_MINOR,
        WSBEAT_VERSION_PATCH,
    ];
    let text: Vec<String> = parts.iter().map(u32::to_string).collect();
    assert_eq!(text.join("."), env!("CARGO_PKG_VERSION"));
}

fn client() -> (*mut wsbeat_config, *mut wsbeat_client) {
    let mut cfg: *mut wsbeat_config = ptr::null_mut();
    let mut c: *mut wsbeat_client = ptr::null_mut();
    // SAFETY: valid C string and out-pointers.
    unsafe {
        assert_eq!(
            wsbeat_config_new(c"ws://127.0.0.1:9/".as_ptr(), &mut cfg),
            wsbeat_status::WSBEAT_OK
        );
        assert_eq!(wsbeat_client_new(cfg, &mut c), wsbeat_status::WSBEAT_OK);
    }
    (cfg, c)
}

#[test]
fn a_panic_inside_a_call_becomes_wsbeat_panic_and_poisons_the_handle() {
    let (cfg, c) = client();
    // SAFETY: a live handle from wsbeat_client_new.
    let status = unsafe { ClientPtr::new(c) }.enter("test", |_, _| -> Result<(), _> {
        panic!("a bug in wsbeat");
    });
    assert_eq!(status, Err(wsbeat_status::WSBEAT_PANIC));
    // SAFETY: the handle is still live (poisoned, not freed).
    unsafe {
        let text = std::ffi::CStr::from_ptr(super::client::wsbeat_client_last_error(c));
        assert!(
            text.to_string_lossy().contains("a bug in wsbeat"),
            "{text:?}"
        );
        assert_eq!(
            wsbeat_client_fd(c),
            -1,
            "poisoned: getters give their default"
        );
        let again = ClientPtr::new(c).enter("test", |_, _| Ok(()));
        assert_eq!(again, Err(wsbeat_status::WSBEAT_PANIC));
        wsbeat_client_free(c); // freeing a poisoned handle is fine
        wsbeat_config_free(cfg);
    }
}

struct Quiet;
impl log::Log for Quiet {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        false
    }
    fn log(&self, _: &log::Record<'_>) {}
    fn flush(&self) {}
}
static QUIET: Quiet = Quiet;

unsafe extern "C" fn ignore(
    _: *mut std::ffi::c_void,
    _: super::logger::wsbeat_log_level,
    _: *const std::ffi::c_char,
    _: *const std::ffi::c_char,
) {
}

#[test]
fn another_logger_in_the_process_gives_logger_in_use() {
    // The only test in this binary that touches the global logger.
    log::set_logger(&QUIET).expect("no logger installed yet in the unit tests");
    // SAFETY: `ignore` may be called with any arguments.
    let status = unsafe { wsbeat_log_set(Some(ignore), ptr::null_mut(), 3) };
    assert_eq!(status, wsbeat_status::WSBEAT_LOGGER_IN_USE);
}
