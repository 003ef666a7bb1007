//! The WebSocket part of a test-server connection: reading client frames
//! (unmasking, reassembling fragments, recording), echoing, answering pings,
//! and executing commands from the `TestServer` handle.

use std::sync::atomic::Ordering::SeqCst;
use std::thread;
use std::time::Instant;

use log::debug;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::Frame;

use super::conn::{close_frame, is_timeout, Cmd, ConnCtx, End, Step, Ws, CLOSE_WAIT};
use super::server::POLL;
use super::Received;

/// Largest client frame accepted.
const MAX_FRAME: usize = 64 << 20;

fn is_tungstenite_timeout(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if is_timeout(io))
}

/// What the frame loop does with what it reads.
#[derive(Clone, Copy)]
pub(super) struct Behaviour {
    pub(super) echo: bool,
    pub(super) pong: bool,
    pub(super) read: bool,
    pub(super) drop_at: Option<Instant>,
}

/// State of the frame loop.
struct FrameState {
    /// Set once we sent a Close: the deadline for the client's reply.
    closing: Option<Instant>,
    /// A fragmented data message being assembled: (is_text, bytes).
    partial: Option<(bool, Vec<u8>)>,
}

impl ConnCtx {
    /// Write one frame and flush it completely.
    pub(super) fn send(&self, ws: &mut Ws, frame: Frame) -> Step<()> {
        let mut result = ws.send(frame);
        loop {
            match result {
                Ok(()) => return Ok(()),
                // The frame stays queued in the FrameSocket: retry the flush.
                Err(e) if is_tungstenite_timeout(&e) => {
                    if !self.alive() {
                        return Err(End);
                    }
                    result = ws.flush();
                }
                Err(_) => return Err(End),
            }
        }
    }

    pub(super) fn frame_loop(
        &self,
        mut ws: Ws,
        b: Behaviour,
        closing: Option<Instant>,
    ) -> Step<()> {
        let mut st = FrameState {
            closing,
            partial: None,
        };
        loop {
            self.gate()?;
            let now = Instant::now();
            if b.drop_at.is_some_and(|at| now >= at) || st.closing.is_some_and(|at| now >= at) {
                return Err(End);
            }
            while let Ok(cmd) = self.cmds.try_recv() {
                if st.closing.is_some() {
                    continue;
                }
                match cmd {
                    Cmd::Frame(f) => self.send(&mut ws, f)?,
                    Cmd::Close(code, reason) => {
                        self.send(&mut ws, close_frame(code, &reason))?;
                        if !b.read {
                            return Err(End);
                        }
                        st.closing = Some(Instant::now() + CLOSE_WAIT);
                    }
                }
            }
            if !b.read {
                thread::sleep(POLL);
                continue;
            }
            match ws.read(Some(MAX_FRAME)) {
                Ok(Some(frame)) => self.on_frame(&mut ws, frame, b, &mut st)?,
                Ok(None) => return Err(End),
                Err(e) if is_tungstenite_timeout(&e) => {}
                Err(e) => {
                    debug!("test server: connection {} read error: {e}", self.id);
                    return Err(End);
                }
            }
        }
    }

    fn on_frame(&self, ws: &mut Ws, frame: Frame, b: Behaviour, st: &mut FrameState) -> Step<()> {
        let header = frame.header().clone();
        let mut payload = frame.into_payload().to_vec();
        if let Some(mask) = header.mask {
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= mask[i % 4];
            }
        }
        match header.opcode {
            OpCode::Control(Control::Ping) => {
                self.shared.pings.fetch_add(1, SeqCst);
                if b.pong && st.closing.is_none() {
                    self.send(ws, Frame::pong(payload))?;
                }
            }
            OpCode::Control(Control::Pong) => self.shared.record_pong(payload),
            OpCode::Control(Control::Close) => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                self.shared.record_close(code);
                if st.closing.is_none() {
                    // Client-initiated close: reply with the same code.
                    let reply = match code {
                        Some(c) => close_frame(c, ""),
                        None => Frame::close(None),
                    };
                    let _ = self.send(ws, reply);
                }
                return Err(End);
            }
            OpCode::Control(Control::Reserved(_)) => {}
            OpCode::Data(Data::Text) | OpCode::Data(Data::Binary) => {
                let text = header.opcode == OpCode::Data(Data::Text);
                if header.is_final {
                    self.deliver(ws, text, payload, b, st)?;
                } else {
                    st.partial = Some((text, payload));
                }
            }
            OpCode::Data(Data::Continue) => {
                if let Some((text, mut data)) = st.partial.take() {
                    data.extend_from_slice(&payload);
                    if header.is_final {
                        self.deliver(ws, text, data, b, st)?;
                    } else {
                        st.partial = Some((text, data));
                    }
                }
            }
            OpCode::Data(Data::Reserved(_)) => {}
        }
        Ok(())
    }

    fn deliver(
        &self,
        ws: &mut Ws,
        text: bool,
        data: Vec<u8>,
        b: Behaviour,
        st: &FrameState,
    ) -> Step<()> {
        let received = if text {
            Received::Text(String::from_utf8_lossy(&data).into_owned())
        } else {
            Received::Binary(data.clone())
        };
        self.shared.record_received(received);
        if b.echo && st.closing.is_none() {
            let opcode = OpCode::Data(if text { Data::Text } else { Data::Binary });
            self.send(ws, Frame::message(data, opcode, true))?;
        }
        Ok(())
    }
}
