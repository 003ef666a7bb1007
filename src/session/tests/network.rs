//! Network reports on the fake clock: a report that concerns the link probes it and judges
//! it at the probe timeout; anything else changes nothing; a network coming back while
//! waiting brings the attempt forward to its floor.
#![forbid(unsafe_code)]

use std::net::IpAddr;

use tungstenite::Message as Wire;

use super::*;
use crate::netlink::NetChange;
use crate::session::{LinkPath, RouteCheck};
use crate::{DisconnectReason, Event, NetworkChange};

const LOCAL: [u8; 4] = [10, 254, 0, 1];
const PEER: [u8; 4] = [10, 254, 0, 2];
const IFINDEX: u32 = 3;
/// The link's interface goes down.
const DOWN: NetChange = NetChange::Link {
    ifindex: IFINDEX,
    up: false,
};

/// An open link from LOCAL on interface IFINDEX to PEER, probe timeout 2 s, at `t0`.
fn open_link() -> (Session, Instant) {
    let (mut s, t0) = session("ws://10.254.0.2:9/", |c| {
        c.network.watch = true;
        c.backoff.initial = ms(500);
        c.backoff.first_spread = ms(30_000);
    });
    open_at(&mut s, t0);
    s.set_link_path(LinkPath {
        local: IpAddr::from(LOCAL),
        peer: IpAddr::from(PEER),
        ifindex: Some(IFINDEX),
    });
    (s, t0)
}

/// An open link lost to an unanswered probe (interface down at `t0`): waiting to reconnect.
fn lost_link() -> (Session, Instant) {
    let (mut s, t0) = open_link();
    s.handle_network(DOWN, t0);
    commands(&mut s);
    s.handle_timeout(t0 + ms(2000));
    events(&mut s);
    commands(&mut s);
    (s, t0)
}

fn probe_seq(s: &mut Session) -> u64 {
    match commands(s).as_slice() {
        [Command::Ping { seq }] => *seq,
        other => panic!("expected the probe ping, got {other:?}"),
    }
}

/// The probe for `change` goes out at `t` and, unanswered, the link is dead exactly 2 s later.
fn assert_dead_at_probe_timeout(s: &mut Session, t: Instant, change: NetworkChange) {
    probe_seq(s);
    let ev = events(s);
    assert_eq!(names(&ev), ["network_changed", "ping"]);
    assert!(matches!(ev[0], Event::NetworkChanged { change: c } if c == change));
    assert_eq!(s.poll_timeout(), Some(t + ms(2000)));
    s.handle_timeout(t + ms(2000) - us(1));
    assert!(events(s).is_empty(), "alive until the probe timeout");
    s.handle_timeout(t + ms(2000));
    let ev = events(s);
    assert_eq!(names(&ev), ["pong_missed", "disconnected", "reconnecting"]);
    assert!(matches!(
        ev[1],
        Event::Disconnected {
            reason: DisconnectReason::HeartbeatTimeout { missed: 1, .. },
            ..
        }
    ));
}

#[test]
fn the_links_own_address_removed_probes_and_kills_at_the_probe_timeout() {
    let (mut s, t0) = open_link();
    let t = t0 + ms(100);
    let change = NetChange::AddressRemoved {
        ifindex: IFINDEX,
        addr: IpAddr::from(LOCAL),
    };
    s.handle_network(change, t);
    // A second report of the same loss sends no second probe.
    s.handle_network(change, t + ms(1));
    let expected = NetworkChange::AddressRemoved(IpAddr::from(LOCAL));
    assert_dead_at_probe_timeout(&mut s, t, expected);
}

#[test]
fn the_links_interface_down_probes_and_kills_at_the_probe_timeout() {
    let (mut s, t0) = open_link();
    let t = t0 + ms(100);
    s.handle_network(DOWN, t);
    assert_dead_at_probe_timeout(&mut s, t, NetworkChange::InterfaceDown(IFINDEX));
}

