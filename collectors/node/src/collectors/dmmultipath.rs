//! `dmmultipath`: Device Mapper multipath devices from `/sys/block/dm-*`, as node_exporter
//! 1.12 reads them through procfs (`blockdevice.DMMultipathDevices`): one `device_*` series set
//! per multipath map, labelled with its device-mapper name (`device`, from `dm/name`) and its
//! kernel name (`sysfs_name`, `dm-N`), and one `node_dmmultipath_path_state` per path.
//!
//! - A `dm-*` device is a multipath map when its `dm/uuid` starts with `mpath-` (what
//!   multipathd gives its maps); LVM (`LVM-`), dm-crypt (`CRYPT-`), kpartx partitions of a map
//!   (`part1-mpath-`) and devices without a `dm/uuid` are skipped.
//! - Of a map, `dm/name`, `dm/suspended` (`1`: suspended, any other number: active) and `size`
//!   (512-byte sectors) are required; one that is missing or not a decimal number fails the
//!   collector, as procfs fails the whole scan. No `slaves/` directory means no paths.
//! - A path is an entry of the map's `slaves/`; its state is the raw text of
//!   `/sys/block/<path>/device/state` (SCSI: `running`, `offline`, `blocked`,
//!   `transport-offline`, ...; NVMe controllers: `live`, `connecting`, ...), required too.
//!   `running` and `live` count as active, any other state as failed.
//! - No `/sys/block` means no data; a host without multipath maps writes nothing and succeeds
//!   (node_exporter reports success too: procfs returns an empty list).

use std::ffi::CStr;
use std::path::Path;

use eos_exposition::{Encoder, Kind};

use crate::collector::{list_dir, Collector, CollectorDef, Ctx, SysDir};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "dmmultipath",
    default_enabled: true,
    build: |_settings, _paths| Ok(Box::new(DmMultipathCollector)),
};

struct DmMultipathCollector;

/// What `dm/uuid` of a multipath map starts with.
const MPATH_UUID_PREFIX: &str = "mpath-";

/// Bytes per unit of a block device's `size` attribute (always 512, whatever the device's
/// logical block size).
const SECTOR_BYTES: f64 = 512.0;

/// One multipath map.
#[derive(Debug, PartialEq)]
struct MultipathDevice {
    /// The device-mapper name (`dm/name`), e.g. `mpatha`.
    name: String,
    /// The kernel block device name, e.g. `dm-3`.
    sysfs_name: String,
    /// The whole `dm/uuid`, e.g. `mpath-3600a0980...` (the WWID after the prefix).
    uuid: String,
    /// `dm/suspended` is `1`.
    suspended: bool,
    /// `size` in sectors, times 512.
    size_bytes: f64,
    /// The map's paths, in `slaves/` order.
    paths: Vec<PathState>,
}

/// One path of a multipath map.
#[derive(Debug, PartialEq)]
struct PathState {
    /// The path's block device name, e.g. `sdb`.
    device: String,
    /// The raw text of `/sys/block/<device>/device/state`.
    state: String,
}

impl Collector for DmMultipathCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let block = ctx.sys_path("block");
        let mut devices = Vec::new();
        let mut buf = Vec::with_capacity(256);
        for name in list_dir(&block)? {
            if !name.starts_with("dm-") {
                continue;
            }
            ctx.check_deadline("device-mapper devices")?;
            if let Some(device) = read_device(&block, &name, &mut buf)? {
                devices.push(device);
            }
        }
        write(enc, &mut devices);
        Ok(())
    }
}

/// Reads `<block>/<sysfs_name>`; `Ok(None)` when it is gone, has no `dm/uuid`, or is not a
/// multipath map.
fn read_device(
    block: &Path,
    sysfs_name: &str,
    buf: &mut Vec<u8>,
) -> Result<Option<MultipathDevice>, String> {
    let dir_path = block.join(sysfs_name);
    let Some(dir) = SysDir::open(&dir_path)? else {
        return Ok(None);
    };
    let Some(uuid) = dir.read(c"dm/uuid", buf)? else {
        return Ok(None);
    };
    if !is_multipath_uuid(uuid) {
        return Ok(None);
    }
    let uuid = uuid.to_string();
    let mut required = |attr: &CStr| -> Result<String, String> {
        let missing = || {
            format!(
                "reading {}/{}: missing",
                dir_path.display(),
                attr.to_string_lossy()
            )
        };
        dir.read(attr, buf)?.map(str::to_string).ok_or_else(missing)
    };
    let name = required(c"dm/name")?;
    let suspended = required(c"dm/suspended")?;
    let size = required(c"size")?;
    let paths = read_paths(block, &dir_path.join("slaves"), buf)?;
    multipath_device(sysfs_name, uuid, name, &suspended, &size, paths)
        .map(Some)
        .map_err(|e| format!("parsing {}: {e}", dir_path.display()))
}

