//! `nvme`: `node_nvme_info` per controller in `/sys/class/nvme`, and per namespace path of
//! each controller (`/sys/class/nvme/nvme0/nvme0c0n1`) `node_nvme_namespace_info` and the
//! namespace's size, use and block size in bytes (node_exporter 1.11, #3360).
//!
//! Like node_exporter (procfs's `NVMeClass`), namespaces are the controller's subdirectories
//! named `nvme<subsystem>c<controller>n<nsid>`, which the kernel creates with native NVMe
//! multipath (the default); without it a controller shows no namespaces. The byte values are
//! node_exporter's arithmetic: `size` and `nuse` times `queue/logical_block_size` (so, as
//! there, the kernel's `size`, which counts 512-byte sectors, over-counts namespaces formatted
//! with 4 KiB blocks). A namespace directory without `size`, `nuse` (kernels before 6.8) or
//! `queue/logical_block_size` has no namespace samples here, where node_exporter fails the
//! whole collector and loses `node_nvme_info` too. No `/sys/class/nvme` (no NVMe driver)
//! means no data.

use std::path::Path;

use eos_exposition::{Encoder, Kind};

use crate::collector::{list_dir, parse_u64, read_trimmed, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "nvme",
    default_enabled: true,
    build: |_cfg, _paths| Ok(Box::new(NvmeCollector)),
};

struct NvmeCollector;

/// The attributes of one controller that make up `node_nvme_info`, and its namespaces.
#[derive(Debug, PartialEq)]
struct Nvme {
    device: String,
    cntlid: String,
    firmware_revision: String,
    model: String,
    serial: String,
    state: String,
    namespaces: Vec<Namespace>,
}

/// One namespace path of a controller.
#[derive(Debug, PartialEq)]
struct Namespace {
    /// The namespace ID, from the directory name.
    nsid: String,
    /// `ana_state` (`optimized`, `inaccessible`, ...), `unknown` without the file.
    ana_state: String,
    /// `size`.
    size: u64,
    /// `nuse`.
    used: u64,
    /// `queue/logical_block_size`.
    logical_block_size: u64,
}

impl Namespace {
    /// `size` times the block size, as node_exporter computes both capacity and size.
    fn size_bytes(&self) -> f64 {
        self.size as f64 * self.logical_block_size as f64
    }

    /// `nuse` times the block size.
    fn used_bytes(&self) -> f64 {
        self.used as f64 * self.logical_block_size as f64
    }
}

/// The per-namespace byte families, in name order around `namespace_info` (which sorts
/// between capacity and logical block size): (name, help, value).
type NamespaceFamily = (&'static str, &'static str, fn(&Namespace) -> f64);

const CAPACITY: NamespaceFamily = (
    "node_nvme_namespace_capacity_bytes",
    "Capacity of the NVMe namespace in bytes. Computed as namespace_size * \
     namespace_logical_block_size",
    Namespace::size_bytes,
);

const AFTER_INFO: [NamespaceFamily; 3] = [
    (
        "node_nvme_namespace_logical_block_size_bytes",
        "Logical block size of the NVMe namespace in bytes. Usually 4Kb. Available in \
         /sys/class/nvme/<device>/<namespace>/queue/logical_block_size",
        |n| n.logical_block_size as f64,
    ),
    (
        "node_nvme_namespace_size_bytes",
        "Size of the NVMe namespace in bytes. Available in \
         /sys/class/nvme/<device>/<namespace>/size",
        Namespace::size_bytes,
    ),
    (
        "node_nvme_namespace_used_bytes",
        "Used space of the NVMe namespace in bytes. Available in \
         /sys/class/nvme/<device>/<namespace>/nuse",
        Namespace::used_bytes,
    ),
];

impl Collector for NvmeCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let root = ctx.sys_path("class/nvme");
        let mut devices = Vec::new();
        for name in list_dir(&root)? {
            ctx.check_deadline("NVMe controllers")?;
            devices.push(read_nvme(&root.join(&name), name)?);
        }
        let mut fam = enc.family(
            "node_nvme_info",
            "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
            Kind::Gauge,
        );
        for d in &devices {
            fam.sample(
                &[
                    ("cntlid", &d.cntlid),
                    ("device", &d.device),
                    ("firmware_revision", &d.firmware_revision),
                    ("model", &d.model),
                    ("serial", &d.serial),
                    ("state", &d.state),
                ],
                1.0,
            );
        }
        write_bytes(enc, &devices, &CAPACITY);
        let mut fam = enc.family(
            "node_nvme_namespace_info",
            "Information about NVMe namespaces. Value is always 1",
            Kind::Gauge,
        );
        for d in &devices {
            for n in &d.namespaces {
                fam.sample(
                    &[
                        ("ana_state", &n.ana_state),
                        ("device", &d.device),
                        ("nsid", &n.nsid),
                    ],
                    1.0,
                );
            }
        }
        for family in &AFTER_INFO {
            write_bytes(enc, &devices, family);
        }
        Ok(())
    }
}

