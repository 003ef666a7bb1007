//! Keeps secrets out of logs and `Debug` output.
#![forbid(unsafe_code)]

/// Header names whose values are secrets.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "set-cookie",
];

/// Query parameter names (lowercase) whose values look like credentials.
const SECRET_PARAMS: [&str; 12] = [
    "token",
    "access_token",
    "auth",
    "key",
    "apikey",
    "api_key",
    "password",
    "pass",
    "secret",
    "signature",
    "sig",
    "jwt",
];

/// `value`, or `"[redacted]"` when the header `name` carries a secret.
pub(crate) fn header_value<'a>(name: &str, value: &'a str) -> &'a str {
    if SECRET_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(name)) {
        "[redacted]"
    } else {
        value
    }
}

/// `headers` as `(name, value)` pairs for `Debug` output, secret values redacted.
pub(crate) fn headers(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), header_value(n, v)))
        .collect()
}

/// The URL with its password and token-like query values replaced by `[redacted]`.
///
/// Works on any string, parsed or not, so that even an invalid URL can be named in an error.
pub(crate) fn url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len());
    // Credentials sit between "://" and the first '@' of the authority.
    let authority_start = before_query.find("://").map_or(0, |i| i + 3);
    let authority_end = before_query[authority_start..]
        .find('/')
        .map_or(before_query.len(), |i| authority_start + i);
    let authority = &before_query[authority_start..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(&before_query[..authority_start]);
            let user = authority[..at].split(':').next().unwrap_or("");
            if authority[..at].contains(':') {
                out.push_str(user);
                out.push_str(":[redacted]");
            } else {
                out.push_str("[redacted]");
            }
            out.push_str(&before_query[authority_start + at..]);
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((k, _)) if is_secret_param(k) => {
                    out.push_str(k);
                    out.push_str("=[redacted]");
                }
                _ => out.push_str(pair),
            }
        }
    }
    out
}

fn is_secret_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| lower == *s) || lower.ends_with("token") || lower.ends_with("_key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_and_tokens_are_redacted() {
        let u = url("wss://dev:s3cret@host:443/p?token=abc&x=1&Access_Token=zz&session_token=q");
        assert_eq!(u, "wss://dev:[redacted]@host:443/p?token=[redacted]&x=1&Access_Token=[redacted]&session_token=[redacted]");
        assert!(!u.contains("s3cret") && !u.contains("abc"));
    }

    #[test]
    fn user_only_credentials_are_redacted_too() {
        assert_eq!(url("ws://apitoken@host/"), "ws://[redacted]@host/");
    }

    #[test]
    fn plain_urls_are_unchanged() {
        for u in ["ws://h:1/a?b=c", "ws://h", "not a url", "ws://h/p@q"] {
            assert_eq!(url(u), u);
        }
    }

    #[test]
    fn secret_headers_are_redacted_case_insensitively() {
        assert_eq!(header_value("AUTHORIZATION", "Bearer x"), "[redacted]");
        assert_eq!(header_value("Cookie", "a=b"), "[redacted]");
        assert_eq!(header_value("X-Device", "gw1"), "gw1");
    }
}
