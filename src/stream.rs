//! The byte stream under tungstenite: plain TCP or TLS, metered.
//!
//! The meter is what makes liveness "any byte": it stamps the instant of the last received byte
//! and counts whole data frames the kernel has taken, which tells which sent messages were
//! really handed over when a link dies.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;

mod tcp;
pub(crate) use tcp::Tcp;

/// Plain TCP or TLS over TCP.
pub(crate) enum Transport {
    Plain(Tcp),
    #[cfg(feature = "tls")]
    Tls(Box<native_tls::TlsStream<Tcp>>),
}

impl Transport {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s.socket(),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.get_ref().socket(),
        }
    }

    pub fn tcp_mut(&mut self) -> &mut Tcp {
        match self {
            Transport::Plain(s) => s,
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.get_mut(),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.flush(),
        }
    }
}

/// A [`Transport`] that counts bytes, stamps the last inbound byte and tracks outbound frames.
pub(crate) struct MeteredStream {
    inner: Transport,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Calls to the socket's `write`, refused ones included.
    pub write_calls: u64,
    /// Bytes arrived since [`take_inbound`](MeteredStream::take_inbound) last looked. The
    /// driver stamps the time once per message read, not once per socket read: a large
    /// message takes several reads, and the stamp is late only by the time to parse it.
    inbound: bool,
    /// Whether the last read that returned bytes filled less than it was offered: on plain
    /// TCP the kernel's receive queue was empty at that moment (see `LinkIo::socket_drained`).
    last_read_short: bool,
    frames: FrameBoundaries,
    frames_in: FrameBoundaries,
}

impl MeteredStream {
    pub fn new(inner: Transport) -> MeteredStream {
        MeteredStream {
            inner,
            bytes_in: 0,
            bytes_out: 0,
            write_calls: 0,
            inbound: false,
            last_read_short: false,
            frames: FrameBoundaries::default(),
            frames_in: FrameBoundaries::default(),
        }
    }

    /// Complete data frames the kernel has taken since the link opened.
    pub fn data_frames_out(&self) -> u64 {
        self.frames.data_frames
    }

    /// Ends the connect phase (see [`Tcp`]): from now on I/O does not block unless the driver
    /// allows a read to wait; otherwise it waits with `poll(2)` (see `sys`) for input,
    /// writability or its next deadline. `tail` is what arrived behind the upgrade reply: the first frames.
    pub fn end_connect_phase(&mut self, tail: &[u8]) -> io::Result<()> {
        self.inner.tcp_mut().end_connect_phase()?;
        // The HTTP upgrade went through this stream too; frames start here.
        self.frames = FrameBoundaries::default();
        self.frames_in = FrameBoundaries::default();
        self.frames_in.feed(tail);
        Ok(())
    }

    /// Whether bytes arrived since the last call.
    pub fn take_inbound(&mut self) -> bool {
        std::mem::take(&mut self.inbound)
    }

    /// Whether the last read that returned bytes returned fewer than asked for.
    pub fn last_read_short(&self) -> bool {
        self.last_read_short
    }

    /// Complete messages (data or control) received since the link opened.
    pub fn messages_in(&self) -> u64 {
        self.frames_in.messages
    }

    pub fn transport(&self) -> &Transport {
        &self.inner
    }

    pub fn transport_mut(&mut self) -> &mut Transport {
        &mut self.inner
    }
}

impl Read for MeteredStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.bytes_in += n as u64;
            self.inbound = true;
            self.last_read_short = n < buf.len();
            self.frames_in.feed(&buf[..n]);
        }
        Ok(n)
    }
}

impl Write for MeteredStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_calls += 1;
        let n = self.inner.write(buf)?;
        if n > 0 {
            // No timestamp here: a write stall measures progress by `bytes_out` (see
            // `Link::stalled`), which keeps the clock out of the per-message path.
            self.bytes_out += n as u64;
            self.frames.feed(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Follows frame boundaries (RFC 6455 §5.2) in a byte stream, masked or not. Outbound, it
/// counts the complete data messages the kernel took; inbound, the complete messages (data or
/// control) that arrived, which tells whether tungstenite still holds one.
#[derive(Debug, Default)]
struct FrameBoundaries {
    header: [u8; 14],
    have: usize,
    payload_left: u64,
    data_final: bool,
    ends_message: bool,
    /// Frames that ended a data message (single frames and final fragments).
    data_frames: u64,
    /// Frames that ended a data message, plus control frames.
    messages: u64,
}

impl FrameBoundaries {
    fn feed(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(buf.len() as u64);
                self.payload_left -= n;
                buf = &buf[n as usize..];
                if self.payload_left == 0 {
                    self.frame_done();
                }
                continue;
            }
            // The usual case, a whole header in this write: read it in place.
            if self.have == 0 && buf.len() >= 2 {
                let need = header_len(buf[1]);
                if buf.len() >= need {
                    self.start_frame(buf[0], payload_len(buf[1], &buf[2..need]));
                    buf = &buf[need..];
                    continue;
                }
            }
            // A header split across writes: gather it byte by byte.
            self.header[self.have] = buf[0];
            self.have += 1;
            buf = &buf[1..];
            if self.have < 2 || self.have < header_len(self.header[1]) {
                continue;
            }
            let (b0, b1) = (self.header[0], self.header[1]);
            let len = payload_len(b1, &self.header[2..self.have]);
            self.have = 0;
            self.start_frame(b0, len);
        }
    }

    /// A frame with first header byte `b0` and a payload of `len` bytes begins.
    fn start_frame(&mut self, b0: u8, len: u64) {
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0f;
        self.data_final = fin && opcode <= 2;
        self.ends_message = self.data_final || opcode >= 8;
        self.payload_left = len;
        if len == 0 {
            self.frame_done();
        }
    }

    fn frame_done(&mut self) {
        if self.data_final {
            self.data_frames += 1;
        }
        if self.ends_message {
            self.messages += 1;
        }
        self.data_final = false;
        self.ends_message = false;
    }
}

