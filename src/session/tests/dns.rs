//! The resolve step on the fake clock: /etc/hosts, retries per resolv.conf, the attempt's
//! deadline over a slow resolver.
#![forbid(unsafe_code)]

use std::time::Duration;

use super::*;
use crate::session::Command;
use crate::{Error, Event};

fn resolver(resolv_conf: &str, hosts: &str) -> crate::dns::SystemConfig {
    crate::dns::SystemConfig::parse(resolv_conf, hosts)
}

#[test]
fn an_etc_hosts_name_never_touches_the_network() {
    let (mut s, t0) = session("ws://device-cloud.test:9/", |_| {});
    s.handle_timeout(t0);
    commands(&mut s);
    s.handle_resolver(
        &resolver("nameserver 127.0.0.53\n", "10.1.2.3 device-cloud.test\n"),
        t0,
    );
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::Connect { addr, .. }] if addr.to_string() == "10.1.2.3:9"
    ));
}

#[test]
fn an_unanswered_lookup_retries_per_resolv_conf_then_fails_the_attempt() {
    let (mut s, t0) = session("ws://device-cloud.test:9/", |_| {});
    s.handle_timeout(t0);
    commands(&mut s);
    events(&mut s);
    s.handle_resolver(
        &resolver(
            "nameserver 127.0.0.53\nnameserver 127.0.0.54\noptions timeout:1 attempts:2\n",
            "",
        ),
        t0,
    );
    let first: Vec<_> = commands(&mut s)
        .into_iter()
        .map(|c| match c {
            Command::SendDatagram(d) => d.to.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        first,
        ["127.0.0.53:53", "127.0.0.53:53"],
        "A and AAAA together"
    );
    // Each try waits `timeout`, then the next server; two rounds over two servers: 4 s.
    let mut retries = Vec::new();
    loop {
        let t = s.poll_timeout().unwrap();
        s.handle_timeout(t);
        let sent = commands(&mut s)
            .iter()
            .filter(|c| matches!(c, Command::SendDatagram(_)))
            .count();
        if sent > 0 {
            retries.push((t - t0, sent));
        }
        let ev = events(&mut s);
        if let Some(Event::ConnectFailed { error, .. }) = ev.first() {
            assert!(
                matches!(error, Error::Resolve { host, .. } if host == "device-cloud.test"),
                "{error:?}"
            );
            assert_eq!(t - t0, Duration::from_secs(4));
            break;
        }
        assert!(t - t0 < Duration::from_secs(5), "{retries:?}");
    }
    assert_eq!(
        retries,
        [
            (Duration::from_secs(1), 2),
            (Duration::from_secs(2), 2),
            (Duration::from_secs(3), 2)
        ]
    );
}

#[test]
fn the_connect_timeout_caps_a_slow_resolver() {
    let (mut s, t0) = session("ws://device-cloud.test:9/", |c| {
        c.connect_timeout = ms(2500);
    });
    s.handle_timeout(t0);
    commands(&mut s);
    events(&mut s);
    s.handle_resolver(&resolver("nameserver 127.0.0.53\n", ""), t0);
    commands(&mut s);
    // glibc's defaults (5 s, 2 attempts) would take 10 s: the attempt's deadline comes first.
    assert_eq!(s.poll_timeout(), Some(t0 + ms(2500)));
    s.handle_timeout(t0 + ms(2500));
    assert!(matches!(
        events(&mut s).first(),
        Some(Event::ConnectFailed {
            error: Error::ConnectTimeout(_),
            ..
        })
    ));
}
