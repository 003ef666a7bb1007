//! The DNS wire format, through the `simple-dns` crate: one query out, one answer in. Nothing
//! here parses message bytes by hand; this file decides what an answer means for the question
//! that was asked, and frames the query's fixed bytes around the crate's name encoding.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{header_buffer, Name, Packet, PacketFlag, CLASS, OPCODE, QCLASS, QTYPE, TYPE};

/// Datagrams longer than this are ignored unread: we advertise 1232 bytes (below), so a longer
/// one is not an honest answer, and the bound caps the work and memory one datagram can cost.
pub(crate) const MAX_DATAGRAM: usize = 4096;

/// The EDNS0 UDP payload size we advertise: the DNS flag day 2020 value, which avoids IP
/// fragmentation on any path with a 1280-byte IPv6 MTU.
const EDNS_PAYLOAD: u16 = 1232;

/// A DNS header is 12 bytes; the counts of its four sections start at byte 4.
const HEADER_LEN: usize = 12;
/// The smallest question on the wire: the root name (1 byte), type and class.
const MIN_QUESTION_LEN: usize = 5;
/// The smallest resource record: the root name, type, class, TTL and an empty RDATA length.
const MIN_RECORD_LEN: usize = 11;

/// `NOERROR`: the answer section is the answer (possibly empty: "no data").
pub(crate) const RCODE_NOERROR: u16 = 0;
/// `FORMERR`: the server could not read the query (from an old server: the OPT record).
pub(crate) const RCODE_FORMERR: u16 = 1;
/// `NXDOMAIN`: the name does not exist.
pub(crate) const RCODE_NXDOMAIN: u16 = 3;

/// Which address family a query asks for: A or AAAA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// IPv4: an A query.
    V4,
    /// IPv6: an AAAA query.
    V6,
}

impl Family {
    /// The record type asked for.
    fn record_type(self) -> TYPE {
        match self {
            Family::V4 => TYPE::A,
            Family::V6 => TYPE::AAAA,
        }
    }
}

/// What an answer to our question says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The response code, extended by EDNS when the answer has an OPT record.
    pub rcode: u16,
    /// TC: the server cut the answer to fit; `addresses` may be incomplete.
    pub truncated: bool,
    /// The addresses of the asked family for the queried name or its CNAME chain, in answer
    /// order.
    pub addresses: Vec<IpAddr>,
}

/// Whether `name` can be asked for: 1 to 253 bytes (255 on the wire) in labels of 1 to 63
/// bytes; one trailing dot is allowed. Empty labels (`a..b`, `.a`) are refused because the
/// encoder would silently drop them and ask for a different name.
pub(crate) fn is_queryable(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    (1..=253).contains(&name.len()) && name.split('.').all(|label| (1..=63).contains(&label.len()))
}

/// A recursive query for `name`: one question, class IN, and with `edns` an EDNS0 OPT record
/// advertising 1232 bytes; None when the name cannot be encoded (see [`is_queryable`]).
///
/// The name goes through the crate (`Name::new` checks lengths and unescapes); the fixed bytes
/// around it are written here, because the crate's `Packet` writer links a writer for every
/// record type it knows (SVCB, NSEC, ...): about 12 KB on armv7 for a query that never carries
/// a record. The tests parse these bytes back with the crate.
pub(crate) fn encode_query(id: u16, name: &str, family: Family, edns: bool) -> Option<Vec<u8>> {
    if !is_queryable(name) {
        return None;
    }
    let qname = Name::new(name).ok()?;
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 2 + 4 + OPT_RECORD.len());
    out.extend_from_slice(&id.to_be_bytes());
    // Flags: a standard query (QR 0, opcode 0) with RD; one question; an OPT record with EDNS.
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    for label in qname.get_labels() {
        out.push(label.len() as u8); // at most 63: checked by Name::new
        out.extend_from_slice(label.as_ref());
    }
    out.push(0); // the root label ends the name
    let qtype: u16 = match family {
        Family::V4 => 1,
        Family::V6 => 28,
    };
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // class IN
    if edns {
        out.extend_from_slice(&OPT_RECORD);
    }
    Some(out)
}

/// The EDNS0 OPT pseudo-record of a query (RFC 6891 §6.1.2): the root name, type 41, our UDP
/// payload size in the class field, extended rcode, version 0 and no flags in the TTL field,
/// and no options.
const OPT_RECORD: [u8; 11] = {
    let size = EDNS_PAYLOAD.to_be_bytes();
    [0, 0, 41, size[0], size[1], 0, 0, 0, 0, 0, 0]
};

