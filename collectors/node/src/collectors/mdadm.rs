//! `mdadm`: Linux software RAID state from `/proc/mdstat` and, as node_exporter does since
//! 1.10, `/sys/block/md*/md/` (`node_md_raid_disks`, `node_md_degraded`).
//!
//! Each array is a device line (`md0 : active raid1 sda1[0] sdb1[1](F)`), a status line
//! (`1234 blocks ... [2/1] [U_]`), an optional bitmap line and, while it syncs, a progress
//! line (`recovery = 8.5% (16775552/195310144) ...`). No `/proc/mdstat` (md driver not loaded)
//! means no data; an array without an `md/` directory in sysfs has no sysfs families.

use eos_exposition::{Encoder, Kind};

use crate::collector::{list_dir, Collector, CollectorDef, Ctx, SysDir};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "mdadm",
    default_enabled: true,
    build: |_cfg, _paths| Ok(Box::new(MdadmCollector)),
};

struct MdadmCollector;

/// What `node_md_state` reports, in label order.
const STATES: [&str; 5] = ["active", "check", "inactive", "recovering", "resync"];

/// One md array.
#[derive(Debug, PartialEq)]
struct MdStat<'a> {
    name: &'a str,
    /// One of [`STATES`].
    state: &'static str,
    disks_active: u64,
    disks_total: u64,
    disks_failed: u64,
    disks_spare: u64,
    blocks_total: u64,
    blocks_synced: u64,
}

/// What `/sys/block/<device>/md/` says about an array.
#[derive(Debug, PartialEq)]
struct MdRaid {
    device: String,
    /// `raid_disks`: devices in a fully working array.
    raid_disks: u64,
    /// `degraded`: missing devices; the kernel only keeps it for redundant levels, other
    /// levels report 0 (as procfs `Mdraid.DegradedDisks`).
    degraded: u64,
}

/// The levels whose `md/` directory has a `degraded` attribute.
const REDUNDANT_LEVELS: [&str; 5] = ["raid1", "raid4", "raid5", "raid6", "raid10"];

impl Collector for MdadmCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let path = ctx.proc_path("mdstat");
        let block = ctx.sys_path("block");
        let Some(text) = ctx.read_optional(&path)? else {
            return Ok(());
        };
        let mut arrays = parse_mdstat(text).map_err(|e| format!("{}: {e}", path.display()))?;
        arrays.sort_unstable_by(|a, b| a.name.cmp(b.name));
        let raids = read_md_raids(&block)?;
        write(enc, &arrays, &raids);
        Ok(())
    }
}

/// Reads `<block>/md*/md/` of every md array (procfs `Mdraids`): `level` and `raid_disks`
/// are required, `degraded` too for the redundant levels. Sorted by device.
fn read_md_raids(block: &std::path::Path) -> Result<Vec<MdRaid>, String> {
    let mut out = Vec::new();
    let mut buf = Vec::with_capacity(64);
    for device in list_dir(block)? {
        if !device.starts_with("md") {
            continue;
        }
        let dir_path = block.join(&device).join("md");
        let Some(dir) = SysDir::open(&dir_path)? else {
            continue;
        };
        let missing = |attr: &str| format!("reading {}/{attr}: missing", dir_path.display());
        let level = dir
            .read(c"level", &mut buf)?
            .ok_or_else(|| missing("level"))?
            .to_string();
        let raid_disks = dir
            .read(c"raid_disks", &mut buf)?
            .ok_or_else(|| missing("raid_disks"))?
            .to_string();
        let degraded = if REDUNDANT_LEVELS.contains(&level.as_str()) {
            Some(
                dir.read(c"degraded", &mut buf)?
                    .ok_or_else(|| missing("degraded"))?
                    .to_string(),
            )
        } else {
            None
        };
        let raid = md_raid(&device, &raid_disks, degraded.as_deref())
            .map_err(|e| format!("reading {}: {e}", dir_path.display()))?;
        out.push(raid);
    }
    Ok(out)
}

/// An array's sysfs numbers from its attribute texts.
fn md_raid(device: &str, raid_disks: &str, degraded: Option<&str>) -> Result<MdRaid, String> {
    let number = |attr: &str, v: &str| {
        v.parse::<u64>()
            .map_err(|_| format!("{attr}: invalid number {v:?}"))
    };
    Ok(MdRaid {
        device: device.to_string(),
        raid_disks: number("raid_disks", raid_disks)?,
        degraded: match degraded {
            Some(v) => number("degraded", v)?,
            None => 0,
        },
    })
}

