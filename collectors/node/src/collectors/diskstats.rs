//! `diskstats`: block device I/O from `/proc/diskstats` as `node_disk_*{device}`, and
//! `node_disk_info` with udev properties from `<udev_data>/b<major>:<minor>` and, as
//! node_exporter 1.12, `rotational` from `/sys/block/<device>/queue/rotational`.
//! `--collector.diskstats.device-exclude` (default: partitions, ram, loop, fd) or
//! `--collector.diskstats.device-include` select devices.

use eos_exposition::{Encoder, Kind};

use crate::collector::{in_procfs, read_trimmed};
use crate::collector::{parse_f64, At, Collector, CollectorDef, Ctx};
use crate::device_filter::DeviceFilter;
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "diskstats",
    default_enabled: true,
    build: |settings, _| {
        Ok(Box::new(DiskstatsCollector {
            // node_exporter: an include pattern replaces the (default) exclude one.
            devices: settings.0.include_replaces_exclude(),
        }))
    },
};

/// node_exporter's default for `--collector.diskstats.device-exclude` (zram since 1.8).
const DEVICE_EXCLUDE: &str = "^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$";

/// `modules.node.diskstats`: `device_include` / `device_exclude` (an include replaces the default exclude).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(transparent)]
pub(crate) struct Settings(pub(crate) DeviceFilter);

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["diskstats"];
    const HELP: &'static str =
        "  --collector.diskstats.device-exclude=RE, --collector.diskstats.device-include=RE
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        self.0
            .apply_flag(flag, &[("ignored-devices", "device-exclude")])
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings(DeviceFilter::excluding(DEVICE_EXCLUDE))
    }
}

const SECTOR: f64 = 512.0;
const MS: f64 = 0.001;

/// (metric, help, counter?, column after the name, scale), node_exporter's set.
const STATS: [(&str, &str, bool, usize, f64); 17] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        true,
        0,
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        true,
        1,
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        true,
        2,
        SECTOR,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        true,
        3,
        MS,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        true,
        4,
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        true,
        5,
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        true,
        6,
        SECTOR,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        true,
        7,
        MS,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        false,
        8,
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        true,
        9,
        MS,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        true,
        10,
        MS,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        true,
        11,
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        true,
        12,
        1.0,
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        true,
        13,
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        true,
        14,
        MS,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        true,
        15,
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        true,
        16,
        MS,
    ),
];

struct DiskstatsCollector {
    devices: DeviceFilter,
}

/// One `/proc/diskstats` line: device numbers, name, and up to 17 counters (older kernels
/// have 11 or 15; the missing ones are `None`).
#[derive(Debug, PartialEq)]
struct Disk<'a> {
    major: &'a str,
    minor: &'a str,
    name: &'a str,
    values: [Option<f64>; 17],
}

/// The udev properties node_exporter exports (`node_disk_info`, `node_disk_filesystem_info`,
/// `node_disk_device_mapper_info`, `node_disk_ata_*`).
#[derive(Debug, Default, PartialEq)]
struct UdevInfo {
    path: String,
    wwn: String,
    model: String,
    /// `SCSI_IDENT_SERIAL` (the serial printed on the label), else `ID_SERIAL_SHORT`, else
    /// `ID_SERIAL` (virtio disks have only that).
    serial: String,
    revision: String,
    fs_type: String,
    fs_usage: String,
    fs_uuid: String,
    fs_version: String,
    dm_name: String,
    dm_uuid: String,
    dm_vg_name: String,
    dm_lv_name: String,
    dm_lv_layer: String,
    ata: bool,
    /// `ID_ATA_WRITE_CACHE`, `ID_ATA_WRITE_CACHE_ENABLED`, `ID_ATA_ROTATION_RATE_RPM`.
    ata_values: [Option<f64>; 3],
}

/// (udev property, metric, help) of the ATA gauges.
const ATA: [(&str, &str, &str); 3] = [
    (
        "ID_ATA_WRITE_CACHE",
        "node_disk_ata_write_cache",
        "ATA disk has a write cache.",
    ),
    (
        "ID_ATA_WRITE_CACHE_ENABLED",
        "node_disk_ata_write_cache_enabled",
        "ATA disk has its write cache enabled.",
    ),
    (
        "ID_ATA_ROTATION_RATE_RPM",
        "node_disk_ata_rotation_rate_rpm",
        "ATA disk rotation rate in RPMs (0 for SSDs).",
    ),
];