/// The entries of a map's `slaves/` with the state of each; none without the directory.
fn read_paths(block: &Path, slaves: &Path, buf: &mut Vec<u8>) -> Result<Vec<PathState>, String> {
    let mut paths = Vec::new();
    for device in list_dir(slaves)? {
        let dir_path = block.join(&device).join("device");
        let state = match SysDir::open(&dir_path)? {
            Some(dir) => dir.read(c"state", buf)?.map(str::to_string),
            None => None,
        };
        let state = state.ok_or_else(|| {
            format!(
                "reading {}/state: missing (path of {})",
                dir_path.display(),
                slaves.display()
            )
        })?;
        paths.push(PathState { device, state });
    }
    Ok(paths)
}

/// Whether a `dm/uuid` is a multipath map's.
fn is_multipath_uuid(uuid: &str) -> bool {
    uuid.starts_with(MPATH_UUID_PREFIX)
}

/// Whether a path's device state means it carries I/O: SCSI `running` or NVMe `live`.
fn is_path_active(state: &str) -> bool {
    state == "running" || state == "live"
}

/// A map from its attribute texts (already trimmed): `suspended` and `size` are decimal.
fn multipath_device(
    sysfs_name: &str,
    uuid: String,
    name: String,
    suspended: &str,
    size: &str,
    paths: Vec<PathState>,
) -> Result<MultipathDevice, String> {
    let suspended = parse_decimal(suspended).map_err(|e| format!("dm/suspended: {e}"))?;
    let sectors = parse_decimal(size).map_err(|e| format!("size: {e}"))?;
    Ok(MultipathDevice {
        name,
        sysfs_name: sysfs_name.to_string(),
        uuid,
        suspended: suspended == 1,
        // In floating point: exact for any real device (below 2^44 sectors), and no
        // overflow to handle (Go's uint64 product would wrap past 2^55 sectors).
        size_bytes: sectors as f64 * SECTOR_BYTES,
        paths,
    })
}

/// An unsigned decimal number, as Go's `strconv.ParseUint(s, 10, 64)` takes it: digits only,
/// no sign, no base prefix.
fn parse_decimal(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid number {s:?}"));
    }
    s.parse().map_err(|_| format!("invalid number {s:?}"))
}

/// Writes the families in name order, series ordered as the Go client orders them (by label
/// values, labels in name order: `device`, then `sysfs_name` or `path`, `state`).
fn write(enc: &mut Encoder<'_>, devices: &mut [MultipathDevice]) {
    devices.sort_unstable_by(|a, b| (&a.name, &a.sysfs_name).cmp(&(&b.name, &b.sysfs_name)));
    let per_device =
        |enc: &mut Encoder<'_>, name: &str, help: &str, v: &dyn Fn(&MultipathDevice) -> f64| {
            let mut fam = enc.family(name, help, Kind::Gauge);
            for d in devices.iter() {
                fam.sample(&[("device", &d.name), ("sysfs_name", &d.sysfs_name)], v(d));
            }
        };
    per_device(
        enc,
        "node_dmmultipath_device_active",
        "Whether the multipath device-mapper device is active (1) or suspended (0).",
        &|d| if d.suspended { 0.0 } else { 1.0 },
    );
    let mut fam = enc.family(
        "node_dmmultipath_device_info",
        "Non-numeric information about a DM-multipath device.",
        Kind::Gauge,
    );
    for d in devices.iter() {
        fam.sample(
            &[
                ("device", &d.name),
                ("sysfs_name", &d.sysfs_name),
                ("uuid", &d.uuid),
            ],
            1.0,
        );
    }
    per_device(
        enc,
        "node_dmmultipath_device_paths",
        "Number of paths for a multipath device.",
        &|d| d.paths.len() as f64,
    );
    per_device(
        enc,
        "node_dmmultipath_device_paths_active",
        "Number of paths in active state (SCSI running or NVMe live) for a multipath device.",
        &|d| active_paths(d) as f64,
    );
    per_device(
        enc,
        "node_dmmultipath_device_paths_failed",
        "Number of paths not in active state for a multipath device.",
        &|d| (d.paths.len() - active_paths(d)) as f64,
    );
    per_device(
        enc,
        "node_dmmultipath_device_size_bytes",
        "Size of the multipath device in bytes, read from /sys/block/<dm>/size.",
        &|d| d.size_bytes,
    );
    let mut states: Vec<(&str, &str, &str)> = devices
        .iter()
        .flat_map(|d| {
            d.paths
                .iter()
                .map(move |p| (d.name.as_str(), p.device.as_str(), p.state.as_str()))
        })
        .collect();
    states.sort_unstable();
    let mut fam = enc.family(
        "node_dmmultipath_path_state",
        "Reports the underlying device state for a multipath path, as read from /sys/block/<dev>/device/state.",
        Kind::Gauge,
    );
    for (device, path, state) in states {
        fam.sample(&[("device", device), ("path", path), ("state", state)], 1.0);
    }
}

