//! Damage of every kind a crash, a power cut or worn flash leaves: start-up restores exactly
//! the good records and never fails or panics.

use std::fs;

use super::*;
use crate::journal::crc::crc32c;
use crate::journal::format::{encode, encode_message, header, Kind, MAX_SEQ};

/// A journal file built through the API, and after each operation the file length and what a
/// restart would restore at that point.
struct Reference {
    /// The file.
    bytes: Vec<u8>,
    /// After each operation: the file length and the sequence numbers a restart restores.
    points: Vec<(u64, Vec<u64>)>,
}

/// Builds the reference journal (`messages` appends, an ack through the one before every
/// `ack_every`-th) in `dir`, recording the restore points.
fn reference(dir: &TempDir, messages: u64, ack_every: Option<u64>) -> Reference {
    let path = dir.path().join("reference.wsj");
    let (mut j, _) = open(&path, SyncPolicy::Never);
    let now = Instant::now();
    let mut live = Vec::new();
    let mut points = vec![(j.disk_bytes(), live.clone())];
    for i in 1..=messages {
        live.push(j.append(&msg(i), now).unwrap());
        points.push((j.disk_bytes(), live.clone()));
        if ack_every.is_some_and(|n| i % n == 0) {
            j.ack_through(i - 1, now).unwrap();
            live.retain(|&s| s > i - 1);
            points.push((j.disk_bytes(), live.clone()));
        }
    }
    drop(j);
    let bytes = fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, points.last().unwrap().0);
    Reference { bytes, points }
}

/// Writes `bytes` as the journal file and opens it.
fn open_bytes(dir: &TempDir, bytes: &[u8]) -> (Journal, Restored) {
    fs::write(dir.journal(), bytes).unwrap();
    open(&dir.journal(), SyncPolicy::Never)
}

#[test]
fn every_prefix_of_a_journal_restores_exactly_its_complete_records() {
    let dir = TempDir::new("prefix");
    let reference = reference(&dir, 12, Some(5));
    for cut in 0..=reference.bytes.len() as u64 {
        let (mut j, r) = open_bytes(&dir, &reference.bytes[..cut as usize]);
        let (end, expected) = if cut < 16 {
            (16, Vec::new()) // a prefix of the header: a new journal
        } else {
            reference
                .points
                .iter()
                .rev()
                .find(|(end, _)| *end <= cut)
                .unwrap()
                .clone()
        };
        assert_eq!(seqs(&r), expected, "cut at {cut}");
        assert_contents(&r);
        assert!(r.moved_aside.is_none(), "cut at {cut}");
        assert_eq!(r.torn_tail_bytes, cut.saturating_sub(end), "cut at {cut}");
        assert_eq!(r.skipped_bytes, r.torn_tail_bytes, "cut at {cut}");
        assert_eq!(j.disk_bytes(), end, "cut at {cut}");
        assert_eq!(
            fs::metadata(dir.journal()).unwrap().len(),
            end,
            "truncated at {cut}"
        );
        // The repaired file takes appends, and the next start sees them after the others.
        let seq = j.append(&msg(100), Instant::now()).unwrap();
        drop(j);
        let (_, r) = open(&dir.journal(), SyncPolicy::Never);
        let mut after = expected.clone();
        after.push(seq);
        assert_eq!(seqs(&r), after, "append after cut at {cut}");
        assert_eq!(r.skipped_bytes, 0);
    }
}

#[test]
fn flipped_bits_cost_only_the_records_they_hit() {
    let dir = TempDir::new("bitflip");
    let reference = reference(&dir, 30, None);
    // Record k spans points[k].0 .. points[k + 1].0 and holds message k + 1.
    let spans: Vec<(u64, u64)> = reference
        .points
        .windows(2)
        .map(|w| (w[0].0, w[1].0))
        .collect();
    let mut rng = Rng::new(0x5eed_b17f);
    for trial in 0..300 {
        let mut bytes = reference.bytes.clone();
        let mut hit = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let k = rng.below(spans.len() as u64) as usize;
            let (start, end) = spans[k];
            let bit = rng.below((end - start) * 8);
            bytes[(start + bit / 8) as usize] ^= 1 << (bit % 8);
            if !hit.contains(&k) {
                hit.push(k);
            }
        }
        let (j, r) = open_bytes(&dir, &bytes);
        let expected: Vec<u64> = (1..=30)
            .filter(|s| !hit.contains(&(*s as usize - 1)))
            .collect();
        assert_eq!(seqs(&r), expected, "trial {trial}, records hit {hit:?}");
        assert_contents(&r);
        let lost: u64 = hit.iter().map(|&k| spans[k].1 - spans[k].0).sum();
        assert_eq!(r.skipped_bytes, lost, "trial {trial}");
        drop(j);
        // The damage was rewritten away at open: the next start finds a clean file.
        let (_, again) = open(&dir.journal(), SyncPolicy::Never);
        assert_eq!(seqs(&again), expected);
        assert_eq!(again.skipped_bytes, 0, "trial {trial}");
    }
}

