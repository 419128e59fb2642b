//! One file per node_exporter collector; see `collector.rs` for the pattern.

pub(crate) mod loadavg;
pub(crate) mod arp;
pub(crate) mod bonding;
pub(crate) mod edac;
pub(crate) mod entropy;
pub(crate) mod hwmon;
pub(crate) mod nvme;
pub(crate) mod os;
pub(crate) mod schedstat;
pub(crate) mod thermal_zone;
pub(crate) mod udp_queues;
pub(crate) mod watchdog;
#[cfg(test)]
pub(crate) mod test_tree;
