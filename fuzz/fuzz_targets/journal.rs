//! The outbox journal's reader (`src/journal/`, included by path as `json_writer` includes the
//! CLI's writer: the module is crate-private) with arbitrary bytes as the journal file.
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

use journal::{format::encode_message, Journal, SyncPolicy};

fn work_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::temp_dir().join(format!("wsbeat-fuzz-journal-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
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
    let seq = journal
        .append(&Message::text("after"), Instant::now())
        .expect("append");
    assert!(seq > last);
});
