//! HTTP CONNECT proxies: `http://[user:pass@]host:port`, from configuration or, opt-in, from
//! the conventional `https_proxy` / `http_proxy` / `no_proxy` variables.
#![forbid(unsafe_code)]

use tungstenite::http::Uri;

use crate::Error;

/// Largest proxy response header accepted.
pub(crate) const MAX_RESPONSE: usize = 8 * 1024;

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

/// The CONNECT request asking `proxy` for a tunnel to `target` (`host:port`).
pub(crate) fn connect_request(proxy: &Proxy, target: &str) -> Vec<u8> {
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = &proxy.authorization {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// Judges the proxy's reply head: 2xx opens the tunnel; anything else is a refusal with the
/// status.
pub(crate) fn check_reply(head: &crate::head::Head) -> Result<(), Error> {
    match head.status {
        200..=299 => Ok(()),
        code => Err(proxy_error(
            Some(code),
            &format!("proxy refused the tunnel: {code} {}", head.reason),
        )),
    }
}

/// A reply head that could not be read.
pub(crate) fn head_error(e: crate::head::HeadError) -> Error {
    match e {
        crate::head::HeadError::TooLarge => proxy_error(None, "response header too large"),
        crate::head::HeadError::Malformed(_) => proxy_error(None, "malformed proxy response"),
    }
}

/// The proxy hung up before its reply was complete.
pub(crate) fn closed_early() -> Error {
    proxy_error(None, "proxy closed the connection")
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
    use crate::head::{HeadReader, Parsed};

    fn run(response: &str) -> Result<Vec<u8>, Error> {
        let mut reader = HeadReader::new(MAX_RESPONSE);
        match reader.feed(response.as_bytes()) {
            Ok(Parsed::Complete(head, tail)) => check_reply(&head).map(|()| tail),
            Ok(Parsed::Partial) => Err(closed_early()),
            Err(e) => Err(head_error(e)),
        }
    }

    #[test]
    fn connect_request_carries_target_and_basic_auth_and_the_tail_is_kept() {
        let sent = connect_request(&Proxy::parse("http://u:p@proxy:3128").unwrap(), "h:443");
        assert_eq!(
            String::from_utf8(sent).unwrap(),
            "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
        );
        let tail = run("HTTP/1.1 200 Connection established\r\n\r\nTLS").unwrap();
        assert_eq!(tail, b"TLS", "tunnel bytes belong to the next layer");
    }

    #[test]
    fn refusals_carry_the_status() {
        for (resp, code) in [
            ("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", 407),
            ("HTTP/1.0 502 Bad Gateway\r\n\r\n", 502),
        ] {
            match run(resp) {
                Err(Error::Proxy {
                    status: Some(c), ..
                }) => assert_eq!(c, code),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            run("garbage\r\n\r\n"),
            Err(Error::Proxy { status: None, .. })
        ));
        assert!(matches!(
            run("HTTP/1.1 200 OK\r\n"),
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
