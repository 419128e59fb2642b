//! The btrfs ioctls node_exporter uses for per-device figures of a mounted filesystem:
//! `BTRFS_IOC_FS_INFO` (the filesystem id and device id range), `BTRFS_IOC_DEV_INFO` (each
//! device's path, UUID and sizes) and `BTRFS_IOC_GET_DEV_STATS` (its error counters, read
//! without resetting them, which needs no privilege). The argument structs
//! (`include/uapi/linux/btrfs.h`) are handled as byte buffers of their fixed sizes, decoded by
//! the pure functions below.

use std::os::fd::AsRawFd;
use std::path::Path;

/// `struct btrfs_ioctl_fs_info_args`: 1 KiB.
const FS_INFO_SIZE: usize = 1024;
/// `struct btrfs_ioctl_dev_info_args`: 4 KiB.
const DEV_INFO_SIZE: usize = 4096;
/// `struct btrfs_ioctl_get_dev_stats`: 1032 bytes (its padding was meant to make 1 KiB).
const DEV_STATS_SIZE: usize = 1032;

/// `BTRFS_IOCTL_MAGIC`.
const MAGIC: u32 = 0x94;
/// The numbers of `BTRFS_IOC_FS_INFO` (`_IOR`), `BTRFS_IOC_DEV_INFO` (`_IOWR`) and
/// `BTRFS_IOC_GET_DEV_STATS` (`_IOWR`).
const FS_INFO_NR: u32 = 31;
const DEV_INFO_NR: u32 = 30;
const GET_DEV_STATS_NR: u32 = 52;

/// Which way an ioctl's argument goes: out of the kernel only (`_IOR`), or both (`_IOWR`).
#[derive(Clone, Copy)]
enum Dir {
    Read,
    ReadWrite,
}

/// The ioctl request number for an argument of `N` bytes, as the kernel's `_IOR`/`_IOWR`
/// macros encode it on this architecture.
fn request<const N: usize>(dir: Dir, nr: u32) -> libc::Ioctl {
    match dir {
        Dir::Read => libc::_IOR::<[u8; N]>(MAGIC, nr),
        Dir::ReadWrite => libc::_IOWR::<[u8; N]>(MAGIC, nr),
    }
}

/// `BTRFS_DEV_STAT_VALUES_MAX`: write, read, flush, corruption and generation errors.
pub(super) const DEV_STAT_VALUES: usize = 5;

/// What the ioctls tell about one filesystem.
#[derive(Debug, PartialEq)]
pub(super) struct FsDevices {
    /// The filesystem id as 32 lower-case hex digits (the sysfs directory name without
    /// dashes).
    pub(super) fsid: String,
    pub(super) devices: Vec<Device>,
}

/// One device of a filesystem.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Device {
    /// The device path as the kernel knows it (`/dev/sdb`).
    pub(super) path: String,
    /// The device's btrfs UUID, `8-4-4-4-12` hex digits.
    pub(super) uuid: String,
    pub(super) bytes_used: u64,
    pub(super) total_bytes: u64,
    /// Write, read, flush, corruption and generation error counts.
    pub(super) errors: [u64; DEV_STAT_VALUES],
}

/// Reads the devices of the btrfs filesystem mounted at `mount_point` (any directory in it).
pub(super) fn read_fs(mount_point: &Path) -> Result<FsDevices, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(mount_point)
        .map_err(|e| format!("opening {}: {e}", mount_point.display()))?;
    let fd = dir.as_raw_fd();
    let err = |what: &str, e: std::io::Error| format!("{what} on {}: {e}", mount_point.display());

    let mut info = [0u8; FS_INFO_SIZE];
    ioctl(fd, Dir::Read, FS_INFO_NR, &mut info).map_err(|e| err("BTRFS_IOC_FS_INFO", e))?;
    let fs = decode_fs_info(&info);

    let mut devices = Vec::new();
    let mut dev_info = [0u8; DEV_INFO_SIZE];
    let mut dev_stats = [0u8; DEV_STATS_SIZE];
    // Device ids need not start at 1 nor be contiguous (a removed device leaves a gap).
    for devid in 0..=fs.max_id {
        dev_info.fill(0);
        put_u64(&mut dev_info, 0, devid);
        match ioctl(fd, Dir::ReadWrite, DEV_INFO_NR, &mut dev_info) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => continue,
            Err(e) => return Err(err("BTRFS_IOC_DEV_INFO", e)),
        }
        let mut device = decode_dev_info(&dev_info);
        dev_stats.fill(0);
        put_u64(&mut dev_stats, 0, devid);
        put_u64(&mut dev_stats, 8, DEV_STAT_VALUES as u64);
        ioctl(fd, Dir::ReadWrite, GET_DEV_STATS_NR, &mut dev_stats)
            .map_err(|e| err("BTRFS_IOC_GET_DEV_STATS", e))?;
        device.errors = decode_dev_stats(&dev_stats);
        devices.push(device);
        if devices.len() as u64 == fs.num_devices {
            break;
        }
    }
    Ok(FsDevices {
        fsid: hex(&fs.fsid),
        devices,
    })
}

