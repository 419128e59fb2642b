//! One file per node_exporter collector; see `collector.rs` for the pattern.

pub(crate) mod arp;
pub(crate) mod bonding;
pub(crate) mod conntrack;
pub(crate) mod cpu;
pub(crate) mod cpufreq;
pub(crate) mod diskstats;
pub(crate) mod edac;
pub(crate) mod entropy;
pub(crate) mod filefd;
pub(crate) mod filesystem;
pub(crate) mod hwmon;
pub(crate) mod loadavg;
pub(crate) mod mdadm;
pub(crate) mod meminfo;
pub(crate) mod netclass;
pub(crate) mod netdev;
pub(crate) mod netstat;
pub(crate) mod nvme;
pub(crate) mod os;
pub(crate) mod powersupplyclass;
pub(crate) mod pressure;
pub(crate) mod schedstat;
pub(crate) mod sockstat;
pub(crate) mod softnet;
pub(crate) mod stat;
#[cfg(test)]
pub(crate) mod test_tree;
pub(crate) mod textfile;
pub(crate) mod thermal_zone;
pub(crate) mod time;
pub(crate) mod timex;
pub(crate) mod udp_queues;
pub(crate) mod uname;
pub(crate) mod vmstat;
pub(crate) mod watchdog;
