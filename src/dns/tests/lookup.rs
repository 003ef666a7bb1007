//! The lookup's behaviour on a fake clock: answers, retries, search list, failures, CNAME
//! chains, the resolution delay, truncation, hosts and rotate.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use simple_dns::{RCODE, TYPE};

use super::*;
use crate::dns::LookupError;

#[test]
fn a_and_aaaa_answers_give_ipv6_first_then_ipv4_in_answer_order() {
    let t0 = Instant::now();
    let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), t0, 1);
    let batch = drain(&mut lookup);
    assert_eq!(batch.len(), 2);
    assert!(batch.iter().all(|d| d.to == server(1)));
    let (a, aaaa) = split(&batch);
    assert_ne!(asked(a).0, asked(aaaa).0, "fresh ids per query");
    let t1 = t0 + Duration::from_micros(700);
    let v4 = answer(a)
        .a("host.example", [192, 0, 2, 20])
        .a("host.example", [192, 0, 2, 10]);
    lookup.handle_datagram(server(1), &v4.build(), t1);
    assert_eq!(lookup.poll_result(), None, "waits for the other family");
    let v6 = answer(aaaa)
        .aaaa("HOST.example", "2001:db8::2")
        .aaaa("host.example", "2001:db8::1");
    lookup.handle_datagram(server(1), &v6.build(), t1 + Duration::from_micros(5));
    let want = ips(&["2001:db8::2", "2001:db8::1", "192.0.2.20", "192.0.2.10"]);
    assert_eq!(lookup.poll_result(), Some(Ok(want.clone())));
    assert_eq!(
        lookup.poll_result(),
        Some(Ok(want)),
        "the same on every call"
    );
    assert_eq!(
        (lookup.poll_timeout(), lookup.poll_transmit()),
        (None, None)
    );
}

#[test]
fn an_unanswered_try_goes_to_the_second_server_after_timeout() {
    let t0 = Instant::now();
    let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), t0, 2);
    assert_eq!(drain(&mut lookup).len(), 2);
    let t = Duration::from_secs(5);
    assert_eq!(lookup.poll_timeout(), Some(t0 + t));
    lookup.handle_timeout(t0 + t - Duration::from_micros(1));
    assert!(drain(&mut lookup).is_empty(), "not a microsecond early");
    lookup.handle_timeout(t0 + t);
    let retry = drain(&mut lookup);
    assert_eq!(retry.len(), 2);
    assert!(retry.iter().all(|d| d.to == server(2)));
    assert_eq!(lookup.poll_timeout(), Some(t0 + 2 * t));
}

#[test]
fn exhausted_attempts_time_out_at_exactly_attempts_times_servers_times_timeout() {
    let text = "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n\
                options timeout:3 attempts:2\n";
    let t0 = Instant::now();
    let mut lookup = Lookup::new("host.example", &config(text), t0, 3);
    let mut sent = Vec::new();
    let mut now = t0;
    loop {
        for d in drain(&mut lookup) {
            sent.push((now - t0, d.to));
        }
        match lookup.poll_timeout() {
            Some(at) => now = at,
            None => break,
        }
        lookup.handle_timeout(now);
    }
    assert_eq!(now - t0, Duration::from_secs(2 * 3 * 3));
    assert_eq!(lookup.poll_result(), Some(Err(LookupError::Timeout)));
    let order = [1, 2, 3, 1, 2, 3];
    let want: Vec<_> = (0..12)
        .map(|i| {
            (
                Duration::from_secs(3 * (i / 2) as u64),
                server(order[i / 2]),
            )
        })
        .collect();
    assert_eq!(sent, want);
    assert_eq!(
        LookupError::Timeout.to_string(),
        "no answer from the name servers"
    );
}

/// The names a lookup asks for when every one is answered NXDOMAIN, in order; and the end.
fn names_tried(name: &str, text: &str) -> (Vec<String>, Option<Result<Vec<IpAddr>, LookupError>>) {
    let now = Instant::now();
    let mut lookup = Lookup::new(name, &config(text), now, 4);
    let mut names = Vec::new();
    while let batch @ [_, ..] = drain(&mut lookup).as_slice() {
        let (a, aaaa) = split(batch);
        names.push(asked(a).1);
        for d in [a, aaaa] {
            lookup.handle_datagram(d.to, &answer(d).rcode(RCODE::NameError).build(), now);
        }
    }
    (names, lookup.poll_result())
}

