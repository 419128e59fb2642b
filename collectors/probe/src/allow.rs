//! Who may be probed: `/probe` lets anyone who reaches the port make the node open
//! connections, so names and addresses are checked against `modules.probe.allow` before a
//! connection is made, and again after every redirect. Link-local and cloud metadata
//! addresses are denied by default.

use crate::config::AllowConfig;
use regex::Regex;
use std::net::IpAddr;

/// An address block, e.g. `10.0.0.0/8` or `fd00:ec2::254/128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `addr/bits` (a bare address is a single host).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: not an address or CIDR"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { net, bits })
    }

    /// Whether `ip` is in this block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// The compiled allow list.
#[derive(Clone, Debug)]
pub struct Allow {
    cidrs: Vec<Cidr>,
    hosts: Vec<Regex>,
    deny_cidrs: Vec<Cidr>,
    deny_hosts: Vec<Regex>,
}

fn anchored(list: &[String]) -> Result<Vec<Regex>, String> {
    list.iter()
        .map(|r| Regex::new(&format!("^(?:{r})$")).map_err(|e| format!("{r:?}: {e}")))
        .collect()
}

impl Allow {
    /// Compiles the config (validated already; errors are still reported).
    pub fn new(c: &AllowConfig) -> Result<Allow, String> {
        let cidrs = |l: &[String]| {
            l.iter()
                .map(|c| Cidr::parse(c))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Allow {
            cidrs: cidrs(&c.cidrs)?,
            hosts: anchored(&c.hosts)?,
            deny_cidrs: cidrs(&c.deny_cidrs)?,
            deny_hosts: anchored(&c.deny_hosts)?,
        })
    }

    /// Allows everything (for tests).
    pub fn all() -> Allow {
        Allow {
            cidrs: Vec::new(),
            hosts: Vec::new(),
            deny_cidrs: Vec::new(),
            deny_hosts: Vec::new(),
        }
    }

    /// Whether a name may be probed; the reason if not. Addresses given as names are checked
    /// as addresses too.
    pub fn check_host(&self, host: &str) -> Result<(), String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.check_ip(ip);
        }
        let name = bare.to_ascii_lowercase();
        if let Some(r) = self.deny_hosts.iter().find(|r| r.is_match(&name)) {
            return Err(format!(
                "probing {host:?} is denied by modules.probe.allow.deny_hosts ({})",
                r.as_str()
            ));
        }
        if !self.hosts.is_empty() && !self.hosts.iter().any(|r| r.is_match(&name)) {
            return Err(format!(
                "probing {host:?} is not allowed: it matches none of modules.probe.allow.hosts"
            ));
        }
        Ok(())
    }

    /// Whether an address may be probed; the reason if not.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        if let Some(c) = self.deny_cidrs.iter().find(|c| c.contains(ip)) {
            return Err(format!(
                "probing {ip} is denied by modules.probe.allow.deny_cidrs ({}/{}): link-local and cloud metadata addresses are denied by default",
                c.net, c.bits
            ));
        }
        if !self.cidrs.is_empty() && !self.cidrs.iter().any(|c| c.contains(ip)) {
            return Err(format!(
                "probing {ip} is not allowed: it is in none of modules.probe.allow.cidrs"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let c = Cidr::parse("169.254.0.0/16").unwrap();
        assert!(c.contains("169.254.169.254".parse().unwrap()));
        assert!(
            c.contains("::ffff:169.254.1.1".parse().unwrap()),
            "v4-mapped"
        );
        assert!(!c.contains("169.255.0.1".parse().unwrap()));
        let c = Cidr::parse("fd00:ec2::254").unwrap();
        assert!(c.contains("fd00:ec2::254".parse().unwrap()));
        assert!(!c.contains("fd00:ec2::253".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.1.0.0/12")
            .unwrap()
            .contains("10.15.255.255".parse().unwrap()));
    }

    #[test]
    fn defaults_deny_metadata_and_link_local() {
        let a = Allow::new(&AllowConfig::default()).unwrap();
        let e = a.check_ip("169.254.169.254".parse().unwrap()).unwrap_err();
        assert!(e.contains("deny_cidrs"), "{e}");
        assert!(a.check_ip("fd00:ec2::254".parse().unwrap()).is_err());
        assert!(a.check_host("[fe80::1]").is_err());
        assert!(a.check_host("metadata.google.internal").is_err());
        assert!(a.check_host("Metadata.Google.Internal.").is_err());
        assert!(a.check_host("example.com").is_ok());
        assert!(a.check_ip("127.0.0.1".parse().unwrap()).is_ok());
    }

    #[test]
    fn allow_lists_restrict() {
        let a = Allow::new(&AllowConfig {
            cidrs: vec!["10.0.0.0/8".into()],
            hosts: vec![".*\\.svc".into()],
            ..AllowConfig::default()
        })
        .unwrap();
        assert!(a.check_ip("10.1.2.3".parse().unwrap()).is_ok());
        assert!(a.check_ip("192.168.1.1".parse().unwrap()).is_err());
        assert!(a.check_host("web.shop.svc").is_ok());
        assert!(a.check_host("web.shop.svc.evil.com").is_err(), "anchored");
    }
}
