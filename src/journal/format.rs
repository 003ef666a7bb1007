//! The bytes on disk: a file header, then records, each checked by its own CRC-32C.
//!
//! ```text
//! file    = header record*
//! header  = magic "wsbeat-j" (8) | version u32 LE = 1 | crc32c(bytes 0..12) u32 LE    16 bytes
//! record  = marker F5 8E (2) | kind u8 | flags u8 = 0 | len u32 LE | seq u64 LE
//!           | crc u32 LE | payload (len bytes)                              20 + len bytes
//!   kind 1 = text message, 2 = binary message: `seq` is the message's sequence number;
//!   kind 3 = ack: every message with a sequence number <= `seq` is delivered (len = 0).
//!   crc    = CRC-32C of record bytes 0..16 followed by the payload.
//! ```
//! Why each field:
//! - The marker lets a reader find the next record after a damaged one. Its first byte, 0xF5,
//!   never occurs in UTF-8, so the search cannot stop inside a text payload; neither byte is
//!   0x00 or 0xFF, the fill of a zeroed block or of erased NAND.
//! - `kind`, `flags` and `len` limits are checked before the CRC, so that scanning garbage
//!   computes a CRC for about one candidate offset in 2^30.
//! - The CRC covers the length, so a flipped length bit cannot make a record swallow the next.
//! - Explicit `seq` (rather than a position) survives compaction and skipped records, and lets
//!   the reader refuse records out of order.
//! - Little-endian throughout: the byte order of every device wsbeat targets.
#![forbid(unsafe_code)]

use super::crc::{crc32c, Crc32c};
use crate::Message;

/// The first 8 bytes of every journal file.
pub(super) const MAGIC: [u8; 8] = *b"wsbeat-j";
/// The format this code writes and reads; another number in a file means another format.
pub(super) const VERSION: u32 = 1;
/// Bytes of the file header.
pub(super) const HEADER_LEN: u64 = 16;
/// Bytes of a record before its payload.
pub(super) const RECORD_HEADER_LEN: usize = 20;
/// Starts every record.
pub(super) const MARKER: [u8; 2] = [0xF5, 0x8E];
/// The largest sequence number a record may carry. Larger ones (and 0, never written) are
/// damage: a crafted record with `u64::MAX` must not make the next number overflow.
pub(crate) const MAX_SEQ: u64 = u64::MAX >> 1;
/// The largest payload a record holds: tungstenite's default message size limit. Larger
/// lengths in a file are damage, which keeps the reader from trusting a length of gigabytes.
pub(crate) const MAX_PAYLOAD: usize = 64 << 20;

/// What a record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A text message (payload is UTF-8).
    Text,
    /// A binary message.
    Binary,
    /// Every message up to `seq` was delivered.
    Ack,
}

impl Kind {
    /// The kind a record's kind byte names, if any.
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Text),
            2 => Some(Kind::Binary),
            3 => Some(Kind::Ack),
            _ => None,
        }
    }
    /// The kind byte written for this kind.
    fn byte(self) -> u8 {
        match self {
            Kind::Text => 1,
            Kind::Binary => 2,
            Kind::Ack => 3,
        }
    }
}

/// The fixed part of a record, decoded but not yet checked against its CRC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RecordHead {
    /// What the record says.
    pub kind: Kind,
    /// Payload bytes that follow the fixed part.
    pub len: usize,
    /// The message's sequence number, or the acknowledged one.
    pub seq: u64,
    /// The stored CRC-32C.
    pub crc: u32,
}

impl RecordHead {
    /// Decodes the fixed part, or `None` when it cannot start a record (wrong marker, unknown
    /// kind or flags, a length over [`MAX_PAYLOAD`], an ack with a payload, a sequence number
    /// of 0 or over [`MAX_SEQ`]).
    pub fn parse(bytes: &[u8; RECORD_HEADER_LEN]) -> Option<RecordHead> {
        if bytes[0..2] != MARKER || bytes[3] != 0 {
            return None;
        }
        let kind = Kind::from_byte(bytes[2])?;
        let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        if len > MAX_PAYLOAD || (kind == Kind::Ack && len != 0) {
            return None;
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[8..16]);
        let seq = u64::from_le_bytes(seq);
        if seq == 0 || seq > MAX_SEQ {
            return None;
        }
        let crc = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        Some(RecordHead {
            kind,
            len,
            seq,
            crc,
        })
    }

    /// Bytes of the whole record.
    pub fn record_len(&self) -> u64 {
        (RECORD_HEADER_LEN + self.len) as u64
    }

    /// Whether `payload` (and the fixed part `head_bytes`) match the stored CRC.
    pub fn checks(&self, head_bytes: &[u8; RECORD_HEADER_LEN], payload: &[u8]) -> bool {
        let computed = Crc32c::new()
            .update(&head_bytes[..16])
            .update(payload)
            .finish();
        computed == self.crc
    }
}

