//! Settings of the config handle for life on a device: the reaction to the kernel's network
//! reports and write coalescing. Setters only store values; `wsbeat_client_new` validates
//! them and names the field.

use super::args::millis;
use super::config::{wsbeat_config, ConfigPtr};
use super::status::wsbeat_status;

/// Whether the client watches the kernel's address, route and link reports (rtnetlink) and
/// probes the link at once when its own source address, interface or route goes
/// (`WSBEAT_EVENT_NETWORK_CHANGED`, then a ping that must be answered within the probe
/// timeout), and tries at once when the network comes back while waiting. `watch` non-zero
/// turns it on. Defaults to off. A failed subscription is a warning, never an error.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_network_watch(
    config: *mut wsbeat_config,
    watch: bool,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_network_watch", |c| {
        c.network.watch = watch;
        Ok(())
    })
}

/// How long the probe ping sent after a network report waits for its pong before the link
/// is declared dead. Defaults to 2000.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_network_probe_timeout_ms(
    config: *mut wsbeat_config,
    ms: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_network_probe_timeout_ms", |c| {
        c.network.probe_timeout = millis(ms);
        Ok(())
    })
}

/// How long messages sent back to back (no `wsbeat_client_poll` between) may wait for
/// company so that one `write` takes many. A message sent after a poll, or this long after the
/// last flush, leaves at once; held ones leave at the next poll, at `next_timeout_ms`, or
/// once 16 KiB wait. 0 writes every message at once. Defaults to 1; at most 1000.
///
/// # Safety
/// `config` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn wsbeat_config_set_coalesce_window_ms(
    config: *mut wsbeat_config,
    ms: u32,
) -> wsbeat_status {
    // SAFETY: the caller promises a live handle or NULL.
    unsafe { ConfigPtr::new(config) }.with("wsbeat_config_set_coalesce_window_ms", |c| {
        c.coalesce_window = millis(ms);
        Ok(())
    })
}
