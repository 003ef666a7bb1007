//! Tests of the resolver: the lookup's behaviour on a fake clock (one `Instant::now()`, then
//! arithmetic; no sleeping), hostile and random datagrams, and one lookup over real UDP on
//! loopback. Answers are built with the same wire crate the resolver parses them with.
#![forbid(unsafe_code)]

mod hostile;
mod lookup;
mod udp;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use simple_dns::rdata::{RData, A, AAAA, CNAME};
use simple_dns::{Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};

use super::{Datagram, Lookup, SystemConfig};

/// A DNS response under construction; names are kept as text until [`Reply::build`].
pub(crate) struct Reply {
    id: u16,
    questions: Vec<(String, TYPE)>,
    records: Vec<(String, Record)>,
    rcode: RCODE,
    truncated: bool,
}

/// An answer record's data.
enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
}

/// A response with id `id` to the question `name` IN `qtype`, no records yet.
pub(crate) fn reply(id: u16, name: &str, qtype: TYPE) -> Reply {
    Reply {
        id,
        questions: vec![(name.to_owned(), qtype)],
        records: Vec::new(),
        rcode: RCODE::NoError,
        truncated: false,
    }
}

impl Reply {
    pub fn question(mut self, name: &str, qtype: TYPE) -> Reply {
        self.questions.push((name.to_owned(), qtype));
        self
    }
    pub fn a(mut self, name: &str, ip: [u8; 4]) -> Reply {
        self.records.push((name.to_owned(), Record::A(ip.into())));
        self
    }
    pub fn aaaa(mut self, name: &str, ip: &str) -> Reply {
        self.records
            .push((name.to_owned(), Record::Aaaa(ip.parse().unwrap())));
        self
    }
    pub fn cname(mut self, name: &str, target: &str) -> Reply {
        self.records
            .push((name.to_owned(), Record::Cname(target.to_owned())));
        self
    }
    pub fn rcode(mut self, rcode: RCODE) -> Reply {
        self.rcode = rcode;
        self
    }
    pub fn truncated(mut self) -> Reply {
        self.truncated = true;
        self
    }
    pub fn build(&self) -> Vec<u8> {
        let mut packet = Packet::new_reply(self.id);
        packet.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
        if self.truncated {
            packet.set_flags(PacketFlag::TRUNCATION);
        }
        *packet.rcode_mut() = self.rcode;
        for (name, qtype) in &self.questions {
            let name = Name::new_unchecked(name);
            packet.questions.push(Question::new(
                name,
                (*qtype).into(),
                CLASS::IN.into(),
                false,
            ));
        }
        for (name, record) in &self.records {
            let rdata = match record {
                Record::A(ip) => RData::A(A::from(*ip)),
                Record::Aaaa(ip) => RData::AAAA(AAAA::from(*ip)),
                Record::Cname(target) => RData::CNAME(CNAME(Name::new_unchecked(target))),
            };
            let record = ResourceRecord::new(Name::new_unchecked(name), CLASS::IN, 60, rdata);
            packet.answers.push(record);
        }
        packet.build_bytes_vec_compressed().unwrap()
    }
}

/// What a query asks: its id, name and type.
fn asked(d: &Datagram) -> (u16, String, TYPE) {
    let packet = Packet::parse(&d.payload).unwrap();
    let [question] = packet.questions.as_slice() else {
        panic!("one question")
    };
    let QTYPE::TYPE(qtype) = question.qtype else {
        panic!("a type")
    };
    (packet.id(), question.qname.to_string(), qtype)
}

/// The answer to query `d` (same id and question) for the fake server to fill in.
fn answer(d: &Datagram) -> Reply {
    let (id, name, qtype) = asked(d);
    reply(id, &name, qtype)
}

/// Everything the lookup wants sent now.
fn drain(lookup: &mut Lookup) -> Vec<Datagram> {
    std::iter::from_fn(|| lookup.poll_transmit()).collect()
}

/// The A and the AAAA query out of one batch, in that order.
fn split(batch: &[Datagram]) -> (&Datagram, &Datagram) {
    let find = |t| batch.iter().find(|d| asked(d).2 == t).unwrap();
    (find(TYPE::A), find(TYPE::AAAA))
}

fn config(text: &str) -> SystemConfig {
    SystemConfig::parse(text, "")
}

fn server(last: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], 53))
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

const TWO_SERVERS: &str = "nameserver 192.0.2.1\nnameserver 192.0.2.2\n";
