//! TEMPORARY STUB (replaced by the dns branch).
#![allow(dead_code, unused_variables)]
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
#[derive(Debug)]
pub(crate) struct Datagram {
    pub to: SocketAddr,
    pub payload: Vec<u8>,
}
#[derive(Debug)]
pub(crate) enum LookupError {
    Timeout,
}
impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("timeout")
    }
}
impl std::error::Error for LookupError {}
pub(crate) struct SystemConfig;
impl SystemConfig {
    pub fn load() -> SystemConfig {
        SystemConfig
    }
    pub fn hosts_lookup(&self, name: &str) -> Vec<IpAddr> {
        use std::net::ToSocketAddrs;
        (name, 0)
            .to_socket_addrs()
            .map(|a| a.map(|s| s.ip()).collect())
            .unwrap_or_default()
    }
}
pub(crate) struct Lookup;
impl Lookup {
    pub fn new(name: &str, c: &SystemConfig, now: Instant, seed: u64) -> Lookup {
        Lookup
    }
    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        None
    }
    pub fn handle_datagram(&mut self, from: SocketAddr, p: &[u8], now: Instant) {}
    pub fn handle_timeout(&mut self, now: Instant) {}
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    pub fn poll_result(&mut self) -> Option<Result<Vec<IpAddr>, LookupError>> {
        Some(Err(LookupError::Timeout))
    }
}
