//! The parser against messages laid out as the kernel sends them, and against anything at
//! all (property tests): it never panics and never reports what a cut message did not say.
use super::*;
use proptest::prelude::*;

/// One netlink message of `kind` with `fixed` (the family header) and `attrs`.
fn message(kind: u16, fixed: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = fixed.to_vec();
    for (t, v) in attrs {
        body.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        body.extend_from_slice(&t.to_ne_bytes());
        body.extend_from_slice(v);
        body.resize(align4(body.len()), 0);
    }
    let mut m = ((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes().to_vec();
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&[0; 10]);
    m.extend_from_slice(&body);
    m
}

fn ifaddr(kind: u16, family: u8, ifindex: u32, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut fixed = vec![family, 24, 0, 0];
    fixed.extend_from_slice(&ifindex.to_ne_bytes());
    message(kind, &fixed, attrs)
}

fn ifinfo(kind: u16, ifindex: u32, flags: u32) -> Vec<u8> {
    let mut fixed = vec![0, 0, 1, 0];
    fixed.extend_from_slice(&ifindex.to_ne_bytes());
    fixed.extend_from_slice(&flags.to_ne_bytes());
    fixed.extend_from_slice(&0u32.to_ne_bytes());
    // A name attribute, as the kernel always sends: skipped.
    message(kind, &fixed, &[(3, b"veth0\0")])
}

fn rtmsg(kind: u16, family: u8, len: u8, table: u8, kind_of_route: u8, dst: &[u8]) -> Vec<u8> {
    let mut fixed = vec![family, len, 0, 0, table, 2, 0, kind_of_route];
    fixed.extend_from_slice(&0u32.to_ne_bytes());
    let attrs: Vec<(u16, &[u8])> = if dst.is_empty() {
        vec![(4, &[2, 0, 0, 0])]
    } else {
        vec![(RTA_DST, dst), (4, &[2, 0, 0, 0])]
    };
    message(kind, &fixed, &attrs)
}

fn parse(datagram: &[u8]) -> Vec<NetChange> {
    let mut out = Vec::new();
    for_each_change(datagram, |c| out.push(c));
    out
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

/// A datagram with one message of every kind the session uses.
fn sample() -> (Vec<u8>, Vec<NetChange>) {
    let v6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    let mut d = Vec::new();
    d.extend(ifaddr(
        RTM_DELADDR,
        AF_INET,
        3,
        &[(IFA_ADDRESS, &[10, 0, 0, 9]), (IFA_LOCAL, &[10, 0, 0, 1])],
    ));
    d.extend(ifaddr(
        RTM_NEWADDR,
        AF_INET6,
        4,
        &[(IFA_ADDRESS, &v6), (8, &[0, 0, 0, 0])],
    ));
    d.extend(ifinfo(RTM_NEWLINK, 3, IFF_UP));
    d.extend(ifinfo(RTM_NEWLINK, 5, IFF_UP | IFF_RUNNING));
    d.extend(ifinfo(RTM_DELLINK, 6, IFF_UP | IFF_RUNNING));
    d.extend(rtmsg(
        RTM_DELROUTE,
        AF_INET,
        24,
        254,
        RTN_UNICAST,
        &[10, 0, 0, 0],
    ));
    d.extend(rtmsg(RTM_NEWROUTE, AF_INET, 0, 254, RTN_UNICAST, &[]));
    let expected = vec![
        NetChange::AddressRemoved {
            ifindex: 3,
            addr: v4([10, 0, 0, 1]),
        },
        NetChange::AddressAdded {
            ifindex: 4,
            addr: IpAddr::from(v6),
        },
        NetChange::Link {
            ifindex: 3,
            up: false,
        },
        NetChange::Link {
            ifindex: 5,
            up: true,
        },
        NetChange::Link {
            ifindex: 6,
            up: false,
        },
        NetChange::Route {
            added: false,
            dst: v4([10, 0, 0, 0]),
            prefix_len: 24,
        },
        NetChange::Route {
            added: true,
            dst: v4([0, 0, 0, 0]),
            prefix_len: 0,
        },
    ];
    (d, expected)
}

#[test]
fn every_kind_of_report_is_read() {
    let (d, expected) = sample();
    assert_eq!(parse(&d), expected);
}

#[test]
fn local_table_broadcast_and_cloned_routes_are_not_routes_to_a_peer() {
    let local = rtmsg(RTM_DELROUTE, AF_INET, 32, 255, 2, &[10, 0, 0, 1]);
    let broadcast = rtmsg(RTM_NEWROUTE, AF_INET, 32, 254, 3, &[10, 0, 0, 255]);
    let mut cloned = rtmsg(RTM_NEWROUTE, AF_INET6, 128, 254, RTN_UNICAST, &[0; 16]);
    cloned[NLMSG_HDRLEN + 8..NLMSG_HDRLEN + 12].copy_from_slice(&RTM_F_CLONED.to_ne_bytes());
    assert_eq!(parse(&[local, broadcast, cloned].concat()), []);
}

#[test]
fn a_lying_length_ends_the_datagram_and_a_bad_attribute_drops_its_message() {
    let (d, expected) = sample();
    let mut liar = d.clone();
    liar[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
    assert_eq!(parse(&liar), []);
    let mut bad_attr = d.clone();
    // The first message's first attribute claims more than the message holds.
    bad_attr[NLMSG_HDRLEN + IFADDRMSG_LEN..][..2].copy_from_slice(&200u16.to_ne_bytes());
    assert_eq!(parse(&bad_attr), expected[1..]);
    let wrong_size = ifaddr(RTM_DELADDR, AF_INET, 3, &[(IFA_LOCAL, &[10, 0, 0])]);
    assert_eq!(parse(&wrong_size), [], "a 3-byte IPv4 address says nothing");
}

#[test]
fn prefixes_cover_what_they_should() {
    let peer = v4([10, 254, 0, 2]);
    assert!(covers(v4([10, 254, 0, 0]), 24, peer));
    assert!(covers(v4([0, 0, 0, 0]), 0, peer));
    assert!(covers(v4([10, 254, 0, 2]), 32, peer));
    assert!(!covers(v4([10, 254, 1, 0]), 24, peer));
    assert!(!covers(v4([10, 254, 0, 0]), 31, v4([10, 254, 0, 2])));
    assert!(covers(v4([10, 254, 0, 0]), 30, v4([10, 254, 0, 3])));
    assert!(
        !covers(IpAddr::from([0u8; 16]), 0, peer),
        "families never mix"
    );
}

proptest! {
    #[test]
    fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        parse(&bytes);
    }

    /// A datagram cut anywhere reports only what its whole messages said, in order.
    #[test]
    fn a_cut_datagram_reports_a_prefix_of_its_changes(cut in 0usize..400) {
        let (d, expected) = sample();
        let got = parse(&d[..cut.min(d.len())]);
        prop_assert!(got.len() <= expected.len());
        prop_assert_eq!(&got[..], &expected[..got.len()]);
    }

    /// Any byte of a valid datagram changed to anything: no panic.
    #[test]
    fn a_damaged_datagram_never_panics(at in 0usize..400, value in any::<u8>()) {
        let (mut d, _) = sample();
        let at = at % d.len();
        d[at] = value;
        parse(&d);
    }

    #[test]
    fn covers_agrees_with_integer_masks(d in any::<u32>(), a in any::<u32>(), len in 0u8..=32) {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
        let expected = d & mask == a & mask;
        prop_assert_eq!(covers(IpAddr::from(d.to_be_bytes()), len, IpAddr::from(a.to_be_bytes())), expected);
    }
}
