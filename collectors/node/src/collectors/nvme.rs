//! `nvme`: `node_nvme_info` per controller in `/sys/class/nvme`.
//!
//! No `/sys/class/nvme` (no NVMe driver loaded) means no data.

use std::path::Path;

use eos_exposition::{Encoder, Kind};

use crate::collector::{list_dir, read_trimmed, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "nvme",
    default_enabled: true,
    build: |_cfg, _paths| Ok(Box::new(NvmeCollector)),
};

struct NvmeCollector;

/// The attributes of one controller that make up `node_nvme_info`, in label order.
#[derive(Debug, PartialEq)]
struct Nvme {
    device: String,
    firmware_revision: String,
    model: String,
    serial: String,
    state: String,
}

impl Collector for NvmeCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let root = ctx.sys_path("class/nvme");
        let mut devices = Vec::new();
        for name in list_dir(&root)? {
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
                    ("device", &d.device),
                    ("firmware_revision", &d.firmware_revision),
                    ("model", &d.model),
                    ("serial", &d.serial),
                    ("state", &d.state),
                ],
                1.0,
            );
        }
        Ok(())
    }
}

/// Reads one controller directory; every attribute is required.
fn read_nvme(dir: &Path, device: String) -> Result<Nvme, String> {
    let attr = |f: &str| {
        let p = dir.join(f);
        read_trimmed(&p)?.ok_or_else(|| format!("{}: missing", p.display()))
    };
    Ok(Nvme {
        firmware_revision: attr("firmware_rev")?,
        model: attr("model")?,
        serial: attr("serial")?,
        state: attr("state")?,
        device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;

    #[test]
    fn reads_a_controller() {
        let t = TestTree::new("nvme");
        t.write("nvme0/firmware_rev", "1B2QEXP7\n")
            .write("nvme0/model", "Samsung SSD 970 PRO 512GB               \n")
            .write("nvme0/serial", "S680HF8N190894I\n")
            .write("nvme0/state", "live\n");
        let d = read_nvme(&t.path().join("nvme0"), "nvme0".into()).unwrap();
        assert_eq!(
            d,
            Nvme {
                device: "nvme0".into(),
                firmware_revision: "1B2QEXP7".into(),
                model: "Samsung SSD 970 PRO 512GB".into(),
                serial: "S680HF8N190894I".into(),
                state: "live".into(),
            }
        );
        std::fs::remove_file(t.path().join("nvme0/state")).unwrap();
        let e = read_nvme(&t.path().join("nvme0"), "nvme0".into()).unwrap_err();
        assert!(e.contains("nvme0/state"), "{e}");
    }
}
