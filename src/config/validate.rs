//! Validation of a [`Config`]: every field checked, the first bad one named in the error
//! (`Error::Config { field, .. }`), nothing here panics.
#![forbid(unsafe_code)]

use std::time::Duration;

use super::{Config, OutboxSync, MAX_DURATION};
use crate::endpoint::Endpoint;
use crate::Error;

impl Config {
    /// Checks every field and returns the parsed endpoint, or an error naming the first bad
    /// field. [`Client::new`](crate::Client::new) calls this; nothing here panics.
    pub(crate) fn validate(&self) -> Result<Endpoint, Error> {
        let endpoint = Endpoint::parse(&self.url)?;
        let positive = [
            ("heartbeat.ping_interval", self.heartbeat.ping_interval),
            ("heartbeat.pong_timeout", self.heartbeat.pong_timeout),
            ("backoff.initial", self.backoff.initial),
            ("backoff.max", self.backoff.max),
            ("connect_timeout", self.connect_timeout),
            ("close_timeout", self.close_timeout),
            ("write_timeout", self.write_timeout),
            ("network.probe_timeout", self.network.probe_timeout),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                return Err(Error::config(field, "must be greater than zero"));
            }
            // Deadlines are `Instant + duration`: a bound keeps that arithmetic from overflowing
            // (a panic much later, far from the bad value).
            if value > MAX_DURATION {
                return Err(Error::config(field, "must be at most 30 days"));
            }
        }
        if self.coalesce_window > Duration::from_secs(1) {
            return Err(Error::config("coalesce_window", "must be at most 1 s"));
        }
        if self.heartbeat.max_missed_pongs == 0 {
            return Err(Error::config(
                "heartbeat.max_missed_pongs",
                "must be at least 1",
            ));
        }
        if let Some(app) = &self.heartbeat.app_heartbeat {
            if app.ping.is_empty() && app.pong.is_empty() {
                return Err(Error::config(
                    "heartbeat.app_heartbeat",
                    "ping and pong are both empty",
                ));
            }
        }
        let b = &self.backoff;
        if b.max < b.initial {
            return Err(Error::config(
                "backoff.max",
                "must not be less than backoff.initial",
            ));
        }
        if !(b.factor.is_finite() && b.factor >= 1.0) {
            return Err(Error::config(
                "backoff.factor",
                "must be a finite number >= 1.0",
            ));
        }
        if !(b.jitter.is_finite() && (0.0..1.0).contains(&b.jitter)) {
            return Err(Error::config("backoff.jitter", "must be in [0, 1)"));
        }
        // Zero is allowed (reconnect at once); the bound keeps `now + spread` from overflowing.
        if b.first_spread > MAX_DURATION {
            return Err(Error::config(
                "backoff.first_spread",
                "must be at most 30 days",
            ));
        }
        if self.outbox.max_messages == 0 {
            return Err(Error::config("outbox.max_messages", "must be at least 1"));
        }
        if self.outbox.max_bytes == 0 {
            return Err(Error::config("outbox.max_bytes", "must be at least 1"));
        }
        if let OutboxSync::Every(t) = self.outbox.sync {
            if t.is_zero() || t > MAX_DURATION {
                return Err(Error::config(
                    "outbox.sync",
                    "the period must be greater than zero and at most 30 days",
                ));
            }
        }
        if self.max_message_size == 0 {
            return Err(Error::config("max_message_size", "must be at least 1"));
        }
        if self.max_frame_size == 0 {
            return Err(Error::config("max_frame_size", "must be at least 1"));
        }
        if self.read_buffer_size == 0 {
            return Err(Error::config("read_buffer_size", "must be at least 1"));
        }
        crate::request::check_headers(&self.headers)?;
        for p in &self.protocols {
            if !crate::request::is_token(p) {
                return Err(Error::config(
                    "protocols",
                    format!("invalid subprotocol {p:?}"),
                ));
            }
        }
        if let Some(origin) = &self.origin {
            if !crate::request::valid_header_value(origin) {
                return Err(Error::config("origin", "not a valid header value"));
            }
        }
        if let Some(proxy) = &self.proxy {
            crate::proxy::Proxy::parse(proxy)?;
        }
        for &status in &self.final_http_statuses {
            if !(100..=599).contains(&status) || status == 101 {
                return Err(Error::config(
                    "final_http_statuses",
                    format!("{status} is not a refusal status"),
                ));
            }
        }
        for &code in &self.final_close_codes {
            if !(1000..=4999).contains(&code) {
                return Err(Error::config(
                    "final_close_codes",
                    format!("{code} is not a close code"),
                ));
            }
        }
        Ok(endpoint)
    }
}
