//! Reading a journal file back at start-up: every record whose CRC checks, in file order,
//! stepping over anything else.
//!
//! A damaged record is stepped over by searching for the next offset where a whole record
//! checks (marker, sane fixed part, CRC), so one flipped bit costs one record, not the rest of
//! the file. What follows the last good record (a record torn by a crash, zeros left by a power
//! cut, garbage) is the torn tail, which the caller truncates.
//!
//! The file is read through a window of [`CHUNK`] bytes, never whole: a file of unexpected size
//! costs time, not memory. Only restored messages are kept.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::format::{Kind, RecordHead, MARKER, RECORD_HEADER_LEN};
use crate::event::{Bytes, Utf8Bytes};
use crate::Message;

/// Bytes read from the file at a time.
const CHUNK: usize = 64 << 10;

/// Where an unacknowledged message's record lies in the current file (for compaction copies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    /// The message's sequence number.
    pub seq: u64,
    /// Offset of the record in the file.
    pub offset: u64,
    /// Bytes of the whole record.
    pub len: u64,
}

/// What a scan found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Unacknowledged messages, in file (and sequence) order.
    pub live: VecDeque<(Entry, Message)>,
    /// The highest sequence number acknowledged by an ack record.
    pub acked: u64,
    /// The highest message sequence number seen (restored or acknowledged).
    pub last_seq: u64,
    /// End of the last good record: where appends continue.
    pub end: u64,
    /// Records whose CRC checked.
    pub records: u64,
    /// Bytes not restored as records: damage, records refused (out of order, text that is
    /// not UTF-8) and the torn tail.
    pub skipped: u64,
    /// Of `skipped`, the bytes after the last good record.
    pub torn_tail: u64,
}

/// Reads `file` (of `file_len` bytes) from offset `start`.
pub(super) fn scan(file: &File, file_len: u64, start: u64) -> io::Result<Scan> {
    let mut w = Window {
        file,
        file_len,
        start: 0,
        buf: Vec::new(),
    };
    let mut s = Scan {
        end: start,
        ..Scan::default()
    };
    let mut pos = start;
    while pos < file_len {
        if let Some((head, payload)) = w.record_at(pos)? {
            s.records += 1;
            apply(&mut s, pos, head, payload);
            pos += head.record_len();
            s.end = pos;
            continue;
        }
        match w.next_record(pos + 1)? {
            Some(next) => {
                s.skipped += next - pos;
                pos = next;
            }
            None => {
                s.torn_tail = file_len - pos;
                s.skipped += s.torn_tail;
                break;
            }
        }
    }
    Ok(s)
}

/// Applies one good record at `pos` to the scan state.
fn apply(s: &mut Scan, pos: u64, head: RecordHead, payload: &[u8]) {
    let len = head.record_len();
    let kind = match head.kind {
        Kind::Ack => {
            s.acked = s.acked.max(head.seq);
            while s.live.front().is_some_and(|(e, _)| e.seq <= s.acked) {
                s.live.pop_front();
            }
            return;
        }
        kind => kind,
    };
    if head.seq <= s.last_seq {
        // Sequence numbers only grow in a file this code wrote: restoring this one would
        // reorder or repeat messages.
        s.skipped += len;
        return;
    }
    s.last_seq = head.seq;
    if head.seq <= s.acked {
        return;
    }
    let bytes = Bytes::copy_from_slice(payload);
    let msg = match kind {
        Kind::Binary => Message::Binary(bytes),
        _ => match Utf8Bytes::try_from(bytes) {
            Ok(text) => Message::Text(text),
            Err(_) => {
                s.skipped += len;
                return;
            }
        },
    };
    let entry = Entry {
        seq: head.seq,
        offset: pos,
        len,
    };
    s.live.push_back((entry, msg));
}

/// A window onto the file: the bytes from `start`, refilled on demand.
struct Window<'f> {
    /// The file being read.
    file: &'f File,
    /// Its length when the scan started.
    file_len: u64,
    /// The file offset of `buf[0]`.
    start: u64,
    /// Bytes of the file from `start`.
    buf: Vec<u8>,
}

impl Window<'_> {
    /// At least one and up to `max` bytes from `pos` (what the window holds from there, or a
    /// refill when it holds nothing), empty past the end of the file. Serving from the window
    /// matters: the search after a damaged record asks for the bytes after each candidate.
    fn get_upto(&mut self, pos: u64, max: usize) -> io::Result<&[u8]> {
        if pos >= self.file_len {
            return Ok(&[]);
        }
        let window_end = self.start + self.buf.len() as u64;
        if pos < self.start || pos >= window_end {
            let n = (self.file_len - pos).min(CHUNK as u64) as usize;
            self.get(pos, n)?;
        }
        let off = (pos - self.start) as usize;
        let n = (self.buf.len() - off).min(max);
        Ok(&self.buf[off..off + n])
    }

    /// Exactly `n` bytes from `pos`, which the caller has checked lie within the file.
    fn get(&mut self, pos: u64, n: usize) -> io::Result<&[u8]> {
        let end = pos + n as u64;
        if pos < self.start || end > self.start + self.buf.len() as u64 {
            let want = (n.max(CHUNK) as u64).min(self.file_len - pos) as usize;
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.start = pos;
        }
        let off = (pos - self.start) as usize;
        Ok(&self.buf[off..off + n])
    }

    /// The record at `pos` if one starts there, lies wholly within the file and checks.
    fn record_at(&mut self, pos: u64) -> io::Result<Option<(RecordHead, &[u8])>> {
        let room = self.file_len.saturating_sub(pos);
        if room < RECORD_HEADER_LEN as u64 {
            return Ok(None);
        }
        let mut fixed = [0u8; RECORD_HEADER_LEN];
        fixed.copy_from_slice(self.get(pos, RECORD_HEADER_LEN)?);
        let Some(head) = RecordHead::parse(&fixed) else {
            return Ok(None);
        };
        if head.record_len() > room {
            return Ok(None);
        }
        let payload = &self.get(pos, head.record_len() as usize)?[RECORD_HEADER_LEN..];
        Ok(head.checks(&fixed, payload).then_some((head, payload)))
    }

    /// The offset of the first good record at or after `from`, if any.
    fn next_record(&mut self, mut from: u64) -> io::Result<Option<u64>> {
        loop {
            let chunk = self.get_upto(from, CHUNK)?;
            if chunk.is_empty() {
                return Ok(None);
            }
            let Some(i) = chunk.iter().position(|&b| b == MARKER[0]) else {
                from += chunk.len() as u64;
                continue;
            };
            let candidate = from + i as u64;
            if self.record_at(candidate)?.is_some() {
                return Ok(Some(candidate));
            }
            from = candidate + 1;
        }
    }
}
