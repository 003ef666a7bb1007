//! The HTTP upgrade request: URL, credentials, headers, origin and subprotocols.
#![forbid(unsafe_code)]

use tungstenite::handshake::client::{generate_key, Request};

use crate::endpoint::Endpoint;
use crate::{Config, Error};

/// Builds the upgrade request for one attempt, with `headers` (the configured ones, or what
/// the request hook made of them).
pub(crate) fn build(
    endpoint: &Endpoint,
    headers: &[(String, String)],
    config: &Config,
) -> Result<Request, Error> {
    let mut req = Request::builder()
        .method("GET")
        .uri(endpoint.uri.clone())
        .header("Host", endpoint.host_header.as_str())
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", generate_key());
    let has_auth = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
    if let (Some((user, pass)), false) = (&endpoint.credentials, has_auth) {
        req = req.header(
            "Authorization",
            format!("Basic {}", base64(format!("{user}:{pass}").as_bytes())),
        );
    }
    if let Some(origin) = &config.origin {
        req = req.header("Origin", origin.as_str());
    }
    if !config.protocols.is_empty() {
        req = req.header("Sec-WebSocket-Protocol", config.protocols.join(", "));
    }
    for (name, value) in headers {
        req = req.header(name.as_str(), value.as_str());
    }
    req.body(())
        .map_err(|e| Error::config("headers", e.to_string()))
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
        let h = req.headers();
        assert_eq!(h["authorization"], "Basic dTpw");
        assert_eq!(h["host"], "h:1");
        assert_eq!(h["origin"], "https://app");
        assert_eq!(h["sec-websocket-protocol"], "mqtt, v2.json");
        assert_eq!(h["x-id"], "7");
        assert_eq!(req.uri().path_and_query().unwrap().as_str(), "/x?y=1");
    }

    #[test]
    fn an_explicit_authorization_header_wins_over_url_credentials() {
        let config = Config::new("ws://u:p@h/").header("Authorization", "Bearer t");
        let endpoint = Endpoint::parse(&config.url).unwrap();
        let req = build(&endpoint, &config.headers, &config).unwrap();
        let all: Vec<_> = req.headers().get_all("authorization").iter().collect();
        assert_eq!(all, ["Bearer t"]);
    }
}