fn write(enc: &mut Encoder<'_>, arrays: &[MdStat<'_>], raids: &[MdRaid]) {
    let mut fam = enc.family(
        "node_md_blocks",
        "Total number of blocks on device.",
        Kind::Gauge,
    );
    for a in arrays {
        fam.sample(&[("device", a.name)], a.blocks_total as f64);
    }
    let mut fam = enc.family(
        "node_md_blocks_synced",
        "Number of blocks synced on device.",
        Kind::Gauge,
    );
    for a in arrays {
        fam.sample(&[("device", a.name)], a.blocks_synced as f64);
    }
    let mut fam = enc.family(
        "node_md_degraded",
        "Number of degraded disks on device.",
        Kind::Gauge,
    );
    for r in raids {
        fam.sample(&[("device", &r.device)], r.degraded as f64);
    }
    let mut fam = enc.family(
        "node_md_disks",
        "Number of active/failed/spare disks of device.",
        Kind::Gauge,
    );
    for a in arrays {
        for (state, n) in [
            ("active", a.disks_active),
            ("failed", a.disks_failed),
            ("spare", a.disks_spare),
        ] {
            fam.sample(&[("device", a.name), ("state", state)], n as f64);
        }
    }
    let mut fam = enc.family(
        "node_md_disks_required",
        "Total number of disks of device.",
        Kind::Gauge,
    );
    for a in arrays {
        fam.sample(&[("device", a.name)], a.disks_total as f64);
    }
    let mut fam = enc.family(
        "node_md_raid_disks",
        "Number of raid disks on device.",
        Kind::Gauge,
    );
    for r in raids {
        fam.sample(&[("device", &r.device)], r.raid_disks as f64);
    }
    let mut fam = enc.family(
        "node_md_state",
        "Indicates the state of md-device.",
        Kind::Gauge,
    );
    for a in arrays {
        for state in STATES {
            let v = if a.state == state { 1.0 } else { 0.0 };
            fam.sample(&[("device", a.name), ("state", state)], v);
        }
    }
}

/// Parses `/proc/mdstat`.
fn parse_mdstat(text: &str) -> Result<Vec<MdStat<'_>>, String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, &line) in lines.iter().enumerate() {
        if line.trim().is_empty()
            || line.starts_with(' ')
            || line.starts_with("Personalities")
            || line.starts_with("unused")
        {
            continue;
        }
        let at = || format!("line {}", i + 1);
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let (Some(&name), Some(&activity)) = (fields.first(), fields.get(2)) else {
            return Err(format!("{}: not enough fields in md line {line:?}", at()));
        };
        // The status line, then a possible bitmap line, then a possible sync line.
        let (Some(&status), Some(&third)) = (lines.get(i + 1), lines.get(i + 2)) else {
            return Err(format!("{}: too few lines for md device {name}", at()));
        };
        if lines.get(i + 3).is_none() {
            return Err(format!("{}: too few lines for md device {name}", at()));
        }
        let (active, total, size) = eval_status(line, status)
            .map_err(|e| format!("line {}: md device {name}: {e}", i + 2))?;
        let sync_line = if third.contains("bitmap") {
            lines.get(i + 3).copied().unwrap_or("")
        } else {
            third
        };
        let recovering = sync_line.contains("recovery");
        let resyncing = sync_line.contains("resync");
        let checking = sync_line.contains("check");
        let mut state = match activity {
            "active" => "active",
            "inactive" => "inactive",
            _ => "",
        };
        let mut synced = size;
        if recovering || resyncing || checking {
            state = if recovering {
                "recovering"
            } else if checking {
                "check"
            } else {
                "resync"
            };
            synced = if sync_line.contains("PENDING") || sync_line.contains("DELAYED") {
                0
            } else {
                synced_blocks(sync_line).ok_or_else(|| {
                    format!("md device {name}: unexpected sync line {sync_line:?}")
                })?
            };
        }
        out.push(MdStat {
            name,
            state,
            disks_active: active,
            disks_total: total,
            disks_failed: line.matches("(F)").count() as u64,
            disks_spare: line.matches("(S)").count() as u64,
            blocks_total: size,
            blocks_synced: synced,
        });
    }
    Ok(out)
}