impl Collector for DiskstatsCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let path = ctx.proc_path("diskstats");
        let text = ctx.read(&path)?.to_string();
        let mut disks = parse_diskstats(&text).map_err(|e| in_procfs(ctx.paths, e))?;
        disks.retain(|d| !self.devices.ignored(d.name));

        let mut infos = Vec::with_capacity(disks.len());
        let mut rotational = Vec::with_capacity(disks.len());
        for d in &disks {
            ctx.check_deadline("udev data of block devices")?;
            let queue = ctx.sys_path(&format!("block/{}/queue/rotational", d.name));
            rotational.push(rotational_label(read_trimmed(&queue)?.as_deref()));
            let file = ctx
                .paths
                .udev_data
                .join(format!("b{}:{}", d.major, d.minor));
            let info = match ctx.read_optional(&file) {
                Ok(Some(text)) => parse_udev(text),
                // No udev database (e.g. not mounted into the container): empty labels, as
                // node_exporter does.
                Ok(None) | Err(_) => UdevInfo::default(),
            };
            infos.push(info);
        }
        let mut f = enc.family(
            "node_disk_info",
            "Info of /sys/block/<block_device>.",
            Kind::Gauge,
        );
        for ((d, i), rotational) in disks.iter().zip(&infos).zip(&rotational) {
            f.sample(
                &[
                    ("device", d.name),
                    ("major", d.major),
                    ("minor", d.minor),
                    ("model", &i.model),
                    ("path", &i.path),
                    ("revision", &i.revision),
                    ("rotational", rotational),
                    ("serial", &i.serial),
                    ("wwn", &i.wwn),
                ],
                1.0,
            );
        }
        let mut f = enc.family(
            "node_disk_filesystem_info",
            "Info about disk filesystem.",
            Kind::Gauge,
        );
        for (d, i) in disks.iter().zip(&infos) {
            if !i.fs_type.is_empty() {
                f.sample(
                    &[
                        ("device", d.name),
                        ("type", &i.fs_type),
                        ("usage", &i.fs_usage),
                        ("uuid", &i.fs_uuid),
                        ("version", &i.fs_version),
                    ],
                    1.0,
                );
            }
        }
        let mut f = enc.family(
            "node_disk_device_mapper_info",
            "Info about disk device mapper.",
            Kind::Gauge,
        );
        for (d, i) in disks.iter().zip(&infos) {
            if !i.dm_name.is_empty() {
                f.sample(
                    &[
                        ("device", d.name),
                        ("name", &i.dm_name),
                        ("uuid", &i.dm_uuid),
                        ("vg_name", &i.dm_vg_name),
                        ("lv_name", &i.dm_lv_name),
                        ("lv_layer", &i.dm_lv_layer),
                    ],
                    1.0,
                );
            }
        }
        for (k, (_, name, help)) in ATA.iter().enumerate() {
            let mut f = enc.family(name, help, Kind::Gauge);
            for (d, i) in disks.iter().zip(&infos) {
                if let (true, Some(Some(v))) = (i.ata, i.ata_values.get(k)) {
                    f.sample(&[("device", d.name)], *v);
                }
            }
        }
        for (name, help, counter, col, scale) in STATS {
            let kind = if counter { Kind::Counter } else { Kind::Gauge };
            let mut f = enc.family(name, help, kind);
            for d in &disks {
                if let Some(Some(v)) = d.values.get(col) {
                    f.sample(&[("device", d.name)], v * scale);
                }
            }
        }
        Ok(())
    }
}

fn parse_diskstats(text: &str) -> Result<Vec<Disk<'_>>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = At("/proc/diskstats", i + 1);
        let mut parts = line.split_ascii_whitespace();
        let Some(major) = parts.next() else { continue };
        let (Some(minor), Some(name)) = (parts.next(), parts.next()) else {
            return Err(format!("{at}: expected major, minor and name"));
        };
        let mut values = [None; 17];
        let mut n = 0;
        for (slot, v) in values.iter_mut().zip(parts) {
            *slot = Some(parse_f64(v, &at)?);
            n += 1;
        }
        if n < 11 {
            return Err(format!("{at}: expected at least 11 counters, got {n}"));
        }
        out.push(Disk {
            major,
            minor,
            name,
            values,
        });
    }
    Ok(out)
}

/// The `rotational` label of `node_disk_info` from `queue/rotational`: `"1"` for a spinning
/// disk, else `"0"`, also when the device has no queue attributes (node_exporter reads a
/// missing file as 0).
fn rotational_label(queue_rotational: Option<&str>) -> &'static str {
    if queue_rotational == Some("1") {
        "1"
    } else {
        "0"
    }
}

