//! One reader of HTTP/1.1 response heads, for both the proxy's CONNECT reply and the
//! WebSocket upgrade reply: bytes go in as they arrive; out comes the parsed head and the
//! bytes behind it, which belong to the next layer (the tunnel, or the first frames).
#![forbid(unsafe_code)]

use std::time::Duration;

/// Most headers parsed in a reply.
const MAX_HEADERS: usize = 64;

/// A complete response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// `HTTP/1.x` minor version.
    pub minor_version: u8,
    pub status: u16,
    pub reason: String,
    /// Header names and values (values trimmed, lossily decoded).
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Retry-After` in seconds, if present and numeric.
    pub fn retry_after(&self) -> Option<Duration> {
        self.get("Retry-After")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs)
    }
}

/// What [`HeadReader::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// More bytes are needed.
    Partial,
    /// The head, and the bytes that followed it.
    Complete(Head, Vec<u8>),
}

/// Why a head could not be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// Larger than the reader's limit.
    TooLarge,
    /// Not HTTP.
    Malformed(httparse::Error),
}

/// Accumulates a response head up to `limit` bytes.
#[derive(Debug)]
pub(crate) struct HeadReader {
    buf: Vec<u8>,
    limit: usize,
}

impl HeadReader {
    pub fn new(limit: usize) -> HeadReader {
        HeadReader {
            buf: Vec::with_capacity(512),
            limit,
        }
    }

    /// Adds `bytes` and tries to parse.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Parsed, HeadError> {
        self.buf.extend_from_slice(bytes);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut reply = httparse::Response::new(&mut headers);
        match reply.parse(&self.buf) {
            Ok(httparse::Status::Partial) if self.buf.len() > self.limit => {
                Err(HeadError::TooLarge)
            }
            Ok(httparse::Status::Partial) => Ok(Parsed::Partial),
            Ok(httparse::Status::Complete(len)) => {
                let head = Head {
                    minor_version: reply.version.unwrap_or(1),
                    status: reply.code.unwrap_or(0),
                    reason: reply.reason.unwrap_or("").to_string(),
                    headers: reply
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).trim().to_string(),
                            )
                        })
                        .collect(),
                };
                Ok(Parsed::Complete(head, self.buf[len..].to_vec()))
            }
            Err(e) => Err(HeadError::Malformed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_split_at_every_byte_parses_and_keeps_the_tail() {
        let reply = b"HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\nRetry-After: 7\r\n\r\nTAIL";
        for cut in 1..reply.len() {
            let mut r = HeadReader::new(1024);
            let first = r.feed(&reply[..cut]).unwrap();
            let parsed = match first {
                Parsed::Partial => r.feed(&reply[cut..]).unwrap(),
                done => {
                    assert!(cut >= reply.len() - 4, "complete early at {cut}");
                    // The rest of the tail arrives later: the reader is done with it.
                    done
                }
            };
            let Parsed::Complete(head, tail) = parsed else {
                panic!("incomplete at cut {cut}")
            };
            assert_eq!((head.status, head.get("upgrade")), (101, Some("websocket")));
            assert_eq!(head.retry_after(), Some(Duration::from_secs(7)));
            assert!(b"TAIL".starts_with(&tail), "{tail:?}");
        }
    }

    #[test]
    fn garbage_and_oversize_heads_are_errors() {
        assert!(matches!(
            HeadReader::new(1024).feed(b"garbage\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
        let mut r = HeadReader::new(16);
        assert!(matches!(
            r.feed(b"HTTP/1.1 200 OK\r\nX: aaaaaaaaaaaaaaaa"),
            Err(HeadError::TooLarge)
        ));
    }
}
