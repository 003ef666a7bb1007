//! The bytes interoperate: one lookup against a fake DNS server over real UDP on loopback.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use simple_dns::{Packet, TYPE};

use super::*;

/// The bytes interoperate: a fake DNS server thread on 127.0.0.1 answers over real UDP, the
/// lookup is driven by a loop of `send_to`/`recv_from`. Bounded by socket timeouts and a join.
#[test]
fn resolves_over_a_real_udp_socket_on_loopback() {
    use std::net::UdpSocket;

    let dns = UdpSocket::bind("127.0.0.1:0").unwrap();
    dns.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let dns_addr = dns.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        // Both queries first, then both answers back to back: the 50 ms resolution delay must
        // not decide the result on a slow (emulated) machine.
        let mut queries = Vec::new();
        for _ in 0..2 {
            let mut buf = [0u8; 1500];
            let (n, from) = dns.recv_from(&mut buf).unwrap();
            let query = Packet::parse(&buf[..n]).unwrap();
            assert_eq!(query.opt().map(|o| o.udp_packet_size), Some(1232));
            queries.push((
                Datagram {
                    to: dns_addr,
                    payload: buf[..n].to_vec(),
                },
                from,
            ));
        }
        for (d, from) in queries {
            let reply = match asked(&d).2 {
                TYPE::A => answer(&d).a("device.example", [192, 0, 2, 77]),
                _ => answer(&d).aaaa("device.example", "2001:db8::77"),
            };
            dns.send_to(&reply.build(), from).unwrap();
        }
    });

    let mut conf = config("");
    conf.nameservers = vec![dns_addr];
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut lookup = Lookup::new("device.example", &conf, Instant::now(), 18);
    let give_up = Instant::now() + Duration::from_secs(10);
    let result = loop {
        while let Some(d) = lookup.poll_transmit() {
            client.send_to(&d.payload, d.to).unwrap();
        }
        if let Some(result) = lookup.poll_result() {
            break result;
        }
        assert!(Instant::now() < give_up, "no result in 10 s");
        let wait = lookup
            .poll_timeout()
            .unwrap()
            .saturating_duration_since(Instant::now());
        client
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 1500];
        match client.recv_from(&mut buf) {
            Ok((n, from)) => lookup.handle_datagram(from, &buf[..n], Instant::now()),
            Err(_) => lookup.handle_timeout(Instant::now()),
        }
    };
    server.join().unwrap();
    assert_eq!(result, Ok(ips(&["2001:db8::77", "192.0.2.77"])));
}
