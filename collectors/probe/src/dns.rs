//! The dns prober, as blackbox_exporter's `prober/dns.go`: one query, built with hickory's
//! protocol crate and sent over a socket of its own (no resolver, no cache, no retry), to the
//! server in the target (`host[:port]`, port 53 by default), then the rcode and each
//! section's records checked. Records are matched in the text form miekg/dns prints them
//! (`example.com.\t3600\tIN\tA\t192.0.2.1`), which blackbox_exporter's regexes are written
//! against.
//!
//! Metrics, as upstream: `probe_dns_duration_seconds{phase="resolve"|"connect"|"request"}`,
//! `probe_dns_answer_rrs`, `probe_dns_authority_rrs`, `probe_dns_additional_rrs`,
//! `probe_dns_query_succeeded`, `probe_dns_serial` (queries of type SOA), and the resolution
//! gauges of the server's name.

use crate::config::{DnsProbe, RrValidator};
use crate::log::ProbeLog;
use crate::prober::Probe;
use hickory_proto::op::{Edns, Header, Message, Query};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use regex::Regex;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};

#[cfg(test)]
mod testserver;

const DURATION: &str = "probe_dns_duration_seconds";
const DURATION_HELP: &str = "Duration of DNS request by phase";
const ANSWER: &str = "probe_dns_answer_rrs";
const ANSWER_HELP: &str = "Returns number of entries in the answer resource record list";
const AUTHORITY: &str = "probe_dns_authority_rrs";
const AUTHORITY_HELP: &str = "Returns number of entries in the authority resource record list";
const ADDITIONAL: &str = "probe_dns_additional_rrs";
const ADDITIONAL_HELP: &str = "Returns number of entries in the additional resource record list";
const SUCCEEDED: &str = "probe_dns_query_succeeded";
const SUCCEEDED_HELP: &str = "Displays whether or not the query was executed successfully";
const SERIAL: &str = "probe_dns_serial";
const SERIAL_HELP: &str = "Returns the serial number of the zone";

/// What miekg/dns reads a UDP answer into when the query has no EDNS0 (blackbox_exporter
/// sends none): a longer datagram is cut there and then fails to decode, as upstream.
const UDP_READ_SIZE: usize = 512;

/// The TYPE of SOA, whose answers set `probe_dns_serial`.
const TYPE_SOA: u16 = 6;