/// Writes one per-namespace family (labels `device`, `nsid`).
fn write_bytes(enc: &mut Encoder<'_>, devices: &[Nvme], (name, help, value): &NamespaceFamily) {
    let mut fam = enc.family(name, help, Kind::Gauge);
    for d in devices {
        for n in &d.namespaces {
            fam.sample(&[("device", &d.device), ("nsid", &n.nsid)], value(n));
        }
    }
}

/// The namespace ID in a directory name that contains `nvme<N>c<N>n<ID>` (procfs matches
/// `nvme\d+c\d+n(\d+)` anywhere in the name and takes the first match).
fn namespace_id(name: &str) -> Option<&str> {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let mut from = 0;
    while let Some(at) = name.get(from..).and_then(|rest| rest.find("nvme")) {
        let start = from + at;
        from = start + 1;
        let Some(rest) = name.get(start + "nvme".len()..) else {
            break;
        };
        let subsystem = digits(rest);
        let Some(rest) = rest.get(subsystem..).filter(|_| subsystem > 0) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix('c') else {
            continue;
        };
        let controller = digits(rest);
        let Some(rest) = rest.get(controller..).filter(|_| controller > 0) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix('n') else {
            continue;
        };
        let id = digits(rest);
        if id > 0 {
            return rest.get(..id);
        }
    }
    None
}

/// Reads one controller directory; every controller attribute is required.
fn read_nvme(dir: &Path, device: String) -> Result<Nvme, String> {
    let attr = |f: &str| {
        let p = dir.join(f);
        read_trimmed(&p)?.ok_or_else(|| format!("{}: missing", p.display()))
    };
    let mut namespaces = Vec::new();
    for name in list_dir(dir)? {
        if let Some(nsid) = namespace_id(&name) {
            if let Some(ns) = read_namespace(&dir.join(&name), nsid.to_string())? {
                namespaces.push(ns);
            }
        }
    }
    Ok(Nvme {
        cntlid: attr("cntlid")?,
        firmware_revision: attr("firmware_rev")?,
        model: attr("model")?,
        serial: attr("serial")?,
        state: attr("state")?,
        device,
        namespaces,
    })
}