/// How many of a map's paths are active.
fn active_paths(d: &MultipathDevice) -> usize {
    d.paths.iter().filter(|p| is_path_active(&p.state)).count()
}

#[cfg(test)]
mod tests {
    //! No multipath storage here: the trees below are written in the sysfs layout of a host
    //! with multipathd maps (SCSI paths behind `slaves/`, NVMe paths whose `device` is the
    //! controller), not read from a real one.

    use super::*;
    use crate::collectors::test_tree::TestTree;
    use eos_module::HostPaths;

    fn path(device: &str, state: &str) -> PathState {
        PathState {
            device: device.into(),
            state: state.into(),
        }
    }

    /// A sysfs tree with an LVM volume, two multipath maps (one suspended, one over NVMe), a
    /// kpartx partition of a map, a dm-crypt volume, and non-dm disks.
    fn tree(tag: &str) -> TestTree {
        let t = TestTree::new(tag);
        t.write("block/dm-0/dm/name", "vg0-root\n")
            .write(
                "block/dm-0/dm/uuid",
                "LVM-3zSHSR5Nbf4j7g6auAAefWY2CMaX01th\n",
            )
            .write("block/dm-0/dm/suspended", "0\n")
            .write("block/dm-0/size", "41943040\n")
            .write("block/dm-1/dm/name", "mpatha\n")
            .write(
                "block/dm-1/dm/uuid",
                "mpath-3600a098038303053453f463045727a4d\n",
            )
            .write("block/dm-1/dm/suspended", "0\n")
            .write("block/dm-1/size", "209715200\n")
            .symlink("../../sdb", "block/dm-1/slaves/sdb")
            .symlink("../../sdc", "block/dm-1/slaves/sdc")
            .write("block/sdb/device/state", "running\n")
            .write("block/sdc/device/state", "offline\n")
            .write("block/dm-2/dm/name", "mpathb\n")
            .write("block/dm-2/dm/uuid", "mpath-eui.0025388b91b2c3d4\n")
            .write("block/dm-2/dm/suspended", "1\n")
            .write("block/dm-2/size", "20971520\n")
            .symlink("../../nvme1n1", "block/dm-2/slaves/nvme1n1")
            .symlink("../../nvme2n1", "block/dm-2/slaves/nvme2n1")
            .write("block/nvme1n1/device/state", "live\n")
            .write("block/nvme2n1/device/state", "connecting\n")
            // A partition of mpatha: its uuid has the map's after a `partN-` prefix.
            .write("block/dm-3/dm/name", "mpatha1\n")
            .write(
                "block/dm-3/dm/uuid",
                "part1-mpath-3600a098038303053453f463045727a4d\n",
            )
            .write("block/dm-3/dm/suspended", "0\n")
            .write("block/dm-3/size", "209713152\n")
            .symlink("../../dm-1", "block/dm-3/slaves/dm-1")
            .write("block/dm-4/dm/name", "luks-home\n")
            .write("block/dm-4/dm/uuid", "CRYPT-LUKS2-0f3c2a7e-home\n")
            .write("block/sda/queue/rotational", "1\n")
            .write("block/md0/md/level", "raid1\n");
        t
    }