/// miekg/dns's `TypeToString`: the mnemonics `query_type` accepts (case-sensitive) and the
/// names records are printed with.
const TYPES: &[(u16, &str)] = &[
    (0, "None"),
    (1, "A"),
    (2, "NS"),
    (3, "MD"),
    (4, "MF"),
    (5, "CNAME"),
    (6, "SOA"),
    (7, "MB"),
    (8, "MG"),
    (9, "MR"),
    (10, "NULL"),
    (12, "PTR"),
    (13, "HINFO"),
    (14, "MINFO"),
    (15, "MX"),
    (16, "TXT"),
    (17, "RP"),
    (18, "AFSDB"),
    (19, "X25"),
    (20, "ISDN"),
    (21, "RT"),
    (23, "NSAP-PTR"),
    (24, "SIG"),
    (25, "KEY"),
    (26, "PX"),
    (27, "GPOS"),
    (28, "AAAA"),
    (29, "LOC"),
    (30, "NXT"),
    (31, "EID"),
    (32, "NIMLOC"),
    (33, "SRV"),
    (34, "ATMA"),
    (35, "NAPTR"),
    (36, "KX"),
    (37, "CERT"),
    (39, "DNAME"),
    (41, "OPT"),
    (42, "APL"),
    (43, "DS"),
    (44, "SSHFP"),
    (45, "IPSECKEY"),
    (46, "RRSIG"),
    (47, "NSEC"),
    (48, "DNSKEY"),
    (49, "DHCID"),
    (50, "NSEC3"),
    (51, "NSEC3PARAM"),
    (52, "TLSA"),
    (53, "SMIMEA"),
    (55, "HIP"),
    (56, "NINFO"),
    (57, "RKEY"),
    (58, "TALINK"),
    (59, "CDS"),
    (60, "CDNSKEY"),
    (61, "OPENPGPKEY"),
    (62, "CSYNC"),
    (63, "ZONEMD"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (99, "SPF"),
    (100, "UINFO"),
    (101, "UID"),
    (102, "GID"),
    (103, "UNSPEC"),
    (104, "NID"),
    (105, "L32"),
    (106, "L64"),
    (107, "LP"),
    (108, "EUI48"),
    (109, "EUI64"),
    (128, "NXNAME"),
    (249, "TKEY"),
    (250, "TSIG"),
    (251, "IXFR"),
    (252, "AXFR"),
    (253, "MAILB"),
    (254, "MAILA"),
    (255, "ANY"),
    (256, "URI"),
    (257, "CAA"),
    (258, "AVC"),
    (260, "AMTRELAY"),
    (261, "RESINFO"),
    (32768, "TA"),
    (32769, "DLV"),
    (65535, "Reserved"),
];

/// Types miekg/dns names but has no record struct for: it prints their records in the
/// RFC 3597 form, header included (`CLASS1\tTYPE34`).
const TYPES_WITHOUT_STRUCT: &[u16] = &[0, 34, 103, 251, 252, 253, 254, 65535];

/// miekg/dns's `ClassToString`.
const CLASSES: &[(u16, &str)] = &[
    (1, "IN"),
    (2, "CS"),
    (3, "CH"),
    (4, "HS"),
    (254, "NONE"),
    (255, "ANY"),
];

/// miekg/dns's `RcodeToString` (16 is BADSIG, also BADVERS).
const RCODES: &[(u16, &str)] = &[
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (6, "YXDOMAIN"),
    (7, "YXRRSET"),
    (8, "NXRRSET"),
    (9, "NOTAUTH"),
    (10, "NOTZONE"),
    (11, "DSOTYPENI"),
    (16, "BADSIG"),
    (17, "BADKEY"),
    (18, "BADTIME"),
    (19, "BADMODE"),
    (20, "BADNAME"),
    (21, "BADALG"),
    (22, "BADTRUNC"),
    (23, "BADCOOKIE"),
];

/// miekg/dns's `OpcodeToString`.
const OPCODES: &[(u8, &str)] = &[
    (0, "QUERY"),
    (1, "IQUERY"),
    (2, "STATUS"),
    (4, "NOTIFY"),
    (5, "UPDATE"),
];

fn lookup_name<T: Copy + PartialEq>(table: &[(T, &'static str)], v: T) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == v).map(|(_, n)| *n)
}

fn lookup_value<T: Copy>(table: &[(T, &'static str)], name: &str) -> Option<T> {
    table.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
}

/// A `query_type` as miekg/dns's `StringToType` knows it (exact mnemonic, e.g. `AAAA`).
pub fn parse_type(s: &str) -> Option<u16> {
    lookup_value(TYPES, s)
}

/// A `query_class` as miekg/dns's `StringToClass` knows it (`IN`, `CS`, `CH`, `HS`, `NONE`,
/// `ANY`).
pub fn parse_class(s: &str) -> Option<u16> {
    lookup_value(CLASSES, s)
}

/// A `valid_rcodes` entry as miekg/dns's `StringToRcode` knows it (`NOERROR`, `NXDOMAIN`, ...;
/// `NOTIMPL` too).
pub fn parse_rcode(s: &str) -> Option<u16> {
    if s == "NOTIMPL" {
        return Some(4);
    }
    lookup_value(RCODES, s)
}

/// miekg/dns's `Type.String()`.
pub fn type_name(t: u16) -> String {
    lookup_name(TYPES, t).map_or_else(|| format!("TYPE{t}"), str::to_string)
}

/// miekg/dns's `Class.String()`.
pub fn class_name(c: u16) -> String {
    lookup_name(CLASSES, c).map_or_else(|| format!("CLASS{c}"), str::to_string)
}

/// A Go map of these names as `fmt` prints it (`map[1:IN 2:CS]`), for the log lines that
/// list what is known.
fn go_map<T: Copy + std::fmt::Display>(table: &[(T, &str)]) -> String {
    let items: Vec<String> = table.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("map[{}]", items.join(" "))
}

// ---------------------------------------------------------------------------------------
// Records in miekg/dns's text form.

fn push_escaped_byte(s: &mut String, b: u8) {
    let _ = write!(s, "\\{b:03}");
}

/// miekg/dns's `sprintName` over a name's labels: `. ' @ ; ( ) " \` and space escaped with a
/// backslash, unprintable bytes as `\DDD`, and a trailing dot (the root is `.`).
pub fn name_text(name: &Name) -> String {
    let mut s = String::new();
    for label in name.iter() {
        for &b in label {
            match b {
                b'.' | b' ' | b'\'' | b'@' | b';' | b'(' | b')' | b'"' | b'\\' => {
                    s.push('\\');
                    s.push(char::from(b));
                }
                0x20..=0x7e => s.push(char::from(b)),
                _ => push_escaped_byte(&mut s, b),
            }
        }
        s.push('.');
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}

/// miekg/dns's `sprintTxt`: each string quoted, `"` and `\` escaped, unprintable bytes as
/// `\DDD`, separated by a space.
pub fn txt_text<S: AsRef<[u8]>>(strings: &[S]) -> String {
    let mut s = String::new();
    for (i, one) in strings.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push('"');
        for &b in one.as_ref() {
            match b {
                b'"' | b'\\' => {
                    s.push('\\');
                    s.push(char::from(b));
                }
                0x20..=0x7e => s.push(char::from(b)),
                _ => push_escaped_byte(&mut s, b),
            }
        }
        s.push('"');
    }
    s
}

/// miekg/dns's `RR_Header.String()`: owner, TTL, class and type, each followed by a tab.
fn header_text(name: &Name, ttl: u32, class: u16, rtype: u16) -> String {
    format!(
        "{}\t{ttl}\t{}\t{}\t",
        name_text(name),
        class_name(class),
        type_name(rtype)
    )
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A record's data in wire form, for the generic presentation.
fn rdata_wire(data: &RData) -> Vec<u8> {
    if let RData::Unknown { rdata, .. } = data {
        return rdata.anything.clone();
    }
    let mut buf = Vec::new();
    let ok = {
        let mut enc = BinEncoder::new(&mut buf);
        data.emit(&mut enc).is_ok()
    };
    if !ok {
        buf.clear();
    }
    buf
}

/// One record as miekg/dns's `RR.String()` prints it, which blackbox_exporter's
/// `validate_*_rrs` regexes match: exact for A, AAAA, NS, CNAME, PTR, MX, TXT, SOA and SRV,
/// and for types miekg/dns does not know (`CLASS1\tTYPE65280\t\# 2 abcd`); other types get
/// their mnemonic and RFC 3597's generic data (`\# <length> <hex>`).
pub fn rr_text(r: &Record) -> String {
    let rtype = u16::from(r.record_type());
    let class = u16::from(r.dns_class);
    let data = match &r.data {
        RData::A(a) => Some(a.0.to_string()),
        RData::AAAA(a) => Some(a.0.to_string()),
        RData::NS(n) => Some(name_text(&n.0)),
        RData::CNAME(n) => Some(name_text(&n.0)),
        RData::PTR(n) => Some(name_text(&n.0)),
        RData::MX(mx) => Some(format!("{} {}", mx.preference, name_text(&mx.exchange))),
        RData::TXT(t) => Some(txt_text(&t.txt_data)),
        RData::SOA(soa) => Some(format!(
            "{} {} {} {} {} {} {}",
            name_text(&soa.mname),
            name_text(&soa.rname),
            soa.serial,
            // Unsigned on the wire; hickory keeps these three as i32.
            soa.refresh as u32,
            soa.retry as u32,
            soa.expire as u32,
            soa.minimum
        )),
        RData::SRV(srv) => Some(format!(
            "{} {} {} {}",
            srv.priority,
            srv.weight,
            srv.port,
            name_text(&srv.target)
        )),
        _ => None,
    };
    if let Some(data) = data {
        return header_text(&r.name, r.ttl, class, rtype) + &data;
    }
    let wire = rdata_wire(&r.data);
    let generic = format!("\\# {} {}", wire.len(), hex(&wire));
    if lookup_name(TYPES, rtype).is_some() && !TYPES_WITHOUT_STRUCT.contains(&rtype) {
        header_text(&r.name, r.ttl, class, rtype) + &generic
    } else {
        format!(
            "{}\t{}\tCLASS{class}\tTYPE{rtype}\t{generic}",
            name_text(&r.name),
            r.ttl
        )
    }
}

/// miekg/dns's `OPT.String()` (the EDNS0 pseudo-record of an answer's additional section),
/// without the options.
pub fn opt_text(e: &Edns) -> String {
    let mut s = format!("\n;; OPT PSEUDOSECTION:\n; EDNS: version {}; ", e.version());
    s.push_str(if e.flags().dnssec_ok {
        "flags: do; "
    } else {
        "flags:; "
    });
    let mbz = e.flags().z & 0x7fff;
    if mbz != 0 {
        let _ = write!(s, "MBZ: 0x{mbz:04x}, ");
    }
    let _ = write!(s, "udp: {}", e.max_payload());
    s
}

/// The records of one section, as the validators see them. miekg/dns keeps the OPT
/// pseudo-record among the additional records; hickory takes it out, so it is put back last
/// (where servers put it).
fn section_texts(records: &[Record], edns: Option<&Edns>) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(rr_text).collect();
    if let Some(e) = edns {
        v.push(opt_text(e));
    }
    v
}

/// The answer's rcode (with EDNS0's extended bits).
fn rcode_of(m: &Message) -> u16 {
    u16::from(m.metadata.response_code)
}

/// miekg/dns's `Msg.String()`: the dig-like dump blackbox_exporter logs as `Got response`.
pub fn msg_text(m: &Message) -> String {
    let md = &m.metadata;
    let rcode = rcode_of(m);
    let mut s = format!(
        ";; opcode: {}, status: {}, id: {}\n;; flags:",
        lookup_name(OPCODES, u8::from(md.op_code)).unwrap_or(""),
        lookup_name(RCODES, rcode).unwrap_or(""),
        md.id
    );
    for (on, flag) in [
        (
            md.message_type == hickory_proto::op::MessageType::Response,
            " qr",
        ),
        (md.authoritative, " aa"),
        (md.truncation, " tc"),
        (md.recursion_desired, " rd"),
        (md.recursion_available, " ra"),
        (md.authentic_data, " ad"),
        (md.checking_disabled, " cd"),
    ] {
        if on {
            s.push_str(flag);
        }
    }
    let additional = additional_count(m);
    let _ = writeln!(
        s,
        "; QUERY: {}, ANSWER: {}, AUTHORITY: {}, ADDITIONAL: {additional}",
        m.queries.len(),
        m.answers.len(),
        m.authorities.len()
    );
    if let Some(e) = &m.edns {
        s.push_str(&opt_text(e));
        s.push('\n');
    }
    if !m.queries.is_empty() {
        s.push_str("\n;; QUESTION SECTION:\n");
        for q in &m.queries {
            let _ = writeln!(
                s,
                ";{}\t{}\t {}",
                name_text(q.name()),
                class_name(u16::from(q.query_class())),
                type_name(u16::from(q.query_type()))
            );
        }
    }
    for (title, records) in [
        ("ANSWER", &m.answers),
        ("AUTHORITY", &m.authorities),
        ("ADDITIONAL", &m.additionals),
    ] {
        if !records.is_empty() {
            let _ = writeln!(s, "\n;; {title} SECTION:");
            for r in records {
                s.push_str(&rr_text(r));
                s.push('\n');
            }
        }
    }
    s
}

/// The additional records as miekg/dns counts them: the OPT (and a TSIG) included.
fn additional_count(m: &Message) -> usize {
    m.additionals.len() + usize::from(m.edns.is_some()) + usize::from(m.signature.is_some())
}

// ---------------------------------------------------------------------------------------
// The query.

/// Go's `net.SplitHostPort`: `host:port` or `[v6]:port`; `None` when there is no port (or
/// too many colons), the target then being the host.
pub fn split_host_port(target: &str) -> Option<(&str, &str)> {
    if let Some(rest) = target.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        if host.contains(['[', ']']) || port.contains(['[', ']']) {
            return None;
        }
        return Some((host, port));
    }
    let (host, port) = target.rsplit_once(':')?;
    if host.contains(':') || host.contains(['[', ']']) || port.contains(['[', ']']) {
        return None;
    }
    Some((host, port))
}

/// The query name as miekg/dns packs `dns.Fqdn(name)`: labels split at unescaped dots, `\X`
/// and `\DDD` escapes; a name with non-ASCII characters is converted to punycode first (as
/// current blackbox_exporter does).
pub fn query_name(s: &str) -> Result<Name, String> {
    if !s.is_ascii() {
        if let Ok(mut n) = Name::from_utf8(s) {
            n.set_fqdn(true);
            return Ok(n);
        }
    }
    if s == "." {
        return Ok(Name::root());
    }
    let bytes = s.as_bytes();
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\\' => {
                let ddd = bytes
                    .get(i + 1..i + 4)
                    .filter(|d| d.iter().all(u8::is_ascii_digit));
                if let Some(d) = ddd {
                    let v = d.iter().fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'));
                    let v = u8::try_from(v)
                        .map_err(|_| format!("query name {s:?}: escape \\{v} is not a byte"))?;
                    label.push(v);
                    i += 4;
                } else {
                    let c = bytes
                        .get(i + 1)
                        .ok_or_else(|| format!("query name {s:?}: a dangling backslash"))?;
                    label.push(*c);
                    i += 2;
                }
            }
            b'.' => {
                if label.is_empty() {
                    return Err(format!("query name {s:?}: an empty label"));
                }
                labels.push(std::mem::take(&mut label));
                i += 1;
            }
            _ => {
                label.push(b);
                i += 1;
            }
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    let mut name = Name::from_labels(labels).map_err(|e| format!("query name {s:?}: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// The query: a random ID, RD as configured, one question. Returns the ID and the wire form.
fn build_query(name: &str, qtype: u16, qclass: u16, rd: bool) -> Result<(u16, Vec<u8>), String> {
    let name = query_name(name)?;
    let mut m = Message::query();
    m.metadata.recursion_desired = rd;
    let mut q = Query::query(name, RecordType::from(qtype));
    q.set_query_class(DNSClass::from(qclass));
    m.add_query(q);
    let wire = m.to_vec().map_err(|e| format!("packing the query: {e}"))?;
    Ok((m.metadata.id, wire))
}

// ---------------------------------------------------------------------------------------
// The exchange.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    fn net(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// How far an exchange got, readable after it was cut by the deadline.
#[derive(Default)]
struct Progress {
    /// When the query started to be written, after the dial: miekg/dns's `rtt` starts there
    /// (and is zero when the dial or the write failed).
    sent: Option<Instant>,
    local: Option<SocketAddr>,
}

/// One exchange as miekg/dns's `Client.Exchange` does it: dial, write, read the answer
/// (over UDP, answers with another ID are skipped; over TCP, one is an error).
async fn exchange(
    transport: Transport,
    proto: &str,
    server: SocketAddr,
    source: Option<IpAddr>,
    query: &Result<(u16, Vec<u8>), String>,
    at: &mut Progress,
) -> Result<Message, String> {
    match transport {
        Transport::Udp => {
            let any: IpAddr = if server.is_ipv4() {
                Ipv4Addr::UNSPECIFIED.into()
            } else {
                Ipv6Addr::UNSPECIFIED.into()
            };
            let bind = SocketAddr::new(source.unwrap_or(any), 0);
            let sock = UdpSocket::bind(bind)
                .await
                .map_err(|e| format!("dial {proto} {server}: bind {bind}: {e}"))?;
            sock.connect(server)
                .await
                .map_err(|e| format!("dial {proto} {server}: {e}"))?;
            let local = sock.local_addr().ok();
            at.local = local;
            let l = local.map_or_else(String::new, |a| a.to_string());
            let (id, wire) = query.as_ref().map_err(Clone::clone)?;
            at.sent = Some(Instant::now());
            if let Err(e) = sock.send(wire).await {
                at.sent = None;
                return Err(format!("write {proto} {l}->{server}: {e}"));
            }
            let mut buf = [0u8; UDP_READ_SIZE];
            loop {
                let n = sock
                    .recv(&mut buf)
                    .await
                    .map_err(|e| format!("read {proto} {l}->{server}: {e}"))?;
                let m = decode(&buf[..n])?;
                if m.metadata.id == *id {
                    return Ok(m);
                }
            }
        }
        Transport::Tcp => {
            let sock = if server.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .map_err(|e| format!("dial {proto} {server}: socket: {e}"))?;
            if let Some(src) = source {
                let bind = SocketAddr::new(src, 0);
                sock.bind(bind)
                    .map_err(|e| format!("dial {proto} {server}: bind {bind}: {e}"))?;
            }
            let mut stream = sock
                .connect(server)
                .await
                .map_err(|e| format!("dial {proto} {server}: connect: {e}"))?;
            let local = stream.local_addr().ok();
            at.local = local;
            let l = local.map_or_else(String::new, |a| a.to_string());
            let (id, wire) = query.as_ref().map_err(Clone::clone)?;
            let len = u16::try_from(wire.len())
                .map_err(|_| format!("dns: a query of {} bytes is too long", wire.len()))?;
            let mut framed = Vec::with_capacity(wire.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(wire);
            at.sent = Some(Instant::now());
            if let Err(e) = stream.write_all(&framed).await {
                at.sent = None;
                return Err(format!("write {proto} {l}->{server}: {e}"));
            }
            let mut len = [0u8; 2];
            stream
                .read_exact(&mut len)
                .await
                .map_err(|e| format!("read {proto} {l}->{server}: {e}"))?;
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream
                .read_exact(&mut body)
                .await
                .map_err(|e| format!("read {proto} {l}->{server}: {e}"))?;
            let m = decode(&body)?;
            if m.metadata.id != *id {
                return Err("dns: id mismatch".to_string());
            }
            Ok(m)
        }
    }
}

/// Decodes an answer. A header alone is an answer with empty sections whatever its counts
/// say, as miekg/dns takes it (some servers answer REFUSED that way).
fn decode(wire: &[u8]) -> Result<Message, String> {
    if wire.len() < 12 {
        return Err("dns: short read".to_string());
    }
    if wire.len() == 12 {
        let header = Header::read(&mut BinDecoder::new(wire))
            .map_err(|e| format!("dns: decoding the answer's header: {e}"))?;
        let md = header.metadata;
        let mut m = Message::new(md.id, md.message_type, md.op_code);
        m.metadata = md;
        return Ok(m);
    }
    Message::from_vec(wire).map_err(|e| format!("dns: decoding the answer: {e}"))
}

// ---------------------------------------------------------------------------------------
// Validation.

/// blackbox_exporter's `validRcode`: `valid_rcodes` (NOERROR when empty) must hold the rcode.
fn valid_rcode(rcode: u16, valid: &[String], log: &mut ProbeLog) -> bool {
    let mut codes: Vec<u16> = Vec::new();
    if valid.is_empty() {
        codes.push(0);
    } else {
        for v in valid {
            match parse_rcode(v) {
                Some(c) => codes.push(c),
                None => {
                    log.error(
                        "Invalid rcode",
                        &[("rcode", v), ("known_rcode", &go_map(RCODES))],
                    );
                    return false;
                }
            }
        }
    }
    let name = lookup_name(RCODES, rcode).unwrap_or("");
    if codes.contains(&rcode) {
        log.info(
            "Rcode is valid",
            &[("rcode", &rcode), ("string_rcode", &name)],
        );
        return true;
    }
    let list: Vec<String> = codes.iter().map(u16::to_string).collect();
    log.error(
        "Rcode is not one of the valid rcodes",
        &[
            ("rcode", &rcode),
            ("string_rcode", &name),
            ("valid_rcodes", &format!("[{}]", list.join(" "))),
        ],
    );
    false
}

/// blackbox_exporter's `validRRs` over records in their text form.
pub fn valid_rrs(rrs: &[String], v: &RrValidator, log: &mut ProbeLog) -> bool {
    if rrs.is_empty() && !v.fail_if_not_matches_regexp.is_empty() {
        log.error(
            "fail_if_not_matches_regexp specified but no RRs returned",
            &[],
        );
        return false;
    }
    if rrs.is_empty() && !v.fail_if_none_matches_regexp.is_empty() {
        log.error(
            "fail_if_none_matches_regexp specified but no RRs returned",
            &[],
        );
        return false;
    }
    if rrs.is_empty() {
        // Upstream compiles the regexes as it matches: with no records, nothing else fails.
        return true;
    }
    let compile = |list: &[String], log: &mut ProbeLog| -> Option<Vec<Regex>> {
        let mut out = Vec::with_capacity(list.len());
        for re in list {
            match Regex::new(re) {
                Ok(r) => out.push(r),
                Err(e) => {
                    log.error("Error matching regexp", &[("regexp", re), ("err", &e)]);
                    return None;
                }
            }
        }
        Some(out)
    };
    let Some(matches) = compile(&v.fail_if_matches_regexp, log) else {
        return false;
    };
    let Some(all_match) = compile(&v.fail_if_all_match_regexp, log) else {
        return false;
    };
    let Some(not_matches) = compile(&v.fail_if_not_matches_regexp, log) else {
        return false;
    };
    let Some(none_matches) = compile(&v.fail_if_none_matches_regexp, log) else {
        return false;
    };
    let mut any_match = false;
    let mut all_matched = true;
    for rr in rrs {
        log.info("Validating RR", &[("rr", rr)]);
        if let Some(re) = matches.iter().find(|re| re.is_match(rr)) {
            log.error(
                "At least one RR matched regexp",
                &[("regexp", &re.as_str()), ("rr", rr)],
            );
            return false;
        }
        if all_match.iter().any(|re| !re.is_match(rr)) {
            all_matched = false;
        }
        if let Some(re) = not_matches.iter().find(|re| !re.is_match(rr)) {
            log.error(
                "At least one RR did not match regexp",
                &[("regexp", &re.as_str()), ("rr", rr)],
            );
            return false;
        }
        if none_matches.iter().any(|re| re.is_match(rr)) {
            any_match = true;
        }
    }
    if !all_match.is_empty() && !all_matched {
        log.error("Not all RRs matched regexp", &[]);
        return false;
    }
    if !none_matches.is_empty() && !any_match {
        log.error("None of the RRs did matched any regexp", &[]);
        return false;
    }
    true
}

// ---------------------------------------------------------------------------------------
// The prober.

/// Probes the DNS server `p.target` (`host[:port]`) with `module.dns`'s query.
pub async fn probe(p: &mut Probe<'_>) -> bool {
    for phase in ["resolve", "connect", "request"] {
        p.out
            .gauge_with(DURATION, DURATION_HELP, &[("phase", phase)], 0.0);
    }
    p.out.gauge(ANSWER, ANSWER_HELP, 0.0);
    p.out.gauge(AUTHORITY, AUTHORITY_HELP, 0.0);
    p.out.gauge(ADDITIONAL, ADDITIONAL_HELP, 0.0);
    p.out.gauge(SUCCEEDED, SUCCEEDED_HELP, 0.0);
    let cfg: &DnsProbe = &p.module.dns;

    // go-kit's logfmt drops the spaces of these keys ("Class seen" -> "Classseen").
    let qclass = if cfg.query_class.is_empty() {
        1
    } else if let Some(c) = parse_class(&cfg.query_class) {
        c
    } else {
        p.log.error(
            "Invalid query class",
            &[
                ("Classseen", &cfg.query_class),
                ("Existingclasses", &go_map(CLASSES)),
            ],
        );
        return false;
    };
    let qtype = if cfg.query_type.is_empty() {
        255
    } else if let Some(t) = parse_type(&cfg.query_type) {
        t
    } else {
        p.log.error(
            "Invalid query type",
            &[
                ("Typeseen", &cfg.query_type),
                ("Existingtypes", &go_map(TYPES)),
            ],
        );
        return false;
    };
    let transport = match cfg.transport_protocol.as_str() {
        "" | "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        other => {
            p.log.error(
                "Configuration error: Expected transport protocol udp or tcp",
                &[("protocol", &other)],
            );
            return false;
        }
    };

    let (host, port) = split_host_port(p.target).unwrap_or((p.target, "53"));
    let Ok(ip) = p.resolve(host, cfg).await.map(|ip| ip.to_canonical()) else {
        return false;
    };
    let lookup = p
        .out
        .value("probe_dns_lookup_time_seconds", &[])
        .unwrap_or(0.0);
    p.out
        .gauge_add(DURATION, DURATION_HELP, &[("phase", "resolve")], lookup);
    let target_ip = match ip {
        IpAddr::V4(_) => format!("{ip}:{port}"),
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
    };
    let proto = format!(
        "{}{}",
        transport.net(),
        if ip.is_ipv4() { "4" } else { "6" }
    );

    let Ok(source) = p.source_address(&cfg.source_ip_address, "Using local address") else {
        return false;
    };

    let query = build_query(&cfg.query_name, qtype, qclass, cfg.recursion_desired);
    p.log.info(
        "Making DNS query",
        &[
            ("target", &target_ip),
            ("dial_protocol", &proto),
            ("query", &cfg.query_name),
            ("type", &qtype),
            ("class", &qclass),
        ],
    );

    let start = Instant::now();
    let mut at = Progress::default();
    let result = match port.parse::<u16>() {
        Err(_) => Err(format!("dial {proto} {target_ip}: unknown port {port:?}")),
        Ok(port) => {
            let server = SocketAddr::new(ip, port);
            let deadline = tokio::time::Instant::from_std(p.deadline);
            let fut = exchange(transport, &proto, server, source, &query, &mut at);
            match tokio::time::timeout_at(deadline, fut).await {
                Ok(r) => r,
                Err(_) => Err(match (at.sent, at.local) {
                    (Some(_), Some(l)) => {
                        format!("read {proto} {l}->{server}: i/o timeout")
                    }
                    _ => format!("dial {proto} {server}: i/o timeout"),
                }),
            }
        }
    };
    let end = Instant::now();
    let rtt = at
        .sent
        .map_or(Duration::ZERO, |s| end.saturating_duration_since(s));
    let total = end.saturating_duration_since(start);
    p.out.gauge_with(
        DURATION,
        DURATION_HELP,
        &[("phase", "connect")],
        total.saturating_sub(rtt).as_secs_f64(),
    );
    p.out.gauge_with(
        DURATION,
        DURATION_HELP,
        &[("phase", "request")],
        rtt.as_secs_f64(),
    );
    let response = match result {
        Ok(m) => m,
        Err(e) => {
            p.log
                .error("Error while sending a DNS query", &[("err", &e)]);
            return false;
        }
    };
    p.log
        .info("Got response", &[("response", &msg_text(&response))]);

    p.out
        .gauge(ANSWER, ANSWER_HELP, response.answers.len() as f64);
    p.out
        .gauge(AUTHORITY, AUTHORITY_HELP, response.authorities.len() as f64);
    p.out.gauge(
        ADDITIONAL,
        ADDITIONAL_HELP,
        additional_count(&response) as f64,
    );
    p.out.gauge(SUCCEEDED, SUCCEEDED_HELP, 1.0);

    if qtype == TYPE_SOA {
        let mut serial = 0.0;
        for r in &response.answers {
            if let RData::SOA(soa) = &r.data {
                serial = f64::from(soa.serial);
            }
        }
        p.out.gauge(SERIAL, SERIAL_HELP, serial);
    }

    if !valid_rcode(rcode_of(&response), &cfg.valid_rcodes, p.log) {
        return false;
    }
    let sections = [
        (
            "Answer RRs",
            section_texts(&response.answers, None),
            &cfg.validate_answer_rrs,
        ),
        (
            "Authority RRs",
            section_texts(&response.authorities, None),
            &cfg.validate_authority_rrs,
        ),
        (
            "Additional RRs",
            section_texts(&response.additionals, response.edns.as_ref()),
            &cfg.validate_additional_rrs,
        ),
    ];
    for (what, rrs, validator) in &sections {
        p.log.info(&format!("Validating {what}"), &[]);
        if !valid_rrs(rrs, validator, p.log) {
            p.log.error(&format!("{what} validation failed"), &[]);
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::testserver::{TestServer, ZONE_SERIAL};
    use super::*;
    use crate::allow::Allow;
    use crate::config::{AllowConfig, BlackboxModule};
    use crate::prober::testing::{self, Ran};
    use hickory_proto::op::{MessageType, OpCode, ResponseCode};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, NULL, PTR, SOA, SRV, TXT};

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn rec(owner: &str, ttl: u32, data: RData) -> Record {
        Record::from_rdata(n(owner), ttl, data)
    }

    #[test]
    fn presentation_as_miekg() {
        let cases: Vec<(Record, &str)> = vec![
            (
                rec("example.com.", 3600, RData::A(A("192.0.2.1".parse().unwrap()))),
                "example.com.\t3600\tIN\tA\t192.0.2.1",
            ),
            (
                rec("v6.example.com.", 60, RData::AAAA(AAAA("2001:db8::1".parse().unwrap()))),
                "v6.example.com.\t60\tIN\tAAAA\t2001:db8::1",
            ),
            (
                rec("m.example.com.", 60, RData::AAAA(AAAA("::ffff:192.0.2.1".parse().unwrap()))),
                "m.example.com.\t60\tIN\tAAAA\t::ffff:192.0.2.1",
            ),
            (
                rec("www.example.com.", 300, RData::CNAME(CNAME(n("web.example.com.")))),
                "www.example.com.\t300\tIN\tCNAME\tweb.example.com.",
            ),
            (
                rec("example.com.", 86400, RData::NS(NS(n("a.iana-servers.net.")))),
                "example.com.\t86400\tIN\tNS\ta.iana-servers.net.",
            ),
            (
                rec("example.com.", 300, RData::MX(MX::new(10, n("mail.example.com.")))),
                "example.com.\t300\tIN\tMX\t10 mail.example.com.",
            ),
            (
                rec(
                    "example.com.",
                    300,
                    RData::TXT(TXT::new(vec![
                        "v=spf1 -all".into(),
                        "q\"b\\s".into(),
                        "tab\there".into(),
                    ])),
                ),
                "example.com.\t300\tIN\tTXT\t\"v=spf1 -all\" \"q\\\"b\\\\s\" \"tab\\009here\"",
            ),
            (
                rec(
                    "example.com.",
                    3600,
                    RData::SOA(SOA::new(
                        n("ns.icann.org."),
                        n("noc.dns.icann.org."),
                        2_024_081_431,
                        7200,
                        3600,
                        1_209_600,
                        3600,
                    )),
                ),
                "example.com.\t3600\tIN\tSOA\tns.icann.org. noc.dns.icann.org. 2024081431 7200 3600 1209600 3600",
            ),
            (
                rec(
                    "x.example.",
                    1,
                    RData::SOA(SOA::new(n("a."), n("b."), 1, -1, 2, 3, 4)),
                ),
                "x.example.\t1\tIN\tSOA\ta. b. 1 4294967295 2 3 4",
            ),
            (
                rec("1.2.0.192.in-addr.arpa.", 60, RData::PTR(PTR(n("host.example.com.")))),
                "1.2.0.192.in-addr.arpa.\t60\tIN\tPTR\thost.example.com.",
            ),
            (
                rec(
                    "_sip._tcp.example.com.",
                    60,
                    RData::SRV(SRV::new(10, 20, 5060, n("sip.example.com."))),
                ),
                "_sip._tcp.example.com.\t60\tIN\tSRV\t10 20 5060 sip.example.com.",
            ),
            (
                rec(
                    "u.example.",
                    5,
                    RData::Unknown {
                        code: RecordType::Unknown(65_280),
                        rdata: NULL::with(vec![0xab, 0xcd]),
                    },
                ),
                "u.example.\t5\tCLASS1\tTYPE65280\t\\# 2 abcd",
            ),
            (
                // A type miekg/dns knows: its mnemonic, with RFC 3597 data.
                rec(
                    "ds.example.",
                    5,
                    RData::Unknown {
                        code: RecordType::Unknown(43),
                        rdata: NULL::with(vec![1, 2]),
                    },
                ),
                "ds.example.\t5\tIN\tDS\t\\# 2 0102",
            ),
        ];
        for (r, want) in cases {
            assert_eq!(rr_text(&r), want);
        }
        let mut odd = rec("a.b.", 0, RData::A(A(Ipv4Addr::LOCALHOST)));
        odd.name =
            Name::from_labels(vec![&b"a.b"[..], b"c d", b"x\x01\xff", b"@;()'\"\\"]).unwrap();
        odd.dns_class = DNSClass::CH;
        assert_eq!(
            rr_text(&odd),
            "a\\.b.c\\ d.x\\001\\255.\\@\\;\\(\\)\\'\\\"\\\\.\t0\tCH\tA\t127.0.0.1"
        );
        assert_eq!(name_text(&Name::root()), ".");
        assert_eq!(class_name(1), "IN");
        assert_eq!(class_name(42), "CLASS42");
        assert_eq!(type_name(23), "NSAP-PTR");
        assert_eq!(type_name(40), "TYPE40");
    }

    #[test]
    fn tables_as_miekg() {
        assert_eq!(parse_type("A"), Some(1));
        assert_eq!(parse_type("ANY"), Some(255));
        assert_eq!(parse_type("SOA"), Some(6));
        assert_eq!(parse_type("HTTPS"), Some(65));
        assert_eq!(parse_type("a"), None, "case-sensitive, as StringToType");
        assert_eq!(parse_type("TYPE1"), None);
        assert_eq!(parse_class("IN"), Some(1));
        assert_eq!(parse_class("CH"), Some(3));
        assert_eq!(parse_class("in"), None);
        assert_eq!(parse_rcode("NXDOMAIN"), Some(3));
        assert_eq!(parse_rcode("NOTIMP"), Some(4));
        assert_eq!(parse_rcode("NOTIMPL"), Some(4));
        assert_eq!(parse_rcode("BADSIG"), Some(16));
        assert_eq!(parse_rcode("nxdomain"), None);
        assert_eq!(go_map(&CLASSES[..2]), "map[1:IN 2:CS]");
        for t in TYPES.windows(2) {
            assert!(t[0].0 < t[1].0, "sorted as Go prints maps: {:?}", t);
        }
    }

    #[test]
    fn split_host_port_as_go() {
        assert_eq!(split_host_port("8.8.8.8:53"), Some(("8.8.8.8", "53")));
        assert_eq!(
            split_host_port("dns.example:5353"),
            Some(("dns.example", "5353"))
        );
        assert_eq!(
            split_host_port("[2001:db8::1]:53"),
            Some(("2001:db8::1", "53"))
        );
        assert_eq!(split_host_port("dns.example"), None);
        assert_eq!(split_host_port("2001:db8::1"), None, "too many colons");
        assert_eq!(split_host_port("[2001:db8::1]"), None, "missing port");
        assert_eq!(split_host_port("host:"), Some(("host", "")));
    }

    #[test]
    fn query_names_as_miekg_packs_them() {
        let labels = |s: &str| -> Vec<Vec<u8>> {
            query_name(s).unwrap().iter().map(<[u8]>::to_vec).collect()
        };
        assert_eq!(
            labels("www.Example.com"),
            [b"www".to_vec(), b"Example".to_vec(), b"com".to_vec()]
        );
        assert_eq!(labels("www.example.com."), labels("www.example.com"));
        assert_eq!(labels("a\\.b.c"), [b"a.b".to_vec(), b"c".to_vec()]);
        assert_eq!(labels("a\\032b.c"), [b"a b".to_vec(), b"c".to_vec()]);
        assert_eq!(labels("_dmarc.x"), [b"_dmarc".to_vec(), b"x".to_vec()]);
        assert!(query_name(".").unwrap().is_root());
        assert!(query_name("a..b").is_err());
        assert!(query_name("a\\").is_err());
        assert!(query_name(&"x".repeat(64)).is_err());
        assert_eq!(
            labels("bücher.example"),
            [b"xn--bcher-kva".to_vec(), b"example".to_vec()]
        );
        let (id, wire) = build_query("www.example.com", 28, 1, false).unwrap();
        let m = Message::from_vec(&wire).unwrap();
        assert_eq!(m.metadata.id, id);
        assert!(!m.metadata.recursion_desired);
        assert_eq!(m.metadata.message_type, MessageType::Query);
        assert!(m.edns.is_none(), "no EDNS0, as upstream");
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].query_type(), RecordType::AAAA);
        assert_eq!(m.queries[0].query_class(), DNSClass::IN);
    }

    #[test]
    fn msg_text_as_dig() {
        let mut m = Message::response(4242, OpCode::Query);
        m.metadata.authoritative = true;
        m.metadata.recursion_desired = true;
        m.metadata.response_code = ResponseCode::NXDomain;
        m.add_query(Query::query(n("nope.example."), RecordType::A));
        m.add_authority(rec(
            "example.",
            60,
            RData::SOA(SOA::new(n("ns.example."), n("h.example."), 7, 1, 2, 3, 4)),
        ));
        assert_eq!(
            msg_text(&m),
            ";; opcode: QUERY, status: NXDOMAIN, id: 4242\n;; flags: qr aa rd; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 0\n\n;; QUESTION SECTION:\n;nope.example.\tIN\t A\n\n;; AUTHORITY SECTION:\nexample.\t60\tIN\tSOA\tns.example. h.example. 7 1 2 3 4\n"
        );
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.set_dnssec_ok(true);
        m.set_edns(e);
        let m = Message::from_vec(&m.to_vec().unwrap()).unwrap();
        assert_eq!(additional_count(&m), 1, "the OPT counts, as in miekg/dns");
        let t = msg_text(&m);
        assert!(
            t.contains(
                "ADDITIONAL: 1\n\n;; OPT PSEUDOSECTION:\n; EDNS: version 0; flags: do; udp: 1232\n"
            ),
            "{t}"
        );
        assert_eq!(
            section_texts(&m.additionals, m.edns.as_ref()),
            ["\n;; OPT PSEUDOSECTION:\n; EDNS: version 0; flags: do; udp: 1232"]
        );
    }

    #[test]
    fn header_only_answers_decode_as_miekg() {
        // id 7, QR + RD, REFUSED; one question announced but none sent.
        let wire = [0, 7, 0x81, 0x05, 0, 1, 0, 0, 0, 0, 0, 0];
        let m = decode(&wire).unwrap();
        assert_eq!((m.metadata.id, rcode_of(&m)), (7, 5));
        assert!(m.queries.is_empty() && m.answers.is_empty());
        assert!(msg_text(&m)
            .starts_with(";; opcode: QUERY, status: REFUSED, id: 7\n;; flags: qr rd; QUERY: 0,"));
        assert_eq!(decode(&wire[..11]).unwrap_err(), "dns: short read");
        let mut cut = wire.to_vec();
        cut.push(3);
        assert!(decode(&cut)
            .unwrap_err()
            .starts_with("dns: decoding the answer: "));
    }

    fn rrs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn check(records: &[String], v: RrValidator) -> (bool, String) {
        let mut log = ProbeLog::new("m", "t");
        let ok = valid_rrs(records, &v, &mut log);
        (ok, log.text().to_string())
    }

    #[test]
    fn validators_as_upstream() {
        let two = rrs(&["a.\t60\tIN\tA\t192.0.2.1", "a.\t60\tIN\tA\t192.0.2.2"]);
        let re = |s: &str| vec![s.to_string()];
        let v = |f: fn(&mut RrValidator, Vec<String>), list: Vec<String>| {
            let mut v = RrValidator::default();
            f(&mut v, list);
            v
        };
        let matches = |v: &mut RrValidator, l| v.fail_if_matches_regexp = l;
        let all = |v: &mut RrValidator, l| v.fail_if_all_match_regexp = l;
        let not = |v: &mut RrValidator, l| v.fail_if_not_matches_regexp = l;
        let none = |v: &mut RrValidator, l| v.fail_if_none_matches_regexp = l;

        let (ok, log) = check(&two, v(matches, re("192\\.0\\.2\\.2$")));
        assert!(
            !ok && log.contains("msg=\"At least one RR matched regexp\""),
            "{log}"
        );
        assert!(check(&two, v(matches, re("192\\.0\\.2\\.9"))).0);

        // As upstream's code has it (whatever the name suggests): fails unless all match.
        let (ok, log) = check(&two, v(all, re("192\\.0\\.2\\.1$")));
        assert!(
            !ok && log.contains("msg=\"Not all RRs matched regexp\""),
            "{log}"
        );
        assert!(check(&two, v(all, re("\tIN\tA\t"))).0);

        let (ok, log) = check(&two, v(not, re("192\\.0\\.2\\.1$")));
        assert!(
            !ok && log.contains("msg=\"At least one RR did not match regexp\""),
            "{log}"
        );
        assert!(check(&two, v(not, re("^a\\.\t60\tIN\tA\t"))).0);

        let (ok, log) = check(&two, v(none, re("192\\.0\\.2\\.9")));
        assert!(
            !ok && log.contains("msg=\"None of the RRs did matched any regexp\""),
            "{log}"
        );
        assert!(check(&two, v(none, re("192\\.0\\.2\\.2"))).0);

        // No records: only the two "must match" kinds fail.
        let empty: Vec<String> = Vec::new();
        let (ok, log) = check(&empty, v(not, re("x")));
        assert!(
            !ok && log.contains("fail_if_not_matches_regexp specified but no RRs returned"),
            "{log}"
        );
        assert!(!check(&empty, v(none, re("x"))).0);
        assert!(check(&empty, v(all, re("x"))).0);
        assert!(check(&empty, v(matches, re("x"))).0);
        assert!(
            check(&empty, v(matches, re("("))).0,
            "regexes are only compiled to match"
        );
        let (ok, log) = check(&two, v(matches, re("(")));
        assert!(
            !ok && log.contains("msg=\"Error matching regexp\""),
            "{log}"
        );
    }

    #[test]
    fn rcodes_as_upstream() {
        let mut log = ProbeLog::new("m", "t");
        assert!(valid_rcode(0, &[], &mut log));
        assert!(log
            .text()
            .contains("msg=\"Rcode is valid\" rcode=0 string_rcode=NOERROR"));
        assert!(!valid_rcode(3, &[], &mut log));
        assert!(log.text().contains(
            "msg=\"Rcode is not one of the valid rcodes\" rcode=3 string_rcode=NXDOMAIN valid_rcodes=[0]"
        ), "{}", log.text());
        assert!(valid_rcode(
            3,
            &["NOERROR".into(), "NXDOMAIN".into()],
            &mut log
        ));
        assert!(!valid_rcode(0, &["NOPE".into()], &mut log));
        assert!(log
            .text()
            .contains("msg=\"Invalid rcode\" rcode=NOPE known_rcode=\"map[0:NOERROR 1:FORMERR"));
    }

    // --- Against a server on 127.0.0.1.

    fn dns(name: &str, qtype: &str) -> DnsProbe {
        DnsProbe {
            query_name: name.into(),
            query_type: qtype.into(),
            ..DnsProbe::default()
        }
    }

    async fn run_with(dns: DnsProbe, target: &str, timeout: Duration, allow: Allow) -> Ran {
        let module = BlackboxModule {
            prober: "dns".into(),
            dns,
            ..BlackboxModule::default()
        };
        testing::run(&module, target, timeout, allow).await
    }

    async fn run(dns: DnsProbe, target: &str) -> Ran {
        run_with(dns, target, Duration::from_secs(5), Allow::all()).await
    }

    fn v(r: &Ran, name: &str) -> Option<f64> {
        r.out.value(name, &[])
    }

    fn phase(r: &Ran, phase: &str) -> Option<f64> {
        r.out.value(DURATION, &[("phase", phase)])
    }

    #[tokio::test]
    async fn dns_udp_answer_with_every_metric() {
        let s = TestServer::start().await;
        let r = run(dns("www.probe.test", "A"), &s.target()).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(v(&r, ANSWER), Some(2.0));
        assert_eq!(v(&r, AUTHORITY), Some(1.0));
        assert_eq!(v(&r, ADDITIONAL), Some(1.0));
        assert_eq!(v(&r, SUCCEEDED), Some(1.0));
        assert_eq!(v(&r, SERIAL), None, "only for SOA queries");
        assert_eq!(v(&r, "probe_ip_protocol"), Some(4.0));
        assert_eq!(
            v(&r, "probe_ip_addr_hash"),
            Some(crate::resolve::ip_hash("127.0.0.1".parse().unwrap()))
        );
        let lookup = v(&r, "probe_dns_lookup_time_seconds").unwrap();
        assert_eq!(phase(&r, "resolve"), Some(lookup));
        assert!(phase(&r, "connect").unwrap() >= 0.0);
        assert!(phase(&r, "request").unwrap() >= 0.0);
        assert_eq!(
            r.out.names(),
            [
                ADDITIONAL,
                ANSWER,
                AUTHORITY,
                DURATION,
                "probe_dns_lookup_time_seconds",
                SUCCEEDED,
                "probe_ip_addr_hash",
                "probe_ip_protocol",
            ]
        );
        let text = r.out.text();
        for ph in ["resolve", "connect", "request"] {
            assert!(
                text.contains(&format!("probe_dns_duration_seconds{{phase=\"{ph}\"}} ")),
                "{text}"
            );
        }
        assert!(text.contains("# HELP probe_dns_answer_rrs Returns number of entries in the answer resource record list\n"));
        let want = format!(
            "msg=\"Making DNS query\" target={} dial_protocol=udp4 query=www.probe.test type=1 class=1\n",
            s.target()
        );
        assert!(r.log.contains(&want), "{}", r.log);
        assert!(
            r.log.contains(
                "msg=\"Got response\" response=\";; opcode: QUERY, status: NOERROR, id: "
            ),
            "{}",
            r.log
        );
        assert!(
            r.log.contains(
                "msg=\"Validating RR\" rr=\"www.probe.test.\\t300\\tIN\\tA\\t192.0.2.1\""
            ),
            "{}",
            r.log
        );
        let q = s.queries();
        assert_eq!(q.len(), 1, "exactly one query");
        assert_eq!(q[0].0, "udp");
        assert_eq!(q[0].1.queries[0].query_type(), RecordType::A);
        assert_eq!(q[0].1.queries[0].query_class(), DNSClass::IN);
        assert!(
            q[0].1.metadata.recursion_desired,
            "recursion_desired defaults to true"
        );
        assert!(q[0].1.edns.is_none());
    }

    #[tokio::test]
    async fn dns_defaults_to_any_and_reads_the_soa_serial() {
        let s = TestServer::start().await;
        let r = run(dns("probe.test", ""), &s.target()).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(v(&r, ANSWER), Some(3.0), "SOA, NS and MX");
        assert_eq!(v(&r, SERIAL), None);
        assert_eq!(s.queries()[0].1.queries[0].query_type(), RecordType::ANY);

        let r = run(dns("probe.test", "SOA"), &s.target()).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(v(&r, SERIAL), Some(f64::from(ZONE_SERIAL)));
        assert_eq!(v(&r, ANSWER), Some(1.0));

        // An SOA query answered without one (here: NODATA, the SOA in authority): the
        // serial is 0, as upstream only reads the answer section.
        let r = run(dns("www.probe.test", "SOA"), &s.target()).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(v(&r, SERIAL), Some(0.0));
        assert_eq!((v(&r, ANSWER), v(&r, AUTHORITY)), (Some(0.0), Some(1.0)));
    }

    #[tokio::test]
    async fn dns_valid_rcodes() {
        let s = TestServer::start().await;
        let r = run(dns("nope.probe.test", "A"), &s.target()).await;
        assert!(!r.success);
        assert_eq!(v(&r, SUCCEEDED), Some(1.0), "the query itself succeeded");
        assert_eq!((v(&r, ANSWER), v(&r, AUTHORITY)), (Some(0.0), Some(1.0)));
        assert!(
            r.log
                .contains("rcode=3 string_rcode=NXDOMAIN valid_rcodes=[0]"),
            "{}",
            r.log
        );

        let mut d = dns("nope.probe.test", "A");
        d.valid_rcodes = vec!["NOERROR".into(), "NXDOMAIN".into()];
        let r = run(d, &s.target()).await;
        assert!(r.success, "{}", r.log);

        let r = run(dns("servfail.probe.test", "A"), &s.target()).await;
        assert!(!r.success);
        assert!(r.log.contains("string_rcode=SERVFAIL"), "{}", r.log);
        let mut d = dns("servfail.probe.test", "A");
        d.valid_rcodes = vec!["SERVFAIL".into()];
        assert!(run(d, &s.target()).await.success);

        let r = run(dns("elsewhere.test", "A"), &s.target()).await;
        assert!(!r.success);
        assert!(r.log.contains("string_rcode=REFUSED"), "{}", r.log);

        let mut d = dns("www.probe.test", "A");
        d.valid_rcodes = vec!["NOPE".into()];
        let r = run(d, &s.target()).await;
        assert!(
            !r.success && r.log.contains("msg=\"Invalid rcode\" rcode=NOPE"),
            "{}",
            r.log
        );
    }

    #[tokio::test]
    async fn dns_validators_pass_and_fail() {
        let s = TestServer::start().await;
        let t = s.target();
        let re = |s: &str| vec![s.to_string()];
        type Set = fn(&mut DnsProbe, Vec<String>);
        let cases: [(Set, &str, &str, &str); 6] = [
            (
                |d, l| d.validate_answer_rrs.fail_if_matches_regexp = l,
                "192\\.0\\.2\\.2$",
                "192\\.0\\.2\\.9",
                "At least one RR matched regexp",
            ),
            (
                |d, l| d.validate_answer_rrs.fail_if_all_match_regexp = l,
                "192\\.0\\.2\\.1$",
                "^www\\.probe\\.test\\.\t300\tIN\tA\t192\\.0\\.2\\.",
                "Not all RRs matched regexp",
            ),
            (
                |d, l| d.validate_answer_rrs.fail_if_not_matches_regexp = l,
                "192\\.0\\.2\\.1$",
                "^www\\.probe\\.test\\.\t300\tIN\tA\t",
                "At least one RR did not match regexp",
            ),
            (
                |d, l| d.validate_answer_rrs.fail_if_none_matches_regexp = l,
                "192\\.0\\.2\\.9",
                "192\\.0\\.2\\.2$",
                "None of the RRs did matched any regexp",
            ),
            (
                |d, l| d.validate_authority_rrs.fail_if_not_matches_regexp = l,
                "IN\tSOA\t",
                "^probe\\.test\\.\t3600\tIN\tNS\tns1\\.probe\\.test\\.$",
                "At least one RR did not match regexp",
            ),
            (
                |d, l| d.validate_additional_rrs.fail_if_none_matches_regexp = l,
                "192\\.0\\.2\\.1$",
                "^ns1\\.probe\\.test\\.\t3600\tIN\tA\t192\\.0\\.2\\.53$",
                "None of the RRs did matched any regexp",
            ),
        ];
        for (set, failing, passing, why) in cases {
            let mut d = dns("www.probe.test", "A");
            set(&mut d, re(failing));
            let r = run(d, &t).await;
            assert!(!r.success, "{failing:?} should fail: {}", r.log);
            assert!(r.log.contains(why), "{}", r.log);
            assert!(r.log.contains("RRs validation failed\"\n"), "{}", r.log);
            let mut d = dns("www.probe.test", "A");
            set(&mut d, re(passing));
            let r = run(d, &t).await;
            assert!(r.success, "{passing:?} should pass: {}", r.log);
        }
        // TXT and an unknown type, as miekg/dns prints them.
        let mut d = dns("txt.probe.test", "TXT");
        d.validate_answer_rrs.fail_if_none_matches_regexp =
            re("\tTXT\t\"v=spf1 -all\" \"say \\\\\"hi\\\\\"\"$");
        let r = run(d, &t).await;
        assert!(r.success, "{}", r.log);
        let mut d = dns("generic.probe.test", "ANY");
        d.validate_answer_rrs.fail_if_not_matches_regexp =
            re("^generic\\.probe\\.test\\.\t60\tCLASS1\tTYPE65280\t\\\\# 2 abcd$");
        let r = run(d, &t).await;
        assert!(r.success, "{}", r.log);
    }

    #[tokio::test]
    async fn dns_recursion_desired_seen_by_the_server() {
        let s = TestServer::start().await;
        let mut d = dns("www.probe.test", "AAAA");
        d.recursion_desired = false;
        let r = run(d, &s.target()).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(v(&r, ANSWER), Some(1.0));
        let q = s.queries();
        assert_eq!(q.len(), 1);
        assert!(!q[0].1.metadata.recursion_desired);
        assert!(r.log.contains(";; flags: qr aa; QUERY: 1"), "{}", r.log);
    }

    #[tokio::test]
    async fn dns_tcp_transport() {
        let s = TestServer::start().await;
        let mut d = dns("www.probe.test", "A");
        d.transport_protocol = "tcp".into();
        let r = run(d, &s.target()).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(v(&r, ANSWER), Some(2.0));
        assert!(r.log.contains("dial_protocol=tcp4"), "{}", r.log);
        let q = s.queries();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].0, "tcp");

        // Over 512 bytes: fine over TCP; over UDP cut where miekg/dns reads (no EDNS0), so
        // the answer does not decode and the probe fails, as upstream.
        let mut d = dns("big.probe.test", "TXT");
        d.transport_protocol = "tcp".into();
        let r = run(d, &s.target()).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(v(&r, ANSWER), Some(20.0));
        let r = run(dns("big.probe.test", "TXT"), &s.target()).await;
        assert!(!r.success);
        assert_eq!(v(&r, SUCCEEDED), Some(0.0));
        assert!(
            r.log
                .contains("msg=\"Error while sending a DNS query\" err=\"dns: decoding the answer"),
            "{}",
            r.log
        );
    }

    #[tokio::test]
    async fn dns_truncated_udp_answer_is_reported_as_is() {
        let s = TestServer::start().await;
        let r = run(dns("truncated.probe.test", "A"), &s.target()).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(v(&r, ANSWER), Some(0.0));
        assert_eq!(v(&r, SUCCEEDED), Some(1.0));
        assert!(r.log.contains(";; flags: qr aa tc rd;"), "{}", r.log);
        let q = s.queries();
        assert_eq!(q.len(), 1, "no retry over TCP");
        assert_eq!(q[0].0, "udp");
    }

    #[tokio::test]
    async fn dns_skips_udp_answers_with_another_id() {
        let s = TestServer::start().await;
        let mut d = dns("otherid.probe.test", "A");
        d.validate_answer_rrs.fail_if_not_matches_regexp = vec!["192\\.0\\.2\\.77$".into()];
        let r = run(d, &s.target()).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(v(&r, ANSWER), Some(1.0));
    }

    #[tokio::test]
    async fn dns_unanswered_query_fails_by_the_deadline() {
        let s = TestServer::start().await;
        for transport in ["udp", "tcp"] {
            let mut d = dns("silent.probe.test", "A");
            d.transport_protocol = transport.into();
            let r = run_with(d, &s.target(), Duration::from_millis(300), Allow::all()).await;
            assert!(!r.success);
            assert!(
                r.log.contains("msg=\"Error while sending a DNS query\""),
                "{}",
                r.log
            );
            assert!(r.log.contains("i/o timeout"), "{}", r.log);
            assert_eq!(v(&r, SUCCEEDED), Some(0.0));
            assert_eq!(v(&r, ANSWER), Some(0.0));
            assert!(phase(&r, "request").is_some() && phase(&r, "connect").is_some());
        }
        let q = s.queries();
        assert_eq!((q.len(), q[0].0, q[1].0), (2, "udp", "tcp"));
    }

    #[tokio::test]
    async fn dns_unresolvable_server_fails() {
        let r = run_with(
            dns("www.probe.test", "A"),
            "no-such-host.invalid:53",
            Duration::from_secs(3),
            Allow::all(),
        )
        .await;
        assert!(!r.success);
        assert!(
            r.log.contains("msg=\"Error resolving address\"")
                || r.log.contains("msg=\"Timeout reached\""),
            "{}",
            r.log
        );
        for ph in ["resolve", "connect", "request"] {
            assert_eq!(phase(&r, ph), Some(0.0));
        }
        assert_eq!(v(&r, SUCCEEDED), Some(0.0));
        assert!(r.denied.is_none());
    }

    #[tokio::test]
    async fn dns_config_errors_fail_the_probe() {
        let s = TestServer::start().await;
        let t = s.target();
        let r = run(dns("www.probe.test", "a"), &t).await;
        assert!(
            !r.success && r.log.contains("msg=\"Invalid query type\" Typeseen=a"),
            "{}",
            r.log
        );
        let mut d = dns("www.probe.test", "A");
        d.query_class = "XX".into();
        let r = run(d, &t).await;
        assert!(
            !r.success && r.log.contains("msg=\"Invalid query class\" Classseen=XX"),
            "{}",
            r.log
        );
        let mut d = dns("www.probe.test", "A");
        d.transport_protocol = "quic".into();
        let r = run(d, &t).await;
        assert!(!r.success && r.log.contains("protocol=quic"), "{}", r.log);
        let mut d = dns("www.probe.test", "A");
        d.source_ip_address = "nope".into();
        let r = run(d, &t).await;
        assert!(
            !r.success
                && r.log
                    .contains("msg=\"Error parsing source ip address\" srcIP=nope"),
            "{}",
            r.log
        );
        let r = run(dns("www.probe.test", "A"), "127.0.0.1:domain").await;
        assert!(
            !r.success && r.log.contains("msg=\"Error while sending a DNS query\""),
            "{}",
            r.log
        );
        assert!(s.queries().is_empty());
    }

    #[tokio::test]
    async fn dns_source_address_and_denial() {
        let s = TestServer::start().await;
        let mut d = dns("www.probe.test", "A");
        d.source_ip_address = "127.0.0.1".into();
        let r = run(d, &s.target()).await;
        assert!(r.success, "{}", r.log);
        assert!(
            r.log
                .contains("msg=\"Using local address\" srcIP=127.0.0.1"),
            "{}",
            r.log
        );

        let deny = Allow::new(&AllowConfig::default()).unwrap();
        let r = run_with(
            dns("www.probe.test", "A"),
            "169.254.169.254:53",
            Duration::from_secs(2),
            deny,
        )
        .await;
        assert!(!r.success);
        assert!(r.denied.is_some());
    }

    proptest::proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]
        /// A DNS answer is outside input: whatever decodes is printed and validated without a
        /// panic, and target and name strings never panic either.
        #[test]
        fn fuzz_answers_and_names(wire in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
                                  text in ".{0,80}") {
            if let Ok(m) = decode(&wire) {
                let _ = msg_text(&m);
                let texts: Vec<String> = m.answers.iter().map(rr_text).collect();
                let mut log = ProbeLog::new("fuzz", "t");
                let v = RrValidator {
                    fail_if_matches_regexp: vec!["x".into()],
                    fail_if_all_match_regexp: vec![".".into()],
                    fail_if_not_matches_regexp: vec!["IN".into()],
                    fail_if_none_matches_regexp: vec!["A".into()],
                };
                let _ = valid_rrs(&texts, &v, &mut log);
            }
            let _ = split_host_port(&text);
            let _ = query_name(&text);
            let _ = parse_type(&text);
        }
    }
}