#[test]
fn search_list_and_ndots_order_the_candidates_like_glibc() {
    let search = "nameserver 192.0.2.1\nsearch a.example b.example\n";
    let (names, _) = names_tried("api", search);
    assert_eq!(names, ["api.a.example", "api.b.example", "api"]);
    let (names, _) = names_tried("api.prod", search);
    assert_eq!(
        names,
        ["api.prod", "api.prod.a.example", "api.prod.b.example"]
    );
    let (names, _) = names_tried("api.prod", &format!("{search}options ndots:2\n"));
    assert_eq!(
        names,
        ["api.prod.a.example", "api.prod.b.example", "api.prod"]
    );
    let (names, _) = names_tried("api.prod.", search);
    assert_eq!(
        names,
        ["api.prod"],
        "a trailing dot makes the name absolute"
    );
}

#[test]
fn nxdomain_moves_to_the_next_candidate_and_all_nxdomain_is_not_found() {
    let (names, result) = names_tried("api", "nameserver 192.0.2.1\nsearch a.example\n");
    assert_eq!(names.len(), 2);
    let error = result.unwrap().unwrap_err();
    assert_eq!(error, LookupError::NotFound { name: "api".into() });
    assert_eq!(error.to_string(), "name not found");

    // NXDOMAIN for one type and no data for the other also moves on; the name exists, though.
    let now = Instant::now();
    let text = "nameserver 192.0.2.1\nsearch a.example\n";
    let mut lookup = Lookup::new("api", &config(text), now, 5);
    let batch = drain(&mut lookup);
    let (a, aaaa) = split(&batch);
    lookup.handle_datagram(a.to, &answer(a).rcode(RCODE::NameError).build(), now);
    lookup.handle_datagram(aaaa.to, &answer(aaaa).build(), now);
    let batch = drain(&mut lookup);
    let (a, aaaa) = split(&batch);
    assert_eq!(asked(a).1, "api");
    lookup.handle_datagram(a.to, &answer(a).a("api", [192, 0, 2, 80]).build(), now);
    lookup.handle_datagram(aaaa.to, &answer(aaaa).build(), now);
    assert_eq!(lookup.poll_result(), Some(Ok(ips(&["192.0.2.80"]))));
}

#[test]
fn no_records_for_either_type_is_no_address_after_the_last_candidate() {
    let now = Instant::now();
    let text = "nameserver 192.0.2.1\nsearch a.example\n";
    let mut lookup = Lookup::new("api", &config(text), now, 6);
    for _ in 0..2 {
        for d in drain(&mut lookup) {
            lookup.handle_datagram(d.to, &answer(&d).build(), now);
        }
    }
    let error = lookup.poll_result().unwrap().unwrap_err();
    assert_eq!(error, LookupError::NoAddress { name: "api".into() });
    assert_eq!(error.to_string(), "name has no address");
}

#[test]
fn servfail_sends_that_query_to_the_next_server_at_once() {
    let t0 = Instant::now();
    let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), t0, 7);
    let batch = drain(&mut lookup);
    let (a, _) = split(&batch);
    let t1 = t0 + Duration::from_micros(900);
    lookup.handle_datagram(
        server(1),
        &answer(a).rcode(RCODE::ServerFailure).build(),
        t1,
    );
    let retry = drain(&mut lookup);
    assert_eq!(retry.len(), 1, "only the failed query moves");
    assert_eq!((retry[0].to, asked(&retry[0]).2), (server(2), TYPE::A));
    assert_ne!(asked(&retry[0]).0, asked(a).0, "a fresh id for the new try");
    assert_eq!(
        lookup.poll_timeout(),
        Some(t0 + Duration::from_secs(5)),
        "AAAA still waits"
    );
    let v4 = answer(&retry[0]).a("host.example", [192, 0, 2, 9]).build();
    lookup.handle_datagram(server(2), &v4, t1);
    assert_eq!(lookup.poll_timeout(), Some(t1 + Duration::from_millis(50)));
}

