//! HTTP CONNECT proxies: `http://[user:pass@]host:port`, from configuration or, opt-in, from
//! the conventional `https_proxy` / `http_proxy` / `no_proxy` variables.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::time::Duration;

use tungstenite::http::Uri;

use crate::Error;

/// Largest proxy response header accepted.
const MAX_RESPONSE: usize = 8 * 1024;

/// A parsed proxy address.
#[derive(Clone, Debug)]
pub(crate) struct Proxy {
    pub host: String,
    pub port: u16,
    /// `Basic ...` credentials, if the URL had any.
    pub authorization: Option<String>,
}

impl Proxy {
    /// Parses `http://[user:pass@]host[:port]`; errors name the `proxy` field.
    pub fn parse(url: &str) -> Result<Proxy, Error> {
        let bad = |problem: &str| {
            Error::config("proxy", format!("{problem}: {}", crate::redact::url(url)))
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a valid URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(bad("only http:// CONNECT proxies are supported")),
            None => return Err(bad("missing scheme (http://)")),
        }
        let authority = uri.authority().ok_or_else(|| bad("missing host"))?;
        if authority.host().is_empty() {
            return Err(bad("missing host"));
        }
        let authorization = authority.as_str().rsplit_once('@').map(|(info, _)| {
            let (user, pass) = info.split_once(':').unwrap_or((info, ""));
            let creds = format!(
                "{}:{}",
                crate::endpoint::percent_decode(user),
                crate::endpoint::percent_decode(pass)
            );
            format!("Basic {}", crate::request::base64(creds.as_bytes()))
        });
        // Not `port_u16().unwrap_or(80)`: that sent `http://p:99999` to port 80.
        let port = crate::endpoint::parse_port(authority.as_str(), 80)
            .ok_or_else(|| bad(crate::endpoint::BAD_PORT))?;
        Ok(Proxy {
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            authorization,
        })
    }
}

/// The proxy the environment names for `scheme` (`ws` or `wss`) and `host`, unless `no_proxy`
/// excludes the host. Reads `https_proxy`/`HTTPS_PROXY` for wss, `http_proxy`/`HTTP_PROXY` for
/// ws, and `no_proxy`/`NO_PROXY` (comma-separated host suffixes, or `*`).
pub(crate) fn from_env(secure: bool, host: &str) -> Option<String> {
    let var = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
    };
    let proxy = if secure {
        var(&["https_proxy", "HTTPS_PROXY"])
    } else {
        var(&["http_proxy", "HTTP_PROXY"])
    }?;
    if let Some(no_proxy) = var(&["no_proxy", "NO_PROXY"]) {
        if excluded(&no_proxy, host) {
            return None;
        }
    }
    Some(proxy)
}

/// Whether a `no_proxy` list excludes `host`.
fn excluded(no_proxy: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    no_proxy
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.trim_start_matches('.').to_ascii_lowercase();
            let entry = entry.split(':').next().unwrap_or("");
            host == entry || host.ends_with(&format!(".{entry}"))
        })
}

/// Asks the proxy behind `stream` for a tunnel to `target` (`host:port`). Timeouts come from
/// the stream (it enforces the connect deadline).
pub(crate) fn tunnel<S: Read + Write>(
    stream: &mut S,
    proxy: &Proxy,
    target: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = &proxy.authorization {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| crate::transport::connect_io_error(e, timeout))?;
    stream
        .flush()
        .map_err(|e| crate::transport::connect_io_error(e, timeout))?;
    // Read the response header byte by byte: nothing beyond it may be consumed, it belongs to
    // the tunnel. It is short, and this happens once per attempt.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_RESPONSE {
            return Err(proxy_error(None, "response header too large"));
        }
        match stream.read(&mut byte) {
            Ok(0) => return Err(proxy_error(None, "proxy closed the connection")),
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(crate::transport::connect_io_error(e, timeout)),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status: Option<u16> = parts.next().and_then(|s| s.parse().ok());
    let reason = parts.next().unwrap_or("").trim();
    match status {
        Some(200..=299) if version.starts_with("HTTP/1.") => Ok(()),
        Some(code) => Err(proxy_error(
            Some(code),
            &format!("proxy refused the tunnel: {code} {reason}"),
        )),
        None => Err(proxy_error(None, "malformed proxy response")),
    }
}

fn proxy_error(status: Option<u16>, detail: &str) -> Error {
    Error::Proxy {
        status,
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    use crate::testing::Duplex;

    fn run(response: &str, proxy_url: &str) -> (Result<(), Error>, String, usize) {
        let mut s = Duplex {
            input: Cursor::new(response.as_bytes().to_vec()),
            output: Vec::new(),
        };
        let r = tunnel(
            &mut s,
            &Proxy::parse(proxy_url).unwrap(),
            "h:443",
            Duration::from_secs(1),
        );
        let left = response.len() - s.input.position() as usize;
        (r, String::from_utf8(s.output).unwrap(), left)
    }

    #[test]
    fn connect_request_carries_target_and_basic_auth_and_reads_only_the_header() {
        let (r, sent, left) = run(
            "HTTP/1.1 200 Connection established\r\n\r\nTLS",
            "http://u:p@proxy:3128",
        );
        assert!(r.is_ok());
        assert_eq!(
            sent,
            "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
        );
        assert_eq!(left, 3, "tunnel bytes must stay unread");
    }

    #[test]
    fn refusals_carry_the_status() {
        for (resp, code) in [
            ("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", 407),
            ("HTTP/1.0 502 Bad Gateway\r\n\r\n", 502),
        ] {
            match run(resp, "http://proxy").0 {
                Err(Error::Proxy {
                    status: Some(c), ..
                }) => assert_eq!(c, code),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            run("garbage\r\n\r\n", "http://proxy").0,
            Err(Error::Proxy { status: None, .. })
        ));
        assert!(matches!(
            run("HTTP/1.1 200 OK\r\n", "http://proxy").0,
            Err(Error::Proxy { status: None, .. })
        ));
    }

    #[test]
    fn proxy_urls_are_validated() {
        assert_eq!(Proxy::parse("http://p").unwrap().port, 80);
        assert_eq!(Proxy::parse("http://[::1]:8080").unwrap().host, "::1");
        for bad in ["https://p:1", "p:1", "http://", "socks5://p:1"] {
            assert!(
                matches!(Proxy::parse(bad), Err(Error::Config { field: "proxy", .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn no_proxy_matches_suffixes_and_star() {
        assert!(excluded(
            "localhost, .internal.example",
            "api.internal.example"
        ));
        assert!(excluded("internal.example", "internal.example"));
        assert!(excluded("*", "anything"));
        assert!(!excluded("example.com", "notexample.com"));
        assert!(excluded("gw.local:8080", "gw.local"));
    }
}