#[test]
fn a_damaged_header_keeps_the_records_behind_it() {
    let dir = TempDir::new("header");
    let reference = reference(&dir, 5, None);
    for bit in 0..16 * 8 {
        let mut bytes = reference.bytes.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        let (j, r) = open_bytes(&dir, &bytes);
        assert_eq!(seqs(&r), vec![1, 2, 3, 4, 5], "header bit {bit}");
        assert_eq!(
            (r.skipped_bytes, r.moved_aside.as_ref()),
            (16, None),
            "bit {bit}"
        );
        drop(j);
        let (_, again) = open(&dir.journal(), SyncPolicy::Never);
        assert_eq!((seqs(&again).len(), again.skipped_bytes), (5, 0));
    }
}

#[test]
fn a_zero_filled_or_erased_tail_is_cut_off() {
    let dir = TempDir::new("zerotail");
    let reference = reference(&dir, 8, Some(3));
    let (end, expected) = reference.points.last().unwrap().clone();
    for fill in [0x00u8, 0xFF] {
        let mut bytes = reference.bytes.clone();
        bytes.resize(bytes.len() + 4096, fill);
        let (j, r) = open_bytes(&dir, &bytes);
        assert_eq!(seqs(&r), expected, "fill {fill:#x}");
        assert_eq!((r.torn_tail_bytes, r.skipped_bytes), (4096, 4096));
        assert_eq!(j.disk_bytes(), end);
    }
}

#[test]
fn a_zeroed_block_between_records_costs_only_the_records_it_covers() {
    let dir = TempDir::new("zerohole");
    let reference = reference(&dir, 40, None);
    let spans: Vec<(u64, u64)> = reference
        .points
        .windows(2)
        .map(|w| (w[0].0, w[1].0))
        .collect();
    let (hole_start, hole_end) = (spans[10].0 + 7, spans[14].0 + 3); // records 11..=15
    let mut bytes = reference.bytes.clone();
    bytes[hole_start as usize..hole_end as usize].fill(0);
    let (_, r) = open_bytes(&dir, &bytes);
    let expected: Vec<u64> = (1..=10).chain(16..=40).collect();
    assert_eq!(seqs(&r), expected);
    assert_eq!(r.skipped_bytes, spans[14].1 - spans[10].0);
    assert_eq!(r.torn_tail_bytes, 0);
}

#[test]
fn a_file_of_random_bytes_is_moved_aside_and_a_new_journal_started() {
    let dir = TempDir::new("random");
    let mut rng = Rng::new(42);
    for n in 1..=4u32 {
        let garbage: Vec<u8> = (0..10_000).map(|_| rng.next() as u8).collect();
        let (mut j, r) = open_bytes(&dir, &garbage);
        // Three files are kept; the fourth replaces the third.
        let aside = dir.path().join(format!("outbox.wsj.corrupt-{}", n.min(3)));
        assert_eq!(r.moved_aside.as_deref(), Some(aside.as_path()));
        assert_eq!(fs::read(&aside).unwrap(), garbage);
        assert!(r.messages.is_empty());
        assert_eq!(j.append(&msg(1), Instant::now()).unwrap(), 1);
    }
    assert!(!dir.path().join("outbox.wsj.corrupt-4").exists());
}

#[test]
fn random_bytes_after_a_good_header_are_a_torn_tail() {
    let dir = TempDir::new("randomtail");
    let mut rng = Rng::new(7);
    let mut bytes = header().to_vec();
    bytes.extend((0..5000).map(|_| rng.next() as u8));
    let (j, r) = open_bytes(&dir, &bytes);
    assert!(r.messages.is_empty() && r.moved_aside.is_none());
    assert_eq!(r.torn_tail_bytes, 5000);
    assert_eq!(j.disk_bytes(), 16);
}

