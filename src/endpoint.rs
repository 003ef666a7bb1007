//! The server address, parsed and checked once when the client is built.
#![forbid(unsafe_code)]

use tungstenite::http::Uri;

use crate::Error;

/// Plain `ws://` or TLS `wss://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Ws,
    Wss,
}

/// A parsed `ws://` / `wss://` URL.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub scheme: Scheme,
    /// Host name or address, IPv6 without brackets (what the resolver and TLS want).
    pub host: String,
    pub port: u16,
    /// The `Host` header value: authority without credentials.
    pub host_header: String,
    /// The URI the request is built from, credentials removed.
    pub uri: Uri,
    /// `user:password` from the URL, sent as Basic authorization.
    pub credentials: Option<(String, String)>,
}

impl Endpoint {
    /// Parses `url`; errors name the `url` field and say what is wrong.
    pub fn parse(url: &str) -> Result<Endpoint, Error> {
        let bad =
            |problem: &str| Error::config("url", format!("{problem}: {}", crate::redact::url(url)));
        let uri: Uri = url.parse().map_err(|_| bad("not a valid URL"))?;
        let scheme = match uri.scheme_str() {
            Some("ws") => Scheme::Ws,
            Some("wss") => Scheme::Wss,
            Some(_) => return Err(bad("scheme must be ws or wss")),
            None => return Err(bad("missing scheme (ws:// or wss://)")),
        };
        if scheme == Scheme::Wss && !cfg!(feature = "tls") {
            return Err(bad("wss:// needs the `tls` cargo feature"));
        }
        let authority = uri.authority().ok_or_else(|| bad("missing host"))?;
        let (userinfo, host_port) = match authority.as_str().rsplit_once('@') {
            Some((info, rest)) => (Some(info), rest),
            None => (None, authority.as_str()),
        };
        let host = authority.host();
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let default_port = match scheme {
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        };
        let port = parse_port(authority.as_str(), default_port).ok_or_else(|| bad(BAD_PORT))?;
        let credentials = userinfo.map(|info| {
            let (user, pass) = info.split_once(':').unwrap_or((info, ""));
            (percent_decode(user), percent_decode(pass))
        });
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let path = if path.is_empty() { "/" } else { path };
        let clean: Uri = format!("{}://{host_port}{path}", uri.scheme_str().unwrap_or("ws"))
            .parse()
            .map_err(|_| bad("not a valid URL"))?;
        Ok(Endpoint {
            scheme,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            host_header: host_port.to_string(),
            uri: clean,
            credentials,
        })
    }
}

/// The problem named when a URL's port is not a valid TCP port.
pub(crate) const BAD_PORT: &str = "port must be a number from 1 to 65535";

/// The port of `authority` (`[userinfo@]host[:port]`, as `http::Uri` accepted it): `default`
/// when there is no port or it is empty (RFC 3986 says `host:` means the scheme's default),
/// `None` when it is anything but digits naming 1 to 65535.
///
/// `Uri` parsing accepts any URI character in the port (`:abc`, `:-1`, `:99999` all parse),
/// and its `port_u16` answers `None` for those just as for no port at all: falling back to the
/// default on `None` silently connected `ws://h:99999/` to port 80. It also reads `:+80` as 80
/// (a sign is no URI port) and passes `:0`, a port no connect reaches.
pub(crate) fn parse_port(authority: &str, default: u16) -> Option<u16> {
    // The last `@` ends the userinfo (as in `Uri`); an IPv6 host's colons sit inside brackets.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let after_host = host_port
        .rfind(']')
        .map_or(host_port, |i| &host_port[i + 1..]);
    match after_host.rsplit_once(':') {
        None | Some((_, "")) => Some(default),
        // Digits only: `u16::from_str` alone would also take a sign (`+80`).
        Some((_, text)) if text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse::<u16>().ok().filter(|&p| p != 0)
        }
        Some(_) => None,
    }
}