#[test]
fn refused_by_every_server_is_a_server_failure_without_waiting() {
    let now = Instant::now();
    let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), now, 8);
    let mut sent = 0;
    while let Some(d) = lookup.poll_transmit() {
        sent += 1;
        lookup.handle_datagram(d.to, &answer(&d).rcode(RCODE::Refused).build(), now);
    }
    assert_eq!(
        sent,
        2 * 2 * 2,
        "attempts × servers tries for each of A and AAAA"
    );
    let error = lookup.poll_result().unwrap().unwrap_err();
    assert_eq!(error, LookupError::ServerFailure { rcode: 5 });
    assert_eq!(error.to_string(), "name server failure (REFUSED)");
}

#[test]
fn a_late_answer_from_the_previous_server_is_still_accepted() {
    let t0 = Instant::now();
    let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), t0, 10);
    let first = drain(&mut lookup);
    let t1 = t0 + Duration::from_secs(5);
    lookup.handle_timeout(t1);
    assert_eq!(drain(&mut lookup).len(), 2);
    for d in &first {
        let reply = answer(d)
            .a("host.example", [192, 0, 2, 1])
            .aaaa("host.example", "2001:db8::1");
        lookup.handle_datagram(server(1), &reply.build(), t1 + Duration::from_micros(3));
    }
    assert_eq!(
        lookup.poll_result(),
        Some(Ok(ips(&["2001:db8::1", "192.0.2.1"])))
    );
}

#[test]
fn only_addresses_on_the_cname_chain_count() {
    let now = Instant::now();
    let mut lookup = Lookup::new("www.example", &config(TWO_SERVERS), now, 11);
    for d in drain(&mut lookup) {
        let reply = answer(&d)
            .cname("www.example", "edge.CDN.example")
            .a("edge.cdn.example", [192, 0, 2, 1])
            .a("attacker.example", [203, 0, 113, 1])
            .aaaa("cdn.example", "2001:db8::bad")
            .aaaa("Edge.cdn.example", "2001:db8::1");
        lookup.handle_datagram(d.to, &reply.build(), now);
    }
    assert_eq!(
        lookup.poll_result(),
        Some(Ok(ips(&["2001:db8::1", "192.0.2.1"])))
    );
}

#[test]
fn one_family_answered_finishes_50_ms_later_without_the_other() {
    let t0 = Instant::now();
    let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), t0, 12);
    let batch = drain(&mut lookup);
    let (a, aaaa) = split(&batch);
    let t1 = t0 + Duration::from_micros(12_345);
    lookup.handle_datagram(
        server(1),
        &answer(a).a("host.example", [192, 0, 2, 4]).build(),
        t1,
    );
    let at = t1 + Duration::from_millis(50);
    assert_eq!(lookup.poll_timeout(), Some(at));
    lookup.handle_timeout(at - Duration::from_micros(1));
    assert_eq!(lookup.poll_result(), None);
    lookup.handle_timeout(at);
    assert_eq!(lookup.poll_result(), Some(Ok(ips(&["192.0.2.4"]))));
    let late = answer(aaaa).aaaa("host.example", "2001:db8::4").build();
    lookup.handle_datagram(server(1), &late, at);
    assert_eq!(
        lookup.poll_result(),
        Some(Ok(ips(&["192.0.2.4"]))),
        "too late"
    );
}

#[test]
fn the_other_family_failing_finishes_at_once_with_what_there_is() {
    let now = Instant::now();
    let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), now, 13);
    let batch = drain(&mut lookup);
    let (a, aaaa) = split(&batch);
    lookup.handle_datagram(
        server(1),
        &answer(aaaa).aaaa("host.example", "2001:db8::5").build(),
        now,
    );
    lookup.handle_datagram(server(1), &answer(a).build(), now);
    assert_eq!(lookup.poll_result(), Some(Ok(ips(&["2001:db8::5"]))));
}

