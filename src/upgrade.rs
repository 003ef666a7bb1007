//! The HTTP upgrade (RFC 6455 §4.1), done here rather than by tungstenite's handshake, whose
//! trace log prints the whole request: credentials included. The request is written as
//! built (and validated) by `request.rs`; the reply is parsed with `httparse` and checked,
//! then the stream and any bytes after the reply go to tungstenite.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::time::Duration;

use tungstenite::error::{ProtocolError, SubProtocolError};
use tungstenite::handshake::client::Request;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::WebSocket;

use crate::Error;

/// Largest upgrade reply accepted (tungstenite's own limit too).
const MAX_REPLY: usize = 64 * 1024;
/// Most headers parsed in the reply.
const MAX_HEADERS: usize = 64;

/// A completed upgrade.
pub(crate) struct Upgraded<S> {
    pub ws: WebSocket<S>,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
    /// Bytes that arrived right behind the reply (already handed to tungstenite).
    pub tail: Vec<u8>,
}

/// Sends `request` over `stream` and checks the reply. Errors: the HTTP status of a refusal,
/// a protocol error for a malformed or unverifiable reply, `ConnectTimeout` when the stream's
/// deadline passes, the stream's own I/O error otherwise.
pub(crate) fn upgrade<S: Read + Write>(
    mut stream: S,
    request: &Request,
    config: WebSocketConfig,
    timeout: Duration,
) -> Result<Upgraded<S>, Error> {
    let key = request
        .headers()
        .get("Sec-WebSocket-Key")
        .map(|v| v.as_bytes().to_vec())
        .ok_or_else(|| protocol(ProtocolError::MissingSecWebSocketKey))?;
    let mut head = Vec::with_capacity(512);
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    head.extend_from_slice(format!("GET {path} HTTP/1.1\r\n").as_bytes());
    for (name, value) in request.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    stream
        .write_all(&head)
        .map_err(|e| crate::transport::connect_io_error(e, timeout))?;
    stream
        .flush()
        .map_err(|e| crate::transport::connect_io_error(e, timeout))?;

    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let (status, header_len, accept, protocol_chosen, upgrade_ok, retry_after) = loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(crate::transport::connect_io_error(
                    io::ErrorKind::UnexpectedEof.into(),
                    timeout,
                ))
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                continue
            }
            Err(e) => return Err(crate::transport::connect_io_error(e, timeout)),
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REPLY {
            return Err(Error::Handshake(tungstenite::Error::AttackAttempt));
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut reply = httparse::Response::new(&mut headers);
        match reply.parse(&buf) {
            Ok(httparse::Status::Partial) => continue,
            Ok(httparse::Status::Complete(len)) => {
                let get = |name: &str| {
                    reply
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
                };
                let upgrade_ok = get("Upgrade")
                    .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
                    && get("Connection").is_some_and(|v| {
                        v.split(',')
                            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
                    });
                let retry_after = get("Retry-After")
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs);
                break (
                    reply.code.unwrap_or(0),
                    len,
                    get("Sec-WebSocket-Accept"),
                    get("Sec-WebSocket-Protocol"),
                    upgrade_ok,
                    retry_after,
                );
            }
            Err(e) => return Err(protocol(ProtocolError::HttparseError(e))),
        }
    };
    if status != 101 {
        let reason = tungstenite::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
            .to_string();
        return Err(Error::HttpStatus {
            status,
            reason,
            retry_after,
        });
    }
    if !upgrade_ok {
        return Err(protocol(ProtocolError::MissingUpgradeWebSocketHeader));
    }
    if accept.as_deref() != Some(derive_accept_key(&key).as_str()) {
        return Err(protocol(ProtocolError::SecWebSocketAcceptKeyMismatch));
    }
    let offered = request
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(chosen) = &protocol_chosen {
        if !offered.split(',').any(|p| p.trim() == chosen) {
            return Err(protocol(ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::InvalidSubProtocol,
            )));
        }
    }
    let tail = buf[header_len..].to_vec();
    let ws = WebSocket::from_partially_read(stream, tail.clone(), Role::Client, Some(config));
    Ok(Upgraded {
        ws,
        protocol: protocol_chosen,
        tail,
    })
}

fn protocol(e: ProtocolError) -> Error {
    Error::Handshake(tungstenite::Error::Protocol(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    use crate::testing::Duplex;

    fn request(protocols: &str) -> Request {
        let mut b = Request::builder()
            .uri("ws://h/p?q=1")
            .header("Host", "h")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        if !protocols.is_empty() {
            b = b.header("Sec-WebSocket-Protocol", protocols);
        }
        b.body(()).unwrap()
    }

    fn reply(extra: &str) -> String {
        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\n")
    }

    fn run(reply: &str, protocols: &str) -> (Result<Option<String>, Error>, Vec<u8>) {
        let mut input = reply.as_bytes().to_vec();
        input.extend_from_slice(&[0x81, 0x02, b'h', b'i']); // a frame right behind the reply
        let stream = Duplex {
            input: Cursor::new(input),
            output: Vec::new(),
        };
        match upgrade(
            stream,
            &request(protocols),
            WebSocketConfig::default(),
            Duration::from_secs(1),
        ) {
            Ok(Upgraded {
                mut ws,
                protocol: p,
                ..
            }) => {
                let msg = ws.read().unwrap();
                assert_eq!(
                    msg.to_text().unwrap(),
                    "hi",
                    "bytes after the reply reach tungstenite"
                );
                (Ok(p), ws.get_ref().output.clone())
            }
            Err(e) => (Err(e), Vec::new()),
        }
    }

    #[test]
    fn accepts_the_rfc_example_and_writes_the_request_as_built() {
        let (r, sent) = run(&reply(""), "");
        assert_eq!(r.unwrap(), None);
        let sent = String::from_utf8(sent).unwrap();
        assert!(
            sent.starts_with(
                "GET /p?q=1 HTTP/1.1\r\nhost: h\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
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

    #[test]
    fn a_server_that_hangs_up_mid_reply_is_an_io_error() {
        let stream = Duplex {
            input: Cursor::new(b"HTTP/1.1 101".to_vec()),
            output: Vec::new(),
        };
        let r = upgrade(
            stream,
            &request(""),
            WebSocketConfig::default(),
            Duration::from_secs(1),
        );
        assert!(matches!(r, Err(Error::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof));
    }
}