/// Reads (active disks, required disks, size in blocks) from the device and status lines.
fn eval_status(device_line: &str, status: &str) -> Result<(u64, u64, u64), String> {
    let size_str = status
        .split_ascii_whitespace()
        .next()
        .ok_or_else(|| format!("unexpected status line {status:?}"))?;
    let size: u64 = size_str
        .parse()
        .map_err(|_| format!("unexpected status line {status:?}"))?;
    if device_line.contains("raid0") || device_line.contains("linear") {
        // Only member disks carry a `[n]` on the device line.
        let n = device_line.matches('[').count() as u64;
        return Ok((n, n, size));
    }
    if device_line.contains("inactive") {
        return Ok((0, 0, size));
    }
    // `... blocks ... [total/active] [UU_]`
    let blocks = status
        .find(" blocks ")
        .ok_or_else(|| format!("no block count in status line {status:?}"))?;
    let rest = status.get(blocks..).unwrap_or("");
    let counts = find_counts(rest).ok_or_else(|| format!("no [n/m] [U_] in {status:?}"))?;
    Ok((counts.1, counts.0, size))
}

/// Finds the last `[a/b] [U_...]` pair in `s`, returning (a, b).
fn find_counts(s: &str) -> Option<(u64, u64)> {
    let mut found = None;
    let mut from = 0;
    while let Some(off) = s.get(from..)?.find('[') {
        let start = from + off;
        from = start + 1;
        let rest = s.get(start + 1..)?;
        let Some(close) = rest.find(']') else { break };
        let inner = rest.get(..close)?;
        let Some((a, b)) = inner.split_once('/') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) else {
            continue;
        };
        let after = rest.get(close + 1..)?;
        let Some(flags) = after.strip_prefix(" [") else {
            continue;
        };
        let flags_len = flags.find(']')?;
        let flags = flags.get(..flags_len)?;
        if !flags.is_empty() && flags.bytes().all(|c| c == b'U' || c == b'_') {
            found = Some((a, b));
        }
    }
    found
}