/// The message id of a datagram that could be a DNS answer; None for anything shorter than a
/// header or longer than [`MAX_DATAGRAM`]. Lets the caller find the query before parsing.
pub(crate) fn answer_id(payload: &[u8]) -> Option<u16> {
    if payload.len() > MAX_DATAGRAM {
        return None;
    }
    header_buffer::id(payload).ok()
}

/// Reads `payload` as the answer to "`name` IN A/AAAA"; None when it is not one: malformed,
/// not a response, not a standard query, or not exactly our question. The caller has already
/// matched the id and the source address.
pub(crate) fn parse_answer(payload: &[u8], name: &str, family: Family) -> Option<Answer> {
    if !counts_fit(payload) {
        return None;
    }
    let packet = Packet::parse(payload).ok()?;
    if !packet.has_flags(PacketFlag::RESPONSE) || packet.opcode() != OPCODE::StandardQuery {
        return None;
    }
    let wanted = Name::new(name).ok()?;
    let [question] = packet.questions.as_slice() else {
        return None;
    };
    let asked = question.qname == wanted
        && question.qtype == QTYPE::TYPE(family.record_type())
        && question.qclass == QCLASS::CLASS(CLASS::IN)
        && !question.unicast_response;
    if !asked {
        return None;
    }
    let chain = cname_chain(&packet, &question.qname);
    let addresses = packet
        .answers
        .iter()
        .filter(|rr| rr.class == CLASS::IN && chain.contains(&&rr.name))
        .filter_map(|rr| match (&rr.rdata, family) {
            (RData::A(a), Family::V4) => Some(IpAddr::V4(Ipv4Addr::from(a.address))),
            (RData::AAAA(a), Family::V6) => Some(IpAddr::V6(Ipv6Addr::from(a.address))),
            _ => None,
        })
        .collect();
    Some(Answer {
        rcode: packet.rcode() as u16,
        truncated: packet.has_flags(PacketFlag::TRUNCATION),
        addresses,
    })
}

/// Whether the section counts in the header can fit in the datagram. simple-dns reserves
/// vectors for the counts before reading the records, so a 12-byte datagram claiming 65535
/// records would cost megabytes; this caps that at the datagram's own size.
fn counts_fit(payload: &[u8]) -> bool {
    if payload.len() > MAX_DATAGRAM {
        return false;
    }
    let count = |f: fn(&[u8]) -> simple_dns::Result<u16>| f(payload).map(usize::from);
    let (Ok(qd), Ok(an), Ok(ns), Ok(ar)) = (
        count(header_buffer::questions),
        count(header_buffer::answers),
        count(header_buffer::name_servers),
        count(header_buffer::additional_records),
    ) else {
        return false;
    };
    let least = qd * MIN_QUESTION_LEN + (an + ns + ar) * MIN_RECORD_LEN;
    payload.len() >= HEADER_LEN && least <= payload.len() - HEADER_LEN
}

/// CNAME hops followed in one answer; real chains (CDNs) have a handful. Bounds the work a
/// crafted answer can cause (each hop scans the answer section).
const MAX_CNAME_HOPS: usize = 16;

