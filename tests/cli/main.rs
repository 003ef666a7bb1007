//! Tests of the `wsbeat` command-line tool: the built binary against the in-process loopback
//! test server of `tests/common`. Every test has a watchdog and kills its child on failure.
#![cfg(feature = "cli")]
#![forbid(unsafe_code)]

#[path = "../common/mod.rs"]
mod common;

mod data;
mod delivery;
mod harness;
mod json;
mod latency;
mod lifecycle;
mod matrix;
mod outbox_file;
mod signals;
mod stats;
mod stop_phases;
mod systemd;
mod usage;
