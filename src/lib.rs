//! placeholder
#![deny(unsafe_code)]

mod backoff;
mod client;
mod config;
mod endpoint;
mod error;
mod event;
mod heartbeat;
mod link;
mod outbox;
mod redact;
mod request;
mod stats;
mod stream;
mod sys;
#[cfg(feature = "tls")]
mod tls;
mod transport;

pub use client::Client;
pub use config::{AppHeartbeat, BackoffConfig, Config, HeartbeatConfig, OutboxConfig};
pub use error::{Error, SendError};
pub use event::{DisconnectReason, Event, Message, ReadyState};
pub use stats::Stats;
#[cfg(feature = "tls")]
pub use tls::{ClientIdentity, TlsConfig};
