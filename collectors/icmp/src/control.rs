//! The control messages a receive brings besides its bytes, parsed from the raw control
//! buffer (`msg_control`, `msg_controllen` bytes of it): the kernel's receive time
//! (`SCM_TIMESTAMPNS`), the packet's TTL / hop limit (`IP_TTL` / `IPV6_HOPLIMIT`), and an
//! error from the socket's error queue (`IP_RECVERR` / `IPV6_RECVERR`: a
//! `sock_extended_err` followed by the address of who sent it, `SO_EE_OFFENDER`).
//!
//! Pure: bytes in, a [`Control`] out, never a panic. The layout is the kernel's ABI in native
//! byte order: each message a `struct cmsghdr` (a `size_t` length, then level and type as
//! `int`s), its data after the header aligned to `size_t`, the next message at the length
//! aligned to `size_t`. A message whose length runs past the buffer (a truncated buffer,
//! `MSG_CTRUNC`) ends the walk; what came before it still counts.

use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, SystemTime};

/// `SO_EE_ORIGIN_ICMP`: the queued error is an ICMPv4 message (linux/errqueue.h).
pub const ORIGIN_ICMP: u8 = 2;
/// `SO_EE_ORIGIN_ICMP6`: the queued error is an ICMPv6 message.
pub const ORIGIN_ICMP6: u8 = 3;

/// An error the kernel queued on the socket (`struct sock_extended_err`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedError {
    /// The errno it stands for (`EHOSTUNREACH` for time exceeded, `ECONNREFUSED` for port
    /// unreachable, ...).
    pub errno: u32,
    /// Where it came from: [`ORIGIN_ICMP`], [`ORIGIN_ICMP6`], or a local error (1).
    pub origin: u8,
    pub icmp_type: u8,
    pub code: u8,
    /// The ICMP message's second word (the MTU of "fragmentation needed" / "packet too big",
    /// the pointer of a parameter problem).
    pub info: u32,
    /// Who sent the ICMP error (`SO_EE_OFFENDER`); `None` when the kernel left it unset.
    pub offender: Option<IpAddr>,
}

/// What the control messages of one receive said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control {
    /// When the kernel received the packet (`SO_TIMESTAMPNS`, wall clock).
    pub kernel_time: Option<SystemTime>,
    /// The TTL / hop limit of the received packet.
    pub hop_limit: Option<u8>,
    /// The queued error of an error-queue receive.
    pub queued: Option<QueuedError>,
}

/// `size_t`: the width of `cmsg_len`, and what headers and data are aligned to.
const WORD: usize = size_of::<usize>();
/// `sizeof(struct cmsghdr)`: the length, then level and type.
const HEADER: usize = WORD + 8;
/// `sizeof(struct sock_extended_err)`: errno, origin, type, code, pad, info, data.
const EXTENDED_ERR: usize = 16;

fn align(n: usize) -> usize {
    n.div_ceil(WORD) * WORD
}

/// `width` bytes (1 to 8) at `at`, native byte order, as an unsigned number.
fn ne_uint(b: &[u8], at: usize, width: usize) -> Option<u64> {
    if width == 0 || width > 8 {
        return None;
    }
    let bytes = b.get(at..at.checked_add(width)?)?;
    let mut word = [0u8; 8];
    if cfg!(target_endian = "little") {
        word.get_mut(..width)?.copy_from_slice(bytes);
        Some(u64::from_le_bytes(word))
    } else {
        word.get_mut(8 - width..)?.copy_from_slice(bytes);
        Some(u64::from_be_bytes(word))
    }
}

/// As [`ne_uint`], sign-extended.
fn ne_int(b: &[u8], at: usize, width: usize) -> Option<i64> {
    let v = ne_uint(b, at, width)?;
    let shift = 64 - 8 * width as u32;
    Some(((v << shift) as i64) >> shift)
}

/// A native-order `u32` at `at`.
pub(crate) fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    ne_uint(b, at, 4).map(|v| v as u32)
}

fn ne_i32(b: &[u8], at: usize) -> Option<i32> {
    ne_int(b, at, 4).map(|v| v as i32)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// A `struct sockaddr_in` or `sockaddr_in6` (the family in native order, the port in
/// network order); `None` for another family or too few bytes.
pub fn sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = i32::try_from(ne_uint(b, 0, 2)?).ok()?;
    let port = be16(b, 2)?;
    match family {
        libc::AF_INET => {
            let a: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(a), port)))
        }
        libc::AF_INET6 => {
            let flowinfo = u32::from_be_bytes(b.get(4..8)?.try_into().ok()?);
            let a: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let scope = ne_uint(b, 24, 4).unwrap_or(0) as u32;
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a),
                port,
                flowinfo,
                scope,
            )))
        }
        _ => None,
    }
}