/// Reads the `E:KEY=value` lines of a udev database file that node_exporter uses.
fn parse_udev(text: &str) -> UdevInfo {
    let mut info = UdevInfo::default();
    let mut scsi_serial = String::new();
    let mut serial_short = String::new();
    let mut serial = String::new();
    for line in text.lines() {
        let Some(prop) = line.strip_prefix("E:") else {
            continue;
        };
        let Some((k, v)) = prop.split_once('=') else {
            continue;
        };
        if let Some(k) = ATA.iter().position(|(p, _, _)| *p == k) {
            if let Some(slot) = info.ata_values.get_mut(k) {
                *slot = v.parse().ok();
            }
            continue;
        }
        let slot = match k {
            "ID_PATH" => &mut info.path,
            "ID_WWN" => &mut info.wwn,
            "ID_MODEL" => &mut info.model,
            "ID_SERIAL_SHORT" => &mut serial_short,
            "ID_SERIAL" => &mut serial,
            "SCSI_IDENT_SERIAL" => &mut scsi_serial,
            "ID_REVISION" => &mut info.revision,
            "ID_FS_TYPE" => &mut info.fs_type,
            "ID_FS_USAGE" => &mut info.fs_usage,
            "ID_FS_UUID" => &mut info.fs_uuid,
            "ID_FS_VERSION" => &mut info.fs_version,
            "DM_NAME" => &mut info.dm_name,
            "DM_UUID" => &mut info.dm_uuid,
            "DM_VG_NAME" => &mut info.dm_vg_name,
            "DM_LV_NAME" => &mut info.dm_lv_name,
            "DM_LV_LAYER" => &mut info.dm_lv_layer,
            "ID_ATA" => {
                info.ata = !v.is_empty();
                continue;
            }
            _ => continue,
        };
        *slot = v.to_string();
    }
    info.serial = [scsi_serial, serial_short, serial]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let d = parse_diskstats(
            " 254       0 vda 34094 6514 4603714 20258 8245 11720 1812424 3328 0 7356 23887 3893 65 228592 255 1179 44\n   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0\n",
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "vda");
        assert_eq!(d[0].values[2], Some(4603714.0));
        assert_eq!(d[0].values[16], Some(44.0));
        assert_eq!(d[1].values[11], None);
    }

    #[test]
    fn malformed() {
        assert!(parse_diskstats("8 0\n").unwrap_err().contains("line 1"));
        assert!(parse_diskstats("8 0 sda 1 2 3\n")
            .unwrap_err()
            .contains("got 3"));
        assert!(parse_diskstats("8 0 sda 1 2 3 4 5 6 7 8 9 10 x\n").is_err());
        assert!(parse_diskstats("\n").unwrap().is_empty());
    }

    #[test]
    fn udev() {
        let i = parse_udev("S:disk/by-id/x\nE:ID_MODEL=Samsung_SSD\nE:ID_SERIAL_SHORT=S123\nE:ID_PATH=pci-0000:00:1f.2-ata-1\nE:BROKEN\nI:123\nE:ID_ATA=1\nE:ID_ATA_ROTATION_RATE_RPM=0\nE:ID_ATA_WRITE_CACHE=x\n");
        assert_eq!(i.model, "Samsung_SSD");
        assert_eq!(i.serial, "S123");
        assert!(i.ata);
        assert_eq!(i.ata_values, [None, None, Some(0.0)]);
        assert_eq!(i.path, "pci-0000:00:1f.2-ata-1");
        assert_eq!(i.wwn, "");
        let i = parse_udev("E:SCSI_IDENT_SERIAL=LABEL1\nE:ID_SERIAL_SHORT=S1\nE:DM_NAME=vg-root\nE:ID_FS_TYPE=ext4\n");
        assert_eq!(i.serial, "LABEL1");
        assert_eq!(i.dm_name, "vg-root");
        assert_eq!(i.fs_type, "ext4");
        assert_eq!(i.path, "");
        // virtio: only ID_SERIAL.
        let i = parse_udev("E:ID_SERIAL=vd-0001\nE:ID_SERIAL_SHORT=\n");
        assert_eq!(i.serial, "vd-0001");
        assert_eq!(parse_udev("").serial, "");
    }

    #[test]
    fn rotational() {
        assert_eq!(rotational_label(Some("1")), "1");
        assert_eq!(rotational_label(Some("0")), "0");
        assert_eq!(rotational_label(None), "0");
        assert_eq!(rotational_label(Some("")), "0");
    }

    #[test]
    fn default_filter() {
        let d = Settings::default().0;
        let wanted = |dev| !d.ignored(dev);
        assert!(wanted("sda") && wanted("nvme0n1") && wanted("dm-0"));
        assert!(!wanted("sda1") && !wanted("loop0") && !wanted("nvme0n1p1") && !wanted("ram0"));
        assert!(!wanted("zram0"));
    }

    #[test]
    fn an_include_replaces_the_default_exclude() {
        let mut s = Settings::default();
        let flag = Flag {
            name: "collector.diskstats.device-include",
            key: "device-include",
            negated: false,
            value: Some("^sda"),
        };
        assert!(s.apply_flag(&flag).unwrap());
        let d = s.0.include_replaces_exclude();
        assert!(!d.ignored("sda1") && d.ignored("sdb"));
    }
}