#[test]
fn an_empty_file_starts_a_new_journal() {
    let dir = TempDir::new("empty");
    let (mut j, r) = open_bytes(&dir, &[]);
    assert!(r.messages.is_empty() && r.moved_aside.is_none());
    assert_eq!(r.skipped_bytes, 0);
    assert_eq!(fs::read(dir.journal()).unwrap(), header());
    j.append(&msg(1), Instant::now()).unwrap();
}

#[test]
fn another_format_version_is_moved_aside_untouched() {
    let dir = TempDir::new("version");
    let mut bytes = header().to_vec();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32c(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    encode_message(&mut bytes, 1, &msg(1));
    let (_, r) = open_bytes(&dir, &bytes);
    let aside = dir.path().join("outbox.wsj.corrupt-1");
    assert_eq!(r.moved_aside.as_deref(), Some(aside.as_path()));
    assert_eq!(fs::read(&aside).unwrap(), bytes);
    assert!(r.messages.is_empty());
}

#[test]
fn records_out_of_order_or_with_bad_text_are_refused() {
    let dir = TempDir::new("order");
    let mut bytes = header().to_vec();
    encode_message(&mut bytes, 5, &msg(5));
    let refused_start = bytes.len();
    encode_message(&mut bytes, 3, &msg(3)); // older than the one before it
    encode(&mut bytes, Kind::Text, 6, &[0xC3, 0x28]); // not UTF-8, though its CRC checks
    let refused = bytes.len() - refused_start;
    encode_message(&mut bytes, 7, &msg(7));
    let (_, r) = open_bytes(&dir, &bytes);
    assert_eq!(seqs(&r), vec![5, 7]);
    assert_contents(&r);
    assert_eq!(r.skipped_bytes, refused as u64);
}

#[test]
fn megabytes_of_near_records_are_stepped_over_quickly() {
    // Every byte a marker's first byte, then every pair a whole marker: the search tries each
    // offset, and each attempt must stay cheap (no re-read of the window per candidate).
    let dir = TempDir::new("nearmiss");
    for fill in [&[0xF5u8][..], &[0xF5, 0x8E]] {
        let mut bytes = header().to_vec();
        let body: Vec<u8> = fill.iter().copied().cycle().take(2 << 20).collect();
        bytes.extend_from_slice(&body);
        encode_message(&mut bytes, 1, &msg(1));
        let started = Instant::now();
        let (_, r) = open_bytes(&dir, &bytes);
        assert_eq!(seqs(&r), vec![1]);
        assert_eq!(r.skipped_bytes, 2 << 20);
        let took = started.elapsed();
        println!("2 MiB of {fill:x?} stepped over in {} ms", took.as_millis());
        // About 0.5 s in a debug build here; the limit only catches a blow-up (a re-read of
        // the window per candidate would take minutes), with room for a loaded CI machine.
        let limit = if under_qemu() { 120 } else { 30 };
        assert!(took < std::time::Duration::from_secs(limit), "{took:?}");
    }
}

#[test]
fn sequence_numbers_at_the_edge_of_the_range_never_panic() {
    let dir = TempDir::new("seqedge");
    let mut bytes = header().to_vec();
    let refused_start = bytes.len();
    encode(&mut bytes, Kind::Binary, u64::MAX, b"too far"); // CRC fine, number out of range
    encode(&mut bytes, Kind::Ack, 0, &[]);
    let refused = (bytes.len() - refused_start) as u64;
    encode_message(&mut bytes, 1, &msg(1));
    let (_, r) = open_bytes(&dir, &bytes);
    assert_eq!((seqs(&r), r.skipped_bytes), (vec![1], refused));
    // The largest number a record may carry: restored, and the next append is refused.
    let mut bytes = header().to_vec();
    encode_message(&mut bytes, MAX_SEQ, &msg(MAX_SEQ));
    let (mut j, r) = open_bytes(&dir, &bytes);
    assert_eq!(seqs(&r), vec![MAX_SEQ]);
    assert!(j.append(&msg(1), Instant::now()).is_err());
    j.ack_through(u64::MAX, Instant::now()).unwrap();
    assert_eq!(j.pending(), 0);
}
