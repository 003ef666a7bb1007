//! The open and closing phases on the fake clock: stall, close timeout, heartbeat, probe,
//! the hello window.
#![forbid(unsafe_code)]

use std::io;

use tungstenite::Message as Wire;

use super::*;
use crate::session::Command;
use crate::{DisconnectReason, Error, Event, Message, ReadyState};

#[test]
fn a_stalled_write_kills_the_link_exactly_at_write_timeout_without_progress() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| c.write_timeout = ms(500));
    open_at(&mut s, t0);
    assert!(matches!(
        s.send(Message::text("a"), None, Some(t0)),
        Ok(Some(_))
    ));
    // The socket is full at t0 + 1 ms; progress at +300 ms moves the stall's start.
    s.handle_written(0, 100, Some(t0 + ms(1)));
    assert!(s.link_stalled());
    assert!(
        matches!(s.send(Message::text("b"), None, Some(t0)), Ok(None)),
        "queued while stalled"
    );
    s.handle_written(0, 200, Some(t0 + ms(300)));
    assert_eq!(s.poll_timeout(), Some(t0 + ms(800)));
    s.handle_timeout(t0 + ms(800) - us(1));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(t0 + ms(800));
    let ev = events(&mut s);
    match &ev[0] {
        Event::Disconnected {
            reason: DisconnectReason::Io(Error::Io(e)),
            ..
        } => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
        other => panic!("{other:?}"),
    }
    assert!(matches!(commands(&mut s).as_slice(), [Command::Release]));
    assert_eq!(s.buffered_messages(), 2, "both kept for the next link");
}

#[test]
fn a_close_without_reply_ends_exactly_at_close_timeout() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| c.close_timeout = ms(300));
    open_at(&mut s, t0);
    s.send(Message::text("queued"), None, Some(t0)).unwrap();
    let t1 = t0 + ms(10);
    s.close(1000, "bye", t1);
    assert_eq!(s.ready_state(t1), ReadyState::Closing);
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::SendClose { code: 1000, .. }]
    ));
    s.handle_written(1, 50, None);
    assert_eq!(s.poll_timeout(), Some(t1 + ms(300)));
    s.handle_timeout(t1 + ms(300) - us(1));
    assert!(events(&mut s).is_empty());
    s.handle_timeout(t1 + ms(300));
    assert_eq!(names(&events(&mut s)), ["disconnected", "closed"]);
    assert!(s.is_stopped());
}

#[test]
fn the_server_close_reply_proves_everything_sent_before_it() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    open_at(&mut s, t0);
    s.send(Message::text("x"), None, Some(t0)).unwrap();
    s.handle_written(1, 10, None);
    s.close(1000, "", t0);
    commands(&mut s);
    s.handle_message(Wire::Close(None), t0 + ms(2));
    match events(&mut s).as_slice() {
        [Event::Disconnected { unconfirmed, .. }, Event::Closed { code: Some(1000) }] => {
            assert_eq!(*unconfirmed, 0)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn closing_while_connecting_aborts_the_attempt_at_once() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    s.handle_timeout(t0);
    commands(&mut s);
    s.close(1000, "", t0 + ms(1));
    assert!(matches!(commands(&mut s).as_slice(), [Command::Abort]));
    assert_eq!(names(&events(&mut s)), ["connecting", "closed"]);
    assert!(s.is_stopped());
}

#[test]
fn the_heartbeat_declares_the_link_dead_at_the_bound_and_reconnects() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| {
        c.heartbeat.ping_interval = ms(100);
        c.heartbeat.pong_timeout = ms(50);
        c.heartbeat.max_missed_pongs = 2;
    });
    open_at(&mut s, t0);
    let mut pings = Vec::new();
    let dead_at = loop {
        let t = s.poll_timeout().unwrap();
        s.handle_timeout(t);
        let ev = events(&mut s);
        for c in commands(&mut s) {
            if let Command::Ping { seq } = c {
                pings.push((seq, t - t0));
            }
        }
        if names(&ev).contains(&"disconnected") {
            break t;
        }
    };
    assert_eq!(pings, [(0, ms(100)), (1, ms(150))]);
    assert_eq!(dead_at, t0 + ms(200), "ping_interval + 2 x pong_timeout");
}

