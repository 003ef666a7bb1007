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
        let port = authority.port_u16().unwrap_or(match scheme {
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        });
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

    #[test]
    fn malformed_percent_escapes_are_kept() {
        assert_eq!(percent_decode("a%zz%4"), "a%zz%4");
        assert_eq!(percent_decode("%41%"), "A%");
    }
}
