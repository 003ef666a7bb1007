//! Append, acknowledge, drop, restart: what comes back and with which numbers.

use super::*;
use crate::journal::format::MAX_PAYLOAD;
use crate::journal::JournalError;

#[test]
fn appended_messages_come_back_in_order_after_a_restart() {
    let dir = TempDir::new("roundtrip");
    let (mut j, r) = open(&dir.journal(), SyncPolicy::Always);
    assert!(r.messages.is_empty() && r.moved_aside.is_none());
    let now = Instant::now();
    for i in 1..=20 {
        assert_eq!(j.append(&msg(i), now).unwrap(), i);
    }
    assert_eq!(j.pending(), 20);
    drop(j);
    let (j, r) = open(&dir.journal(), SyncPolicy::Always);
    assert_eq!(seqs(&r), (1..=20).collect::<Vec<_>>());
    assert_contents(&r);
    assert_eq!((r.skipped_bytes, r.torn_tail_bytes), (0, 0));
    assert_eq!((j.pending(), j.next_seq()), (20, 21));
}

#[test]
fn text_binary_and_empty_messages_keep_their_kind() {
    let dir = TempDir::new("kinds");
    let (mut j, _) = open(&dir.journal(), SyncPolicy::Never);
    let sent = [
        Message::text(""),
        Message::binary(Vec::new()),
        Message::text("héllo ✓"),
        Message::binary(vec![0xF5, 0x8E, 0, 0xFF]), // the record marker inside a payload
    ];
    for m in &sent {
        j.append(m, Instant::now()).unwrap();
    }
    drop(j);
    let (_, r) = open(&dir.journal(), SyncPolicy::Never);
    let got: Vec<Message> = r.messages.into_iter().map(|(_, m)| m).collect();
    assert_eq!(got, sent);
}

#[test]
fn acknowledged_and_dropped_messages_do_not_come_back() {
    let dir = TempDir::new("acked");
    let (mut j, _) = open(&dir.journal(), SyncPolicy::Always);
    let now = Instant::now();
    for i in 1..=10 {
        j.append(&msg(i), now).unwrap();
    }
    j.ack_through(4, now).unwrap();
    assert_eq!(j.drop_oldest(now).unwrap(), Some(5));
    assert_eq!(j.pending(), 5);
    drop(j);
    let (mut j, r) = open(&dir.journal(), SyncPolicy::Always);
    assert_eq!(seqs(&r), vec![6, 7, 8, 9, 10]);
    assert_contents(&r);
    j.ack_through(3, now).unwrap(); // already acknowledged: nothing written
    assert_eq!(j.pending(), 5);
}

#[test]
fn sequence_numbers_keep_growing_when_everything_was_acknowledged() {
    let dir = TempDir::new("seq");
    let (mut j, _) = open(&dir.journal(), SyncPolicy::Never);
    let now = Instant::now();
    for i in 1..=3 {
        j.append(&msg(i), now).unwrap();
    }
    j.ack_through(3, now).unwrap();
    drop(j);
    let (mut j, r) = open(&dir.journal(), SyncPolicy::Never);
    assert!(r.messages.is_empty());
    assert_eq!(j.append(&msg(4), now).unwrap(), 4);
}

#[test]
fn an_ack_beyond_the_last_append_counts_as_the_last() {
    let dir = TempDir::new("overack");
    let (mut j, _) = open(&dir.journal(), SyncPolicy::Never);
    let now = Instant::now();
    for i in 1..=3 {
        j.append(&msg(i), now).unwrap();
    }
    j.ack_through(1000, now).unwrap();
    assert_eq!(j.pending(), 0);
    assert_eq!(j.append(&msg(4), now).unwrap(), 4);
    drop(j);
    let (_, r) = open(&dir.journal(), SyncPolicy::Never);
    assert_eq!(seqs(&r), vec![4]);
}

#[test]
fn drop_oldest_on_an_empty_journal_drops_nothing() {
    let dir = TempDir::new("dropempty");
    let (mut j, _) = open(&dir.journal(), SyncPolicy::Never);
    assert_eq!(j.drop_oldest(Instant::now()).unwrap(), None);
    assert_eq!(j.next_seq(), 1);
}

#[test]
fn a_message_larger_than_a_record_can_hold_is_refused() {
    let dir = TempDir::new("toolarge");
    let (mut j, _) = open(&dir.journal(), SyncPolicy::Never);
    let before = j.disk_bytes();
    let big = Message::binary(vec![0u8; MAX_PAYLOAD + 1]);
    let err = j.append(&big, Instant::now()).unwrap_err();
    assert!(matches!(err, JournalError::TooLarge { len } if len == MAX_PAYLOAD + 1));
    assert_eq!(
        err.to_string(),
        format!(
            "message of {} bytes is too large for the outbox journal",
            MAX_PAYLOAD + 1
        )
    );
    assert_eq!(j.disk_bytes(), before);
    assert_eq!(j.append(&msg(1), Instant::now()).unwrap(), 1);
}