#[test]
fn a_truncated_answer_is_used_if_it_has_addresses_else_the_next_server_is_asked() {
    let now = Instant::now();
    let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), now, 14);
    let batch = drain(&mut lookup);
    let (a, aaaa) = split(&batch);
    let cut = answer(a)
        .a("host.example", [192, 0, 2, 6])
        .truncated()
        .build();
    lookup.handle_datagram(server(1), &cut, now);
    lookup.handle_datagram(server(1), &answer(aaaa).truncated().build(), now);
    let retry = drain(&mut lookup);
    assert_eq!(retry.len(), 1);
    assert_eq!((retry[0].to, asked(&retry[0]).2), (server(2), TYPE::AAAA));
    lookup.handle_datagram(server(2), &answer(&retry[0]).build(), now);
    assert_eq!(lookup.poll_result(), Some(Ok(ips(&["192.0.2.6"]))));
    let failure = LookupError::ServerFailure { rcode: 0 };
    assert_eq!(
        failure.to_string(),
        "name server failure (truncated answer)"
    );
}

#[test]
fn hosts_entries_and_ip_literals_resolve_without_a_datagram() {
    let now = Instant::now();
    let conf = SystemConfig::parse(TWO_SERVERS, "192.0.2.50 gw\n2001:db8::50 gw\n");
    let mut lookup = Lookup::new("GW.", &conf, now, 15);
    assert_eq!(
        lookup.poll_result(),
        Some(Ok(ips(&["2001:db8::50", "192.0.2.50"])))
    );
    assert_eq!(
        (lookup.poll_transmit(), lookup.poll_timeout()),
        (None, None)
    );
    let mut lookup = Lookup::new("::1", &conf, now, 15);
    assert_eq!(lookup.poll_result(), Some(Ok(ips(&["::1"]))));
    let mut lookup = Lookup::new("a..b", &conf, now, 15);
    assert!(matches!(
        lookup.poll_result(),
        Some(Err(LookupError::NotFound { .. }))
    ));
}

#[test]
fn rotate_starts_at_a_server_the_seed_picks() {
    let text = "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n";
    let first = |text: &str, seed| {
        let mut lookup = Lookup::new("host.example", &config(text), Instant::now(), seed);
        lookup.poll_transmit().unwrap().to
    };
    assert!((0..20).all(|seed| first(text, seed) == server(1)));
    let rotated = format!("{text}options rotate\n");
    let mut seen: Vec<_> = (0..20).map(|seed| first(&rotated, seed)).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, [server(1), server(2), server(3)]);
}

#[test]
fn no_name_server_at_all_fails_at_once() {
    let mut conf = config(TWO_SERVERS);
    conf.nameservers.clear();
    let mut lookup = Lookup::new("host.example", &conf, Instant::now(), 19);
    assert_eq!(lookup.poll_result(), Some(Err(LookupError::Timeout)));
    assert_eq!(
        (lookup.poll_transmit(), lookup.poll_timeout()),
        (None, None)
    );
}

#[test]
fn an_ipv4_server_seen_through_a_dual_stack_socket_is_the_same_server() {
    let now = Instant::now();
    let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), now, 20);
    let mapped: SocketAddr = "[::ffff:192.0.2.1]:53".parse().unwrap();
    for d in drain(&mut lookup) {
        let reply = answer(&d).a("host.example", [192, 0, 2, 3]);
        lookup.handle_datagram(mapped, &reply.build(), now);
    }
    assert_eq!(lookup.poll_result(), Some(Ok(ips(&["192.0.2.3"]))));
}

#[test]
fn formerr_asks_the_same_server_again_without_edns() {
    let has_opt = |d: &Datagram| {
        simple_dns::Packet::parse(&d.payload)
            .unwrap()
            .opt()
            .is_some()
    };
    let now = Instant::now();
    let mut lookup = Lookup::new("host.example", &config(TWO_SERVERS), now, 21);
    let batch = drain(&mut lookup);
    assert!(batch.iter().all(has_opt));
    let (a, aaaa) = split(&batch);
    let formerr = answer(a).rcode(RCODE::FormatError).build();
    lookup.handle_datagram(server(1), &formerr, now);
    let again = drain(&mut lookup);
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].to, asked(&again[0]).2), (server(1), TYPE::A));
    assert!(!has_opt(&again[0]));
    let reply = answer(&again[0]).a("host.example", [192, 0, 2, 11]).build();
    lookup.handle_datagram(server(1), &reply, now);
    lookup.handle_datagram(server(1), &answer(aaaa).build(), now);
    assert_eq!(lookup.poll_result(), Some(Ok(ips(&["192.0.2.11"]))));
}
