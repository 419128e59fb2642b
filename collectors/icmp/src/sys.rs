//! The system calls: opening ICMP, UDP and TCP sockets, their options, sending, and receiving with the
//! control messages (kernel timestamp, TTL / hop limit, queued ICMP errors).

use crate::control::{self, QueuedError};
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, SystemTime};

/// `ICMP_FILTER` on `SOL_RAW` (linux/icmp.h): a mask of ICMPv4 types a raw socket drops.
const ICMP_FILTER: libc::c_int = 1;
/// `ICMP6_FILTER` on `IPPROTO_ICMPV6` (linux/icmpv6.h): 256 bits, a set bit blocks the type.
const ICMP6_FILTER: libc::c_int = 1;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Opens a non-blocking ICMP socket: `SOCK_DGRAM` (a "ping socket", allowed by
/// `net.ipv4.ping_group_range`) or `SOCK_RAW` (needs `CAP_NET_RAW`).
pub fn open(v6: bool, raw: bool) -> io::Result<OwnedFd> {
    let (domain, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    let ty = if raw {
        libc::SOCK_RAW
    } else {
        libc::SOCK_DGRAM
    };
    // SAFETY: socket(2) takes plain integers; on success we own the returned descriptor.
    let fd =
        cvt(unsafe { libc::socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, proto) })?;
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sets an option whose value is a plain C value.
fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of `size_of::<T>()` bytes for the call's duration.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Sets an `int` option.
pub fn set_int(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    setsockopt(fd.as_raw_fd(), level, name, &value)
}

/// Raw IPv4 sockets see every ICMP message of the namespace; keep echo replies and the
/// errors that can be about an echo request (unreachable, time exceeded, parameter problem).
pub fn filter_v4(fd: &OwnedFd) -> io::Result<()> {
    let pass: u32 = (1 << 0) | (1 << 3) | (1 << 11) | (1 << 12);
    setsockopt(fd.as_raw_fd(), libc::SOL_RAW, ICMP_FILTER, &!pass)
}

/// As [`filter_v4`] for ICMPv6: echo replies, unreachable, packet too big, time exceeded,
/// parameter problem.
pub fn filter_v6(fd: &OwnedFd) -> io::Result<()> {
    let mut blocked = [u32::MAX; 8];
    for t in [1u8, 2, 3, 4, 129] {
        blocked[usize::from(t >> 5)] &= !(1u32 << (t & 31));
    }
    setsockopt(fd.as_raw_fd(), libc::IPPROTO_ICMPV6, ICMP6_FILTER, &blocked)
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid `sockaddr_storage`.
    let mut ss: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for `sockaddr_in`.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for `sockaddr_in6`.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// The bytes of an address the kernel wrote: `len` of them, at most the storage's size.
fn storage_bytes(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> &[u8] {
    let len = (len as usize).min(size_of::<libc::sockaddr_storage>());
    // SAFETY: `sockaddr_storage` is plain old data, fully initialised (zeroed before the
    // kernel wrote into it), and `len` is at most its size.
    unsafe { std::slice::from_raw_parts((ss as *const libc::sockaddr_storage).cast::<u8>(), len) }
}

/// Binds to `addr` (port 0 on a datagram socket: the kernel picks a free identifier).
pub fn bind(fd: &OwnedFd, addr: SocketAddr) -> io::Result<()> {
    let (ss, len) = sockaddr(addr);
    // SAFETY: `ss` holds a valid address of `len` bytes.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    })
    .map(drop)
}

/// The socket's own address (a datagram ICMP socket's port is its echo identifier).
pub fn local_addr(fd: &OwnedFd) -> io::Result<SocketAddr> {
    // SAFETY: all-zero bytes are a valid `sockaddr_storage`.
    let mut ss: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` is writable for `len` bytes, and `len` is updated with what was written.
    cvt(unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    })?;
    control::sockaddr(storage_bytes(&ss, len))
        .ok_or_else(|| io::Error::other("getsockname: not an IP address"))
}

/// Reads and clears the socket's pending error (`SO_ERROR`).
pub fn take_error(fd: &OwnedFd) -> io::Result<Option<io::Error>> {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` is a writable `int` and `len` its size.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok((v != 0).then(|| io::Error::from_raw_os_error(v)))
}

/// Sends `packet` to `dst` (never blocks: the socket is non-blocking).
pub fn send_to(fd: &OwnedFd, packet: &[u8], dst: IpAddr) -> io::Result<usize> {
    let (ss, len) = sockaddr(SocketAddr::new(dst, 0));
    // SAFETY: `packet` is readable for its length and `ss` holds a valid address of `len`.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            libc::MSG_DONTWAIT,
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// What one `recvmsg` got besides the bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Received {
    pub len: usize,
    /// The sender (for a queued error: the destination of the packet it is about).
    pub from: Option<SocketAddr>,
    /// TTL / hop limit of the received packet.
    pub hop_limit: Option<u8>,
    /// When the kernel received it (`SO_TIMESTAMPNS`, wall clock).
    pub kernel_time: Option<SystemTime>,
    pub queued: Option<QueuedError>,
}

/// Control-message space for one receive (a timestamp, a TTL, and an extended error with
/// its offender address, with room to spare), aligned for `struct cmsghdr`.
#[repr(C, align(8))]
pub struct CmsgBuf(pub [u8; 512]);

impl Default for CmsgBuf {
    fn default() -> Self {
        CmsgBuf([0; 512])
    }
}

/// Receives one message (from the error queue when `errqueue`), without blocking.
pub fn recv(
    fd: &OwnedFd,
    buf: &mut [u8],
    cmsg: &mut CmsgBuf,
    errqueue: bool,
) -> io::Result<Received> {
    // SAFETY: all-zero bytes are a valid `sockaddr_storage` and `msghdr`.
    let mut name: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.0.as_mut_ptr().cast();
    msg.msg_controllen = cmsg.0.len() as _;
    let flags = libc::MSG_DONTWAIT | if errqueue { libc::MSG_ERRQUEUE } else { 0 };
    // SAFETY: `msg` points at `name`, `iov` (over `buf`) and `cmsg`, all live and writable
    // for the lengths given.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // `msg_controllen` is a `size_t` in glibc and a `socklen_t` in musl.
    #[allow(clippy::unnecessary_cast)]
    let control_len = (msg.msg_controllen as usize).min(cmsg.0.len());
    let c = control::parse(&cmsg.0[..control_len]);
    Ok(Received {
        len: n as usize,
        from: control::sockaddr(storage_bytes(&name, msg.msg_namelen)),
        hop_limit: c.hop_limit,
        kernel_time: c.kernel_time,
        queued: c.queued,
    })
}

/// Opens a non-blocking UDP socket (`stream: false`) or TCP socket of the family.
pub fn open_transport(v6: bool, stream: bool) -> io::Result<OwnedFd> {
    let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    let ty = if stream {
        libc::SOCK_STREAM
    } else {
        libc::SOCK_DGRAM
    };
    // SAFETY: socket(2) takes plain integers; on success we own the returned descriptor.
    let fd =
        cvt(unsafe { libc::socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Connects to `addr`; a non-blocking TCP socket returns `EINPROGRESS` and connects later.
pub fn connect(fd: &OwnedFd, addr: SocketAddr) -> io::Result<()> {
    let (ss, len) = sockaddr(addr);
    // SAFETY: `ss` holds a valid address of `len` bytes.
    cvt(unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    })
    .map(drop)
}

/// Sends `data` on a connected socket (never blocks).
pub fn send(fd: &OwnedFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is readable for its length.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Sets the TTL (`IP_TTL`) or hop limit (`IPV6_UNICAST_HOPS`) of what the socket sends;
/// `None`: the system's default.
pub fn set_hop_limit(fd: &OwnedFd, v6: bool, ttl: Option<u8>) -> io::Result<()> {
    let v = ttl.map_or(-1, libc::c_int::from);
    if v6 {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, v)
    } else {
        set_int(fd, libc::IPPROTO_IP, libc::IP_TTL, v)
    }
}

/// `SO_LINGER` with a zero timeout: closing the socket resets an established connection
/// (RST) rather than closing it, and leaves no `TIME_WAIT` behind.
pub fn set_linger_reset(fd: &OwnedFd) -> io::Result<()> {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, &l)
}

/// The bytes of `TCP_INFO` (as many as this kernel's `struct tcp_info` has, up to 256).
pub fn tcp_info(fd: &OwnedFd) -> io::Result<Vec<u8>> {
    let mut b = [0u8; 256];
    let mut len = b.len() as libc::socklen_t;
    // SAFETY: `b` is writable for `len` bytes, and `len` is updated with what was written.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            b.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    Ok(b[..(len as usize).min(b.len())].to_vec())
}

/// An eventfd that wakes the receive thread.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd(2) takes plain integers; on success we own the descriptor.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: `fd` was just returned by eventfd(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd.
pub fn wake(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live `u64`, as eventfd(2) expects. A full counter
    // (EAGAIN) already means "wake up", so the result does not matter.
    let _ = unsafe {
        libc::write(
            fd.as_raw_fd(),
            (&one as *const u64).cast(),
            size_of::<u64>(),
        )
    };
}

/// Resets an eventfd.
pub fn drain(fd: &OwnedFd) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live `u64`; EAGAIN (nothing to read) is fine.
    let _ = unsafe {
        libc::read(
            fd.as_raw_fd(),
            (&mut v as *mut u64).cast(),
            size_of::<u64>(),
        )
    };
}

/// Waits until one of `fds` is ready or `timeout` passes; fills in `revents`.
pub fn poll(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<usize> {
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fds` is a live, writable slice of `pollfd` of the given length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Random bytes from the kernel, or the clock if that fails.
pub fn random_u32() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: getrandom(2) writes at most 4 bytes into the live `u32`.
    let n = unsafe {
        libc::getrandom(
            (&mut v as *mut u32).cast(),
            size_of::<u32>(),
            libc::GRND_NONBLOCK,
        )
    };
    if n == size_of::<u32>() as isize {
        return v;
    }
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    t.subsec_nanos() ^ std::process::id().rotate_left(16)
}

/// The effective group id (for the `ping_group_range` explanation).
pub fn egid() -> u32 {
    // SAFETY: getegid(2) cannot fail and has no arguments.
    unsafe { libc::getegid() }
}
