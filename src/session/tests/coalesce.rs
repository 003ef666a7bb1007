//! Write coalescing on the fake clock: a lone message leaves at once, a burst leaves together
//! at the next `poll`, at the window's end, or with a ping; the backlog is one burst.
#![forbid(unsafe_code)]

use super::*;
use crate::session::Command;
use crate::Message;

fn flushed_at_once(s: &mut Session, text: &str, at: Instant) -> bool {
    match s.send(Message::text(text), None, Some(at)) {
        Ok(Some(out)) => out.flush,
        other => panic!("not written: {other:?}"),
    }
}

#[test]
fn a_lone_message_leaves_at_once_and_a_burst_waits_exactly_the_window() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| c.coalesce_window = ms(1));
    open_at(&mut s, t0);
    let heartbeat = s.poll_timeout().unwrap();
    assert!(flushed_at_once(&mut s, "lone", t0));
    assert_eq!(s.poll_timeout(), Some(heartbeat), "nothing held, no wake");
    assert!(!flushed_at_once(&mut s, "burst-1", t0 + us(10)));
    assert!(!flushed_at_once(&mut s, "burst-2", t0 + us(999)));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(1)));
    s.handle_timeout(t0 + ms(1) - us(1));
    assert!(commands(&mut s).is_empty());
    s.handle_timeout(t0 + ms(1));
    assert!(matches!(commands(&mut s).as_slice(), [Command::Flush]));
    assert_eq!(s.poll_timeout(), Some(heartbeat));
}

#[test]
fn a_message_after_the_window_or_after_a_poll_starts_a_new_burst() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| c.coalesce_window = ms(1));
    open_at(&mut s, t0);
    assert!(flushed_at_once(&mut s, "a", t0));
    // The application slept past the window without polling: not a burst.
    assert!(flushed_at_once(&mut s, "b", t0 + ms(1)));
    assert!(!flushed_at_once(&mut s, "c", t0 + ms(1) + us(1)));
    // The application polls (it is done producing): the held frame leaves now.
    s.handle_app_poll();
    assert!(matches!(commands(&mut s).as_slice(), [Command::Flush]));
    assert!(
        flushed_at_once(&mut s, "d", t0 + ms(1) + us(2)),
        "echo-style"
    );
    // A poll with nothing held asks for nothing.
    s.handle_app_poll();
    assert!(commands(&mut s).is_empty());
}

#[test]
fn a_zero_window_flushes_every_message() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| c.coalesce_window = ms(0));
    open_at(&mut s, t0);
    for i in 0..5 {
        assert!(flushed_at_once(&mut s, "m", t0 + us(i)));
    }
    assert_ne!(s.poll_timeout(), Some(t0));
}

#[test]
fn a_due_ping_takes_held_frames_along_without_a_second_flush() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| {
        c.coalesce_window = ms(1);
        c.heartbeat.ping_interval = ms(20);
    });
    open_at(&mut s, t0);
    let start = t0 + ms(20) - us(500);
    assert!(flushed_at_once(&mut s, "a", start));
    assert!(!flushed_at_once(&mut s, "b", start + us(1)));
    // The ping falls due inside the window; the held frame goes out with it.
    s.handle_timeout(t0 + ms(20));
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::Ping { seq: 0 }]
    ));
    s.handle_timeout(start + ms(1));
    assert!(commands(&mut s).is_empty(), "already flushed by the ping");
}

#[test]
fn the_backlog_leaves_as_one_burst_with_one_flush() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    for m in ["1", "2", "3"] {
        assert!(matches!(s.send(Message::text(m), None, Some(t0)), Ok(None)));
    }
    upgrade(&mut s, t0);
    let cmds = commands(&mut s);
    assert!(
        matches!(
            cmds.as_slice(),
            [
                Command::Open { .. },
                Command::Send(_),
                Command::Send(_),
                Command::Send(_),
                Command::Flush
            ]
        ),
        "{cmds:?}"
    );
    assert!(commands(&mut s).is_empty());
}

#[test]
fn after_a_poll_a_message_needs_no_clock_and_its_burst_runs_from_the_latest_input() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| c.coalesce_window = ms(1));
    open_at(&mut s, t0);
    s.handle_inbound(t0 + ms(5));
    s.handle_app_poll();
    assert!(!s.send_needs_clock(), "request/response reads no clock");
    assert!(matches!(
        s.send(Message::text("reply"), None, None),
        Ok(Some(out)) if out.flush
    ));
    assert!(s.send_needs_clock(), "the next one may join a burst");
    assert!(!flushed_at_once(&mut s, "more", t0 + ms(5) + us(900)));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(6)));
    // A zero window never needs the clock.
    let (mut z, t0) = session("ws://127.0.0.1:9/", |c| c.coalesce_window = ms(0));
    open_at(&mut z, t0);
    assert!(z.send(Message::text("a"), None, None).is_ok());
    assert!(!z.send_needs_clock());
}
