//! ICMP and ICMPv6 packets as pure functions: echo requests built, and what comes back
//! (echo replies, and the errors that quote one of our echo requests) parsed.
//!
//! Nothing here touches a socket; every parser takes any bytes and returns a value or a
//! [`Malformed`], never panics (a property test below feeds it arbitrary bytes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// ICMPv4 echo reply.
pub const V4_ECHO_REPLY: u8 = 0;
/// ICMPv4 destination unreachable.
pub const V4_DEST_UNREACHABLE: u8 = 3;
/// ICMPv4 echo request.
pub const V4_ECHO_REQUEST: u8 = 8;
/// ICMPv4 time exceeded.
pub const V4_TIME_EXCEEDED: u8 = 11;
/// ICMPv4 parameter problem.
pub const V4_PARAMETER_PROBLEM: u8 = 12;
/// ICMPv6 destination unreachable.
pub const V6_DEST_UNREACHABLE: u8 = 1;
/// ICMPv6 packet too big.
pub const V6_PACKET_TOO_BIG: u8 = 2;
/// ICMPv6 time exceeded.
pub const V6_TIME_EXCEEDED: u8 = 3;
/// ICMPv6 parameter problem.
pub const V6_PARAMETER_PROBLEM: u8 = 4;
/// ICMPv6 echo request.
pub const V6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 echo reply.
pub const V6_ECHO_REPLY: u8 = 129;

/// The ICMP header of an echo message: type, code, checksum, identifier, sequence.
pub const ECHO_HEADER_LEN: usize = 8;
const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;

/// What the echo data is made of, repeated: a reply must bring it back unchanged.
const PATTERN: &[u8] = b"eos-agent icmp echo ";

/// Why bytes are not a packet we understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Malformed {}

/// The Internet checksum (RFC 1071) of `data`: the ones' complement of the ones' complement
/// sum of its 16-bit big-endian words (an odd last byte padded with zero).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(u16::from_be_bytes([*last, 0]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Byte `i` of the echo data.
pub fn payload_byte(i: usize) -> u8 {
    PATTERN[i % PATTERN.len()]
}

/// Whether `data` is the echo data of length `len` that [`echo_request`] sends.
pub fn payload_matches(data: &[u8], len: usize) -> bool {
    data.len() == len && data.iter().enumerate().all(|(i, b)| *b == payload_byte(i))
}

/// The first two bytes of the echo data of a request with sequence `seq` whose checksum
/// must not depend on the sequence (Paris traceroute's fixed flow: load balancers that hash
/// the first bytes of the ICMP header, checksum included, send every probe the same way).
/// They are the ones' complement of the sequence, so that the two words always add up to
/// 0xffff (negative zero) in the checksum's arithmetic.
pub fn flow_word(seq: u16) -> [u8; 2] {
    (!seq).to_be_bytes()
}

/// Puts [`flow_word`] at the start of an echo request's data (at least two bytes of it), and
/// recomputes the ICMPv4 checksum.
pub fn set_flow_word(v6: bool, packet: &mut [u8], seq: u16) {
    if packet.len() < ECHO_HEADER_LEN + 2 {
        return;
    }
    packet[ECHO_HEADER_LEN..ECHO_HEADER_LEN + 2].copy_from_slice(&flow_word(seq));
    if !v6 {
        packet[2..4].copy_from_slice(&[0, 0]);
        let c = checksum(packet);
        packet[2..4].copy_from_slice(&c.to_be_bytes());
    }
}

/// Whether `data` is the echo data of length `len` of a request with sequence `seq` that
/// [`set_flow_word`] changed.
pub fn payload_matches_flow(data: &[u8], len: usize, seq: u16) -> bool {
    if len < 2 {
        return payload_matches(data, len);
    }
    data.len() == len
        && data[..2] == flow_word(seq)
        && data[2..]
            .iter()
            .enumerate()
            .all(|(i, b)| *b == payload_byte(i + 2))
}

