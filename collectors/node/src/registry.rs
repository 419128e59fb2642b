//! Every collector the node module knows, in output order. To add one, append its `DEF` here
//! (and its `mod` line in `collectors/mod.rs`).

use crate::collector::CollectorDef;
use crate::collectors::*;

/// All collectors, enabled or not.
pub(crate) const ALL: &[CollectorDef] = &[
    loadavg::DEF,
    cpu::DEF,
    cpufreq::DEF,
    meminfo::DEF,
    stat::DEF,
    vmstat::DEF,
    filesystem::DEF,
    diskstats::DEF,
    netdev::DEF,
    netclass::DEF,
    netstat::DEF,
    filefd::DEF,
    pressure::DEF,
    sockstat::DEF,
    softnet::DEF,
    conntrack::DEF,
    time::DEF,
    timex::DEF,
    uname::DEF,
    selinux::DEF,
    dmi::DEF,
    ipvs::DEF,
    nfs::DEF,
    xfs::DEF,
    rapl::DEF,
    arp::DEF,
    bonding::DEF,
    edac::DEF,
    entropy::DEF,
    hwmon::DEF,
    interrupts::DEF,
    mdadm::DEF,
    nvme::DEF,
    os::DEF,
    powersupplyclass::DEF,
    processes::DEF,
    schedstat::DEF,
    thermal_zone::DEF,
    udp_queues::DEF,
    watchdog::DEF,
    // Last: it drops a file's family that any collector above already wrote in this scrape.
    textfile::DEF,
];