/// Reads one namespace path directory. `Ok(None)` when one of its numbers is missing; a
/// number that is not one is an error naming the file.
fn read_namespace(dir: &Path, nsid: String) -> Result<Option<Namespace>, String> {
    let number = |f: &str| -> Result<Option<u64>, String> {
        let p = dir.join(f);
        match read_trimmed(&p)? {
            Some(text) => parse_u64(&text, &format!("parsing {}", p.display())).map(Some),
            None => Ok(None),
        }
    };
    let (Some(size), Some(used), Some(logical_block_size)) = (
        number("size")?,
        number("nuse")?,
        number("queue/logical_block_size")?,
    ) else {
        return Ok(None);
    };
    let ana_state = read_trimmed(&dir.join("ana_state"))?.unwrap_or_else(|| "unknown".into());
    Ok(Some(Namespace {
        nsid,
        ana_state,
        size,
        used,
        logical_block_size,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;
    use eos_module::HostPaths;

    /// A controller as the kernel lays it out, with one namespace path.
    fn controller(t: &TestTree) {
        t.write("nvme0/firmware_rev", "1B2QEXP7\n")
            .write("nvme0/model", "Samsung SSD 970 PRO 512GB               \n")
            .write("nvme0/serial", "S680HF8N190894I\n")
            .write("nvme0/state", "live\n")
            .write("nvme0/cntlid", "4\n")
            .write("nvme0/nvme0c4n1/size", "1000215216\n")
            .write("nvme0/nvme0c4n1/nuse", "3456789\n")
            .write("nvme0/nvme0c4n1/queue/logical_block_size", "512\n")
            .write("nvme0/nvme0c4n1/ana_state", "optimized\n");
    }

    #[test]
    fn reads_a_controller_and_its_namespaces() {
        let t = TestTree::new("nvme");
        controller(&t);
        // A second namespace without ANA (no `ana_state`), and entries that are no
        // namespace paths: the block device of a controller without multipath, `power`.
        t.write("nvme0/nvme0c4n12/size", "2048\n")
            .write("nvme0/nvme0c4n12/nuse", "0\n")
            .write("nvme0/nvme0c4n12/queue/logical_block_size", "4096\n")
            .write("nvme0/nvme0n1/size", "999\n")
            .write("nvme0/power/control", "auto\n");
        let d = read_nvme(&t.path().join("nvme0"), "nvme0".into()).unwrap();
        assert_eq!(
            d,
            Nvme {
                device: "nvme0".into(),
                cntlid: "4".into(),
                firmware_revision: "1B2QEXP7".into(),
                model: "Samsung SSD 970 PRO 512GB".into(),
                serial: "S680HF8N190894I".into(),
                state: "live".into(),
                namespaces: vec![
                    Namespace {
                        nsid: "1".into(),
                        ana_state: "optimized".into(),
                        size: 1000215216,
                        used: 3456789,
                        logical_block_size: 512,
                    },
                    Namespace {
                        nsid: "12".into(),
                        ana_state: "unknown".into(),
                        size: 2048,
                        used: 0,
                        logical_block_size: 4096,
                    },
                ],
            }
        );
        assert_eq!(d.namespaces[1].size_bytes(), 8388608.0);
        assert_eq!(d.namespaces[0].used_bytes(), 1769875968.0);
    }

    #[test]
    fn odd_and_truncated_attributes() {
        let t = TestTree::new("nvme-odd");
        controller(&t);
        let dir = t.path().join("nvme0");
        // A kernel before 6.8 has no `nuse`: the namespace is left out, the controller stays.
        std::fs::remove_file(dir.join("nvme0c4n1/nuse")).unwrap();
        let d = read_nvme(&dir, "nvme0".into()).unwrap();
        assert!(d.namespaces.is_empty());
        assert_eq!(d.cntlid, "4");
        // A number that is not one names its file.
        t.write("nvme0/nvme0c4n1/nuse", "12k\n");
        let e = read_nvme(&dir, "nvme0".into()).unwrap_err();
        assert!(e.contains("nvme0c4n1/nuse") && e.contains("\"12k\""), "{e}");
        t.write("nvme0/nvme0c4n1/nuse", "\n");
        assert!(read_nvme(&dir, "nvme0".into()).is_err());
        t.write("nvme0/nvme0c4n1/nuse", "1\n");
        // Every controller attribute is required, as in procfs.
        std::fs::remove_file(dir.join("cntlid")).unwrap();
        let e = read_nvme(&dir, "nvme0".into()).unwrap_err();
        assert!(e.contains("nvme0/cntlid"), "{e}");
    }

    #[test]
    fn namespace_ids_follow_procfs_pattern() {
        assert_eq!(namespace_id("nvme0c0n1"), Some("1"));
        assert_eq!(namespace_id("nvme12c3n45"), Some("45"));
        assert_eq!(namespace_id("nvme0c0n1p2"), Some("1"));
        // Anywhere in the name, first match wins.
        assert_eq!(namespace_id("xnvme1c2n3"), Some("3"));
        assert_eq!(namespace_id("nvmenvme1c1n7"), Some("7"));
        assert_eq!(namespace_id("nvme0n1c1n2"), None);
        assert_eq!(namespace_id("nvme0c0n1nvme1c1n2"), Some("1"));
        // Not namespace paths.
        for name in [
            "nvme0n1",
            "nvme0c0n",
            "nvmec0n1",
            "nvme0cn1",
            "nvme0c0",
            "nvme",
            "",
            "power",
            "device",
            "nvme0c0x1",
            "nvme٣c0n1",
        ] {
            assert_eq!(namespace_id(name), None, "{name}");
        }
    }

    /// Runs the collector against `sys` as sysfs.
    fn scrape(sys: &Path) -> Result<String, String> {
        let paths = HostPaths {
            sysfs: sys.to_path_buf(),
            ..HostPaths::default()
        };
        crate::collectors::test_tree::scrape(&NvmeCollector, &paths)
    }

    #[test]
    fn writes_node_exporter_families() {
        let t = TestTree::new("nvme-scrape");
        assert_eq!(scrape(t.path()).unwrap(), "", "no /sys/class/nvme: no data");
        let class = TestTree::new("nvme-scrape-class");
        controller(&class);
        std::fs::create_dir_all(t.path().join("class")).unwrap();
        std::os::unix::fs::symlink(class.path(), t.path().join("class/nvme")).unwrap();
        let text = scrape(t.path()).unwrap();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "node_nvme_info{cntlid=\"4\",device=\"nvme0\",firmware_revision=\"1B2QEXP7\",\
                 model=\"Samsung SSD 970 PRO 512GB\",serial=\"S680HF8N190894I\",state=\"live\"} 1",
                "node_nvme_namespace_capacity_bytes{device=\"nvme0\",nsid=\"1\"} 5.12110190592e+11",
                "node_nvme_namespace_info{ana_state=\"optimized\",device=\"nvme0\",nsid=\"1\"} 1",
                "node_nvme_namespace_logical_block_size_bytes{device=\"nvme0\",nsid=\"1\"} 512",
                "node_nvme_namespace_size_bytes{device=\"nvme0\",nsid=\"1\"} 5.12110190592e+11",
                "node_nvme_namespace_used_bytes{device=\"nvme0\",nsid=\"1\"} 1.769875968e+09",
            ]
        );
        assert!(
            text.contains("# TYPE node_nvme_namespace_used_bytes gauge\n"),
            "{text}"
        );
    }
}
