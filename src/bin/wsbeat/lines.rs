//! Splits raw stdin bytes into lines, keeping the partial tail between reads.
#![forbid(unsafe_code)]

/// What became of one complete input line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line to send, without its `\n` (or `\r\n`).
    Text(String),
    /// Not valid UTF-8: a text message cannot carry it.
    NotUtf8 { number: u64 },
    /// Longer than the limit: dropped as it arrived, so an endless line cannot eat the RAM.
    TooLong { number: u64, len: usize },
}

/// Accumulates stdin bytes and hands out complete lines.
pub struct LineBuffer {
    partial: Vec<u8>,
    /// Length of an over-long line being skipped, once it passed `max_len`.
    skipping: Option<usize>,
    max_len: usize,
    number: u64,
}

impl LineBuffer {
    /// A buffer that refuses lines longer than `max_len` bytes (the largest message the
    /// client may send).
    pub fn new(max_len: usize) -> LineBuffer {
        LineBuffer {
            partial: Vec::new(),
            skipping: None,
            max_len,
            number: 0,
        }
    }

    /// Feeds `bytes` and appends every line they complete to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Line>) {
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let (chunk, rest) = match newline {
                Some(i) => (&bytes[..i], &bytes[i + 1..]),
                None => (bytes, &[][..]),
            };
            self.take_chunk(chunk);
            if newline.is_some() {
                out.push(self.end_line());
            }
            bytes = rest;
        }
    }

    /// End of input: the unterminated tail, if any, is a line too.
    pub fn finish(&mut self, out: &mut Vec<Line>) {
        if !self.partial.is_empty() || self.skipping.is_some() {
            out.push(self.end_line());
        }
    }

    fn take_chunk(&mut self, chunk: &[u8]) {
        if let Some(len) = &mut self.skipping {
            *len += chunk.len();
            return;
        }
        // One byte of slack for a `\r` that `end_line` strips.
        if self.partial.len() + chunk.len() > self.max_len.saturating_add(1) {
            self.skipping = Some(self.partial.len() + chunk.len());
            self.partial = Vec::new();
            return;
        }
        self.partial.extend_from_slice(chunk);
    }

    fn end_line(&mut self) -> Line {
        self.number += 1;
        let number = self.number;
        if let Some(len) = self.skipping.take() {
            return Line::TooLong { number, len };
        }
        let mut bytes = std::mem::take(&mut self.partial);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.len() > self.max_len {
            return Line::TooLong {
                number,
                len: bytes.len(),
            };
        }
        match String::from_utf8(bytes) {
            Ok(s) => Line::Text(s),
            Err(_) => Line::NotUtf8 { number },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Line {
        Line::Text(s.to_string())
    }

    #[test]
    fn splits_lines_across_reads_and_keeps_the_tail() {
        let mut buf = LineBuffer::new(100);
        let mut out = Vec::new();
        buf.push(b"one\ntw", &mut out);
        assert_eq!(out, vec![text("one")]);
        buf.push(b"o\r\n\nthr", &mut out);
        assert_eq!(out, vec![text("one"), text("two"), text("")]);
        buf.push(b"ee", &mut out);
        buf.finish(&mut out);
        assert_eq!(out.last(), Some(&text("three")));
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn finish_without_tail_adds_nothing() {
        let mut buf = LineBuffer::new(100);
        let mut out = Vec::new();
        buf.push(b"a\n", &mut out);
        buf.finish(&mut out);
        assert_eq!(out, vec![text("a")]);
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_line_number() {
        let mut buf = LineBuffer::new(100);
        let mut out = Vec::new();
        buf.push(b"ok\n\xff\xfe\nok\n", &mut out);
        assert_eq!(
            out,
            vec![text("ok"), Line::NotUtf8 { number: 2 }, text("ok")]
        );
    }

    #[test]
    fn overlong_line_is_skipped_without_buffering_it() {
        let mut buf = LineBuffer::new(4);
        let mut out = Vec::new();
        buf.push(b"abcd\nabc", &mut out);
        buf.push(&[b'x'; 10_000], &mut out);
        assert!(buf.partial.capacity() < 100);
        buf.push(b"\nend\n", &mut out);
        assert_eq!(
            out,
            vec![
                text("abcd"),
                Line::TooLong {
                    number: 2,
                    len: 10_003
                },
                text("end"),
            ]
        );
    }

    #[test]
    fn carriage_return_does_not_count_against_the_limit() {
        let mut buf = LineBuffer::new(4);
        let mut out = Vec::new();
        buf.push(b"abcd\r\nabcde\r\n", &mut out);
        assert_eq!(out[0], text("abcd"));
        assert!(matches!(out[1], Line::TooLong { number: 2, .. }));
    }
}
