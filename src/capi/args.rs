//! Turning C arguments into Rust values: NULL checks, UTF-8 checks, lengths, durations.
//! Each helper returns the status the caller hands back when the argument is not usable.

use std::ffi::{c_char, CStr};
use std::time::Duration;

use super::status::wsbeat_status;

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid and unchanged for `'a`.
pub(super) unsafe fn str_arg<'a>(p: *const c_char) -> Result<&'a str, wsbeat_status> {
    if p.is_null() {
        return Err(wsbeat_status::WSBEAT_NULL_ARGUMENT);
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for 'a.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| wsbeat_status::WSBEAT_INVALID_ARGUMENT)
}

/// A byte buffer argument, `len` bytes at `p`. NULL is refused even for `len == 0`, as every
/// other NULL pointer is: pass any valid pointer (e.g. `""`) for an empty buffer.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that stay valid and unchanged for `'a`.
pub(super) unsafe fn bytes_arg<'a>(p: *const u8, len: usize) -> Result<&'a [u8], wsbeat_status> {
    if p.is_null() {
        return Err(wsbeat_status::WSBEAT_NULL_ARGUMENT);
    }
    // `from_raw_parts` needs the length in bytes to fit an isize.
    if isize::try_from(len).is_err() {
        return Err(wsbeat_status::WSBEAT_INVALID_ARGUMENT);
    }
    // SAFETY: not NULL, len checked against isize::MAX, and the caller promises `len`
    // readable bytes valid for 'a.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A duration in milliseconds. Zero is passed through: `wsbeat_client_new` names the field
/// that must be positive, as the Rust API does.
pub(super) fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

/// A duration as whole milliseconds for C, rounded up (a C `poll(2)` given it wakes at or
/// after the instant, never before it and then spins) and capped at `i32::MAX`.
pub(super) fn ceil_millis(d: Duration) -> i32 {
    let ms = d.as_nanos().div_ceil(1_000_000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// A duration as microseconds for C, capped at `i64::MAX`.
pub(super) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A duration as milliseconds for C, capped at `u64::MAX`.
pub(super) fn millis_out(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Writes `value` to the out-parameter `out`.
///
/// # Safety
/// `out` is NULL or valid for a write of `T` (its old contents, possibly uninitialised, are
/// not read or dropped).
pub(super) unsafe fn write_out<T>(out: *mut T, value: T) -> Result<(), wsbeat_status> {
    if out.is_null() {
        return Err(wsbeat_status::WSBEAT_NULL_ARGUMENT);
    }
    // SAFETY: not NULL; the caller promises it is valid for writes. `write` neither reads nor
    // drops the old value, which C may have left uninitialised.
    unsafe { out.write(value) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked_before_use() {
        // SAFETY: NULL and valid literals only.
        unsafe {
            assert_eq!(
                str_arg(std::ptr::null()),
                Err(wsbeat_status::WSBEAT_NULL_ARGUMENT)
            );
            assert_eq!(str_arg(c"ok".as_ptr()), Ok("ok"));
            let bad = [0xffu8, 0];
            assert_eq!(
                str_arg(bad.as_ptr().cast()),
                Err(wsbeat_status::WSBEAT_INVALID_ARGUMENT)
            );
            assert_eq!(
                bytes_arg(std::ptr::null(), 0),
                Err(wsbeat_status::WSBEAT_NULL_ARGUMENT)
            );
            assert_eq!(
                bytes_arg(bad.as_ptr(), usize::MAX),
                Err(wsbeat_status::WSBEAT_INVALID_ARGUMENT)
            );
            assert_eq!(bytes_arg(bad.as_ptr(), 1), Ok(&[0xffu8][..]));
        }
    }

    #[test]
    fn durations_round_up_for_poll_and_saturate() {
        assert_eq!(ceil_millis(Duration::ZERO), 0);
        assert_eq!(ceil_millis(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_millis(Duration::from_millis(7)), 7);
        assert_eq!(ceil_millis(Duration::MAX), i32::MAX);
        assert_eq!(micros(Duration::MAX), i64::MAX);
        assert_eq!(millis_out(Duration::from_secs(2)), 2000);
    }
}
