//! Test helpers shared by unit tests.
#![forbid(unsafe_code)]

use std::io::{self, Cursor, Read, Write};

/// An in-memory stream: reads come from `input`, writes go to `output`.
pub(crate) struct Duplex {
    pub input: Cursor<Vec<u8>>,
    pub output: Vec<u8>,
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