/// A `struct timespec` (`time_t` seconds, then `long` nanoseconds) as a wall-clock time;
/// `None` when out of range.
fn timespec(b: &[u8]) -> Option<SystemTime> {
    let sec_width = size_of::<libc::time_t>();
    let sec = ne_int(b, 0, sec_width)?;
    let nsec = ne_int(b, sec_width, size_of::<libc::c_long>())?;
    let sec = u64::try_from(sec).ok()?;
    let nsec = u32::try_from(nsec).ok().filter(|n| *n < 1_000_000_000)?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(sec, nsec))
}

/// A `sock_extended_err` and the offender address after it.
fn extended_err(b: &[u8]) -> Option<QueuedError> {
    if b.len() < EXTENDED_ERR {
        return None;
    }
    let offender = b
        .get(EXTENDED_ERR..)
        .and_then(sockaddr)
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified());
    Some(QueuedError {
        errno: ne_u32(b, 0)?,
        origin: b[4],
        icmp_type: b[5],
        code: b[6],
        info: ne_u32(b, 8)?,
        offender,
    })
}

/// Parses the control messages in `buf`; messages of other kinds are skipped.
pub fn parse(buf: &[u8]) -> Control {
    let mut c = Control::default();
    let mut at = 0usize;
    while let Some(len) = ne_uint(buf, at, WORD) {
        let Ok(len) = usize::try_from(len) else { break };
        if len < HEADER {
            break;
        }
        let Some(end) = at.checked_add(len).filter(|e| *e <= buf.len()) else {
            break;
        };
        let (Some(level), Some(ty)) = (ne_i32(buf, at + WORD), ne_i32(buf, at + WORD + 4)) else {
            break;
        };
        let data = buf.get(at + align(HEADER)..end).unwrap_or(&[]);
        match (level, ty) {
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                c.kernel_time = timespec(data).or(c.kernel_time);
            }
            (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                if let Some(v) = ne_i32(data, 0) {
                    c.hop_limit = u8::try_from(v).ok();
                }
            }
            (libc::IPPROTO_IP, libc::IP_RECVERR) | (libc::IPPROTO_IPV6, libc::IPV6_RECVERR) => {
                c.queued = extended_err(data).or(c.queued);
            }
            _ => {}
        }
        match at.checked_add(align(len)) {
            Some(next) if next > at => at = next,
            _ => break,
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One control message as the kernel lays it out.
    fn cmsg(level: i32, ty: i32, data: &[u8]) -> Vec<u8> {
        let len = align(HEADER) + data.len();
        let mut b = Vec::new();
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&level.to_ne_bytes());
        b.extend_from_slice(&ty.to_ne_bytes());
        b.resize(align(HEADER), 0);
        b.extend_from_slice(data);
        b.resize(align(len), 0);
        b
    }

    fn sockaddr_in(ip: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = (libc::AF_INET as u16).to_ne_bytes().to_vec();
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&ip);
        b.resize(16, 0);
        b
    }

    fn sockaddr_in6(ip: Ipv6Addr, port: u16) -> Vec<u8> {
        let mut b = (libc::AF_INET6 as u16).to_ne_bytes().to_vec();
        b.extend_from_slice(&port.to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&ip.octets());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b
    }

    fn extended(errno: u32, origin: u8, ty: u8, code: u8, info: u32, off: &[u8]) -> Vec<u8> {
        let mut b = errno.to_ne_bytes().to_vec();
        b.extend_from_slice(&[origin, ty, code, 0]);
        b.extend_from_slice(&info.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(off);
        b
    }

    fn timespec_bytes(sec: i64, nsec: i64) -> Vec<u8> {
        let mut b = Vec::new();
        let s = size_of::<libc::time_t>();
        b.extend_from_slice(&sec.to_ne_bytes()[..s]);
        let n = size_of::<libc::c_long>();
        b.extend_from_slice(&nsec.to_ne_bytes()[..n]);
        b
    }

    #[test]
    fn the_layout_is_the_c_librarys() {
        // SAFETY: the CMSG_* macros only do arithmetic on their argument.
        let (len0, space16) = unsafe { (libc::CMSG_LEN(0), libc::CMSG_SPACE(16)) };
        assert_eq!(align(HEADER), len0 as usize);
        assert_eq!(align(align(HEADER) + 16), space16 as usize);
        assert_eq!(cmsg(0, 0, &[1; 16]).len(), space16 as usize);
        assert_eq!(size_of::<libc::sock_extended_err>(), EXTENDED_ERR);
    }

    #[test]
    fn a_queued_time_exceeded_with_its_timestamp() {
        let mut buf = cmsg(
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            &timespec_bytes(1_700_000_000, 123_456_789),
        );
        let err = extended(113, ORIGIN_ICMP, 11, 0, 0, &sockaddr_in([10, 0, 0, 1], 0));
        buf.extend(cmsg(libc::IPPROTO_IP, libc::IP_RECVERR, &err));
        let c = parse(&buf);
        assert_eq!(
            c.kernel_time,
            Some(SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789))
        );
        assert_eq!(
            c.queued,
            Some(QueuedError {
                errno: 113,
                origin: ORIGIN_ICMP,
                icmp_type: 11,
                code: 0,
                info: 0,
                offender: Some("10.0.0.1".parse().unwrap()),
            })
        );
        assert_eq!(c.hop_limit, None);
    }

    #[test]
    fn ipv6_errors_and_hop_limits() {
        let off = sockaddr_in6("fd00::1".parse().unwrap(), 0);
        let mut buf = cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVERR,
            &extended(111, ORIGIN_ICMP6, 1, 4, 0, &off),
        );
        buf.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &63i32.to_ne_bytes(),
        ));
        let c = parse(&buf);
        let q = c.queued.unwrap();
        assert_eq!((q.origin, q.icmp_type, q.code), (ORIGIN_ICMP6, 1, 4));
        assert_eq!(q.offender, Some("fd00::1".parse().unwrap()));
        assert_eq!(c.hop_limit, Some(63));
        assert_eq!(
            parse(&cmsg(libc::IPPROTO_IP, libc::IP_TTL, &64i32.to_ne_bytes())).hop_limit,
            Some(64)
        );
    }

    #[test]
    fn odd_and_truncated_input() {
        assert_eq!(parse(&[]), Control::default());
        assert_eq!(parse(&[1, 2, 3]), Control::default());
        // An unspecified offender (a local error) is no offender; a short one neither.
        let local = extended(90, 1, 0, 0, 1500, &sockaddr_in([0; 4], 0));
        let c = parse(&cmsg(libc::IPPROTO_IP, libc::IP_RECVERR, &local));
        assert_eq!(c.queued.map(|q| (q.origin, q.offender)), Some((1, None)));
        let short = extended(113, ORIGIN_ICMP, 11, 0, 0, &[2, 0]);
        let c = parse(&cmsg(libc::IPPROTO_IP, libc::IP_RECVERR, &short));
        assert_eq!(c.queued.map(|q| q.offender), Some(None));
        // An extended error shorter than its struct is ignored.
        let c = parse(&cmsg(libc::IPPROTO_IP, libc::IP_RECVERR, &[0; 8]));
        assert_eq!(c.queued, None);
        // Cut inside the second message: the first still counts.
        let mut buf = cmsg(libc::IPPROTO_IP, libc::IP_TTL, &7i32.to_ne_bytes());
        let second = cmsg(
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            &timespec_bytes(1, 0),
        );
        buf.extend_from_slice(&second[..second.len() - 4]);
        let c = parse(&buf);
        assert_eq!((c.hop_limit, c.kernel_time), (Some(7), None));
        // A length below the header's, or past the end, stops the walk.
        let mut bad = cmsg(libc::IPPROTO_IP, libc::IP_TTL, &7i32.to_ne_bytes());
        bad[..WORD].copy_from_slice(&3usize.to_ne_bytes());
        assert_eq!(parse(&bad), Control::default());
        bad[..WORD].copy_from_slice(&usize::MAX.to_ne_bytes());
        assert_eq!(parse(&bad), Control::default());
        // A negative or out-of-range timestamp, a TTL above 255, an unknown message.
        let c = parse(&cmsg(
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            &timespec_bytes(-1, 0),
        ));
        assert_eq!(c.kernel_time, None);
        let c = parse(&cmsg(
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPNS,
            &timespec_bytes(1, 1_000_000_000),
        ));
        assert_eq!(c.kernel_time, None);
        let c = parse(&cmsg(libc::IPPROTO_IP, libc::IP_TTL, &300i32.to_ne_bytes()));
        assert_eq!(c.hop_limit, None);
        assert_eq!(parse(&cmsg(99, 99, &[1, 2, 3])), Control::default());
    }

    #[test]
    fn socket_addresses() {
        assert_eq!(
            sockaddr(&sockaddr_in([127, 0, 0, 1], 33434)),
            Some("127.0.0.1:33434".parse().unwrap())
        );
        assert_eq!(
            sockaddr(&sockaddr_in6("::1".parse().unwrap(), 80)),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(sockaddr(&sockaddr_in([127, 0, 0, 1], 1)[..6]), None);
        assert_eq!(
            sockaddr(&sockaddr_in6("::1".parse().unwrap(), 1)[..20]),
            None
        );
        let mut unix = sockaddr_in([1, 2, 3, 4], 5);
        unix[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(sockaddr(&unix), None);
        assert_eq!(sockaddr(&[]), None);
    }

    proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]

        #[test]
        fn fuzz_control_messages_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
            let _ = sockaddr(&bytes);
        }

        #[test]
        fn fuzz_mutated_error_messages_never_panic(
            at in 0usize..80,
            byte in any::<u8>(),
            cut in 0usize..80,
        ) {
            let mut buf = cmsg(
                libc::IPPROTO_IPV6,
                libc::IPV6_RECVERR,
                &extended(113, ORIGIN_ICMP6, 3, 0, 0, &sockaddr_in6("fd00::9".parse().unwrap(), 0)),
            );
            if let Some(b) = buf.get_mut(at) {
                *b = byte;
            }
            buf.truncate(buf.len().saturating_sub(cut));
            let _ = parse(&buf);
        }
    }
}