    fn read_all(block: &Path) -> Result<Vec<MultipathDevice>, String> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for name in list_dir(block)? {
            if name.starts_with("dm-") {
                out.extend(read_device(block, &name, &mut buf)?);
            }
        }
        Ok(out)
    }

    /// Runs the collector against `sys` as sysfs.
    fn collect(sys: &Path) -> Result<String, String> {
        let paths = HostPaths {
            sysfs: sys.to_path_buf(),
            ..HostPaths::default()
        };
        crate::collectors::test_tree::scrape(&DmMultipathCollector, &paths)
    }

    #[test]
    fn reads_only_multipath_maps() {
        let t = tree("dmmultipath-read");
        let got = read_all(&t.path().join("block")).unwrap();
        assert_eq!(
            got,
            vec![
                MultipathDevice {
                    name: "mpatha".into(),
                    sysfs_name: "dm-1".into(),
                    uuid: "mpath-3600a098038303053453f463045727a4d".into(),
                    suspended: false,
                    size_bytes: 209715200.0 * 512.0,
                    paths: vec![path("sdb", "running"), path("sdc", "offline")],
                },
                MultipathDevice {
                    name: "mpathb".into(),
                    sysfs_name: "dm-2".into(),
                    uuid: "mpath-eui.0025388b91b2c3d4".into(),
                    suspended: true,
                    size_bytes: 20971520.0 * 512.0,
                    paths: vec![path("nvme1n1", "live"), path("nvme2n1", "connecting")],
                },
            ]
        );
    }

    #[test]
    fn writes_upstream_families() {
        let t = tree("dmmultipath-write");
        let text = collect(t.path()).unwrap();
        let want = "\
# HELP node_dmmultipath_device_active Whether the multipath device-mapper device is active (1) or suspended (0).
# TYPE node_dmmultipath_device_active gauge
node_dmmultipath_device_active{device=\"mpatha\",sysfs_name=\"dm-1\"} 1
node_dmmultipath_device_active{device=\"mpathb\",sysfs_name=\"dm-2\"} 0
# HELP node_dmmultipath_device_info Non-numeric information about a DM-multipath device.
# TYPE node_dmmultipath_device_info gauge
node_dmmultipath_device_info{device=\"mpatha\",sysfs_name=\"dm-1\",uuid=\"mpath-3600a098038303053453f463045727a4d\"} 1
node_dmmultipath_device_info{device=\"mpathb\",sysfs_name=\"dm-2\",uuid=\"mpath-eui.0025388b91b2c3d4\"} 1
# HELP node_dmmultipath_device_paths Number of paths for a multipath device.
# TYPE node_dmmultipath_device_paths gauge
node_dmmultipath_device_paths{device=\"mpatha\",sysfs_name=\"dm-1\"} 2
node_dmmultipath_device_paths{device=\"mpathb\",sysfs_name=\"dm-2\"} 2
# HELP node_dmmultipath_device_paths_active Number of paths in active state (SCSI running or NVMe live) for a multipath device.
# TYPE node_dmmultipath_device_paths_active gauge
node_dmmultipath_device_paths_active{device=\"mpatha\",sysfs_name=\"dm-1\"} 1
node_dmmultipath_device_paths_active{device=\"mpathb\",sysfs_name=\"dm-2\"} 1
# HELP node_dmmultipath_device_paths_failed Number of paths not in active state for a multipath device.
# TYPE node_dmmultipath_device_paths_failed gauge
node_dmmultipath_device_paths_failed{device=\"mpatha\",sysfs_name=\"dm-1\"} 1
node_dmmultipath_device_paths_failed{device=\"mpathb\",sysfs_name=\"dm-2\"} 1
# HELP node_dmmultipath_device_size_bytes Size of the multipath device in bytes, read from /sys/block/<dm>/size.
# TYPE node_dmmultipath_device_size_bytes gauge
node_dmmultipath_device_size_bytes{device=\"mpatha\",sysfs_name=\"dm-1\"} 1.073741824e+11
node_dmmultipath_device_size_bytes{device=\"mpathb\",sysfs_name=\"dm-2\"} 1.073741824e+10
# HELP node_dmmultipath_path_state Reports the underlying device state for a multipath path, as read from /sys/block/<dev>/device/state.
# TYPE node_dmmultipath_path_state gauge
node_dmmultipath_path_state{device=\"mpatha\",path=\"sdb\",state=\"running\"} 1
node_dmmultipath_path_state{device=\"mpatha\",path=\"sdc\",state=\"offline\"} 1
node_dmmultipath_path_state{device=\"mpathb\",path=\"nvme1n1\",state=\"live\"} 1
node_dmmultipath_path_state{device=\"mpathb\",path=\"nvme2n1\",state=\"connecting\"} 1
";
        assert_eq!(text, want);
    }

    #[test]
    fn series_sort_by_device_name_not_kernel_name() {
        // dm-10 sorts before dm-9 by kernel name; the Go client orders by `device` first.
        let t = TestTree::new("dmmultipath-order");
        for (dm, name) in [("dm-10", "mpathz"), ("dm-9", "mpatha")] {
            t.write(&format!("block/{dm}/dm/name"), name)
                .write(&format!("block/{dm}/dm/uuid"), &format!("mpath-{name}"))
                .write(&format!("block/{dm}/dm/suspended"), "0")
                .write(&format!("block/{dm}/size"), "8");
        }
        let text = collect(t.path()).unwrap();
        let active: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("node_dmmultipath_device_active{"))
            .collect();
        assert_eq!(
            active,
            vec![
                "node_dmmultipath_device_active{device=\"mpatha\",sysfs_name=\"dm-9\"} 1",
                "node_dmmultipath_device_active{device=\"mpathz\",sysfs_name=\"dm-10\"} 1",
            ]
        );
        // Maps without `slaves/` have no paths: counts are 0 and no path_state is written.
        assert!(text
            .contains("node_dmmultipath_device_paths{device=\"mpatha\",sysfs_name=\"dm-9\"} 0\n"));
        assert!(!text.contains("node_dmmultipath_path_state"));
    }

    #[test]
    fn no_block_directory_or_no_maps_writes_nothing() {
        let t = TestTree::new("dmmultipath-none");
        assert_eq!(collect(t.path()).unwrap(), "");
        t.write("block/sda/queue/rotational", "1\n")
            .write("block/dm-0/dm/name", "vg0-root\n")
            .write("block/dm-0/dm/uuid", "LVM-abc\n")
            // A dm-* without dm/uuid is not a device-mapper device.
            .write("block/dm-7/size", "8\n");
        assert_eq!(collect(t.path()).unwrap(), "");
    }

    #[test]
    fn missing_or_malformed_attributes_fail_naming_the_file() {
        let t = tree("dmmultipath-bad");
        let block = t.path().join("block");
        std::fs::remove_file(block.join("dm-2/dm/name")).unwrap();
        let e = collect(t.path()).unwrap_err();
        assert!(e.ends_with("block/dm-2/dm/name: missing"), "{e}");
        t.write("block/dm-2/dm/name", "mpathb\n");

        t.write("block/dm-2/dm/suspended", "yes\n");
        let e = collect(t.path()).unwrap_err();
        assert!(
            e.contains("block/dm-2: dm/suspended: invalid number \"yes\""),
            "{e}"
        );
        t.write("block/dm-2/dm/suspended", "1\n");

        // Truncated: an empty size.
        t.write("block/dm-1/size", "");
        let e = collect(t.path()).unwrap_err();
        assert!(e.contains("block/dm-1: size: invalid number \"\""), "{e}");
        t.write("block/dm-1/size", "209715200\n");

        std::fs::remove_file(block.join("sdc/device/state")).unwrap();
        let e = collect(t.path()).unwrap_err();
        assert!(e.contains("block/sdc/device/state: missing"), "{e}");
        assert!(e.contains("dm-1/slaves"), "{e}");
        t.write("block/sdc/device/state", "transport-offline\n");
        assert!(collect(t.path())
            .unwrap()
            .contains("node_dmmultipath_path_state{device=\"mpatha\",path=\"sdc\",state=\"transport-offline\"} 1\n"));
    }

    #[test]
    fn attribute_values() {
        let d = multipath_device("dm-5", "mpath-x".into(), "m".into(), "2", "1", vec![]).unwrap();
        // Only `1` means suspended.
        assert!(!d.suspended);
        assert_eq!(d.size_bytes, 512.0);
        let max = multipath_device(
            "dm-5",
            "mpath-x".into(),
            "m".into(),
            "1",
            "18446744073709551615",
            vec![],
        )
        .unwrap();
        assert!(max.suspended);
        assert_eq!(max.size_bytes, u64::MAX as f64 * 512.0);

        for bad in [
            "",
            "+1",
            "-1",
            "0x10",
            "1.0",
            " 1",
            "18446744073709551616",
            "1e3",
        ] {
            assert!(parse_decimal(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_decimal("007").unwrap(), 7);
        let e =
            multipath_device("dm-5", "mpath-x".into(), "m".into(), "0", "12a", vec![]).unwrap_err();
        assert_eq!(e, "size: invalid number \"12a\"");
    }

    #[test]
    fn which_uuids_and_states_count() {
        assert!(is_multipath_uuid("mpath-3600a098038303053453f463045727a4d"));
        assert!(is_multipath_uuid("mpath-"));
        for other in [
            "",
            "mpath",
            "MPATH-36",
            "part1-mpath-36",
            "LVM-abc",
            "CRYPT-LUKS2-x",
        ] {
            assert!(!is_multipath_uuid(other), "{other:?}");
        }
        assert!(is_path_active("running"));
        assert!(is_path_active("live"));
        for other in [
            "",
            "offline",
            "blocked",
            "transport-offline",
            "created",
            "Running",
            "dead",
        ] {
            assert!(!is_path_active(other), "{other:?}");
        }
    }
}