#[test]
fn a_probe_ping_proves_delivery_while_the_server_keeps_talking() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| {
        c.heartbeat.ping_interval = ms(100);
    });
    open_at(&mut s, t0);
    assert!(matches!(
        s.send(Message::text("m"), None, Some(t0)),
        Ok(Some(_))
    ));
    s.handle_written(1, 20, None);
    // The server talks every 30 ms, so no liveness ping is ever due.
    let mut probe = None;
    for k in 1..=6u64 {
        let t = t0 + ms(30 * k);
        s.handle_inbound(t);
        s.handle_timeout(t);
        if let Some(Command::Ping { seq }) = commands(&mut s).into_iter().next() {
            probe = Some((seq, t - t0));
            s.handle_written(1, 30, None);
            break;
        }
    }
    assert_eq!(
        probe,
        Some((0, ms(120))),
        "first wake after one ping interval"
    );
    events(&mut s);
    let mut pong = vec![0u8; 8];
    pong.copy_from_slice(&0u64.to_be_bytes());
    s.handle_message(Wire::Pong(pong.into()), t0 + ms(121));
    assert!(names(&events(&mut s)).contains(&"pong"));
    s.close(1000, "", t0 + ms(130));
    commands(&mut s);
    s.handle_link_error(
        DisconnectReason::Io(Error::Io(io::ErrorKind::BrokenPipe.into())),
        t0 + ms(131),
    );
    assert!(
        matches!(
            events(&mut s).first(),
            Some(Event::Disconnected { unconfirmed: 0, .. })
        ),
        "the pong proved the message read"
    );
}