/// Decodes `%XX` escapes in URL credentials; malformed escapes are kept as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_path() {
        let e = Endpoint::parse("ws://example.com:8080/a/b?x=1").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.host_header.as_str()),
            ("example.com", 8080, "example.com:8080")
        );
        assert_eq!(e.uri.path_and_query().unwrap().as_str(), "/a/b?x=1");
        assert_eq!(e.scheme, Scheme::Ws);
    }

    #[test]
    fn default_ports_and_root_path() {
        assert_eq!(Endpoint::parse("ws://h").unwrap().port, 80);
        assert_eq!(Endpoint::parse("ws://h").unwrap().uri.path(), "/");
        if cfg!(feature = "tls") {
            assert_eq!(Endpoint::parse("wss://h/").unwrap().port, 443);
        }
    }

    #[test]
    fn ipv6_host_loses_brackets_for_the_resolver() {
        let e = Endpoint::parse("ws://[::1]:9001/").unwrap();
        assert_eq!(e.host, "::1");
        assert_eq!(e.host_header, "[::1]:9001");
    }

    #[test]
    fn credentials_are_split_decoded_and_removed_from_the_uri() {
        let e = Endpoint::parse("ws://dev%40x:p%3Ass@h:1/p").unwrap();
        assert_eq!(
            e.credentials,
            Some(("dev@x".to_string(), "p:ss".to_string()))
        );
        assert_eq!(e.host_header, "h:1");
        assert!(!e.uri.to_string().contains("p%3Ass"));
    }

    #[test]
    fn wrong_scheme_and_garbage_name_the_url_field() {
        for url in ["http://h/", "h:80", "ws://", "", "ws://exa mple/"] {
            match Endpoint::parse(url) {
                Err(Error::Config { field: "url", .. }) => {}
                other => panic!("{url:?} gave {other:?}"),
            }
        }
    }

    /// The `url` config error's problem text for `url`, or a panic naming what came instead.
    fn url_problem(url: &str) -> String {
        match Endpoint::parse(url) {
            Err(Error::Config {
                field: "url",
                problem,
            }) => problem,
            other => panic!("{url:?} gave {other:?}"),
        }
    }

    #[test]
    fn a_port_outside_1_to_65535_or_not_a_number_names_the_url_field() {
        // These once connected to port 80 (`port_u16` failing fell back to the default; `+80`
        // read as 80) or to port 0 (`0`, `00`).
        for port in [
            "99999",
            "65536",
            "0",
            "00",
            "abc",
            "-1",
            "+80",
            "8o",
            "1e3",
            "99999999999999999999",
        ] {
            let url = format!("ws://host:{port}/");
            let problem = url_problem(&url);
            assert!(problem.starts_with(BAD_PORT), "{url}: {problem}");
            assert!(problem.ends_with(&url), "{url}: {problem}");
        }
        // The same in an IPv6 authority and after credentials.
        for url in ["ws://[::1]:99999/", "ws://u:p@h:abc/"] {
            let problem = url_problem(url);
            assert!(problem.starts_with(BAD_PORT), "{url}: {problem}");
        }
        // Without the `tls` feature a wss:// URL is refused for that before its port is read.
        if cfg!(feature = "tls") {
            assert!(url_problem("wss://h:0/").starts_with(BAD_PORT));
        }
        // What `Uri` itself refuses in a port is a `url` error too, if a less specific one.
        for url in ["ws://h:٣/", "ws://h:8 0/", "ws://h:80:90/"] {
            url_problem(url);
        }
        // The password stays out of the message, as in every other URL error.
        let problem = url_problem("ws://u:secret@h:-1/");
        assert!(!problem.contains("secret"), "{problem}");
    }

    #[test]
    fn ports_at_the_edges_and_with_leading_zeros_are_taken_as_numbers() {
        for (url, port) in [
            ("ws://h:1/", 1),
            ("ws://h:65535/", 65535),
            ("ws://h:0080/", 80),
            ("ws://[::1]:1/", 1),
            ("ws://u:p@h:9001/", 9001),
            // A `:` in the password is not a port separator.
            ("ws://u:99999@h/", 80),
        ] {
            assert_eq!(Endpoint::parse(url).unwrap().port, port, "{url}");
        }
    }

    #[test]
    fn an_empty_port_means_the_default_port() {
        // RFC 3986 section 3.2.3: `host:` with no digits is the scheme's default port.
        let e = Endpoint::parse("ws://h:/p").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("h", 80));
        assert_eq!(e.uri.path(), "/p");
        assert_eq!(Endpoint::parse("ws://[::1]:/").unwrap().port, 80);
        if cfg!(feature = "tls") {
            assert_eq!(Endpoint::parse("wss://h:/").unwrap().port, 443);
        }
    }

    #[test]
    fn a_proxy_port_follows_the_same_rule_naming_the_proxy_field() {
        // `Proxy::parse` reads its port with `parse_port` too (default 80).
        use crate::proxy::Proxy;
        for port in ["99999", "65536", "0", "abc", "-1", "+3128"] {
            let url = format!("http://u:secret@p:{port}");
            match Proxy::parse(&url) {
                Err(Error::Config {
                    field: "proxy",
                    problem,
                }) => {
                    assert!(problem.starts_with(BAD_PORT), "{problem}");
                    assert!(!problem.contains("secret"), "{problem}");
                }
                other => panic!("{url} gave {other:?}"),
            }
        }
        // Empty means the default (RFC 3986); leading zeros are still the number.
        assert_eq!(Proxy::parse("http://p:").unwrap().port, 80);
        assert_eq!(Proxy::parse("http://[::1]:/").unwrap().port, 80);
        assert_eq!(Proxy::parse("http://p:03128").unwrap().port, 3128);
        assert_eq!(Proxy::parse("http://p:65535").unwrap().port, 65535);
    }

    #[test]
    fn malformed_percent_escapes_are_kept() {
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4");
        assert_eq!(percent_decode("%41%"), "A%");
    }
}
