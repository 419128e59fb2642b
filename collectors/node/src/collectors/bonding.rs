//! `bonding`: configured and active slaves of each bonding master, from
//! `/sys/class/net/bonding_masters` and each master's `bonding/slaves`.
//!
//! No `bonding_masters` file (bonding driver not loaded) means no data.

use std::path::Path;

use eos_exposition::{Encoder, Kind};

use crate::collector::{read_trimmed, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "bonding",
    default_enabled: true,
    build: |_cfg, _paths| Ok(Box::new(BondingCollector)),
};

struct BondingCollector;

/// One master: (name, configured slaves, slaves whose MII status is up).
type Bond = (String, u32, u32);

impl Collector for BondingCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let root = ctx.sys_path("class/net");
        let Some(masters) = read_trimmed(&root.join("bonding_masters"))? else {
            return Ok(());
        };
        let mut bonds = read_bonds(&root, &masters)?;
        bonds.sort_unstable();
        let mut fam = enc.family(
            "node_bonding_active",
            "Number of active slaves per bonding interface.",
            Kind::Gauge,
        );
        for (master, _, active) in &bonds {
            fam.sample(&[("master", master)], f64::from(*active));
        }
        let mut fam = enc.family(
            "node_bonding_slaves",
            "Number of configured slaves per bonding interface.",
            Kind::Gauge,
        );
        for (master, slaves, _) in &bonds {
            fam.sample(&[("master", master)], f64::from(*slaves));
        }
        Ok(())
    }
}

/// Reads the slaves of every master named in `masters` (whitespace-separated).
fn read_bonds(root: &Path, masters: &str) -> Result<Vec<Bond>, String> {
    let mut out = Vec::new();
    for master in masters.split_ascii_whitespace() {
        let slaves_path = root.join(master).join("bonding/slaves");
        let slaves = read_trimmed(&slaves_path)?
            .ok_or_else(|| format!("{}: missing", slaves_path.display()))?;
        let (mut total, mut up) = (0, 0);
        for slave in slaves.split_ascii_whitespace() {
            // Newer kernels link slaves as lower_<dev>, older ones as slave_<dev>.
            let mut status = None;
            for prefix in ["lower_", "slave_"] {
                let p = root
                    .join(master)
                    .join(format!("{prefix}{slave}"))
                    .join("bonding_slave/mii_status");
                if let Some(s) = read_trimmed(&p)? {
                    status = Some(s);
                    break;
                }
            }
            let status =
                status.ok_or_else(|| format!("{master}: no mii_status for slave {slave}"))?;
            total += 1;
            if status == "up" {
                up += 1;
            }
        }
        out.push((master.to_string(), total, up));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;

    #[test]
    fn counts_slaves() {
        let t = TestTree::new("bonding");
        t.write("bond0/bonding/slaves", "eth0 eth1\n")
            .write("bond0/lower_eth0/bonding_slave/mii_status", "up\n")
            .write("bond0/lower_eth1/bonding_slave/mii_status", "down\n")
            .write("dmz/bonding/slaves", "eth2\n")
            .write("dmz/slave_eth2/bonding_slave/mii_status", "up\n")
            .write("empty/bonding/slaves", "\n");
        let bonds = read_bonds(t.path(), "bond0 dmz empty\n").unwrap();
        assert_eq!(
            bonds,
            vec![
                ("bond0".into(), 2, 1),
                ("dmz".into(), 1, 1),
                ("empty".into(), 0, 0)
            ]
        );
        assert!(read_bonds(t.path(), "").unwrap().is_empty());
    }

    #[test]
    fn missing_parts_are_errors() {
        let t = TestTree::new("bonding-bad");
        t.write("bond0/bonding/slaves", "eth0\n");
        let e = read_bonds(t.path(), "bond0").unwrap_err();
        assert!(e.contains("eth0"), "{e}");
        assert!(read_bonds(t.path(), "bond1").is_err());
    }
}