/// Appends a record to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, kind: Kind, seq: u64, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&MARKER);
    out.push(kind.byte());
    out.push(0);
    // The caller checked `payload.len() <= MAX_PAYLOAD`, which fits in a u32.
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    let crc = Crc32c::new()
        .update(&out[start..start + 16])
        .update(payload)
        .finish();
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Appends the record of message `seq` to `out` (`msg.len() <= MAX_PAYLOAD`).
pub(crate) fn encode_message(out: &mut Vec<u8>, seq: u64, msg: &Message) {
    let kind = match msg {
        Message::Text(_) => Kind::Text,
        Message::Binary(_) => Kind::Binary,
    };
    encode(out, kind, seq, msg.as_bytes());
}

/// Appends an ack record ("every message up to `seq` is delivered") to `out`.
pub(crate) fn encode_ack(out: &mut Vec<u8>, seq: u64) {
    encode(out, Kind::Ack, seq, &[]);
}

/// The file header of this version.
pub(crate) fn header() -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32c(&h[..12]);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What the start of a file says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HeaderState {
    /// Empty, or a prefix of a header (creation interrupted): holds no record, start afresh.
    Empty,
    /// A header of this version.
    Current,
    /// Our magic with another version number: a format this code cannot read.
    OtherVersion(u32),
    /// Neither: damaged, or not a journal at all. Records after it may still be found.
    Unrecognised,
}

/// Classifies the first bytes of a file (up to [`HEADER_LEN`] of them).
pub(super) fn classify_header(bytes: &[u8]) -> HeaderState {
    let ours = header();
    if bytes.len() < ours.len() {
        return if bytes == &ours[..bytes.len()] {
            HeaderState::Empty
        } else {
            HeaderState::Unrecognised
        };
    }
    if bytes[..8] != MAGIC {
        return HeaderState::Unrecognised;
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let crc = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    match (version, crc == crc32c(&bytes[..12])) {
        (VERSION, true) => HeaderState::Current,
        (other, true) => HeaderState::OtherVersion(other),
        // A flipped bit (in the version too): damage, not another format. The records behind
        // it are looked for.
        (_, false) => HeaderState::Unrecognised,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed part of the record at the start of `bytes`.
    fn head(bytes: &[u8]) -> [u8; RECORD_HEADER_LEN] {
        let mut h = [0u8; RECORD_HEADER_LEN];
        h.copy_from_slice(&bytes[..RECORD_HEADER_LEN]);
        h
    }

    #[test]
    fn encoded_records_parse_back_and_check() {
        let mut out = Vec::new();
        encode_message(&mut out, 7, &Message::text("héllo"));
        let h = head(&out);
        let rec = RecordHead::parse(&h).unwrap();
        assert_eq!((rec.kind, rec.len, rec.seq), (Kind::Text, 6, 7));
        assert_eq!(rec.record_len(), out.len() as u64);
        assert!(rec.checks(&h, &out[RECORD_HEADER_LEN..]));
        let mut ack = Vec::new();
        encode_ack(&mut ack, 9);
        let rec = RecordHead::parse(&head(&ack)).unwrap();
        assert_eq!((rec.kind, rec.len, rec.seq), (Kind::Ack, 0, 9));
    }

    #[test]
    fn a_flipped_length_bit_fails_the_crc() {
        let mut out = Vec::new();
        encode_message(&mut out, 1, &Message::binary(vec![1, 2, 3, 4]));
        out[4] ^= 0x01; // len 4 -> 5
        let h = head(&out);
        let rec = RecordHead::parse(&h).unwrap();
        let end = (RECORD_HEADER_LEN + rec.len).min(out.len());
        assert!(!rec.checks(&h, &out[RECORD_HEADER_LEN..end]));
    }

    #[test]
    fn sequence_numbers_out_of_range_are_damage() {
        for seq in [0, MAX_SEQ + 1, u64::MAX] {
            let mut out = Vec::new();
            encode_message(&mut out, seq, &Message::text("x"));
            assert_eq!(RecordHead::parse(&head(&out)), None, "seq {seq}");
        }
        let mut out = Vec::new();
        encode_ack(&mut out, MAX_SEQ);
        assert!(RecordHead::parse(&head(&out)).is_some());
    }

    #[test]
    fn zeroed_and_erased_bytes_never_start_a_record() {
        assert_eq!(RecordHead::parse(&[0u8; RECORD_HEADER_LEN]), None);
        assert_eq!(RecordHead::parse(&[0xFFu8; RECORD_HEADER_LEN]), None);
    }

    #[test]
    fn headers_are_told_apart() {
        let h = header();
        assert_eq!(classify_header(&h), HeaderState::Current);
        assert_eq!(classify_header(&h[..5]), HeaderState::Empty);
        assert_eq!(classify_header(&[]), HeaderState::Empty);
        let mut v2 = h;
        v2[8] = 2;
        assert_eq!(
            classify_header(&v2),
            HeaderState::Unrecognised,
            "a flipped bit"
        );
        let crc = crc32c(&v2[..12]);
        v2[12..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(classify_header(&v2), HeaderState::OtherVersion(2));
        let mut flipped = h;
        flipped[14] ^= 0x10;
        assert_eq!(classify_header(&flipped), HeaderState::Unrecognised);
        assert_eq!(
            classify_header(b"garbage!garbage!"),
            HeaderState::Unrecognised
        );
        assert_eq!(classify_header(b"gar"), HeaderState::Unrecognised);
    }
}