/// An echo request (ICMPv6 when `v6`) with `payload_len` bytes of data.
///
/// The ICMPv4 checksum is filled in; the ICMPv6 one is left zero, as the kernel computes it
/// for every ICMPv6 socket (it covers a pseudo-header with the source address the kernel
/// picks). Datagram sockets also replace the identifier with their own.
pub fn echo_request(v6: bool, ident: u16, seq: u16, payload_len: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(ECHO_HEADER_LEN + payload_len);
    p.push(if v6 { V6_ECHO_REQUEST } else { V4_ECHO_REQUEST });
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend((0..payload_len).map(payload_byte));
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// An ICMP error about one of our packets, as its type and code say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The hop limit ran out on the way (code 0) or reassembly timed out (code 1).
    TimeExceeded { code: u8 },
    /// The destination cannot be reached; `mtu` is the next hop's MTU of an ICMPv4
    /// "fragmentation needed" (code 4) when the router sent one.
    Unreachable { code: u8, mtu: Option<u32> },
    /// ICMPv6 packet too big, with the MTU of the next hop.
    PacketTooBig { mtu: u32 },
    /// Something in our header was wrong; `pointer` is the offending byte's offset.
    ParameterProblem { code: u8, pointer: u32 },
}

/// The error kind of an ICMP message of type `icmp_type` and `code`, with `info` the second
/// 32-bit word of the message (the MTU or pointer), as the kernel's error queue also gives
/// it. `None` for types that are not errors about a packet.
pub fn error_kind(v6: bool, icmp_type: u8, code: u8, info: u32) -> Option<ErrorKind> {
    Some(match (v6, icmp_type) {
        (false, V4_TIME_EXCEEDED) | (true, V6_TIME_EXCEEDED) => ErrorKind::TimeExceeded { code },
        (false, V4_DEST_UNREACHABLE) => ErrorKind::Unreachable {
            code,
            // Fragmentation needed: the next-hop MTU is the low 16 bits (RFC 1191).
            mtu: (code == 4 && info & 0xffff != 0).then_some(info & 0xffff),
        },
        (true, V6_DEST_UNREACHABLE) => ErrorKind::Unreachable { code, mtu: None },
        (true, V6_PACKET_TOO_BIG) => ErrorKind::PacketTooBig { mtu: info },
        (false, V4_PARAMETER_PROBLEM) => ErrorKind::ParameterProblem {
            code,
            // ICMPv4 has the pointer in the first byte of the word.
            pointer: info >> 24,
        },
        (true, V6_PARAMETER_PROBLEM) => ErrorKind::ParameterProblem {
            code,
            pointer: info,
        },
        _ => return None,
    })
}

/// The echo request an error quotes: where it was going and which one it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ident: u16,
    pub seq: u16,
}

/// One ICMP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    EchoReply {
        ident: u16,
        seq: u16,
        data: &'a [u8],
    },
    /// An echo request (raw sockets see their own on loopback).
    EchoRequest { ident: u16, seq: u16 },
    /// An error quoting one of our echo requests.
    Error { kind: ErrorKind, quoted: Quoted },
    /// Anything else (including errors about packets that are not echo requests).
    Other { icmp_type: u8, code: u8 },
}

/// The fields of an IPv4 header that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub protocol: u8,
    /// Header length in bytes (IHL × 4).
    pub header_len: usize,
    /// Whether this is a fragment other than the first (it carries no ICMP header).
    pub later_fragment: bool,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// An IPv4 header and what follows it. The rest is cut to the header's total length when
