//! `machine_cpu_cores` and `machine_memory_bytes`, with the kubelet's machine labels.

use crate::parse;
use eos_exposition::{Encoder, Kind};
use eos_module::HostPaths;

/// Facts about the node, read once at start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Machine {
    pub cpu_cores: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub boot_id: String,
    pub machine_id: String,
    pub system_uuid: String,
}

impl Machine {
    /// Reads the host's CPU count, memory and IDs; what can't be read is left out.
    pub fn read(host: &HostPaths) -> Machine {
        let text = |p: std::path::PathBuf| std::fs::read_to_string(p).ok();
        let trimmed = |p| {
            text(p)
                .map(|s: String| s.trim().to_string())
                .unwrap_or_default()
        };
        Machine {
            cpu_cores: text(host.sysfs.join("devices/system/cpu/online"))
                .and_then(|t| parse::cpu_list_len(&t).ok()),
            memory_bytes: text(host.procfs.join("meminfo")).and_then(|t| parse::mem_total(&t).ok()),
            boot_id: trimmed(host.procfs.join("sys/kernel/random/boot_id")),
            machine_id: trimmed(host.rootfs.join("etc/machine-id")),
            system_uuid: trimmed(host.sysfs.join("class/dmi/id/product_uuid")),
        }
    }

    /// Writes both families.
    pub fn write(&self, enc: &mut Encoder<'_>) {
        let labels = [
            ("boot_id", self.boot_id.as_str()),
            ("machine_id", self.machine_id.as_str()),
            ("system_uuid", self.system_uuid.as_str()),
        ];
        if let Some(n) = self.cpu_cores {
            enc.single(
                "machine_cpu_cores",
                "Number of logical CPU cores.",
                Kind::Gauge,
                &labels,
                n as f64,
            );
        }
        if let Some(b) = self.memory_bytes {
            enc.single(
                "machine_memory_bytes",
                "Amount of memory installed on the machine.",
                Kind::Gauge,
                &labels,
                b as f64,
            );
        }
    }
}
