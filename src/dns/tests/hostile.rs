//! Hostile and random input: spoofed answers, random bytes, and a property test; none of it
//! may panic, resolve the name, or disturb the wait for the genuine answer.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use simple_dns::TYPE;

use super::*;
use crate::dns::LookupError;

use crate::backoff::SplitMix64;

#[test]
fn spoofed_answers_are_ignored_and_the_genuine_one_still_counts() {
    let now = Instant::now();
    let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), now, 9);
    let batch = drain(&mut lookup);
    let (a, aaaa) = split(&batch);
    let (id, _, _) = asked(a);
    let evil = |r: Reply| r.a("host.example", [203, 0, 113, 66]).build();
    let spoofs = [
        (
            server(1),
            evil(reply(id.wrapping_add(1), "host.example", TYPE::A)),
        ),
        (SocketAddr::from(([192, 0, 2, 1], 5353)), evil(answer(a))),
        (server(2), evil(answer(a))),
        (server(1), evil(reply(id, "other.example", TYPE::A))),
        (server(1), evil(reply(id, "host.example", TYPE::MX))),
        (server(1), a.payload.clone()), // a query, not a response
        (
            server(1),
            evil(answer(a)).into_iter().chain([0; 5000]).collect(),
        ),
    ];
    for (from, payload) in &spoofs {
        lookup.handle_datagram(*from, payload, now);
        assert_eq!(
            lookup.poll_timeout(),
            Some(now + Duration::from_secs(5)),
            "{from}"
        );
    }
    lookup.handle_datagram(
        server(1),
        &answer(a).a("host.example", [192, 0, 2, 1]).build(),
        now,
    );
    lookup.handle_datagram(server(1), &answer(aaaa).build(), now);
    assert_eq!(lookup.poll_result(), Some(Ok(ips(&["192.0.2.1"]))));
}

#[test]
fn random_datagrams_never_panic_nor_resolve() {
    let now = Instant::now();
    let mut rng = SplitMix64::new(0x5eed);
    let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), now, 16);
    let batch = drain(&mut lookup);
    let (a, _) = split(&batch);
    let genuine = answer(a)
        .a("host.example", [192, 0, 2, 1])
        .cname("x", "y")
        .build();
    for round in 0..20_000 {
        let mut buf = if round % 2 == 0 {
            let len = (rng.next_u64() % 600) as usize;
            (0..len).map(|_| rng.next_u64() as u8).collect()
        } else {
            genuine.clone() // then flip a few bytes past the id, which must stay a mismatch
        };
        for _ in 0..(rng.next_u64() % 4) {
            let len = buf.len();
            if len > 2 {
                buf[2 + (rng.next_u64() as usize % (len - 2))] ^= 1 << (rng.next_u64() % 8);
            }
        }
        if round % 2 == 1 {
            buf[0] ^= 0x80; // a wrong id: even a still-valid mutation must be ignored
        }
        lookup.handle_datagram(server(1), &buf, now);
    }
    assert_eq!(lookup.poll_result(), None);
    assert_eq!(lookup.poll_timeout(), Some(now + Duration::from_secs(5)));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Any bytes from any server port, interleaved with clock steps: no panic, the
        /// lookup still ends by the timeout bound, and nothing random resolves it.
        #[test]
        fn arbitrary_datagrams_and_clock_steps_never_panic(
            steps in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..300), any::<bool>(), 0u64..3_000_000),
                1..40,
            ),
        ) {
            let t0 = Instant::now();
            let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), t0, 17);
            let mut now = t0;
            for (bytes, other_port, step) in steps {
                let from = if other_port { SocketAddr::from(([192, 0, 2, 1], 1053)) } else { server(1) };
                lookup.handle_datagram(from, &bytes, now);
                now += Duration::from_micros(step);
                lookup.handle_timeout(now);
                drain(&mut lookup);
                prop_assert!(!matches!(lookup.poll_result(), Some(Ok(_))));
            }
            while let Some(at) = lookup.poll_timeout() {
                // Four tries of 5 s, each sent at most one 3 s step late.
                prop_assert!(at <= t0 + Duration::from_secs(4 * (5 + 3)));
                lookup.handle_timeout(at);
            }
            prop_assert_eq!(lookup.poll_result(), Some(Err(LookupError::Timeout)));
        }
    }
}
