//! The HTTP upgrade request: URL, credentials, headers, origin and subprotocols.
//!
//! Kept as plain strings rather than `http::Request`: the request is only written out and
//! read back by `upgrade.rs`, and `http`'s header map and name table cost about 20 KB of
//! flash on armv7 for that.
#![forbid(unsafe_code)]

use tungstenite::handshake::client::generate_key;

use crate::endpoint::Endpoint;
use crate::{Config, Error};

/// One attempt's upgrade request, as it goes on the wire: headers in the order they were
/// added, names spelled as given.
#[derive(Clone)]
pub(crate) struct UpgradeRequest {
    /// Path and query, `/` at least.
    path: String,
    headers: Vec<(String, String)>,
}

impl UpgradeRequest {
    /// The first value of header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request head's bytes.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut head = Vec::with_capacity(512);
        head.extend_from_slice(b"GET ");
        head.extend_from_slice(self.path.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &self.headers {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        head
    }

    /// A request with `path` and `headers` as given (tests of the reply checks).
    #[cfg(test)]
    pub(crate) fn from_parts(path: &str, headers: &[(&str, &str)]) -> Self {
        UpgradeRequest {
            path: path.into(),
            headers: headers.iter().map(|&(n, v)| (n.into(), v.into())).collect(),
        }
    }
}

/// Whether `name` is a non-empty RFC 9110 token: what a header name and a subprotocol name
/// must be.
pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// Whether `value` can be sent as a header value: visible ASCII, spaces, tabs and non-ASCII
/// (UTF-8) bytes, which RFC 9110 passes as opaque `obs-text`; no control characters, so no
/// line break can smuggle in another header. The same bytes `http::HeaderValue` accepts.
pub(crate) fn valid_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|c| c == b'\t' || (b' '..=b'~').contains(&c) || c >= 0x80)
}

/// Checks extra headers (configured, or made by the request hook): each name a token, each
/// value a valid header value; the error names the field `headers` and the header.
pub(crate) fn check_headers(headers: &[(String, String)]) -> Result<(), Error> {
    for (name, value) in headers {
        if !is_token(name) {
            return Err(Error::config(
                "headers",
                format!("invalid header name {name:?}"),
            ));
        }
        if !valid_header_value(value) {
            return Err(Error::config(
                "headers",
                format!("invalid value for header {name:?}"),
            ));
        }
    }
    Ok(())
}

/// Builds the upgrade request for one attempt, with `headers` (the configured ones, or what
/// the request hook made of them).
pub(crate) fn build(
    endpoint: &Endpoint,
    headers: &[(String, String)],
    config: &Config,
) -> Result<UpgradeRequest, Error> {
    // The hook's headers have not been through `Config::validate`.
    check_headers(headers)?;
    let path = endpoint.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = UpgradeRequest {
        path: if path.is_empty() { "/" } else { path }.to_string(),
        headers: Vec::with_capacity(8 + headers.len()),
    };
    let mut add = |name: &str, value: String| req.headers.push((name.to_string(), value));
    add("Host", endpoint.host_header.clone());
    add("Connection", "Upgrade".into());
    add("Upgrade", "websocket".into());
    add("Sec-WebSocket-Version", "13".into());
    add("Sec-WebSocket-Key", generate_key());
    let has_auth = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
    if let (Some((user, pass)), false) = (&endpoint.credentials, has_auth) {
        add(
            "Authorization",
            format!("Basic {}", base64(format!("{user}:{pass}").as_bytes())),
        );
    }
    if let Some(origin) = &config.origin {
        add("Origin", origin.clone());
    }
    if !config.protocols.is_empty() {
        add("Sec-WebSocket-Protocol", config.protocols.join(", "));
    }
    req.headers.extend(headers.iter().cloned());
    Ok(req)
}

/// Standard base64 with padding (RFC 4648), for Basic credentials.
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn request_carries_basic_auth_origin_protocols_and_headers() {
        let config = Config::new("ws://u:p@h:1/x?y=1")
            .header("X-Id", "7")
            .protocol("mqtt")
            .protocol("v2.json");
        let mut config = config;
        config.origin = Some("https://app".into());
        let endpoint = Endpoint::parse(&config.url).unwrap();
        let req = build(&endpoint, &config.headers, &config).unwrap();
        assert_eq!(req.header("authorization"), Some("Basic dTpw"));
        assert_eq!(req.header("host"), Some("h:1"));
        assert_eq!(req.header("origin"), Some("https://app"));
        assert_eq!(req.header("sec-websocket-protocol"), Some("mqtt, v2.json"));
        assert_eq!(req.header("x-id"), Some("7"));
        let sent = String::from_utf8(req.to_bytes()).unwrap();
        assert!(
            sent.starts_with("GET /x?y=1 HTTP/1.1\r\nHost: h:1\r\n"),
            "{sent}"
        );
        assert!(sent.contains("\r\nX-Id: 7\r\n"), "names as given: {sent}");
    }

    #[test]
    fn an_explicit_authorization_header_wins_over_url_credentials() {
        let config = Config::new("ws://u:p@h/").header("Authorization", "Bearer t");
        let endpoint = Endpoint::parse(&config.url).unwrap();
        let req = build(&endpoint, &config.headers, &config).unwrap();
        let all: Vec<_> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(all, ["Bearer t"]);
    }

    #[test]
    fn header_names_and_values_are_checked_as_http_did() {
        for good in ["X-Id", "x_y", "a.b", "!#$%&'*+-.^_`|~09Az"] {
            assert!(is_token(good), "{good}");
        }
        for bad in ["", "a b", "a:b", "a\r\nb", "\u{e9}", "a(b)", "a\"", "a/b"] {
            assert!(!is_token(bad), "{bad:?}");
        }
        for good in ["", "Bearer t", "a\tb", "~!@ 123", "K\u{fc}che"] {
            assert!(valid_header_value(good), "{good:?}");
        }
        for bad in ["a\r\nX-Evil: 1", "a\nb", "a\0", "\u{7f}", "a\u{1b}[31m"] {
            assert!(!valid_header_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn header_checks_accept_exactly_what_http_accepted() {
        // The request was built with `http` before; a header that worked then must still work.
        use tungstenite::http::{HeaderName, HeaderValue};
        let mut texts: Vec<String> = (0u8..=127).map(|b| format!("a{}b", b as char)).collect();
        texts.extend(["a\u{e9}b", "\u{20ac}", "\u{80}", ""].map(String::from));
        for t in &texts {
            assert_eq!(
                HeaderName::from_bytes(t.as_bytes()).is_ok(),
                is_token(t),
                "name {t:?}"
            );
            assert_eq!(
                HeaderValue::from_str(t).is_ok(),
                valid_header_value(t),
                "value {t:?}"
            );
        }
    }

    #[test]
    fn a_hook_header_that_would_split_the_request_is_a_config_error() {
        let config = Config::new("ws://h/");
        let endpoint = Endpoint::parse(&config.url).unwrap();
        let headers = vec![("X-A".to_string(), "1\r\nX-B: 2".to_string())];
        match build(&endpoint, &headers, &config) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "headers"),
            other => panic!("{:?}", other.map(|r| r.to_bytes())),
        }
    }
}
