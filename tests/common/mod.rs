//! Shared test infrastructure for the integration tests: a loopback
//! WebSocket test server with fault injection, a watchdog that kills a hung
//! test binary, and logging setup.
//!
//! Use it from an integration test file with `mod common;`.
#![allow(dead_code)]

pub mod certs;
mod conn;
pub mod drive;
mod frames;
pub mod listen;
pub mod netns;
pub mod nginx;
pub mod proxy;
mod server;
pub mod tls;
mod watchdog;

use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

// Each test binary uses only part of this module.
#[allow(unused_imports)]
pub use server::TestServer;
#[allow(unused_imports)]
pub use watchdog::{watchdog, Watchdog};

/// A data message the test server received from a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    Text(String),
    Binary(Vec<u8>),
}

/// How the test server treats connections accepted while this mode is set.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Echo text and binary messages back; answer pings at once.
    Echo,
    /// Like `Echo`, but never answers pings (pings are still counted).
    EchoNoPong,
    /// Accept TCP, read the request, never answer. The socket stays open
    /// until the client goes away or the server is dropped.
    SilentHandshake,
    /// Answer the upgrade request with this HTTP status (plus
    /// `Retry-After: N` if given) and close.
    HttpStatus {
        status: u16,
        retry_after: Option<u32>,
    },
    /// Complete the handshake, write these raw bytes, then read and discard
    /// whatever the client sends, keeping the socket open.
    RawAfterHandshake(Vec<u8>),
    /// Complete the handshake and immediately send `Close(code, reason)`;
    /// wait up to 1 s for the client's reply, then drop.
    CloseAfterHandshake { code: u16, reason: String },
    /// Complete the handshake, then drop the TCP connection at once.
    DropAfterHandshake,
    /// Complete the handshake, echo, and drop TCP this long after the
    /// handshake (a flapping server).
    DropAfter(Duration),
    /// Complete the handshake, then never read again (client writes
    /// eventually block). Commands that write (`send_all`, `ping_all`) still
    /// work; `close_all` sends the Close frame and drops.
    NeverRead,
}

/// A port on 127.0.0.1 that nothing listens on: connecting to it gets
/// `ECONNREFUSED`.
pub fn refused_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("refused_port: bind 127.0.0.1:0");
    let port = listener
        .local_addr()
        .expect("refused_port: local_addr")
        .port();
    drop(listener);
    port
}

/// Route `log` output to the test harness (shown for failing tests, or with
/// `--nocapture`; level from `RUST_LOG`).
pub fn init_logs() {
    let _ = env_logger::builder().is_test(true).try_init();
}
