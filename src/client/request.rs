//! The request hook's view of an attempt.
#![forbid(unsafe_code)]

/// What the next attempt will use, handed to the request hook (see
/// [`Client::set_request_hook`](crate::Client::set_request_hook)) so that it can renew a token
/// or switch to a failover host.
#[derive(Clone)]
#[non_exhaustive]
pub struct AttemptRequest {
    /// The attempt's number.
    pub attempt: u64,
    /// The URL to connect to; starts as [`Config::url`](crate::Config::url).
    pub url: String,
    /// The request headers; start as [`Config::headers`](crate::Config::headers).
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for AttemptRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptRequest")
            .field("attempt", &self.attempt)
            .field("url", &crate::redact::url(&self.url))
            .field("headers", &crate::redact::headers(&self.headers))
            .finish()
    }
}
