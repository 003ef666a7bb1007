//! Numeric settings of the config handle: heartbeat, backoff, timeouts, size limits, the
//! in-memory outbox and the codes that stop reconnecting (the delivery settings and the
//! outbox file: `config_delivery.rs`). Setters only store values (durations in
//! milliseconds, zero stored as is); `wsbeat_client_new` validates them and names the field.
//! Written out one by one rather than by a macro: cbindgen reads the source unexpanded.

use super::args::millis;
use super::config::{wsbeat_config, ConfigPtr};
use super::status::wsbeat_status;

/// Silence (no inbound byte) after which a ping is sent. Defaults to 20000.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_ping_interval_ms(
    config: *mut wsbeat_config,
    ms: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_ping_interval_ms", |c| {
        c.heartbeat.ping_interval = millis(ms);
        Ok(())
    })
}

/// How long a ping waits for any inbound byte before it counts as missed. Defaults to
/// 5000. A dead link is declared `ping_interval + max_missed_pongs * pong_timeout` after
/// the last inbound byte (35 s with the defaults).
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_pong_timeout_ms(
    config: *mut wsbeat_config,
    ms: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_pong_timeout_ms", |c| {
        c.heartbeat.pong_timeout = millis(ms);
        Ok(())
    })
}

/// Consecutive missed pings that declare the link dead. Defaults to 3.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_max_missed_pongs(
    config: *mut wsbeat_config,
    n: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_max_missed_pongs", |c| {
        c.heartbeat.max_missed_pongs = n;
        Ok(())
    })
}

/// First delay after a failure. Defaults to 1000.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_backoff_initial_ms(
    config: *mut wsbeat_config,
    ms: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_backoff_initial_ms", |c| {
        c.backoff.initial = millis(ms);
        Ok(())
    })
}

/// Upper bound of any reconnect delay. Defaults to 60000.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_backoff_max_ms(
    config: *mut wsbeat_config,
    ms: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_backoff_max_ms", |c| {
        c.backoff.max = millis(ms);
        Ok(())
    })
}

/// Growth of the delay per consecutive failure, at least 1.0. Defaults to 2.0.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_backoff_factor(
    config: *mut wsbeat_config,
    factor: f64,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_backoff_factor", |c| {
        c.backoff.factor = factor;
        Ok(())
    })
}

/// Fraction of each delay that is randomised, in [0, 1). Defaults to 0.2.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_backoff_jitter(
    config: *mut wsbeat_config,
    jitter: f64,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_backoff_jitter", |c| {
        c.backoff.jitter = jitter;
        Ok(())
    })
}

/// How long a link must stay up before the delay resets to the initial one. Defaults to
/// 10000.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_min_uptime_ms(
    config: *mut wsbeat_config,
    ms: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_min_uptime_ms", |c| {
        c.backoff.min_uptime = millis(ms);
        Ok(())
    })
}

/// Seed for the backoff jitter, making delays repeatable. Defaults to a random seed.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_seed(
    config: *mut wsbeat_config,
    seed: u64,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_seed", |c| {
        c.seed = Some(seed);
        Ok(())
    })
}

/// Bound on one connect attempt: DNS, TCP, proxy, TLS and upgrade together. Defaults to
/// 10000.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_connect_timeout_ms(
    config: *mut wsbeat_config,
    ms: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_connect_timeout_ms", |c| {
        c.connect_timeout = millis(ms);
        Ok(())
    })
}

/// How long a close waits for the server's Close reply. Defaults to 5000.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_close_timeout_ms(
    config: *mut wsbeat_config,
    ms: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_close_timeout_ms", |c| {
        c.close_timeout = millis(ms);
        Ok(())
    })
}

/// A write making no progress this long declares the link dead. Defaults to 10000.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_write_timeout_ms(
    config: *mut wsbeat_config,
    ms: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_write_timeout_ms", |c| {
        c.write_timeout = millis(ms);
        Ok(())
    })
}

/// Largest message accepted from the server and by the send functions, and also the
/// largest frame (as the Rust `Config::max_message_size` setter does; set the frame bound
/// afterwards for another value). Defaults to 1048576.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_max_message_size(
    config: *mut wsbeat_config,
    bytes: usize,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_max_message_size", |c| {
        c.max_message_size = bytes;
        c.max_frame_size = bytes;
        Ok(())
    })
}

/// Largest single frame payload accepted from the server. Defaults to 1048576.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_max_frame_size(
    config: *mut wsbeat_config,
    bytes: usize,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_max_frame_size", |c| {
        c.max_frame_size = bytes;
        Ok(())
    })
}

/// Size of the read buffer, allocated once per link. Defaults to 24576.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_read_buffer_size(
    config: *mut wsbeat_config,
    bytes: usize,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_read_buffer_size", |c| {
        c.read_buffer_size = bytes;
        Ok(())
    })
}

/// Most messages the outbox keeps while offline. Defaults to 1000.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_outbox_max_messages(
    config: *mut wsbeat_config,
    n: usize,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_outbox_max_messages", |c| {
        c.outbox.max_messages = n;
        Ok(())
    })
}

/// Most payload bytes the outbox keeps while offline. Defaults to 1048576.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_outbox_max_bytes(
    config: *mut wsbeat_config,
    bytes: usize,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_outbox_max_bytes", |c| {
        c.outbox.max_bytes = bytes;
        Ok(())
    })
}

/// Adds a close code from the server (1000-4999) that stops reconnecting, e.g. an
/// application's "device revoked". Defaults to none.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_add_final_close_code(
    config: *mut wsbeat_config,
    code: u16,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_add_final_close_code", |c| {
        c.final_close_codes.push(code);
        Ok(())
    })
}

/// Adds an HTTP status of a refused upgrade that stops reconnecting (e.g. 401, 403).
/// Defaults to none.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_add_final_http_status(
    config: *mut wsbeat_config,
    status: u16,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_add_final_http_status", |c| {
        c.final_http_statuses.push(status);
        Ok(())
    })
}

/// Gives up after `n` failed retries in a row (`n + 1` attempts against a server dead from
/// the start, `n` after a dropped link); a negative `n` retries forever, the default.
/// `WSBEAT_INVALID_ARGUMENT` above 4294967295.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_max_retries(
    config: *mut wsbeat_config,
    n: i64,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_max_retries", |c| {
        c.backoff.max_retries = match n {
            n if n < 0 => None,
            n => Some(u32::try_from(n).map_err(|_| wsbeat_status::WSBEAT_INVALID_ARGUMENT)?),
        };
        Ok(())
    })
}
