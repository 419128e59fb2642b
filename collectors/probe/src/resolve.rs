//! Name resolution as blackbox_exporter's `chooseProtocol` does it: the preferred protocol
//! (`ip6` by default), falling back to the other one unless `ip_protocol_fallback: false`,
//! with `probe_dns_lookup_time_seconds`, `probe_ip_protocol` and `probe_ip_addr_hash`.

use crate::allow::Allow;
use crate::log::ProbeLog;
use crate::registry::Registry;
use std::net::IpAddr;
use std::time::Instant;

/// Why a target could not be resolved or may not be probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The name did not resolve (a failed probe, not an error page).
    Failed(String),
    /// The allow list refuses it (a 403 for `/probe`).
    Denied(String),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::Failed(e) | ResolveError::Denied(e) => f.write_str(e),
        }
    }
}

/// blackbox_exporter's `ipHash`: FNV-1a 32 of the address bytes (4 for IPv4).
pub fn ip_hash(ip: IpAddr) -> f64 {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        },
    };
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    f64::from(h)
}

#[cfg(test)]
tokio::task_local! {
    /// Names tests resolve without the system resolver (e.g. one name, two addresses).
    pub static TEST_HOSTS: Vec<(&'static str, Vec<IpAddr>)>;
}

/// Every address of `host` (an address literal is itself), in the resolver's order.
pub async fn lookup(host: &str) -> Result<Vec<IpAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    #[cfg(test)]
    if let Ok(Some(ips)) = TEST_HOSTS.try_with(|h| {
        h.iter()
            .find(|(n, _)| *n == bare)
            .map(|(_, ips)| ips.clone())
    }) {
        return Ok(ips);
    }
    let addrs = tokio::net::lookup_host((bare, 0))
        .await
        .map_err(|e| format!("lookup {bare}: {e}"))?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for a in addrs {
        if !ips.contains(&a.ip()) {
            ips.push(a.ip());
        }
    }
    if ips.is_empty() {
        return Err(format!("lookup {bare}: no addresses"));
    }
    Ok(ips)
}

tokio::task_local! {
    /// Set by `all_addresses` runs: the address this run must use instead of resolving.
    pub static PINNED: IpAddr;
}

/// The host a prober resolves for `target`: a URL's host (http), `host:port`'s host (tcp,
/// dns), or the target itself (icmp).
pub fn host_of(prober: &str, target: &str) -> String {
    let rest = match prober {
        "http" => {
            let t = target.split_once("://").map_or(target, |(_, r)| r);
            let auth = t.split(['/', '?', '#']).next().unwrap_or("");
            auth.rsplit_once('@').map_or(auth, |(_, h)| h)
        }
        "icmp" => return target.to_string(),
        _ => target,
    };
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("").to_string();
    }
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
        _ => rest.to_string(),
    }
}

/// Picks the address to probe, recording blackbox_exporter's three resolution gauges.
pub async fn choose(
    host: &str,
    preferred: &str,
    fallback: bool,
    allow: &Allow,
    out: &mut Registry,
    log: &mut ProbeLog,
) -> Result<IpAddr, ResolveError> {
    let ips = resolve_all(host, preferred, fallback, allow, out, log).await?;
    Ok(ips[0])
}