/// that is within the bytes (a quoted header's total length describes the original
/// datagram, of which only the start is quoted, so a longer one is not an error).
pub fn ipv4_header(b: &[u8]) -> Result<(Ipv4Header, &[u8]), Malformed> {
    let first = *b.first().ok_or(Malformed("empty IPv4 packet"))?;
    if first >> 4 != 4 {
        return Err(Malformed("not an IPv4 header"));
    }
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < IPV4_MIN_HEADER {
        return Err(Malformed("IPv4 header length below 20"));
    }
    if b.len() < header_len {
        return Err(Malformed("IPv4 header truncated"));
    }
    let total = usize::from(be16(b, 2).unwrap_or(0));
    let end = if total >= header_len && total <= b.len() {
        total
    } else {
        b.len()
    };
    let frag = be16(b, 6).unwrap_or(0);
    let h = Ipv4Header {
        src: Ipv4Addr::new(b[12], b[13], b[14], b[15]),
        dst: Ipv4Addr::new(b[16], b[17], b[18], b[19]),
        ttl: b[8],
        protocol: b[9],
        header_len,
        later_fragment: frag & 0x1fff != 0,
    };
    Ok((h, &b[header_len..end]))
}

/// What a raw IPv4 ICMP socket reads: the IPv4 header, then the ICMP message (whose
/// checksum is checked).
pub fn parse_ipv4_packet(b: &[u8]) -> Result<(Ipv4Header, Message<'_>), Malformed> {
    let (h, rest) = ipv4_header(b)?;
    if h.protocol != PROTO_ICMP {
        return Err(Malformed("IPv4 packet is not ICMP"));
    }
    if h.later_fragment {
        return Err(Malformed("IPv4 fragment without the ICMP header"));
    }
    // Raw sockets get packets before the kernel's ICMP code checks the checksum.
    if !checksum_ok(rest) {
        return Err(Malformed("bad ICMP checksum"));
    }
    Ok((h, parse_icmp(false, rest)?))
}

/// Parses an ICMP (ICMPv6 when `v6`) message, from its type byte on. The checksum is not
/// checked: the kernel checks it for datagram and ICMPv6 sockets, and [`checksum_ok`] does
/// for raw IPv4.
pub fn parse_icmp(v6: bool, b: &[u8]) -> Result<Message<'_>, Malformed> {
    if b.len() < ECHO_HEADER_LEN {
        return Err(Malformed("ICMP message shorter than 8 bytes"));
    }
    let (icmp_type, code) = (b[0], b[1]);
    let ident = be16(b, 4).unwrap_or(0);
    let seq = be16(b, 6).unwrap_or(0);
    let (reply, request) = if v6 {
        (V6_ECHO_REPLY, V6_ECHO_REQUEST)
    } else {
        (V4_ECHO_REPLY, V4_ECHO_REQUEST)
    };
    if icmp_type == reply {
        return Ok(Message::EchoReply {
            ident,
            seq,
            data: &b[ECHO_HEADER_LEN..],
        });
    }
    if icmp_type == request {
        return Ok(Message::EchoRequest { ident, seq });
    }
    let info = be32(b, 4).unwrap_or(0);
    let Some(kind) = error_kind(v6, icmp_type, code, info) else {
        return Ok(Message::Other { icmp_type, code });
    };
    let quoted = &b[ECHO_HEADER_LEN..];
    let parsed = if v6 {
        quoted_v6(quoted)
    } else {
        quoted_v4(quoted)
    };
    match parsed {
        Ok(Some(quoted)) => Ok(Message::Error { kind, quoted }),
        Ok(None) => Ok(Message::Other { icmp_type, code }),
        Err(e) => Err(e),
    }
}

/// Whether an ICMPv4 message's checksum is right.
pub fn checksum_ok(icmp: &[u8]) -> bool {
    checksum(icmp) == 0
}

/// The echo request at the start of `b`: (identifier, sequence); `None` if it is another
/// message (an error about a packet that was not ours to match).
fn quoted_echo(v6: bool, b: &[u8]) -> Result<Option<(u16, u16)>, Malformed> {
    if b.len() < ECHO_HEADER_LEN {
        return Err(Malformed("quoted ICMP header shorter than 8 bytes"));
    }
    let request = if v6 { V6_ECHO_REQUEST } else { V4_ECHO_REQUEST };
    if b[0] != request {
        return Ok(None);
    }
    Ok(Some((be16(b, 4).unwrap_or(0), be16(b, 6).unwrap_or(0))))
}

