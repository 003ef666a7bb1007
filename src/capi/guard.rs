//! The panic boundary: every entry point runs its body through one of these, so that no Rust
//! panic unwinds into C (which would be undefined behaviour; since Rust 1.81 it aborts).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::status::wsbeat_status;

/// Runs `f`; a panic becomes `WSBEAT_PANIC`.
pub(super) fn catch(f: impl FnOnce() -> wsbeat_status) -> wsbeat_status {
    catch_or(wsbeat_status::WSBEAT_PANIC, f)
}

/// Runs `f`; a panic becomes `on_panic` (for getters that return a value, not a status).
pub(super) fn catch_or<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    // AssertUnwindSafe: after a panic the handle involved is poisoned or the value dropped,
    // so no broken invariant is observed again (see `ClientCell::enter`).
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// Runs `f`, returning the panic's message on a panic (for a handle's last error).
pub(super) fn catch_message<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| panic_message(&*payload))
}

/// Collapses `Result<(), status>` into the status to return.
pub(super) fn status(r: Result<(), wsbeat_status>) -> wsbeat_status {
    r.err().unwrap_or(wsbeat_status::WSBEAT_OK)
}

/// The text of a panic payload (`panic!` with a literal or with a format string).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("internal error, a caught panic: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_and_keeps_its_message() {
        assert_eq!(
            catch(|| panic!("boom")),
            wsbeat_status::WSBEAT_PANIC,
            "the panic is caught"
        );
        assert_eq!(catch(|| wsbeat_status::WSBEAT_OK), wsbeat_status::WSBEAT_OK);
        assert_eq!(catch_or(-1, || -> i32 { panic!("x") }), -1);
        let n = 7;
        let msg = catch_message(|| -> () { panic!("bad {n}") }).unwrap_err();
        assert!(msg.ends_with("bad 7"), "{msg}");
    }
}
