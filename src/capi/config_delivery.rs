//! Delivery settings of the config handle: the delivery promise, what a full outbox does,
//! the durable outbox file and its flush policy, and how reconnect delays are drawn. Enum
//! arguments are taken as `uint32_t` so that a value C made up is refused
//! (`WSBEAT_INVALID_ARGUMENT`) rather than undefined; the enums name the valid ones.

use std::ffi::{c_char, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::args::millis;
use super::config::{wsbeat_config, ConfigPtr};
use super::status::wsbeat_status;
use crate::{Delivery, Jitter, OutboxSync, WhenFull};

/// The delivery promise for sent messages (`wsbeat_config_set_delivery`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wsbeat_delivery {
    /// A message leaves the outbox once the kernel has taken it; if the link then dies it
    /// may be lost (`unconfirmed` of `WSBEAT_EVENT_DISCONNECTED` counts that window). The
    /// default.
    WSBEAT_DELIVERY_AT_MOST_ONCE = 0,
    /// A message stays in the outbox until a Pong proves the server read it; when a link
    /// dies, unproven messages go back to the front of the queue and are sent again
    /// (`requeued`). The server may see those twice: number your messages.
    WSBEAT_DELIVERY_AT_LEAST_ONCE = 1,
}

/// What a send does when the outbox is at its message or byte limit
/// (`wsbeat_config_set_outbox_when_full`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wsbeat_when_full {
    /// The new message is refused with `WSBEAT_OUTBOX_FULL` (back-pressure). The default.
    WSBEAT_WHEN_FULL_REFUSE = 0,
    /// The oldest message still waiting to be sent (never one already on the wire) is
    /// dropped to make room, reported by `WSBEAT_EVENT_DROPPED`. With nothing waiting (all
    /// the room taken by messages awaiting proof) the new one is refused.
    WSBEAT_WHEN_FULL_DROP_OLDEST = 1,
}

/// When the outbox file is flushed to flash with `fdatasync` (`wsbeat_config_set_outbox_sync`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wsbeat_outbox_sync {
    /// Before the send function returns: an accepted message is on flash. One flash write
    /// per message.
    WSBEAT_OUTBOX_SYNC_ALWAYS = 0,
    /// At most once per period (`every_ms`): a power cut loses at most the last period's
    /// messages, a crash of the process alone loses none. The default, every 1000 ms.
    WSBEAT_OUTBOX_SYNC_EVERY = 1,
    /// Never explicitly: the kernel writes back when it likes.
    WSBEAT_OUTBOX_SYNC_NEVER = 2,
}

/// How each reconnect delay is drawn from the backoff envelope
/// (`wsbeat_config_set_backoff_strategy`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wsbeat_jitter {
    /// Uniform in [(1 - jitter) x d, d], never below the previous delay while failures
    /// continue (`wsbeat_config_set_backoff_jitter` sets `jitter`).
    WSBEAT_JITTER_PROPORTIONAL = 0,
    /// Uniform in [0, d] ("full jitter"): no floor.
    WSBEAT_JITTER_FULL = 1,
    /// min(max, uniform(first, 3 x previous)) ("decorrelated jitter"); ignores the factor.
    /// The default.
    WSBEAT_JITTER_DECORRELATED = 2,
}

/// Sets the delivery promise, a `wsbeat_delivery`. Defaults to
/// `WSBEAT_DELIVERY_AT_MOST_ONCE`; an outbox file implies at-least-once whatever is set here.
/// `WSBEAT_INVALID_ARGUMENT` for any other value.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_delivery(
    config: *mut wsbeat_config,
    delivery: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_delivery", |c| {
        c.delivery = match delivery {
            d if d == wsbeat_delivery::WSBEAT_DELIVERY_AT_MOST_ONCE as u32 => Delivery::AtMostOnce,
            d if d == wsbeat_delivery::WSBEAT_DELIVERY_AT_LEAST_ONCE as u32 => {
                Delivery::AtLeastOnce
            }
            _ => return Err(wsbeat_status::WSBEAT_INVALID_ARGUMENT),
        };
        Ok(())
    })
}

