//! The outbox journal's reader (`src/journal/`, included by path as `json_writer` includes the
//! CLI's writer: the module is crate-private) with arbitrary bytes as the journal file.
//!
//! Two kinds of input: raw bytes as they are, and files built from pieces (headers of this and
//! other versions, message and ack records with valid CRCs and any sequence numbers, text
//! records that are not UTF-8, raw bytes, zero runs), then cut and bit-flipped. Raw bytes alone
//! almost never carry a valid CRC, so without the second kind the reader's logic past the
//! checksum (ordering, acks, sequence number limits) would go unfuzzed.
//!
//! Whatever the file holds, `Journal::open` must return `Ok` (content is never an error),
//! never panic, and restore only records that are in the input byte for byte, CRC and all,
//! with strictly increasing sequence numbers. The file it leaves must open again to the same
//! messages with nothing skipped, and take an append numbered after them.
//!
//! The module reaches three things through `crate::`: `Message`, `event::{Bytes, Utf8Bytes}`
//! and `sys::try_lock_exclusive`; this file provides them (the lock through std's
//! `File::try_lock`, which the fuzz crate's nightly toolchain has).
//!
//! Each fuzzing process works in `$TMPDIR/wsbeat-fuzz-journal-<pid>/`, emptied before each
//! input (libFuzzer exits without running destructors, so the directory itself stays).
#![no_main]

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsbeat::Message;

mod event {
    pub use wsbeat::{Bytes, Utf8Bytes};
}

mod sys {
    /// `flock(LOCK_EX | LOCK_NB)` through std, as `src/sys/flock.rs` does through libc.
    pub(crate) fn try_lock_exclusive(file: &std::fs::File) -> std::io::Result<bool> {
        match file.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[allow(dead_code)]
#[path = "../../src/journal/mod.rs"]
mod journal;

use journal::format::{encode, encode_ack, encode_message, header, Kind, MAX_SEQ};
use journal::{Journal, SyncPolicy};

/// A journal file to try.
#[derive(Arbitrary, Debug)]
enum Input {
    /// These bytes, as they are.
    Raw(Vec<u8>),
    /// A file made of pieces, then cut to `cut` bytes (if shorter) and with bits flipped.
    Built {
        pieces: Vec<Piece>,
        cut: Option<u16>,
        flips: Vec<u16>,
    },
}

/// Part of a built file.
#[derive(Arbitrary, Debug)]
enum Piece {
    /// This version's header.
    Header,
    /// A header with another version number (and a valid CRC).
    OtherVersion(u32),
    /// A text message record.
    Text(u64, String),
    /// A binary message record.
    Binary(u64, Vec<u8>),
    /// A text record whose payload need not be UTF-8.
    RawText(u64, Vec<u8>),
    /// An ack record.
    Ack(u64),
    /// Bytes as they are.
    Bytes(Vec<u8>),
    /// A run of zeros (a power cut's unwritten block).
    Zeros(u8),
}

impl Input {
    fn into_bytes(self) -> Vec<u8> {
        let (pieces, cut, flips) = match self {
            Input::Raw(bytes) => return bytes,
            Input::Built { pieces, cut, flips } => (pieces, cut, flips),
        };
        let mut out = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Header => out.extend_from_slice(&header()),
                Piece::OtherVersion(v) => {
                    let mut h = header();
                    h[8..12].copy_from_slice(&v.to_le_bytes());
                    let crc = crc32c(&h[..12]);
                    h[12..16].copy_from_slice(&crc.to_le_bytes());
                    out.extend_from_slice(&h);
                }
                Piece::Text(seq, s) => encode_message(&mut out, seq, &Message::text(s)),
                Piece::Binary(seq, b) => encode_message(&mut out, seq, &Message::binary(b)),
                Piece::RawText(seq, b) => encode(&mut out, Kind::Text, seq, &b),
                Piece::Ack(seq) => encode_ack(&mut out, seq),
                Piece::Bytes(b) => out.extend_from_slice(&b),
                Piece::Zeros(n) => out.resize(out.len() + usize::from(n), 0),
            }
        }
        if let Some(cut) = cut {
            out.truncate(usize::from(cut));
        }
        for bit in flips {
            let bit = usize::from(bit);
            if let Some(byte) = out.get_mut(bit / 8) {
                *byte ^= 1 << (bit % 8);
            }
        }
        out
    }
}

/// CRC-32C, for headers of other versions (the module's own is private to it).
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn work_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::temp_dir().join(format!("wsbeat-fuzz-journal-{}", std::process::id()))
    })
}

fuzz_target!(|input: Input| {
    let data = &input.into_bytes()[..];
    let dir = work_dir();
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).expect("work dir");
    let path = dir.join("outbox.wsj");
    fs::write(&path, data).expect("write input");

    let (journal, restored) = match Journal::open(&path, SyncPolicy::Never, 0, Instant::now()) {
        Ok(opened) => opened,
        Err(e) => panic!("file content made open fail: {e}"),
    };
    assert!(restored.skipped_bytes <= data.len() as u64);
    assert!(restored.torn_tail_bytes <= restored.skipped_bytes);
    let mut last = 0;
    for (seq, msg) in &restored.messages {
        assert!(*seq > last, "sequence numbers out of order");
        last = *seq;
        let mut record = Vec::new();
        encode_message(&mut record, *seq, msg);
        assert!(
            data.windows(record.len()).any(|w| w == record.as_slice()),
            "restored message {seq} is not a record of the input"
        );
    }
    if restored.moved_aside.is_some() {
        assert!(restored.messages.is_empty());
    }
    drop(journal);

    let (mut journal, again) = match Journal::open(&path, SyncPolicy::Never, 0, Instant::now()) {
        Ok(opened) => opened,
        Err(e) => panic!("the repaired file made open fail: {e}"),
    };
    assert_eq!(
        again.messages, restored.messages,
        "the repaired file restores the same"
    );
    assert_eq!(
        again.skipped_bytes, 0,
        "the repaired file has no damage left"
    );
    assert!(again.moved_aside.is_none());
    // Appends continue after the restored numbers; only a file that used up the number range
    // (a crafted record with the largest number) refuses them, with an error.
    match journal.append(&Message::text("after"), Instant::now()) {
        Ok(seq) => assert!(seq > last),
        Err(e) => assert!(journal.next_seq() > MAX_SEQ, "append failed: {e}"),
    }
});