/// Calls the btrfs ioctl `nr` on `fd` with `buf` as its argument struct.
fn ioctl<const N: usize>(fd: i32, dir: Dir, nr: u32, buf: &mut [u8; N]) -> std::io::Result<()> {
    // SAFETY: `fd` is an open descriptor, and the kernel reads and writes at most the
    // argument size encoded in the request, which is `buf`'s own size `N`.
    let rc = unsafe { libc::ioctl(fd, request::<N>(dir, nr), buf.as_mut_ptr()) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The fields of `btrfs_ioctl_fs_info_args` node_exporter uses.
#[derive(Debug, PartialEq)]
struct FsInfo {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
}

/// `struct btrfs_ioctl_fs_info_args`: `max_id` at 0, `num_devices` at 8, `fsid[16]` at 16.
fn decode_fs_info(b: &[u8]) -> FsInfo {
    let mut fsid = [0; 16];
    if let Some(src) = b.get(16..32) {
        fsid.copy_from_slice(src);
    }
    FsInfo {
        max_id: get_u64(b, 0),
        num_devices: get_u64(b, 8),
        fsid,
    }
}

/// `struct btrfs_ioctl_dev_info_args`: `devid` at 0, `uuid[16]` at 8, `bytes_used` at 24,
/// `total_bytes` at 32, then `fsid[16]`, padding, and `path[1024]` (NUL-terminated) at 3072.
fn decode_dev_info(b: &[u8]) -> Device {
    let uuid = b.get(8..24).map(format_uuid).unwrap_or_default();
    let path = b.get(3072..).unwrap_or(&[]);
    let path = path.split(|c| *c == 0).next().unwrap_or(&[]);
    Device {
        path: String::from_utf8_lossy(path).into_owned(),
        uuid,
        bytes_used: get_u64(b, 24),
        total_bytes: get_u64(b, 32),
        errors: [0; DEV_STAT_VALUES],
    }
}

/// `struct btrfs_ioctl_get_dev_stats`: `devid`, `nr_items` (how many values the kernel
/// filled), `flags`, then `values[5]` at 24. Values the kernel did not fill stay zero.
fn decode_dev_stats(b: &[u8]) -> [u64; DEV_STAT_VALUES] {
    let filled = get_u64(b, 8).min(DEV_STAT_VALUES as u64) as usize;
    let mut out = [0; DEV_STAT_VALUES];
    for (i, v) in out.iter_mut().enumerate().take(filled) {
        *v = get_u64(b, 24 + 8 * i);
    }
    out
}

/// The native-endian `u64` at `at` (0 past the end).
fn get_u64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_ne_bytes)
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    if let Some(dst) = b.get_mut(at..at + 8) {
        dst.copy_from_slice(&v.to_ne_bytes());
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A UUID as `8-4-4-4-12` hex digits; all zeros reads `<zero>`, as node_exporter's btrfs
/// library prints it.
fn format_uuid(b: &[u8]) -> String {
    if b.iter().all(|x| *x == 0) {
        return "<zero>".to_string();
    }
    let h = hex(b);
    let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or("");
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn ioctl_numbers_match_the_kernel_headers() {
        // As the C preprocessor computes them from include/uapi/linux/btrfs.h.
        let fs_info = request::<FS_INFO_SIZE>(Dir::Read, FS_INFO_NR);
        let dev_info = request::<DEV_INFO_SIZE>(Dir::ReadWrite, DEV_INFO_NR);
        let dev_stats = request::<DEV_STATS_SIZE>(Dir::ReadWrite, GET_DEV_STATS_NR);
        assert_eq!(fs_info as u64, 0x8400_941f);
        assert_eq!(dev_info as u64, 0xd000_941e);
        assert_eq!(dev_stats as u64, 0xc408_9434);
    }

    #[test]
    fn decodes_fs_info() {
        let mut b = [0u8; FS_INFO_SIZE];
        put_u64(&mut b, 0, 3);
        put_u64(&mut b, 8, 2);
        b[16..32].copy_from_slice(&[
            0xe5, 0xf2, 0x62, 0xab, 0x6b, 0xdb, 0x4c, 0x8c, 0xad, 0x57, 0x18, 0x85, 0x18, 0x33,
            0xb4, 0xb4,
        ]);
        let fs = decode_fs_info(&b);
        assert_eq!((fs.max_id, fs.num_devices), (3, 2));
        assert_eq!(hex(&fs.fsid), "e5f262ab6bdb4c8cad5718851833b4b4");
        // Truncated: what is missing reads as zero.
        assert_eq!(decode_fs_info(&b[..12]).num_devices, 0);
        assert_eq!(decode_fs_info(&[]).fsid, [0; 16]);
    }

    #[test]
    fn decodes_dev_info() {
        let mut b = [0u8; DEV_INFO_SIZE];
        put_u64(&mut b, 0, 1);
        b[8..24].copy_from_slice(&[
            0x1f, 0x2e, 0x3d, 0x4c, 0x5b, 0x6a, 0x79, 0x88, 0x97, 0xa6, 0xb5, 0xc4, 0xd3, 0xe2,
            0xf1, 0x00,
        ]);
        put_u64(&mut b, 24, 1 << 20);
        put_u64(&mut b, 32, 128 << 20);
        b[3072..3082].copy_from_slice(b"/dev/loop0");
        let d = decode_dev_info(&b);
        assert_eq!(d.path, "/dev/loop0");
        assert_eq!(d.uuid, "1f2e3d4c-5b6a-7988-97a6-b5c4d3e2f100");
        assert_eq!((d.bytes_used, d.total_bytes), (1 << 20, 128 << 20));
        // A path filling the whole field has no NUL: all of it is taken.
        b[3072..].fill(b'a');
        assert_eq!(decode_dev_info(&b).path.len(), 1024);
        // A zero UUID, and a buffer cut short before the path.
        b[8..24].fill(0);
        let d = decode_dev_info(&b[..40]);
        assert_eq!(d.uuid, "<zero>");
        assert_eq!(d.path, "");
    }

    #[test]
    fn decodes_dev_stats() {
        let mut b = [0u8; DEV_STATS_SIZE];
        put_u64(&mut b, 8, 5);
        for (i, v) in [1u64, 2, 3, 4, 5].iter().enumerate() {
            put_u64(&mut b, 24 + 8 * i, *v);
        }
        assert_eq!(decode_dev_stats(&b), [1, 2, 3, 4, 5]);
        // An older kernel that fills fewer values: the rest stay zero.
        put_u64(&mut b, 8, 3);
        assert_eq!(decode_dev_stats(&b), [1, 2, 3, 0, 0]);
        // More than we know of: the five are read.
        put_u64(&mut b, 8, 9);
        assert_eq!(decode_dev_stats(&b), [1, 2, 3, 4, 5]);
        assert_eq!(decode_dev_stats(&b[..30]), [0; 5]);
    }

    #[test]
    fn not_btrfs_is_an_error() {
        let dir = std::env::temp_dir();
        // /tmp is rarely btrfs; if it is, the ioctl answers and that is fine too.
        match read_fs(&dir) {
            Ok(fs) => assert_eq!(fs.fsid.len(), 32),
            Err(e) => assert!(e.contains("BTRFS_IOC_FS_INFO"), "{e}"),
        }
        let e = read_fs(Path::new("/nonexistent-eos-btrfs")).unwrap_err();
        assert!(e.contains("opening /nonexistent-eos-btrfs"), "{e}");
    }
}
