//! The byte stream under tungstenite: plain TCP or TLS, metered.
//!
//! The meter is what makes liveness "any byte": it stamps the instant of the last received byte
//! and counts whole data frames the kernel has taken, which tells which sent messages were
//! really handed over when a link dies.
#![forbid(unsafe_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// A TCP stream that, while a deadline is set (during connect), never lets a read or write
/// wait past it: a server that trickles its handshake one byte at a time still times out.
pub(crate) struct Tcp {
    stream: TcpStream,
    deadline: Option<Instant>,
}

impl Tcp {
    pub fn new(stream: TcpStream, deadline: Option<Instant>) -> Tcp {
        Tcp { stream, deadline }
    }

    pub fn socket(&self) -> &TcpStream {
        &self.stream
    }

    /// Ends the connect phase: from now on the driver sets the socket timeouts.
    pub fn clear_deadline(&mut self) {
        self.deadline = None;
    }

    fn before_io(&self) -> io::Result<()> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connect deadline passed",
                ));
            }
            self.stream.set_read_timeout(Some(left))?;
            self.stream.set_write_timeout(Some(left))?;
        }
        Ok(())
    }
}

impl Read for Tcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.before_io()?;
        self.stream.read(buf)
    }
}

impl Write for Tcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.before_io()?;
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

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

    fn tcp_mut(&mut self) -> &mut Tcp {
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
    /// When the last byte was received.
    pub last_inbound: Option<Instant>,
    /// When the kernel last took outbound bytes.
    pub last_write_progress: Option<Instant>,
    frames: FrameBoundaries,
    frames_in: FrameBoundaries,
}

impl MeteredStream {
    pub fn new(inner: Transport) -> MeteredStream {
        MeteredStream {
            inner,
            bytes_in: 0,
            bytes_out: 0,
            last_inbound: None,
            last_write_progress: None,
            frames: FrameBoundaries::default(),
            frames_in: FrameBoundaries::default(),
        }
    }

    /// Complete data frames the kernel has taken since the link opened.
    pub fn data_frames_out(&self) -> u64 {
        self.frames.data_frames
    }

    /// Ends the connect phase (see [`Tcp`]): from now on the socket never blocks, and the
    /// driver waits with `poll(2)` (see `sys`) for input, writability or its next deadline.
    /// `tail` is what arrived behind the upgrade reply: the first frames.
    pub fn end_connect_phase(&mut self, tail: &[u8]) -> io::Result<()> {
        self.inner.tcp_mut().clear_deadline();
        // The HTTP upgrade went through this stream too; frames start here.
        self.frames = FrameBoundaries::default();
        self.frames_in = FrameBoundaries::default();
        self.frames_in.feed(tail);
        self.inner.tcp().set_nonblocking(true)
    }

    /// Complete messages (data or control) received since the link opened.
    pub fn messages_in(&self) -> u64 {
        self.frames_in.messages
    }

    pub fn transport(&self) -> &Transport {
        &self.inner
    }
}

impl Read for MeteredStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.bytes_in += n as u64;
            self.last_inbound = Some(Instant::now());
            self.frames_in.feed(&buf[..n]);
        }
        Ok(n)
    }
}

impl Write for MeteredStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.bytes_out += n as u64;
            self.last_write_progress = Some(Instant::now());
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
            self.header[self.have] = buf[0];
            self.have += 1;
            buf = &buf[1..];
            if self.have < 2 {
                continue;
            }
            let len7 = self.header[1] & 0x7f;
            let masked = self.header[1] & 0x80 != 0;
            let ext = match len7 {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let need = 2 + ext + if masked { 4 } else { 0 };
            if self.have < need {
                continue;
            }
            let len = match len7 {
                126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                127 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&self.header[2..10]);
                    u64::from_be_bytes(b)
                }
                n => u64::from(n),
            };
            let fin = self.header[0] & 0x80 != 0;
            let opcode = self.header[0] & 0x0f;
            self.data_final = fin && opcode <= 2;
            self.ends_message = self.data_final || opcode >= 8;
            self.have = 0;
            self.payload_left = len;
            if len == 0 {
                self.frame_done();
            }
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