/// The names whose A/AAAA records answer `qname`: itself, then each CNAME target in turn.
/// Records for any other name are ignored (they could be planted by a server for a zone it
/// does not own). A loop ends the chain, and so does [`MAX_CNAME_HOPS`].
fn cname_chain<'p>(packet: &'p Packet<'p>, qname: &'p Name<'p>) -> Vec<&'p Name<'p>> {
    let mut chain = vec![qname];
    while let Some(last) = chain
        .last()
        .copied()
        .filter(|_| chain.len() <= MAX_CNAME_HOPS)
    {
        let target = packet.answers.iter().find_map(|rr| match &rr.rdata {
            RData::CNAME(cname) if rr.class == CLASS::IN && rr.name == *last => Some(&cname.0),
            _ => None,
        });
        match target {
            Some(target) if !chain.contains(&target) => chain.push(target),
            _ => break,
        }
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::tests::reply;

    #[test]
    fn query_is_recursive_with_one_question_and_edns_1232() {
        let bytes = encode_query(0xbeef, "Example.COM.", Family::V6, true).unwrap();
        let packet = Packet::parse(&bytes).unwrap();
        assert_eq!(packet.id(), 0xbeef);
        assert!(packet.has_flags(PacketFlag::RECURSION_DESIRED));
        assert!(!packet.has_flags(PacketFlag::RESPONSE));
        assert_eq!(packet.opcode(), OPCODE::StandardQuery);
        assert!(packet.answers.is_empty() && packet.additional_records.is_empty());
        assert_eq!(packet.questions.len(), 1);
        assert_eq!(packet.questions[0].qname, Name::new("example.com").unwrap());
        assert_eq!(packet.questions[0].qtype, QTYPE::TYPE(TYPE::AAAA));
        assert_eq!(packet.questions[0].qclass, QCLASS::CLASS(CLASS::IN));
        assert_eq!(packet.opt().map(|o| o.udp_packet_size), Some(1232));
        assert_eq!(answer_id(&bytes), Some(0xbeef));
    }

    #[test]
    fn query_bytes_are_exactly_what_the_crate_builds() {
        use simple_dns::{rdata::OPT, Question};
        for (name, family, edns) in [
            ("device.example", Family::V4, true),
            ("Device.Example.", Family::V6, false),
            (r"odd\.label.example", Family::V4, true),
        ] {
            let mut packet = Packet::new_query(0x1234);
            packet.set_flags(PacketFlag::RECURSION_DESIRED);
            let qname = Name::new(name).unwrap();
            let qtype = family.record_type().into();
            let question = Question::new(qname, qtype, CLASS::IN.into(), false);
            packet.questions.push(question);
            *packet.opt_mut() = edns.then(|| OPT {
                opt_codes: Vec::new(),
                udp_packet_size: 1232,
                version: 0,
            });
            let want = packet.build_bytes_vec().unwrap();
            assert_eq!(
                encode_query(0x1234, name, family, edns),
                Some(want),
                "{name}"
            );
        }
    }

    #[test]
    fn names_that_cannot_be_asked_give_no_query() {
        for name in [
            "",
            ".",
            "a..b",
            ".a",
            "a..",
            &"x".repeat(64),
            &"a.".repeat(130),
        ] {
            assert_eq!(encode_query(1, name, Family::V4, true), None, "{name:?}");
        }
        assert!(encode_query(1, &"x".repeat(63), Family::V4, true).is_some());
    }

    #[test]
    fn answer_for_another_question_or_a_query_is_not_an_answer() {
        let ok = reply(7, "a.example", TYPE::A)
            .a("a.example", [192, 0, 2, 1])
            .build();
        assert!(parse_answer(&ok, "a.example", Family::V4).is_some());
        assert!(parse_answer(&ok, "A.EXAMPLE.", Family::V4).is_some());
        assert_eq!(parse_answer(&ok, "b.example", Family::V4), None);
        assert_eq!(parse_answer(&ok, "a.example", Family::V6), None);
        let query = encode_query(7, "a.example", Family::V4, true).unwrap();
        assert_eq!(parse_answer(&query, "a.example", Family::V4), None);
        let two = reply(7, "a.example", TYPE::A)
            .question("a.example", TYPE::A)
            .build();
        assert_eq!(parse_answer(&two, "a.example", Family::V4), None);
    }

    #[test]
    fn header_counts_larger_than_the_datagram_are_rejected_before_parsing() {
        let mut bytes = reply(7, "a.example", TYPE::A).build();
        bytes[6..12].copy_from_slice(&[0xff; 6]);
        assert!(!counts_fit(&bytes));
        assert_eq!(parse_answer(&bytes, "a.example", Family::V4), None);
        assert_eq!(answer_id(&[0; MAX_DATAGRAM + 1]), None);
        assert_eq!(answer_id(&[1]), None);
    }

    #[test]
    fn cname_chains_longer_than_16_hops_are_not_followed() {
        let chain = |hops: usize| {
            let mut r = reply(7, "c0.example", TYPE::A);
            for i in 0..hops {
                r = r.cname(&format!("c{i}.example"), &format!("c{}.example", i + 1));
            }
            let last = format!("c{hops}.example");
            let bytes = r.a(&last, [192, 0, 2, 1]).build();
            parse_answer(&bytes, "c0.example", Family::V4)
                .unwrap()
                .addresses
                .len()
        };
        assert_eq!((chain(16), chain(17)), (1, 0));
    }

    #[test]
    fn only_records_on_the_cname_chain_count_and_loops_end() {
        let bytes = reply(7, "www.example", TYPE::A)
            .a("evil.example", [203, 0, 113, 66])
            .cname("WWW.example", "edge.cdn.example")
            .a("edge.cdn.example", [192, 0, 2, 1])
            .cname("edge.cdn.example", "www.example")
            .aaaa("edge.cdn.example", "2001:db8::1")
            .build();
        let answer = parse_answer(&bytes, "www.example", Family::V4).unwrap();
        assert_eq!(
            answer.addresses,
            vec!["192.0.2.1".parse::<IpAddr>().unwrap()]
        );
    }
}
