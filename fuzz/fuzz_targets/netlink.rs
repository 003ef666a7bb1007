//! The rtnetlink parser (`src/netlink.rs`, included by path: the module is crate-private)
//! with arbitrary bytes as one datagram from the kernel.
//!
//! Whatever the bytes, `for_each_change` must not panic, report at most one change per
//! 16-byte message header, and report only well-formed changes: a route's prefix length fits
//! its family.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;

#[path = "../../src/netlink.rs"]
#[allow(dead_code)]
mod netlink;

use netlink::{for_each_change, NetChange};

fuzz_target!(|data: &[u8]| {
    let mut changes = 0usize;
    for_each_change(data, |change| {
        changes += 1;
        if let NetChange::Route { dst, prefix_len, .. } = change {
            let max = match dst {
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => 128,
            };
            assert!(prefix_len <= max, "{change:?}");
        }
    });
    assert!(changes <= data.len() / 16, "{changes} changes from {} bytes", data.len());
});