/// The blocks done so far from a sync line: the first `(done/total)`.
fn synced_blocks(line: &str) -> Option<u64> {
    let mut from = 0;
    while let Some(off) = line.get(from..)?.find('(') {
        let start = from + off + 1;
        from = start;
        let rest = line.get(start..)?;
        let close = rest.find(')')?;
        if let Some((done, total)) = rest.get(..close)?.split_once('/') {
            if let (Ok(done), true) = (done.parse(), total.bytes().all(|b| b.is_ascii_digit())) {
                if !total.is_empty() {
                    return Some(done);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MDSTAT: &str = "Personalities : [linear] [raid0] [raid1] [raid6] [raid5] [raid4]
md3 : active raid6 sda1[8] sdh1[7] sdg1[6] sdf1[5] sde1[11] sdd1[3] sdc1[10] sdb1[9] sdd1[10](S) sdd2[11](S)
      5853468288 blocks super 1.2 level 6, 64k chunk, algorithm 2 [8/8] [UUUUUUUU]

md4 : inactive raid1 sda3[0](F) sdb3[1](S)
      4883648 blocks [2/2] [UU]

md6 : active raid1 sdb2[2](F) sdc[1](S) sda2[0]
      195310144 blocks [2/1] [U_]
      [=>...................]  recovery =  8.5% (16775552/195310144) finish=17.0min speed=259783K/sec

md7 : active raid6 sdb1[0] sde1[3] sdd1[2] sdc1[1](F)
      7813735424 blocks super 1.2 level 6, 512k chunk, algorithm 2 [4/3] [U_UU]
      bitmap: 0/30 pages [0KB], 65536KB chunk

md9 : active raid1 sdc2[2] sdd2[3] sdb2[1] sda2[0] sde[4](F) sdf[5](F) sdg[6](S)
      523968 blocks super 1.2 [4/4] [UUUU]
      resync=DELAYED

md10 : active raid0 sda1[0] sdb1[1]
      314159265 blocks 64k chunks

md5 : active raid1 sdb1[1] sda1[0]
      1000 blocks [2/2] [UU]
      [===>.................]  check = 15.0% (150/1000) finish=1.0min speed=100K/sec

md120 : active linear sda1[1] sdb1[0]
      2095104 blocks super 1.2 0k rounding

unused devices: <none>
";

    fn find<'a>(v: &'a [MdStat<'a>], name: &str) -> &'a MdStat<'a> {
        v.iter().find(|m| m.name == name).unwrap()
    }

    #[test]
    fn parses_arrays() {
        let v = parse_mdstat(MDSTAT).unwrap();
        assert_eq!(v.len(), 8);
        assert_eq!(
            *find(&v, "md3"),
            MdStat {
                name: "md3",
                state: "active",
                disks_active: 8,
                disks_total: 8,
                disks_failed: 0,
                disks_spare: 2,
                blocks_total: 5853468288,
                blocks_synced: 5853468288,
            }
        );
        let md4 = find(&v, "md4");
        assert_eq!(
            (md4.state, md4.disks_active, md4.disks_total),
            ("inactive", 0, 0)
        );
        assert_eq!((md4.disks_failed, md4.disks_spare), (1, 1));
        let md6 = find(&v, "md6");
        assert_eq!(
            (md6.state, md6.disks_active, md6.disks_total),
            ("recovering", 1, 2)
        );
        assert_eq!(md6.blocks_synced, 16775552);
        let md7 = find(&v, "md7");
        assert_eq!(
            (md7.state, md7.disks_active, md7.disks_total),
            ("active", 3, 4)
        );
        let md9 = find(&v, "md9");
        assert_eq!((md9.state, md9.blocks_synced), ("resync", 0));
        assert_eq!((md9.disks_failed, md9.disks_spare), (2, 1));
        let md10 = find(&v, "md10");
        assert_eq!((md10.disks_active, md10.disks_total), (2, 2));
        let md5 = find(&v, "md5");
        assert_eq!((md5.state, md5.blocks_synced), ("check", 150));
        let md120 = find(&v, "md120");
        assert_eq!((md120.disks_active, md120.blocks_total), (2, 2095104));
    }

    #[test]
    fn empty_file() {
        assert!(parse_mdstat("Personalities : \nunused devices: <none>\n")
            .unwrap()
            .is_empty());
        assert!(parse_mdstat("").unwrap().is_empty());
    }

    #[test]
    fn malformed() {
        // Truncated after the device line.
        assert!(parse_mdstat("md0 : active raid1 sda[0]\n").is_err());
        // Too few fields.
        assert!(parse_mdstat("md0 :\n   1 blocks [1/1] [U]\n\n\n").is_err());
        // Non-numeric size.
        let e = parse_mdstat("md0 : active raid1 sda[0]\n   x blocks [1/1] [U]\n\n\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        // No [n/m] [U] part.
        assert!(parse_mdstat("md0 : active raid1 sda[0]\n   5 blocks\n\n\n").is_err());
        // A sync line without progress numbers.
        assert!(parse_mdstat(
            "md0 : active raid1 sda[0]\n   5 blocks [1/1] [U]\n   recovery = ?\n\n"
        )
        .is_err());
    }

    #[test]
    fn sysfs_numbers() {
        assert_eq!(
            md_raid("md0", "2", Some("1")).unwrap(),
            MdRaid {
                device: "md0".into(),
                raid_disks: 2,
                degraded: 1
            }
        );
        assert_eq!(md_raid("md1", "3", None).unwrap().degraded, 0);
        let e = md_raid("md0", "x", None).unwrap_err();
        assert_eq!(e, "raid_disks: invalid number \"x\"");
        assert!(md_raid("md0", "2", Some("-1")).is_err());
    }

    #[test]
    fn reads_sysfs_arrays() {
        let t = crate::collectors::test_tree::TestTree::new("mdadm-sysfs");
        t.write("block/md0/md/level", "raid1\n")
            .write("block/md0/md/raid_disks", "2\n")
            .write("block/md0/md/degraded", "1\n")
            // raid0 has no `degraded`.
            .write("block/md10/md/level", "raid0\n")
            .write("block/md10/md/raid_disks", "2\n")
            // An inactive array: empty level.
            .write("block/md127/md/level", "\n")
            .write("block/md127/md/raid_disks", "0\n")
            // Not arrays.
            .write("block/sda/queue/rotational", "1\n")
            .write("block/md5/size", "0\n");
        let block = t.path().join("block");
        let raids = read_md_raids(&block).unwrap();
        let got: Vec<(&str, u64, u64)> = raids
            .iter()
            .map(|r| (r.device.as_str(), r.raid_disks, r.degraded))
            .collect();
        assert_eq!(got, vec![("md0", 2, 1), ("md10", 2, 0), ("md127", 0, 0)]);
        std::fs::remove_file(block.join("md0/md/degraded")).unwrap();
        let e = read_md_raids(&block).unwrap_err();
        assert!(e.ends_with("md0/md/degraded: missing"), "{e}");
        assert!(read_md_raids(&t.path().join("nothing")).unwrap().is_empty());
    }

    #[test]
    fn helpers() {
        assert_eq!(find_counts(" blocks [2/1] [U_]"), Some((2, 1)));
        assert_eq!(find_counts(" blocks [x/1] [U_]"), None);
        assert_eq!(find_counts(" blocks [2/1] [UX]"), None);
        assert_eq!(find_counts(" blocks [2/1"), None);
        assert_eq!(
            synced_blocks("[=>..] recovery = 8.5% (16/195) finish"),
            Some(16)
        );
        assert_eq!(synced_blocks("(a) (1/) (2/3)"), Some(2));
        assert_eq!(synced_blocks("recovery = 8.5%"), None);
    }
}
