//! A small authoritative DNS server for the dns prober's tests: UDP and TCP on one port of
//! 127.0.0.1, answering from a fixed zone with hickory's Message encode/decode, and keeping
//! every query it saw.
//!
//! Names (all under `probe.test.`): the apex (SOA, NS, MX), `ns1` and `mail` (A), `www` (two
//! A, one AAAA), `txt` (TXT), `generic` (TYPE65280); `servfail` answers SERVFAIL, `silent`
//! never answers, `truncated` answers empty with TC over UDP (and an A over TCP), `otherid`
//! first answers with another ID, `big` answers over 512 bytes; other names are NXDOMAIN
//! (the SOA in authority), names outside the zone REFUSED.

use super::name_text;
use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, NS, NULL, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// The zone's SOA serial.
pub const ZONE_SERIAL: u32 = 2_024_010_101;

type Seen = Arc<Mutex<Vec<(&'static str, Message)>>>;

/// A running server; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    seen: Seen,
    tasks: Vec<JoinHandle<()>>,
}

impl TestServer {
    /// Binds UDP and TCP on one free port of 127.0.0.1 and serves.
    pub async fn start() -> TestServer {
        for _ in 0..50 {
            let udp = UdpSocket::bind("127.0.0.1:0").await.expect("binding UDP");
            let addr = udp.local_addr().expect("UDP address");
            let Ok(tcp) = TcpListener::bind(addr).await else {
                continue;
            };
            let seen: Seen = Arc::default();
            let tasks = vec![
                tokio::spawn(serve_udp(udp, seen.clone())),
                tokio::spawn(serve_tcp(tcp, seen.clone())),
            ];
            return TestServer { addr, seen, tasks };
        }
        panic!("no port of 127.0.0.1 free for both UDP and TCP");
    }

    /// `127.0.0.1:<port>`.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// The queries seen so far, with their transport (`udp` or `tcp`).
    pub fn queries(&self) -> Vec<(&'static str, Message)> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn serve_udp(sock: UdpSocket, seen: Seen) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(q) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        seen.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(("udp", q.clone()));
        for reply in answer(&q, false) {
            if let Ok(wire) = reply.to_vec() {
                let _ = sock.send_to(&wire, peer).await;
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, seen: Seen) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_conn(stream, seen.clone()));
    }
}

async fn serve_conn(mut stream: TcpStream, seen: Seen) {
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let Ok(q) = Message::from_vec(&body) else {
            return;
        };
        seen.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(("tcp", q.clone()));
        for reply in answer(&q, true) {
            let Ok(wire) = reply.to_vec() else { return };
            let Ok(n) = u16::try_from(wire.len()) else {
                return;
            };
            let mut framed = n.to_be_bytes().to_vec();
            framed.extend_from_slice(&wire);
            if stream.write_all(&framed).await.is_err() {
                return;
            }
        }
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("a test name")
}

fn rec(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name(owner), ttl, data)
}

fn a(owner: &str, ttl: u32, ip: [u8; 4]) -> Record {
    rec(owner, ttl, RData::A(A(Ipv4Addr::from(ip))))
}

fn soa() -> Record {
    rec(
        "probe.test.",
        3600,
        RData::SOA(SOA::new(
            name("ns1.probe.test."),
            name("hostmaster.probe.test."),
            ZONE_SERIAL,
            7200,
            3600,
            1_209_600,
            300,
        )),
    )
}

fn ns() -> Record {
    rec("probe.test.", 3600, RData::NS(NS(name("ns1.probe.test."))))
}

fn zone() -> Vec<Record> {
    vec![
        soa(),
        ns(),
        rec(
            "probe.test.",
            3600,
            RData::MX(MX::new(10, name("mail.probe.test."))),
        ),
        a("ns1.probe.test.", 3600, [192, 0, 2, 53]),
        a("mail.probe.test.", 300, [192, 0, 2, 25]),
        a("www.probe.test.", 300, [192, 0, 2, 1]),
        a("www.probe.test.", 300, [192, 0, 2, 2]),
        rec(
            "www.probe.test.",
            300,
            RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))),
        ),
        rec(
            "txt.probe.test.",
            60,
            RData::TXT(TXT::new(vec!["v=spf1 -all".into(), "say \"hi\"".into()])),
        ),
        rec(
            "generic.probe.test.",
            60,
            RData::Unknown {
                code: RecordType::Unknown(65_280),
                rdata: NULL::with(vec![0xab, 0xcd]),
            },
        ),
    ]
}

/// The replies to one query, in order (none for `silent`).
fn answer(q: &Message, tcp: bool) -> Vec<Message> {
    let Some(question) = q.queries.first() else {
        return Vec::new();
    };
    let qname = name_text(question.name()).to_ascii_lowercase();
    let qtype = question.query_type();
    let mut r = Message::response(q.metadata.id, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.authoritative = true;
    r.add_query(Query::clone(question));
    match qname.as_str() {
        "silent.probe.test." => return Vec::new(),
        "servfail.probe.test." => {
            r.metadata.authoritative = false;
            r.metadata.response_code = ResponseCode::ServFail;
            return vec![r];
        }
        "truncated.probe.test." if !tcp => {
            r.metadata.truncation = true;
            return vec![r];
        }
        "truncated.probe.test." => {
            r.add_answer(a("truncated.probe.test.", 60, [192, 0, 2, 99]));
            return vec![r];
        }
        "otherid.probe.test." => {
            let mut stray = r.clone();
            stray.metadata.id = q.metadata.id.wrapping_add(1);
            stray.add_answer(a("otherid.probe.test.", 60, [192, 0, 2, 66]));
            r.add_answer(a("otherid.probe.test.", 60, [192, 0, 2, 77]));
            return vec![stray, r];
        }
        "big.probe.test." => {
            for i in 0..20 {
                let text = format!("{i:02} {}", "x".repeat(60));
                r.add_answer(rec("big.probe.test.", 60, RData::TXT(TXT::new(vec![text]))));
            }
            return vec![r];
        }
        _ => {}
    }
    if !qname.ends_with("probe.test.") {
        r.metadata.authoritative = false;
        r.metadata.response_code = ResponseCode::Refused;
        return vec![r];
    }
    let zone = zone();
    let owned: Vec<&Record> = zone
        .iter()
        .filter(|rec| name_text(&rec.name).to_ascii_lowercase() == qname)
        .collect();
    if owned.is_empty() {
        r.metadata.response_code = ResponseCode::NXDomain;
        r.add_authority(soa());
        return vec![r];
    }
    let answers: Vec<Record> = owned
        .into_iter()
        .filter(|rec| qtype == RecordType::ANY || rec.record_type() == qtype)
        .cloned()
        .collect();
    if answers.is_empty() {
        r.add_authority(soa());
    } else {
        r.add_answers(answers);
        r.add_authority(ns());
        r.add_additional(a("ns1.probe.test.", 3600, [192, 0, 2, 53]));
    }
    vec![r]
}
