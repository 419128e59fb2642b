//! The host's mount table (`/proc/<pid>/mountinfo`), parsed for the collectors that need
//! mount points: filesystem (sizes) and btrfs (per-device stats through the mount point).

use std::path::{Path, PathBuf};

use crate::collector::At;

/// One mount table entry.
#[derive(Debug, PartialEq)]
pub(crate) struct Mount<'a> {
    /// The mount's source (a device path, `server:/export`, ...), unescaped.
    pub(crate) device: String,
    /// Where it is mounted, as the host sees it.
    pub(crate) mount_point: String,
    /// The filesystem type (`ext4`, `btrfs`, `nfs4`, ...).
    pub(crate) fs_type: &'a str,
    /// The device numbers of the mounted filesystem.
    pub(crate) major: u32,
    /// See `major`.
    pub(crate) minor: u32,
    /// `ro` in the mount's options or in its super block's.
    pub(crate) read_only: bool,
}

/// `<rootfs>/<mount_point>` (the host's mount as seen from the agent's container).
pub(crate) fn rootfs_join(rootfs: &Path, mount_point: &str) -> PathBuf {
    rootfs.join(mount_point.trim_start_matches('/'))
}

/// Parses a mount table in `/proc/<pid>/mountinfo` format (`source` names it in errors):
///
/// ```text
/// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
/// ```
///
/// Mount points and devices are unescaped (`\040` is a space) and, when the table is the
/// agent's own view of a host mounted at `rootfs`, the `rootfs` prefix is removed as
/// node_exporter does. Read-only: `ro` in the mount options or in the super block's.
pub(crate) fn parse_mountinfo<'t>(
    text: &'t str,
    source: &str,
    rootfs: &Path,
) -> Result<Vec<Mount<'t>>, String> {
    let mut out = Vec::new();
    let root = rootfs.to_str().unwrap_or("/").trim_end_matches('/');
    for (i, line) in text.lines().enumerate() {
        let at = At(source, i + 1);
        let mut fields = line.split_ascii_whitespace();
        if fields.next().is_none() {
            continue; // blank line
        }
        let (Some(_parent), Some(dev), Some(_root), Some(mount_point), Some(options)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(format!(
                "{at}: expected mount ID, parent ID, major:minor, root, mount point and options"
            ));
        };
        // Optional fields (`shared:1`, `master:2`, ...) up to the `-` separator.
        if !fields.by_ref().any(|f| f == "-") {
            return Err(format!("{at}: no \"-\" after the optional fields"));
        }
        let (Some(fs_type), Some(device), Some(super_options)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(format!(
                "{at}: expected filesystem type, source and super options after \"-\""
            ));
        };
        let (major, minor) = dev
            .split_once(':')
            .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
            .ok_or_else(|| format!("{at}: expected major:minor, got {dev:?}"))?;
        let mut mount_point = unescape(mount_point);
        if !root.is_empty() {
            if let Some(rest) = mount_point.strip_prefix(root) {
                if rest.is_empty() {
                    mount_point = "/".to_string();
                } else if rest.starts_with('/') {
                    mount_point = rest.to_string();
                }
            }
        }
        let has_ro = |opts: &str| opts.split(',').any(|o| o == "ro");
        out.push(Mount {
            device: unescape(device),
            mount_point,
            fs_type,
            major,
            minor,
            read_only: has_ro(options) || has_ro(super_options),
        });
    }
    Ok(out)
}

/// Undoes the kernel's octal escapes in mount table fields (`\040` space, `\011` tab, ...).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\' {
            if let Some(&[x, y, z]) = b.get(i + 1..i + 4) {
                let octal = |d: u8| d.is_ascii_digit() && d < b'8';
                if octal(x) && octal(y) && octal(z) {
                    let v =
                        u32::from(x - b'0') * 64 + u32::from(y - b'0') * 8 + u32::from(z - b'0');
                    if let Ok(byte) = u8::try_from(v) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
28 27 0:25 / /mnt/my\\040share ro,nosuid master:3 shared:7 - nfs4 server:/x rw,vers=4.2
29 27 8:1 / /data rw,relatime - xfs /dev/sda1 ro,attr2
30 27 8:2 / /boot rw - ext4 /dev/sda2 rw,errors=remount-ro

";

    #[test]
    fn mountinfo() {
        let m = parse_mountinfo(MOUNTINFO, "/proc/1/mountinfo", Path::new("/")).unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!(
            m[1],
            Mount {
                device: "/dev/vda".into(),
                mount_point: "/".into(),
                fs_type: "ext4",
                major: 254,
                minor: 0,
                read_only: false,
            }
        );
        // Several optional fields; `ro` in the mount options.
        assert_eq!(m[2].mount_point, "/mnt/my share");
        assert_eq!((m[2].device.as_str(), m[2].fs_type), ("server:/x", "nfs4"));
        assert!(m[2].read_only);
        // `ro` in the super block's options only: read-only too.
        assert!(m[3].read_only);
        // `errors=remount-ro` is not `ro`.
        assert!(!m[4].read_only);
        assert_eq!((m[0].major, m[0].minor), (0, 21));
    }

    #[test]
    fn rootfs_prefix_is_stripped() {
        let m = parse_mountinfo(
            "1 0 8:0 / /host/root rw - ext4 /dev/vda rw\n\
             2 1 8:1 / /host/root/data rw - xfs /dev/vdb rw\n\
             3 1 8:2 / /host/rootless rw - xfs /dev/vdc rw\n",
            "mountinfo",
            Path::new("/host/root"),
        )
        .unwrap();
        assert_eq!(m[0].mount_point, "/");
        assert_eq!(m[1].mount_point, "/data");
        assert_eq!(m[2].mount_point, "/host/rootless");
        assert_eq!(
            rootfs_join(Path::new("/host/root"), "/data"),
            Path::new("/host/root/data")
        );
    }

    #[test]
    fn malformed_mountinfo() {
        let err = |text: &'static str| parse_mountinfo(text, "/proc/1/mountinfo", Path::new("/"));
        let e = err("27 1 254:0 / /\n").unwrap_err();
        assert!(
            e.starts_with("parsing /proc/1/mountinfo line 1: expected mount ID"),
            "{e}"
        );
        let e = err("1 0 8:0 / / rw\n2 1 8:1 / /x rw shared:1 ext4 /dev/x rw\n").unwrap_err();
        assert!(e.contains("line 1: no \"-\""), "{e}");
        let e = err("2 1 8:1 / /x rw - ext4\n").unwrap_err();
        assert!(e.contains("after \"-\""), "{e}");
        let e = err("2 1 8-1 / /x rw - ext4 /dev/x rw\n").unwrap_err();
        assert!(e.contains("expected major:minor, got \"8-1\""), "{e}");
        assert!(err("2 1 8: / /x rw - ext4 /dev/x rw\n").is_err());
        assert!(err("").unwrap().is_empty());
    }

    #[test]
    fn unescapes() {
        assert_eq!(unescape("a\\040b\\011c"), "a b\tc");
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape("trail\\04"), "trail\\04");
        assert_eq!(unescape("bad\\999"), "bad\\999");
        assert_eq!(unescape("\\"), "\\");
    }
}