/// Opens a link at `t0` for a session already started (its first attempt due).
fn sent_texts(cmds: Vec<Command>) -> Vec<String> {
    cmds.into_iter()
        .filter_map(|c| match c {
            Command::Send(Wire::Text(t)) => Some(t.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_hello_goes_first_then_the_backlog_then_new_sends() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    let mut n = 0;
    s.set_hello(Box::new(move || {
        n += 1;
        vec![Message::text(format!("auth-{n}"))]
    }));
    s.send(Message::text("offline-1"), None, Some(t0)).unwrap();
    s.send(Message::text("offline-2"), None, Some(t0)).unwrap();
    upgrade(&mut s, t0);
    // A send right after Connected waits behind the backlog: it never overtakes it.
    assert!(matches!(
        s.send(Message::text("new"), None, Some(t0)),
        Ok(None)
    ));
    assert_eq!(
        sent_texts(commands(&mut s)),
        ["auth-1", "offline-1", "offline-2", "new"]
    );
}

#[test]
fn a_hello_from_the_application_holds_the_backlog_until_it_comes() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    s.set_hello_from_application(true);
    s.send(Message::text("offline"), None, Some(t0)).unwrap();
    upgrade(&mut s, t0);
    events(&mut s);
    s.handle_timeout(t0 + ms(1));
    assert!(
        sent_texts(commands(&mut s)).is_empty(),
        "waits for the hello"
    );
    s.provide_hello(vec![Message::text("hello")]);
    assert_eq!(sent_texts(commands(&mut s)), ["hello", "offline"]);
}

#[test]
fn at_least_once_requeues_unproven_messages_in_order_and_says_how_many() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| {
        c.delivery = crate::Delivery::AtLeastOnce;
        c.heartbeat.ping_interval = ms(100);
    });
    open_at(&mut s, t0);
    for m in ["1", "2"] {
        assert!(matches!(
            s.send(Message::text(m), None, Some(t0)),
            Ok(Some(_))
        ));
    }
    s.handle_written(2, 20, None);
    assert_eq!(s.buffered_messages(), 2, "kept until proven");
    // A ping after both; its pong proves them.
    s.handle_inbound(t0 + ms(100));
    s.handle_timeout(t0 + ms(100));
    let seq = match commands(&mut s).as_slice() {
        [Command::Ping { seq }] => *seq,
        other => panic!("{other:?}"),
    };
    s.handle_message(Wire::Pong(seq.to_be_bytes().to_vec().into()), t0 + ms(101));
    assert_eq!(s.buffered_messages(), 0);
    // Two more, taken by the kernel, never proven: the link dies.
    for m in ["3", "4"] {
        assert!(matches!(
            s.send(Message::text(m), None, Some(t0)),
            Ok(Some(_))
        ));
    }
    s.handle_written(4, 40, None);
    events(&mut s);
    s.handle_link_error(
        DisconnectReason::Io(Error::Io(io::ErrorKind::ConnectionReset.into())),
        t0 + ms(150),
    );
    match events(&mut s).first() {
        Some(Event::Disconnected {
            unconfirmed: 2,
            requeued: 2,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.take_unsent(),
        [Message::text("3"), Message::text("4")],
        "back in the outbox, in order"
    );
}

#[test]
fn at_most_once_requeues_nothing_the_kernel_took() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    open_at(&mut s, t0);
    s.send(Message::text("gone"), None, Some(t0)).unwrap();
    s.handle_written(1, 10, None);
    s.handle_link_error(
        DisconnectReason::Io(Error::Io(io::ErrorKind::ConnectionReset.into())),
        t0 + ms(5),
    );
    assert!(matches!(
        events(&mut s).first(),
        Some(Event::Disconnected {
            unconfirmed: 1,
            requeued: 0,
            ..
        })
    ));
    assert!(s.take_unsent().is_empty());
}

#[test]
fn proof_is_asked_for_at_once_when_kept_messages_fill_half_the_outbox() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| {
        c.delivery = crate::Delivery::AtLeastOnce;
        c.outbox.max_messages = 4;
    });
    open_at(&mut s, t0);
    s.send(Message::text("a"), None, Some(t0)).unwrap();
    s.send(Message::text("b"), None, Some(t0)).unwrap();
    s.handle_written(2, 20, None);
    s.handle_timeout(t0 + ms(1));
    let cmds = commands(&mut s);
    assert!(
        matches!(cmds.as_slice(), [Command::Ping { .. }]),
        "long before the 20 s ping interval: {cmds:?}"
    );
    s.handle_timeout(t0 + ms(2));
    assert!(commands(&mut s).is_empty(), "one probe in flight at a time");
}

#[test]
fn a_full_outbox_drops_its_oldest_waiting_messages_and_says_so_once() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |c| {
        c.outbox.max_messages = 2;
        c.outbox.when_full = crate::WhenFull::DropOldest;
    });
    for m in ["1", "2", "3", "4"] {
        s.send(Message::text(m), None, Some(t0)).unwrap();
    }
    assert!(matches!(
        events(&mut s).as_slice(),
        [Event::Dropped { messages: 2 }]
    ));
    assert_eq!(s.take_unsent(), [Message::text("3"), Message::text("4")]);
}

#[test]
fn a_frame_the_close_reply_flush_completes_is_not_sent_again() {
    let (mut s, t0) = session("ws://127.0.0.1:9/", |_| {});
    open_at(&mut s, t0);
    assert!(matches!(
        s.send(Message::text("half"), None, Some(t0)),
        Ok(Some(_))
    ));
    // The socket took half of it.
    s.handle_written(0, 5, Some(t0 + ms(1)));
    s.handle_message(Wire::Close(None), t0 + ms(2));
    assert!(
        events(&mut s).is_empty(),
        "judged once the reply's flush is reported"
    );
    assert!(matches!(commands(&mut s).as_slice(), [Command::Flush]));
    // The flush wrote the rest of the frame, then the Close reply: the server has it.
    s.handle_written(1, 20, None);
    s.handle_timeout(t0 + ms(3));
    match events(&mut s).first() {
        Some(Event::Disconnected {
            reason: DisconnectReason::ClosedByServer { .. },
            unconfirmed: 1,
            requeued: 0,
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(s.take_unsent().is_empty(), "not sent a second time");
}