#[test]
fn a_removed_route_to_the_peer_asks_the_kernel_and_probes_when_none_is_left() {
    let (mut s, t0) = open_link();
    let t = t0 + ms(100);
    let route = NetChange::Route {
        added: false,
        dst: IpAddr::from([10, 254, 0, 0]),
        prefix_len: 24,
    };
    s.handle_network(route, t);
    s.handle_network(route, t);
    let cmds = commands(&mut s);
    assert!(
        matches!(cmds.as_slice(), [Command::CheckRoute { from: Some(f), to }] if *f == IpAddr::from(LOCAL) && *to == IpAddr::from(PEER)),
        "one check per burst: {cmds:?}"
    );
    // Another route remains (a default route, say): nothing happens.
    s.handle_route_check(RouteCheck::Reachable, t);
    assert!(commands(&mut s).is_empty() && events(&mut s).is_empty());
    s.handle_network(route, t);
    commands(&mut s);
    s.handle_route_check(RouteCheck::Unreachable, t);
    assert_dead_at_probe_timeout(&mut s, t, NetworkChange::NoRoute(IpAddr::from(PEER)));
}

#[test]
fn an_answered_probe_keeps_the_link() {
    let (mut s, t0) = open_link();
    let t = t0 + ms(100);
    s.handle_network(DOWN, t);
    let seq = probe_seq(&mut s);
    events(&mut s);
    s.handle_inbound(t + ms(30));
    s.handle_message(Wire::Pong(seq.to_be_bytes().to_vec().into()), t + ms(30));
    assert_eq!(names(&events(&mut s)), ["pong"]);
    s.handle_timeout(t + ms(2000));
    assert!(events(&mut s).is_empty(), "no verdict after the pong");
    assert_eq!(s.ready_state(t + ms(2000)), ReadyState::Open);
}

#[test]
fn unrelated_changes_change_nothing() {
    let (mut s, t0) = open_link();
    let other = IpAddr::from([10, 254, 0, 9]);
    let temp6: IpAddr = "2001:db8::1234:5678".parse().unwrap();
    let unrelated = [
        NetChange::AddressRemoved {
            ifindex: IFINDEX,
            addr: other,
        },
        NetChange::AddressAdded {
            ifindex: IFINDEX,
            addr: other,
        },
        NetChange::AddressAdded {
            ifindex: IFINDEX,
            addr: temp6,
        },
        NetChange::AddressRemoved {
            ifindex: IFINDEX,
            addr: temp6,
        },
        NetChange::Link {
            ifindex: IFINDEX + 1,
            up: false,
        },
        NetChange::Link {
            ifindex: IFINDEX,
            up: true,
        },
        NetChange::Route {
            added: false,
            dst: IpAddr::from([192, 0, 2, 0]),
            prefix_len: 24,
        },
        NetChange::Route {
            added: true,
            dst: IpAddr::from([10, 254, 0, 0]),
            prefix_len: 24,
        },
        NetChange::Route {
            added: false,
            dst: "2001:db8::".parse().unwrap(),
            prefix_len: 0,
        },
    ];
    for (i, change) in unrelated.into_iter().enumerate() {
        s.handle_network(change, t0 + ms(10 + i as u64));
        assert!(commands(&mut s).is_empty(), "{change:?}");
        assert!(events(&mut s).is_empty(), "{change:?}");
    }
    assert_eq!(
        s.poll_timeout(),
        Some(t0 + s.config().heartbeat.ping_interval)
    );
}

#[test]
fn the_network_back_while_waiting_brings_the_attempt_forward_to_its_floor() {
    let (mut s, _) = lost_link();
    // The first attempt (500 ms later) fails: the next waits 1 s, above the 500 ms floor.
    let first = s.poll_timeout().unwrap();
    s.handle_timeout(first);
    commands(&mut s);
    let lost = first + ms(1);
    s.handle_tcp(
        0,
        Err(io::Error::from(io::ErrorKind::ConnectionRefused)),
        lost,
    );
    let due = match events(&mut s).last() {
        Some(Event::Reconnecting { at, .. }) => *at,
        other => panic!("{other:?}"),
    };
    assert_eq!(due, lost + ms(1000));
    commands(&mut s);
    // Too early (before the floor of backoff.initial, 500 ms) it goes to the floor.
    let back = NetChange::AddressAdded {
        ifindex: IFINDEX,
        addr: IpAddr::from(LOCAL),
    };
    s.handle_network(back, lost + ms(100));
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::CheckRoute { from: None, .. }]
    ));
    s.handle_route_check(RouteCheck::Unreachable, lost + ms(100));
    assert!(events(&mut s).is_empty(), "still no route: the wait stays");
    s.handle_network(back, lost + ms(200));
    commands(&mut s);
    s.handle_route_check(RouteCheck::Reachable, lost + ms(200));
    match events(&mut s).as_slice() {
        [Event::NetworkChanged {
            change: NetworkChange::Restored,
        }, Event::Reconnecting { at, delay, .. }] => {
            assert_eq!(*at, lost + ms(500));
            assert_eq!(*delay, ms(300));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.poll_timeout(), Some(lost + ms(500)));
    assert_eq!(
        s.ready_state(lost + ms(499)),
        ReadyState::WaitingToReconnect
    );
}