/// The echo request an error-queue message of a datagram socket carries: the kernel gives the
/// quoted ICMP header itself (identifier, sequence), the destination and the sender
/// separately.
pub fn parse_queued_echo(v6: bool, b: &[u8]) -> Result<(u16, u16), Malformed> {
    quoted_echo(v6, b)?.ok_or(Malformed("queued error is not about an echo request"))
}

/// The quoted IPv4 header and echo request of an ICMPv4 error.
fn quoted_v4(b: &[u8]) -> Result<Option<Quoted>, Malformed> {
    let (h, rest) = ipv4_header(b)?;
    if h.protocol != PROTO_ICMP || h.later_fragment {
        return Ok(None);
    }
    Ok(quoted_echo(false, rest)?.map(|(ident, seq)| Quoted {
        src: IpAddr::V4(h.src),
        dst: IpAddr::V4(h.dst),
        ident,
        seq,
    }))
}

/// The quoted IPv6 header (and extension headers) and echo request of an ICMPv6 error.
fn quoted_v6(b: &[u8]) -> Result<Option<Quoted>, Malformed> {
    if b.len() < IPV6_HEADER {
        return Err(Malformed("quoted IPv6 header truncated"));
    }
    if b[0] >> 4 != 6 {
        return Err(Malformed("quoted header is not IPv6"));
    }
    let addr = |at: usize| {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[at..at + 16]);
        Ipv6Addr::from(o)
    };
    let (src, dst) = (addr(8), addr(24));
    let mut next = b[6];
    let mut at = IPV6_HEADER;
    // Extension headers, bounded: hop-by-hop, routing, fragment, authentication, options.
    for _ in 0..8 {
        if next == PROTO_ICMPV6 {
            let rest = b
                .get(at..)
                .ok_or(Malformed("quoted IPv6 header chain truncated"))?;
            return Ok(quoted_echo(true, rest)?.map(|(ident, seq)| Quoted {
                src: IpAddr::V6(src),
                dst: IpAddr::V6(dst),
                ident,
                seq,
            }));
        }
        let hdr = b
            .get(at..at + 2)
            .ok_or(Malformed("quoted IPv6 extension header truncated"))?;
        let len = match next {
            0 | 43 | 60 => (usize::from(hdr[1]) + 1) * 8,
            44 => {
                // A fragment header: only the first fragment has the ICMPv6 header.
                let off = be16(b, at + 2).ok_or(Malformed("quoted fragment header truncated"))?;
                if off & 0xfff8 != 0 {
                    return Ok(None);
                }
                8
            }
            51 => (usize::from(hdr[1]) + 2) * 4,
            _ => return Ok(None),
        };
        next = hdr[0];
        at += len;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ipv4(src: [u8; 4], dst: [u8; 4], ttl: u8, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, ttl, 1, 0, 0];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        h.push(next);
        h.push(1);
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&dst.octets());
        h.extend_from_slice(payload);
        h
    }

    #[test]
    fn checksum_of_known_packets() {
        // RFC 1071's example words.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        // An echo request `ping` sent (id 0x1c46, seq 1, 8 bytes of data): checksums to 0.
        let req = echo_request(false, 0x1c46, 1, 8);
        assert!(checksum_ok(&req));
        assert_eq!(checksum(&[0xff]), !0xff00);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn echo_request_layout() {
        let p = echo_request(false, 0xabcd, 0x0102, 4);
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0xab, 0xcd, 0x01, 0x02]);
        assert_eq!(&p[8..], b"eos-");
        let p6 = echo_request(true, 7, 9, 0);
        assert_eq!(p6, vec![128, 0, 0, 0, 0, 7, 0, 9]);
        assert!(payload_matches(&echo_request(false, 1, 2, 45)[8..], 45));
        assert!(!payload_matches(b"eos-", 5));
        assert!(!payload_matches(b"eosx", 4));
    }

    #[test]
    fn flow_words_keep_the_checksum() {
        let with_flow = |seq: u16, len: usize| {
            let mut p = echo_request(false, 0x1234, seq, len);
            set_flow_word(false, &mut p, seq);
            p
        };
        let first = with_flow(0, 56);
        for seq in [1, 2, 0x00ff, 0x8000, 0xfffe, 0xffff] {
            let p = with_flow(seq, 56);
            assert_eq!(p[2..4], first[2..4], "seq {seq:#x}");
            assert!(checksum_ok(&p), "seq {seq:#x}");
            assert!(payload_matches_flow(&p[8..], 56, seq));
            assert!(!payload_matches_flow(&p[8..], 56, seq.wrapping_add(1)));
            assert!(!payload_matches(&p[8..], 56));
        }
        // Without the flow word, the checksum follows the sequence.
        assert_ne!(
            echo_request(false, 0x1234, 1, 56)[2..4],
            echo_request(false, 0x1234, 2, 56)[2..4]
        );
        // Too short for a flow word: left alone.
        let mut p = echo_request(false, 1, 2, 1);
        set_flow_word(false, &mut p, 2);
        assert_eq!(p, echo_request(false, 1, 2, 1));
        assert!(payload_matches_flow(&p[8..], 1, 2));
    }

    #[test]
    fn echo_reply_v4_through_raw_socket() {
        let mut reply = echo_request(false, 0x1111, 0x2222, 3);
        reply[0] = V4_ECHO_REPLY;
        reply[2..4].copy_from_slice(&[0, 0]);
        let c = checksum(&reply);
        reply[2..4].copy_from_slice(&c.to_be_bytes());
        let mut bad = ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64, &reply);
        bad[25] ^= 1;
        assert_eq!(parse_ipv4_packet(&bad), Err(Malformed("bad ICMP checksum")));
        let pkt = ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64, &reply);
        let (h, m) = parse_ipv4_packet(&pkt).unwrap();
        assert_eq!(h.ttl, 64);
        assert_eq!(h.src, Ipv4Addr::LOCALHOST);
        assert_eq!(
            m,
            Message::EchoReply {
                ident: 0x1111,
                seq: 0x2222,
                data: b"eos"
            }
        );
        // Trailing bytes past the total length (padding on the wire) are not data.
        let mut padded = pkt.clone();
        padded.extend_from_slice(&[0, 0]);
        assert_eq!(parse_ipv4_packet(&padded).unwrap().1, m);
    }

    #[test]
    fn time_exceeded_v4_quotes_our_request() {
        let req = echo_request(false, 0xbeef, 42, 20);
        let quoted = ipv4([10, 0, 1, 2], [10, 0, 2, 2], 1, &req);
        // A router quotes the header and the first 8 bytes (RFC 792).
        let mut err = vec![V4_TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&quoted[..28]);
        let c = checksum(&err);
        err[2..4].copy_from_slice(&c.to_be_bytes());
        let pkt = ipv4([10, 0, 1, 1], [10, 0, 1, 2], 63, &err);
        let (h, m) = parse_ipv4_packet(&pkt).unwrap();
        assert_eq!(h.src, Ipv4Addr::new(10, 0, 1, 1));
        assert_eq!(
            m,
            Message::Error {
                kind: ErrorKind::TimeExceeded { code: 0 },
                quoted: Quoted {
                    src: "10.0.1.2".parse().unwrap(),
                    dst: "10.0.2.2".parse().unwrap(),
                    ident: 0xbeef,
                    seq: 42
                }
            }
        );
        assert!(checksum_ok(&err));
    }

    #[test]
    fn unreachable_v4_with_mtu_and_foreign_quotes() {
        let req = echo_request(false, 1, 2, 0);
        let quoted = ipv4([10, 0, 0, 1], [10, 9, 9, 9], 5, &req);
        let mut err = vec![V4_DEST_UNREACHABLE, 4, 0, 0, 0, 0, 0x05, 0xdc];
        err.extend_from_slice(&quoted);
        match parse_icmp(false, &err).unwrap() {
            Message::Error { kind, quoted } => {
                assert_eq!(
                    kind,
                    ErrorKind::Unreachable {
                        code: 4,
                        mtu: Some(1500)
                    }
                );
                assert_eq!(quoted.seq, 2);
            }
            other => panic!("{other:?}"),
        }
        // An error about a UDP datagram is not ours.
        let mut udp = ipv4([10, 0, 0, 1], [10, 9, 9, 9], 5, &[0; 8]);
        udp[9] = 17;
        let mut err = vec![V4_DEST_UNREACHABLE, 3, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&udp);
        assert_eq!(
            parse_icmp(false, &err).unwrap(),
            Message::Other {
                icmp_type: 3,
                code: 3
            }
        );
        // Quoting an echo reply (not a request) is not ours either.
        let mut rep = echo_request(false, 1, 2, 0);
        rep[0] = 0;
        let mut err = vec![V4_TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&ipv4([1, 1, 1, 1], [2, 2, 2, 2], 1, &rep));
        assert!(matches!(
            parse_icmp(false, &err).unwrap(),
            Message::Other { .. }
        ));
        // Too short to hold the quoted header.
        let err = [V4_TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0, 0x45, 0];
        assert!(parse_icmp(false, &err).is_err());
    }

    #[test]
    fn time_exceeded_v6_with_extension_headers() {
        let src: Ipv6Addr = "fd00:1::2".parse().unwrap();
        let dst: Ipv6Addr = "fd00:2::2".parse().unwrap();
        let req = echo_request(true, 0x0a0b, 7, 8);
        for (next, chain) in [
            (PROTO_ICMPV6, Vec::new()),
            // Hop-by-hop options (8 bytes), then ICMPv6.
            (0u8, vec![PROTO_ICMPV6, 0, 1, 4, 0, 0, 0, 0]),
            // A first fragment.
            (44u8, vec![PROTO_ICMPV6, 0, 0, 1, 0, 0, 0, 9]),
        ] {
            let mut inner = chain.clone();
            inner.extend_from_slice(&req);
            let quoted = ipv6(src, dst, next, &inner);
            let mut err = vec![V6_TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
            err.extend_from_slice(&quoted);
            assert_eq!(
                parse_icmp(true, &err).unwrap(),
                Message::Error {
                    kind: ErrorKind::TimeExceeded { code: 0 },
                    quoted: Quoted {
                        src: IpAddr::V6(src),
                        dst: IpAddr::V6(dst),
                        ident: 0x0a0b,
                        seq: 7
                    }
                },
                "next header {next}"
            );
        }
        // A later fragment has no ICMPv6 header to match.
        let mut inner = vec![PROTO_ICMPV6, 0, 0x05, 0xa8, 0, 0, 0, 9];
        inner.extend_from_slice(&req);
        let mut err = vec![V6_DEST_UNREACHABLE, 3, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&ipv6(src, dst, 44, &inner));
        assert!(matches!(
            parse_icmp(true, &err).unwrap(),
            Message::Other { .. }
        ));
    }

    #[test]
    fn packet_too_big_and_echo_v6() {
        let req = echo_request(true, 3, 4, 0);
        let mut err = vec![V6_PACKET_TOO_BIG, 0, 0, 0, 0, 0, 0x05, 0x00];
        err.extend_from_slice(&ipv6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, 58, &req));
        match parse_icmp(true, &err).unwrap() {
            Message::Error { kind, .. } => assert_eq!(kind, ErrorKind::PacketTooBig { mtu: 1280 }),
            other => panic!("{other:?}"),
        }
        let mut rep = echo_request(true, 3, 4, 2);
        rep[0] = V6_ECHO_REPLY;
        assert_eq!(
            parse_icmp(true, &rep).unwrap(),
            Message::EchoReply {
                ident: 3,
                seq: 4,
                data: b"eo"
            }
        );
        assert_eq!(
            parse_icmp(true, &echo_request(true, 3, 4, 2)).unwrap(),
            Message::EchoRequest { ident: 3, seq: 4 }
        );
        assert_eq!(
            parse_queued_echo(true, &echo_request(true, 5, 6, 0)),
            Ok((5, 6))
        );
        assert!(parse_queued_echo(false, &echo_request(true, 5, 6, 0)).is_err());
    }

    #[test]
    fn error_kinds() {
        assert_eq!(
            error_kind(false, 12, 0, 0x1400_0000),
            Some(ErrorKind::ParameterProblem {
                code: 0,
                pointer: 20
            })
        );
        assert_eq!(
            error_kind(false, 3, 1, 0),
            Some(ErrorKind::Unreachable { code: 1, mtu: None })
        );
        assert_eq!(
            error_kind(true, 1, 3, 0),
            Some(ErrorKind::Unreachable { code: 3, mtu: None })
        );
        assert_eq!(
            error_kind(false, 5, 0, 0),
            None,
            "redirects are not errors about a probe"
        );
        assert_eq!(error_kind(true, 135, 0, 0), None);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_ipv4_packet(&[]).is_err());
        assert!(parse_ipv4_packet(&[0x45]).is_err());
        assert!(parse_ipv4_packet(&[0x41; 40]).is_err(), "IHL 1");
        assert!(
            parse_ipv4_packet(&[0x60; 40]).is_err(),
            "IPv6 on a v4 socket"
        );
        assert!(parse_icmp(true, &[129, 0, 0]).is_err());
    }

    proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]

        #[test]
        fn fuzz_parsing_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_ipv4_packet(&bytes);
            let _ = parse_icmp(false, &bytes);
            let _ = parse_icmp(true, &bytes);
            let _ = parse_queued_echo(false, &bytes);
            let _ = parse_queued_echo(true, &bytes);
            let _ = checksum(&bytes);
        }

        #[test]
        fn fuzz_errors_with_mutated_quotes_never_panic(
            v6 in any::<bool>(),
            icmp_type in prop::sample::select(vec![1u8, 2, 3, 4, 11, 12]),
            cut in 0usize..120,
            flip in prop::collection::vec((0usize..120, any::<u8>()), 0..4),
        ) {
            let req = echo_request(v6, 1, 2, 16);
            let quoted = if v6 {
                ipv6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, 58, &req)
            } else {
                ipv4([1, 2, 3, 4], [5, 6, 7, 8], 1, &req)
            };
            let mut err = vec![icmp_type, 0, 0, 0, 0, 0, 0, 0];
            err.extend_from_slice(&quoted);
            for (at, b) in flip {
                if let Some(x) = err.get_mut(at) {
                    *x = b;
                }
            }
            err.truncate(cut);
            let _ = parse_icmp(v6, &err);
            let wrapped = ipv4([9, 9, 9, 9], [1, 2, 3, 4], 64, &err);
            let _ = parse_ipv4_packet(&wrapped);
        }

        #[test]
        fn fuzz_echo_requests_round_trip(v6 in any::<bool>(), ident in any::<u16>(), seq in any::<u16>(), len in 0usize..1500) {
            let req = echo_request(v6, ident, seq, len);
            prop_assert_eq!(req.len(), ECHO_HEADER_LEN + len);
            if !v6 {
                prop_assert!(checksum_ok(&req));
            }
            let mut reply = req.clone();
            reply[0] = if v6 { V6_ECHO_REPLY } else { V4_ECHO_REPLY };
            match parse_icmp(v6, &reply) {
                Ok(Message::EchoReply { ident: i, seq: s, data }) => {
                    prop_assert_eq!((i, s), (ident, seq));
                    prop_assert!(payload_matches(data, len));
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