/// As [`choose`], but every address of the chosen protocol, the first being the one
/// `choose` picks (for `all_addresses`).
pub async fn resolve_all(
    host: &str,
    preferred: &str,
    fallback: bool,
    allow: &Allow,
    out: &mut Registry,
    log: &mut ProbeLog,
) -> Result<Vec<IpAddr>, ResolveError> {
    allow.check_host(host).map_err(ResolveError::Denied)?;
    // Registered before the lookup, as upstream does: a failed one leaves them at 0.
    out.gauge(
        "probe_ip_protocol",
        "Specifies whether probe ip protocol is IP4 or IP6",
        0.0,
    );
    out.gauge(
        "probe_ip_addr_hash",
        "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
        0.0,
    );
    if let Ok(ip) = PINNED.try_with(|ip| *ip) {
        allow.check_ip(ip).map_err(ResolveError::Denied)?;
        out.gauge(
            "probe_dns_lookup_time_seconds",
            "Returns the time taken for probe dns lookup in seconds",
            0.0,
        );
        record_choice(ip, out);
        return Ok(vec![ip]);
    }
    let want_v6 = preferred != "ip4";
    let proto = if want_v6 { "ip6" } else { "ip4" };
    log.info(
        "Resolving target address",
        &[("target", &host), ("ip_protocol", &proto)],
    );
    let start = Instant::now();
    let found = lookup(host).await;
    let took = start.elapsed().as_secs_f64();
    out.gauge(
        "probe_dns_lookup_time_seconds",
        "Returns the time taken for probe dns lookup in seconds",
        took,
    );
    let ips = match found {
        Ok(ips) => ips,
        Err(e) => {
            log.error(
                "Resolution with IP protocol failed",
                &[("target", &host), ("err", &e)],
            );
            return Err(ResolveError::Failed(e));
        }
    };
    let (mut chosen, other): (Vec<IpAddr>, Vec<IpAddr>) =
        ips.into_iter().partition(|ip| is_v6(*ip) == want_v6);
    if chosen.is_empty() {
        if !fallback || other.is_empty() {
            let e = "unable to find ip; no fallback".to_string();
            log.error(
                "Resolution with IP protocol failed",
                &[("target", &host), ("err", &e)],
            );
            return Err(ResolveError::Failed(e));
        }
        chosen = other;
    }
    for ip in &chosen {
        allow.check_ip(*ip).map_err(ResolveError::Denied)?;
    }
    let ip = chosen[0];
    log.info("Resolved target address", &[("target", &host), ("ip", &ip)]);
    record_choice(ip, out);
    Ok(chosen)
}

fn record_choice(ip: IpAddr, out: &mut Registry) {
    out.gauge(
        "probe_ip_protocol",
        "Specifies whether probe ip protocol is IP4 or IP6",
        if is_v6(ip) { 6.0 } else { 4.0 },
    );
    out.gauge(
        "probe_ip_addr_hash",
        "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
        ip_hash(ip),
    );
}

fn is_v6(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_as_blackbox() {
        // FNV-1a 32 of [127, 0, 0, 1].
        assert_eq!(ip_hash("127.0.0.1".parse().unwrap()), 3_668_918_509.0);
        assert_eq!(
            ip_hash("::ffff:127.0.0.1".parse().unwrap()),
            ip_hash("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn hosts_of_targets() {
        assert_eq!(host_of("http", "https://u:p@web.shop:8443/x?y"), "web.shop");
        assert_eq!(host_of("http", "http://[::1]:80/"), "::1");
        assert_eq!(host_of("http", "example.com"), "example.com");
        assert_eq!(host_of("tcp", "db:5432"), "db");
        assert_eq!(host_of("tcp", "[2001:db8::1]:53"), "2001:db8::1");
        assert_eq!(host_of("dns", "8.8.8.8"), "8.8.8.8");
        assert_eq!(host_of("icmp", "gw"), "gw");
    }

    #[tokio::test]
    async fn a_pinned_address_is_used_as_is() {
        let mut out = Registry::new();
        let mut log = ProbeLog::new("m", "t");
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let got = PINNED
            .scope(
                ip,
                choose("localhost", "ip4", true, &Allow::all(), &mut out, &mut log),
            )
            .await;
        assert_eq!(got, Ok(ip));
        assert_eq!(out.value("probe_ip_addr_hash", &[]), Some(ip_hash(ip)));
    }

    #[tokio::test]
    async fn literals_fallback_and_denial() {
        let mut out = Registry::new();
        let mut log = ProbeLog::new("m", "t");
        let allow = Allow::all();
        let ip = choose("127.0.0.1", "", true, &allow, &mut out, &mut log)
            .await
            .unwrap();
        assert_eq!(ip.to_string(), "127.0.0.1");
        assert_eq!(
            out.value("probe_ip_protocol", &[]),
            Some(4.0),
            "fell back from ip6"
        );
        let e = choose("127.0.0.1", "ip6", false, &allow, &mut out, &mut log).await;
        assert_eq!(
            e,
            Err(ResolveError::Failed(
                "unable to find ip; no fallback".into()
            ))
        );
        let deny = Allow::new(&crate::config::AllowConfig::default()).unwrap();
        let e = choose("169.254.169.254", "ip4", true, &deny, &mut out, &mut log).await;
        assert!(matches!(e, Err(ResolveError::Denied(_))));
        let e = choose(
            "no-such-host.invalid",
            "ip4",
            true,
            &allow,
            &mut out,
            &mut log,
        )
        .await;
        assert!(matches!(e, Err(ResolveError::Failed(_))));
        assert!(out.value("probe_dns_lookup_time_seconds", &[]).is_some());
    }
}
