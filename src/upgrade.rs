//! The HTTP upgrade (RFC 6455 §4.1), done here rather than by tungstenite's handshake, whose
//! trace log prints the whole request: credentials included. The request is written as
//! built (and validated) by `request.rs` (`UpgradeRequest::to_bytes`); the reply is parsed with `httparse` and checked,
//! then the stream and any bytes after the reply go to tungstenite.
#![forbid(unsafe_code)]

use tungstenite::error::{ProtocolError, SubProtocolError};
use tungstenite::handshake::derive_accept_key;

use crate::head::{Head, HeadError};
use crate::request::UpgradeRequest;
use crate::Error;

/// Largest upgrade reply accepted (tungstenite's own limit too).
pub(crate) const MAX_REPLY: usize = 64 * 1024;

/// Checks the server's reply to `request`: the subprotocol it chose, or why the upgrade
/// failed (the HTTP status of a refusal with its `Retry-After`; a protocol error for a
/// missing upgrade, a wrong accept key or a subprotocol that was not offered).
pub(crate) fn check_reply(request: &UpgradeRequest, reply: &Head) -> Result<Option<String>, Error> {
    if reply.status != 101 {
        let reason = tungstenite::http::StatusCode::from_u16(reply.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
            .to_string();
        return Err(Error::HttpStatus {
            status: reply.status,
            reason,
            retry_after: reply.retry_after(),
        });
    }
    let upgrade_ok = reply
        .get("Upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && reply.get("Connection").is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    if !upgrade_ok {
        return Err(protocol(ProtocolError::MissingUpgradeWebSocketHeader));
    }
    let key = request
        .header("Sec-WebSocket-Key")
        .map(str::as_bytes)
        .ok_or_else(|| protocol(ProtocolError::MissingSecWebSocketKey))?;
    if reply.get("Sec-WebSocket-Accept") != Some(derive_accept_key(key).as_str()) {
        return Err(protocol(ProtocolError::SecWebSocketAcceptKeyMismatch));
    }
    let offered = request.header("Sec-WebSocket-Protocol").unwrap_or("");
    let chosen = reply.get("Sec-WebSocket-Protocol").map(str::to_string);
    if let Some(chosen) = &chosen {
        if !offered.split(',').any(|p| p.trim() == chosen) {
            return Err(protocol(ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::InvalidSubProtocol,
            )));
        }
    }
    Ok(chosen)
}

/// A reply head that could not be read.
pub(crate) fn head_error(e: HeadError) -> Error {
    match e {
        HeadError::TooLarge => Error::Handshake(tungstenite::Error::AttackAttempt),
        HeadError::Malformed(e) => protocol(ProtocolError::HttparseError(e)),
    }
}

fn protocol(e: ProtocolError) -> Error {
    Error::Handshake(tungstenite::Error::Protocol(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::{HeadReader, Parsed};
    use std::time::Duration;

    fn request(protocols: &str) -> UpgradeRequest {
        let mut headers = vec![
            ("Host", "h"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        if !protocols.is_empty() {
            headers.push(("Sec-WebSocket-Protocol", protocols));
        }
        UpgradeRequest::from_parts("/p?q=1", &headers)
    }

    fn reply(extra: &str) -> String {
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\n")
    }

    fn run(reply: &str, protocols: &str) -> (Result<Option<String>, Error>, Vec<u8>) {
        let req = request(protocols);
        let mut input = reply.as_bytes().to_vec();
        input.extend_from_slice(&[0x81, 0x02, b'h', b'i']); // a frame right behind the reply
        let mut reader = HeadReader::new(MAX_REPLY);
        match reader.feed(&input) {
            Ok(Parsed::Complete(head, tail)) => {
                let r = check_reply(&req, &head);
                if r.is_ok() {
                    assert_eq!(
                        tail,
                        [0x81, 0x02, b'h', b'i'],
                        "bytes after the reply are kept"
                    );
                }
                (r, req.to_bytes())
            }
            Ok(Parsed::Partial) => panic!("partial"),
            Err(e) => (Err(head_error(e)), Vec::new()),
        }
    }

    #[test]
    fn accepts_the_rfc_example_and_writes_the_request_as_built() {
        let (r, sent) = run(&reply(""), "");
        assert_eq!(r.unwrap(), None);
        let sent = String::from_utf8(sent).unwrap();
        assert!(
            sent.starts_with(
                "GET /p?q=1 HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            ),
            "{sent}"
        );
        assert!(sent.ends_with("\r\n\r\n"));
    }

    #[test]
    fn reports_the_chosen_subprotocol_and_refuses_one_not_offered() {
        assert_eq!(
            run(&reply("Sec-WebSocket-Protocol: v2\r\n"), "v1, v2")
                .0
                .unwrap(),
            Some("v2".into())
        );
        assert!(matches!(
            run(&reply("Sec-WebSocket-Protocol: v3\r\n"), "v1, v2").0,
            Err(Error::Handshake(_))
        ));
        assert!(matches!(
            run(&reply("Sec-WebSocket-Protocol: v1\r\n"), "").0,
            Err(Error::Handshake(_))
        ));
    }

    #[test]
    fn refusals_carry_status_and_retry_after() {
        let (r, _) = run("HTTP/1.1 503 Busy\r\nRetry-After: 7\r\n\r\n", "");
        match r {
            Err(Error::HttpStatus {
                status: 503,
                retry_after,
                reason,
            }) => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
                assert_eq!(reason, "Service Unavailable");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_wrong_accept_key_or_missing_upgrade_is_refused() {
        let bad_key = reply("").replace("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "AAAA");
        assert!(matches!(run(&bad_key, "").0, Err(Error::Handshake(_))));
        let no_upgrade = reply("").replace("Upgrade: websocket\r\n", "");
        assert!(matches!(run(&no_upgrade, "").0, Err(Error::Handshake(_))));
        assert!(matches!(
            run("garbage\r\n\r\n", "").0,
            Err(Error::Handshake(_))
        ));
    }
}
