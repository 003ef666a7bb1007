//! Delivery accounting: nothing lost silently, and with at-least-once nothing lost at all.
//!
//! At most once (the default): graceful server restarts lose nothing: every message arrives
//! exactly once, in order. Hard drops can lose only messages the kernel had taken after the
//! last proof of delivery (a pong), and the client reports that window as `unconfirmed` on
//! each `Disconnected` event. Nothing is ever delivered twice or out of order.
//!
//! At least once: hard drops and frozen servers lose nothing either; messages in the unproven
//! window are sent again on the next link, so those (and only as many as `requeued` says) may
//! arrive twice.

mod common;

use std::time::{Duration, Instant};

use common::{watchdog, Mode, Received, TestServer};
use wsbeat::{Client, Config, Delivery, Event, Message};

fn config(url: &str) -> Config {
    let mut c = Config::new(url)
        .ping_interval(Duration::from_millis(20))
        .pong_timeout(Duration::from_millis(500))
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .min_uptime(Duration::from_secs(60))
        .seed(11);
    c.outbox.max_messages = 200_000;
    c.outbox.max_bytes = 16 << 20;
    c
}

#[derive(Default)]
struct Tally {
    disconnects: u64,
    connects: u64,
    /// Reported window of possible loss, summed over links that ended without a close frame.
    unconfirmed_hard: u64,
    /// Messages sent again on a later link (at-least-once), summed.
    requeued: u64,
}

impl Tally {
    fn see(&mut self, event: Event) {
        match event {
            Event::Disconnected {
                unconfirmed,
                reason,
                requeued,
                ..
            } => {
                self.disconnects += 1;
                self.requeued += requeued;
                if reason.kind() == "io_error" {
                    self.unconfirmed_hard += unconfirmed;
                }
            }
            Event::Connected { .. } => self.connects += 1,
            _ => {}
        }
    }
}

/// Polls until `done` or the limit, feeding every event to `tally`.
fn pump(
    client: &mut Client,
    tally: &mut Tally,
    limit: Duration,
    done: impl Fn(&Client, &Tally) -> bool,
) {
    let end = Instant::now() + limit;
    while !done(client, tally) {
        assert!(
            Instant::now() < end,
            "timed out: {} connects, {} disconnects",
            tally.connects,
            tally.disconnects
        );
        if let Some(ev) = client.poll(Duration::from_millis(5)) {
            tally.see(ev);
        }
    }
}

fn numbers(received: &[Received]) -> Vec<u64> {
    received
        .iter()
        .map(|r| match r {
            Received::Text(t) => t.parse().expect("numbered message"),
            Received::Binary(_) => panic!("unexpected binary"),
        })
        .collect()
}

/// Sends `total` numbered messages in `cycles` batches; after each batch the server ends every
/// connection with `disrupt`. Returns the numbers the server received and the client's tally.
fn run(total: u64, cycles: u64, disrupt: impl Fn(&TestServer, u64)) -> (Vec<u64>, Tally) {
    run_with(Delivery::AtMostOnce, total, cycles, |s, c, _| disrupt(s, c))
}