/// The header's length, from its second byte: 2, plus the extended length, plus the mask.
fn header_len(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// The payload length, from the header's second byte and the bytes after it.
fn payload_len(b1: u8, rest: &[u8]) -> u64 {
    match b1 & 0x7f {
        126 => u64::from(u16::from_be_bytes([rest[0], rest[1]])),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&rest[..8]);
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::protocol::frame::{coding::OpCode, Frame};

    fn encode(frame: Frame) -> Vec<u8> {
        let mut out = Vec::new();
        frame.format(&mut out).unwrap();
        out
    }

    fn masked(mut frame: Frame) -> Vec<u8> {
        frame.header_mut().mask = Some([1, 2, 3, 4]);
        encode(frame)
    }

    #[test]
    fn counts_data_frames_split_at_every_byte() {
        let mut wire = Vec::new();
        wire.extend(masked(Frame::message(
            vec![7u8; 5],
            OpCode::Data(tungstenite::protocol::frame::coding::Data::Text),
            true,
        )));
        wire.extend(masked(Frame::ping(vec![1u8; 8])));
        wire.extend(masked(Frame::message(
            vec![9u8; 300],
            OpCode::Data(tungstenite::protocol::frame::coding::Data::Binary),
            true,
        )));
        wire.extend(masked(Frame::message(
            vec![9u8; 70_000],
            OpCode::Data(tungstenite::protocol::frame::coding::Data::Binary),
            true,
        )));
        wire.extend(masked(Frame::message(
            Vec::<u8>::new(),
            OpCode::Data(tungstenite::protocol::frame::coding::Data::Text),
            true,
        )));
        for chunk in [1usize, 2, 3, 7, 1000, wire.len()] {
            let mut f = FrameBoundaries::default();
            let mut seen = Vec::new();
            for part in wire.chunks(chunk) {
                f.feed(part);
                seen.push(f.data_frames);
            }
            assert_eq!(f.data_frames, 4, "chunk {chunk}");
            assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn inbound_messages_count_control_frames_and_final_fragments() {
        use tungstenite::protocol::frame::coding::Data;
        let mut wire = Vec::new();
        wire.extend(encode(Frame::ping(vec![1u8; 4])));
        wire.extend(encode(Frame::message(
            vec![1u8; 10],
            OpCode::Data(Data::Text),
            false,
        )));
        wire.extend(encode(Frame::pong(vec![2u8; 3])));
        wire.extend(encode(Frame::message(
            vec![1u8; 300],
            OpCode::Data(Data::Continue),
            true,
        )));
        wire.extend(encode(Frame::message(
            vec![1u8; 70_000],
            OpCode::Data(Data::Binary),
            true,
        )));
        for chunk in [1usize, 5, 4096, wire.len()] {
            let mut f = FrameBoundaries::default();
            wire.chunks(chunk).for_each(|part| f.feed(part));
            assert_eq!((f.messages, f.data_frames), (4, 2), "chunk {chunk}");
        }
        let mut f = FrameBoundaries::default();
        f.feed(&wire[..wire.len() - 1]);
        assert_eq!(f.messages, 3, "the last message is not complete yet");
    }

    #[test]
    fn a_partly_written_frame_is_not_counted() {
        let frame = masked(Frame::message(
            vec![1u8; 200],
            OpCode::Data(tungstenite::protocol::frame::coding::Data::Binary),
            true,
        ));
        let mut f = FrameBoundaries::default();
        f.feed(&frame[..frame.len() - 1]);
        assert_eq!(f.data_frames, 0);
        f.feed(&frame[frame.len() - 1..]);
        assert_eq!(f.data_frames, 1);
    }
}