#[test]
fn after_the_floor_the_attempt_comes_at_once() {
    let (mut s, _) = lost_link();
    let first = s.poll_timeout().unwrap();
    s.handle_timeout(first);
    commands(&mut s);
    s.handle_tcp(
        0,
        Err(io::Error::from(io::ErrorKind::ConnectionRefused)),
        first,
    );
    events(&mut s);
    let back = first + ms(700);
    s.handle_network(
        NetChange::Link {
            ifindex: IFINDEX,
            up: true,
        },
        back,
    );
    commands(&mut s);
    s.handle_route_check(RouteCheck::Reachable, back);
    assert!(matches!(
        events(&mut s).as_slice(),
        [Event::NetworkChanged { .. }, Event::Reconnecting { delay, at, .. }] if delay.is_zero() && *at == back
    ));
    s.handle_timeout(back);
    assert_eq!(names(&events(&mut s)), ["connecting"]);
}

#[test]
fn unrelated_changes_while_waiting_are_not_checked() {
    let (mut s, t0) = lost_link();
    let t = t0 + ms(3000);
    s.handle_network(
        NetChange::Route {
            added: true,
            dst: IpAddr::from([192, 0, 2, 0]),
            prefix_len: 24,
        },
        t,
    );
    s.handle_network(
        NetChange::Link {
            ifindex: 9,
            up: false,
        },
        t,
    );
    assert!(commands(&mut s).is_empty());
    assert!(events(&mut s).is_empty());
}

mod props {
    use proptest::prelude::*;

    use super::*;

    /// Any change but the three that concern the link: another address, another interface
    /// (or ours coming up), a route that does not cover the server, or one being added.
    fn unrelated() -> impl Strategy<Value = NetChange> {
        let addr = prop_oneof![
            any::<[u8; 4]>()
                .prop_filter("not ours", |a| *a != LOCAL)
                .prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ];
        let ifindex = any::<u32>();
        prop_oneof![
            (ifindex, addr.clone())
                .prop_map(|(ifindex, addr)| NetChange::AddressAdded { ifindex, addr }),
            (ifindex, addr.clone())
                .prop_map(|(ifindex, addr)| NetChange::AddressRemoved { ifindex, addr }),
            ifindex
                .prop_filter("not ours", |i| *i != IFINDEX)
                .prop_map(|ifindex| NetChange::Link { ifindex, up: false }),
            ifindex.prop_map(|ifindex| NetChange::Link { ifindex, up: true }),
            (any::<bool>(), addr, 0u8..=128).prop_filter_map(
                "covers the server while removed",
                |(added, dst, len)| {
                    let len = if dst.is_ipv4() { len % 33 } else { len };
                    let covering = crate::netlink::covers(dst, len, IpAddr::from(PEER));
                    (added || !covering).then_some(NetChange::Route {
                        added,
                        dst,
                        prefix_len: len,
                    })
                }
            ),
        ]
    }

    proptest! {
        /// However many unrelated changes arrive, at whatever times, the open link sees no
        /// command, no event, and keeps its heartbeat deadline.
        #[test]
        fn unrelated_changes_never_touch_the_link(
            changes in proptest::collection::vec((unrelated(), 0u64..20_000), 1..50)
        ) {
            let (mut s, t0) = open_link();
            let deadline = s.poll_timeout();
            for (change, at_ms) in changes {
                s.handle_network(change, t0 + ms(at_ms));
                prop_assert!(commands(&mut s).is_empty(), "{:?}", change);
                prop_assert!(events(&mut s).is_empty(), "{:?}", change);
            }
            prop_assert_eq!(s.poll_timeout(), deadline);
        }
    }
}
