//! Stdin without making it non-blocking: one `read(2)` per readiness report from `poll(2)`.
//!
//! Setting `O_NONBLOCK` would change the file description shared with the parent (a shell, a
//! pipe writer), so instead the loop reads only when poll(2) said stdin is readable, and then
//! exactly once, so the read cannot block. No `BufReader`: a buffer poll(2) cannot see would
//! hide lines that already arrived.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};

use crate::lines::{Line, LineBuffer};

/// Size of one read; a line longer than this simply takes several reads.
const READ_SIZE: usize = 16 << 10;

/// Stdin as raw bytes, split into lines.
pub struct StdinLines {
    file: File,
    lines: LineBuffer,
    buf: Box<[u8]>,
}

/// The result of one read.
pub enum Read1 {
    /// Lines completed by this read (maybe none).
    Lines(Vec<Line>),
    /// End of input; the unterminated tail, if any, is the last line.
    Eof(Vec<Line>),
}

impl StdinLines {
    /// Wraps a duplicate of fd 0 (so dropping it never closes the real stdin). `None` if
    /// stdin is not open at all, which counts as empty input.
    pub fn open(max_line: usize) -> Option<StdinLines> {
        let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
        Some(StdinLines {
            file: File::from(fd),
            lines: LineBuffer::new(max_line),
            buf: vec![0; READ_SIZE].into_boxed_slice(),
        })
    }

    /// The descriptor to give poll(2).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Reads once. Call only after poll(2) reported stdin readable (or hung up).
    pub fn read_ready(&mut self) -> Read1 {
        let mut out = Vec::new();
        match self.file.read(&mut self.buf) {
            Ok(0) => {
                self.lines.finish(&mut out);
                Read1::Eof(out)
            }
            Ok(n) => {
                self.lines.push(&self.buf[..n], &mut out);
                Read1::Lines(out)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                Read1::Lines(out)
            }
            Err(e) => {
                log::warn!("cannot read stdin ({e}): treating it as ended");
                self.lines.finish(&mut out);
                Read1::Eof(out)
            }
        }
    }
}