/// Sets what a full outbox does with a new message, a `wsbeat_when_full`. Defaults to
/// `WSBEAT_WHEN_FULL_REFUSE`. `WSBEAT_INVALID_ARGUMENT` for any other value.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_outbox_when_full(
    config: *mut wsbeat_config,
    when_full: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_outbox_when_full", |c| {
        c.outbox.when_full = match when_full {
            w if w == wsbeat_when_full::WSBEAT_WHEN_FULL_REFUSE as u32 => WhenFull::Refuse,
            w if w == wsbeat_when_full::WSBEAT_WHEN_FULL_DROP_OLDEST as u32 => WhenFull::DropOldest,
            _ => return Err(wsbeat_status::WSBEAT_INVALID_ARGUMENT),
        };
        Ok(())
    })
}

/// Keeps the outbox in a file on flash at `path` (copied; any bytes but NUL, not only
/// UTF-8), across restarts and power loss: every accepted message is appended before the
/// send function returns and removed once proven delivered (at-least-once is implied). A new
/// client restores the messages in it (`WSBEAT_EVENT_OUTBOX_RESTORED`) and sends them first
/// after the hello, in their original order. `wsbeat_client_new` returns
/// `WSBEAT_INVALID_CONFIG` naming `outbox.file` when the file cannot be opened or created,
/// or another process holds it (an advisory lock on `PATH.lock`). "" removes the file
/// setting (the outbox stays in memory, the default).
///
/// # Safety
/// `config` is NULL or a live handle; `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_outbox_file(
    config: *mut wsbeat_config,
    path: *const c_char,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_outbox_file", |c| {
        if path.is_null() {
            return Err(wsbeat_status::WSBEAT_NULL_ARGUMENT);
        }
        // SAFETY: not NULL, and the caller promises a NUL-terminated string.
        let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
        c.outbox.file = (!bytes.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(bytes)));
        Ok(())
    })
}

/// Sets when the outbox file is flushed, a `wsbeat_outbox_sync`; `every_ms` is the period of
/// `WSBEAT_OUTBOX_SYNC_EVERY` and is ignored otherwise (a zero period is refused by
/// `wsbeat_client_new`, naming `outbox.sync`). Defaults to every 1000 ms.
/// `WSBEAT_INVALID_ARGUMENT` for any other `sync` value.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_outbox_sync(
    config: *mut wsbeat_config,
    sync: u32,
    every_ms: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_outbox_sync", |c| {
        c.outbox.sync = match sync {
            s if s == wsbeat_outbox_sync::WSBEAT_OUTBOX_SYNC_ALWAYS as u32 => OutboxSync::Always,
            s if s == wsbeat_outbox_sync::WSBEAT_OUTBOX_SYNC_EVERY as u32 => {
                OutboxSync::Every(millis(every_ms))
            }
            s if s == wsbeat_outbox_sync::WSBEAT_OUTBOX_SYNC_NEVER as u32 => OutboxSync::Never,
            _ => return Err(wsbeat_status::WSBEAT_INVALID_ARGUMENT),
        };
        Ok(())
    })
}

/// After a lost link that had stayed up for the minimum uptime, the first attempt waits a
/// uniform draw from [0, ms], so that a fleet which lost the same server does not return at
/// the same instant; the failures after it start from `ms` instead of the initial delay.
/// Zero reconnects at once. Defaults to 10000.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_backoff_first_spread_ms(
    config: *mut wsbeat_config,
    ms: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_backoff_first_spread_ms", |c| {
        c.backoff.first_spread = millis(ms);
        Ok(())
    })
}

/// Sets how each reconnect delay is drawn, a `wsbeat_jitter`. Defaults to
/// `WSBEAT_JITTER_DECORRELATED`. `WSBEAT_INVALID_ARGUMENT` for any other value.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_backoff_strategy(
    config: *mut wsbeat_config,
    strategy: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_backoff_strategy", |c| {
        c.backoff.strategy = match strategy {
            s if s == wsbeat_jitter::WSBEAT_JITTER_PROPORTIONAL as u32 => Jitter::Proportional,
            s if s == wsbeat_jitter::WSBEAT_JITTER_FULL as u32 => Jitter::Full,
            s if s == wsbeat_jitter::WSBEAT_JITTER_DECORRELATED as u32 => Jitter::Decorrelated,
            _ => return Err(wsbeat_status::WSBEAT_INVALID_ARGUMENT),
        };
        Ok(())
    })
}
