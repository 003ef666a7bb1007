//! Received messages to stdout: text as a line, binary as a line of hex or raw bytes,
//! flushed per message so a pipeline sees each message when it arrives.
#![forbid(unsafe_code)]

use std::io::{self, Write};

use wsbeat::Message;

use crate::args::BinaryOut;
use crate::hex::push_hex;

/// The stdout side. Writes block (stdout stays in the mode the parent gave it), so a reader
/// that stops reading stalls the loop once the pipe buffer (64 KiB on Linux) is full.
pub struct Output {
    binary: BinaryOut,
    /// Reused for every message, so steady traffic does not allocate.
    buf: Vec<u8>,
}

impl Output {
    /// An output writing binary messages as `binary` says.
    pub fn new(binary: BinaryOut) -> Output {
        Output {
            binary,
            buf: Vec::new(),
        }
    }

    /// Writes one message and flushes. A text message containing newlines is written as it
    /// is: changing the payload would be worse than spanning lines.
    pub fn message(&mut self, msg: &Message) -> io::Result<()> {
        self.buf.clear();
        match (msg, self.binary) {
            (Message::Text(s), _) => {
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(b'\n');
            }
            (Message::Binary(b), BinaryOut::Hex) => {
                push_hex(&mut self.buf, b);
                self.buf.push(b'\n');
            }
            (Message::Binary(b), BinaryOut::Raw) => self.buf.extend_from_slice(b),
        }
        let mut out = io::stdout().lock();
        out.write_all(&self.buf)?;
        out.flush()?;
        // A long burst could leave a large buffer behind; keep at most 64 KiB.
        if self.buf.capacity() > 64 << 10 {
            self.buf = Vec::new();
        }
        Ok(())
    }
}
