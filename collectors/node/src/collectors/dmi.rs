//! `dmi`: `node_dmi_info`, the firmware's description of the machine (vendor, product,
//! BIOS, board, chassis) from `<sysfs>/class/dmi/id/`, one label per attribute the firmware
//! provides. Machines without DMI (many ARM boards, some VMs) write nothing.

use eos_exposition::{Encoder, Kind};
use std::ffi::CStr;

use crate::collector::{Collector, CollectorDef, Ctx, SysDir};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "dmi",
    default_enabled: true,
    build: |_, _| Ok(Box::new(DmiCollector)),
};

struct DmiCollector;

/// (label, sysfs attribute), in label order.
const FIELDS: [(&str, &CStr); 20] = [
    ("bios_date", c"bios_date"),
    ("bios_release", c"bios_release"),
    ("bios_vendor", c"bios_vendor"),
    ("bios_version", c"bios_version"),
    ("board_asset_tag", c"board_asset_tag"),
    ("board_name", c"board_name"),
    ("board_serial", c"board_serial"),
    ("board_vendor", c"board_vendor"),
    ("board_version", c"board_version"),
    ("chassis_asset_tag", c"chassis_asset_tag"),
    ("chassis_serial", c"chassis_serial"),
    ("chassis_vendor", c"chassis_vendor"),
    ("chassis_version", c"chassis_version"),
    ("product_family", c"product_family"),
    ("product_name", c"product_name"),
    ("product_serial", c"product_serial"),
    ("product_sku", c"product_sku"),
    ("product_uuid", c"product_uuid"),
    ("product_version", c"product_version"),
    ("system_vendor", c"sys_vendor"),
];

impl Collector for DmiCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let Some(dir) = SysDir::open(&ctx.sys_path("class/dmi/id"))? else {
            return Ok(());
        };
        let mut buf = Vec::new();
        let mut labels: Vec<(&str, String)> = Vec::with_capacity(FIELDS.len());
        for (label, attr) in FIELDS {
            // Serials and the UUID are readable by root only: read() calls them absent then.
            let Some(value) = dir.read(attr, &mut buf)? else {
                continue;
            };
            if !value.is_empty() {
                labels.push((label, value.to_string()));
            }
        }
        if labels.is_empty() {
            return Ok(());
        }
        enc.family(
            "node_dmi_info",
            "A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, bios_version, board_asset_tag, board_name, board_serial, board_vendor, board_version, chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, product_family, product_name, product_serial, product_sku, product_uuid, product_version, system_vendor if provided by DMI.",
            Kind::Gauge,
        )
        .sample_owned(&labels, 1.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_only_what_the_firmware_provides() {
        let tree = crate::collectors::test_tree::TestTree::new("dmi");
        tree.write("class/dmi/id/sys_vendor", "QEMU\n");
        tree.write(
            "class/dmi/id/product_name",
            "Standard PC (Q35 + ICH9, 2009)\n",
        );
        tree.write("class/dmi/id/board_serial", "\n");
        let paths = eos_module::HostPaths {
            sysfs: tree.path().to_path_buf(),
            ..eos_module::HostPaths::default()
        };
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        let mut buf = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        DmiCollector
            .update(&mut enc, &mut Ctx::new(&paths, deadline, &mut buf))
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with(
            "node_dmi_info{product_name=\"Standard PC (Q35 + ICH9, 2009)\",system_vendor=\"QEMU\"} 1\n"
        ), "{text}");

        let empty = eos_module::HostPaths {
            sysfs: tree.path().join("nothing"),
            ..eos_module::HostPaths::default()
        };
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        DmiCollector
            .update(&mut enc, &mut Ctx::new(&empty, deadline, &mut buf))
            .unwrap();
        assert!(out.is_empty());
    }
}