/// [`run`] with a delivery mode, and a disruption that may poll the client (to wait for the
/// heartbeat's verdict on a frozen server).
fn run_with(
    delivery: Delivery,
    total: u64,
    cycles: u64,
    disrupt: impl Fn(&TestServer, u64, &mut dyn FnMut(Duration)),
) -> (Vec<u64>, Tally) {
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url()).delivery(delivery)).unwrap();
    let mut tally = Tally::default();
    let batch = total / cycles;
    let mut next = 0u64;
    for cycle in 0..cycles {
        pump(&mut client, &mut tally, Duration::from_secs(10), |_, t| {
            t.connects > cycle
        });
        while let Some(ev) = client.poll(Duration::ZERO) {
            tally.see(ev);
        }
        // A stream of about 40 ms per link: long enough for delivery probes to confirm most of
        // it, then a disruption mid-stream.
        for _ in 0..batch {
            client
                .send(Message::text(next.to_string()))
                .expect("outbox has room");
            next += 1;
            if next % 50 == 0 {
                let until = Instant::now() + Duration::from_millis(2);
                while let Some(ev) = client.poll(until.saturating_duration_since(Instant::now())) {
                    tally.see(ev);
                }
            }
        }
        disrupt(&server, cycle, &mut |span| {
            let end = Instant::now() + span;
            while let Some(ev) = client.poll(end.saturating_duration_since(Instant::now())) {
                tally.see(ev);
                if tally.disconnects > cycle {
                    return;
                }
            }
        });
        pump(&mut client, &mut tally, Duration::from_secs(10), |_, t| {
            t.disconnects > cycle
        });
    }
    // Drain: everything still queued goes out on the last link, then a clean close.
    pump(&mut client, &mut tally, Duration::from_secs(20), |c, t| {
        t.connects > cycles && c.buffered_messages() == 0
    });
    client.close();
    pump(&mut client, &mut tally, Duration::from_secs(10), |c, _| {
        c.is_stopped()
    });
    server.wait_for(Duration::from_secs(10), "close frame", |s| {
        !s.close_frames_received().is_empty()
    });
    (numbers(&server.received()), tally)
}

#[test]
fn graceful_restarts_deliver_every_message_exactly_once_in_order() {
    let _w = watchdog(Duration::from_secs(120), "graceful_delivery");
    let (got, tally) = run(20_000, 20, |s, _| s.close_all(1012, "restart"));
    assert_eq!(tally.disconnects, 21, "20 restarts and the final close");
    let expected: Vec<u64> = (0..20_000).collect();
    assert!(
        got == expected,
        "got {} messages; first mismatch at {:?}",
        got.len(),
        got.iter().zip(&expected).position(|(a, b)| a != b)
    );
}

#[test]
fn hundred_thousand_messages_through_fifty_restarts_and_fifty_kills() {
    let _w = watchdog(Duration::from_secs(300), "mixed_delivery");
    let total = 100_000u64;
    let (got, tally) = run(total, 100, |s, cycle| {
        if cycle % 2 == 0 {
            s.close_all(1012, "restart")
        } else {
            s.drop_all()
        }
    });
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "a message arrived twice or out of order"
    );
    let missing = total - got.len() as u64;
    eprintln!(
        "delivered {} of {total}; missing {missing}; unconfirmed at the 50 hard drops {} ({} disconnects in all)",
        got.len(),
        tally.unconfirmed_hard,
        tally.disconnects
    );
    assert!(
        missing <= tally.unconfirmed_hard,
        "{missing} lost but only {} reported unconfirmed",
        tally.unconfirmed_hard
    );
    // The probes keep the window small: far less than what was sent.
    assert!(
        tally.unconfirmed_hard < total / 4,
        "window of loss {} of {total}",
        tally.unconfirmed_hard
    );
}

/// Every number in `0..total` arrived; the ones that arrived twice are no more than the
/// client said it sent again; and apart from the resends at a new link, numbers only rise.
fn assert_at_least_once(got: &[u64], total: u64, tally: &Tally) {
    let mut seen = vec![false; total as usize];
    let mut duplicates = 0u64;
    for &n in got {
        let slot = &mut seen[n as usize];
        duplicates += u64::from(*slot);
        *slot = true;
    }
    let missing = seen.iter().filter(|s| !**s).count();
    let restarts = got.windows(2).filter(|w| w[1] <= w[0]).count() as u64;
    eprintln!(
        "at-least-once: {} received for {total}; missing {missing}; duplicates {duplicates}; \
         requeued {}; {} disconnects",
        got.len(),
        tally.requeued,
        tally.disconnects
    );
    assert_eq!(missing, 0, "at-least-once lost messages");
    assert!(
        duplicates <= tally.requeued,
        "{duplicates} duplicates but only {} requeued",
        tally.requeued
    );
    assert!(
        restarts <= tally.disconnects,
        "order broken {restarts} times in {} links",
        tally.disconnects
    );
}

#[test]
fn at_least_once_loses_nothing_through_fifty_restarts_and_fifty_kills() {
    let _w = watchdog(Duration::from_secs(300), "at_least_once_mixed");
    let total = 100_000u64;
    let (got, tally) = run_with(Delivery::AtLeastOnce, total, 100, |s, cycle, _| {
        if cycle % 2 == 0 {
            s.close_all(1012, "restart")
        } else {
            s.drop_all()
        }
    });
    assert_at_least_once(&got, total, &tally);
}

#[test]
fn at_least_once_loses_nothing_when_the_server_freezes_mid_stream_and_is_killed() {
    let _w = watchdog(Duration::from_secs(120), "at_least_once_frozen");
    let total = 10_000u64;
    let (got, tally) = run_with(Delivery::AtLeastOnce, total, 10, |s, _, poll| {
        // The server stops reading: what the kernel took sits in its socket, unread. The
        // heartbeat declares the link dead; then the server is killed, and those bytes with
        // it: "sent but never received", unless they are sent again.
        s.freeze();
        poll(Duration::from_secs(5));
        s.drop_all();
        s.unfreeze();
    });
    assert_at_least_once(&got, total, &tally);
}

#[test]
fn a_coalesced_burst_that_dies_mid_write_counts_only_what_the_kernel_took() {
    let _w = watchdog(Duration::from_secs(60), "burst_dies_mid_write");
    let server = TestServer::start(Mode::Echo);
    let mut client = Client::new(config(&server.url())).unwrap();
    let mut tally = Tally::default();
    pump(&mut client, &mut tally, Duration::from_secs(10), |_, t| {
        t.connects > 0
    });
    // The server stops reading; the burst (back to back, so coalesced into large writes)
    // fills the kernel's buffers on both sides and then waits in the outbox.
    server.freeze();
    let total = 4_000u64;
    let padding = "x".repeat(4_000);
    for n in 0..total {
        client
            .send(Message::text(format!("{n} {padding}")))
            .expect("outbox has room");
    }
    let took = client.stats().messages_out;
    assert!(
        client.buffered_messages() > 0 && took > 0,
        "the socket filled mid-burst: took {took}"
    );
    assert_eq!(
        took + client.buffered_messages() as u64,
        total,
        "every message is either taken by the kernel or still buffered"
    );
    // The link dies with a frame half written, most likely: what the kernel took is gone
    // with the server, the rest goes out on the next link.
    server.drop_all();
    server.unfreeze();
    pump(&mut client, &mut tally, Duration::from_secs(10), |_, t| {
        t.disconnects > 0
    });
    let taken_on_first_link = client.stats().messages_out;
    pump(&mut client, &mut tally, Duration::from_secs(20), |c, t| {
        t.connects > 1 && c.buffered_messages() == 0
    });
    client.close();
    pump(&mut client, &mut tally, Duration::from_secs(10), |c, _| {
        c.is_stopped()
    });
    server.wait_for(Duration::from_secs(10), "close frame", |s| {
        !s.close_frames_received().is_empty()
    });
    let got: Vec<u64> = server
        .received()
        .iter()
        .map(|r| match r {
            Received::Text(t) => t.split(' ').next().unwrap().parse().unwrap(),
            Received::Binary(_) => panic!("unexpected binary"),
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    assert!(got.iter().all(|n| seen.insert(*n)), "nothing sent twice");
    // Counted as taken only what the kernel took: every message from the first one not
    // counted on arrives (the half-written one included), in order, on the next link.
    let resent: Vec<u64> = got
        .iter()
        .copied()
        .filter(|n| *n >= taken_on_first_link)
        .collect();
    assert_eq!(
        resent,
        (taken_on_first_link..total).collect::<Vec<_>>(),
        "first link took {taken_on_first_link}"
    );
    let lost = taken_on_first_link - (got.len() as u64 - resent.len() as u64);
    assert!(
        lost <= tally.unconfirmed_hard,
        "lost {lost}, reported unconfirmed {}",
        tally.unconfirmed_hard
    );
    eprintln!(
        "burst of {total}: kernel took {took} before the kill; lost {lost} (reported {}), resent {}",
        tally.unconfirmed_hard,
        resent.len()
    );
}
