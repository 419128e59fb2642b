//! blackbox_exporter's TLS metrics, shared by the http and tcp probers: certificate expiry
//! (earliest presented, and of the last verified chain), the leaf's identity, the TLS version
//! and (http only, as upstream) the cipher, with upstream's names, help texts and label values.

use crate::registry::Registry;
use crate::x509;
use eos_http::TlsInfo;

pub const EARLIEST_EXPIRY: &str = "probe_ssl_earliest_cert_expiry";
pub const EARLIEST_EXPIRY_HELP: &str = "Returns last SSL chain expiry in unixtime";
pub const LAST_CHAIN_EXPIRY: &str = "probe_ssl_last_chain_expiry_timestamp_seconds";
pub const LAST_CHAIN_EXPIRY_HELP: &str = "Returns last SSL chain expiry in timestamp";
pub const LAST_CHAIN_INFO: &str = "probe_ssl_last_chain_info";
pub const LAST_CHAIN_INFO_HELP: &str = "Contains SSL leaf certificate information";
pub const VERSION_INFO: &str = "probe_tls_version_info";
pub const VERSION_INFO_HELP: &str = "Returns the TLS version used or NaN when unknown";
pub const CIPHER_INFO: &str = "probe_tls_cipher_info";
pub const CIPHER_INFO_HELP: &str = "Returns the TLS cipher negotiated during handshake";

/// Go's zero `time.Time` in Unix seconds: what blackbox_exporter reports when there is no
/// expiry to report (no verified chain, e.g. with `insecure_skip_verify`).
pub const GO_ZERO_TIME: i64 = -62_135_596_800;

/// Chains explored at most when looking for the verified ones, and their length.
const MAX_CHAINS: usize = 16;
const MAX_DEPTH: usize = 8;

/// Writes the TLS metrics of one handshake. `anchors`: the trusted CA certificates of the
/// setup that verified it ([`eos_http::Tls::trust_anchors`]); `cipher`: also
/// `probe_tls_cipher_info` (the http prober has it, the tcp prober does not).
pub fn record(out: &mut Registry, info: &TlsInfo, anchors: &[impl AsRef<[u8]>], cipher: bool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let peers: Vec<x509::Cert<'_>> = info
        .peer_certificates
        .iter()
        .filter_map(|der| x509::parse(der).ok())
        .collect();
    out.gauge(
        EARLIEST_EXPIRY,
        EARLIEST_EXPIRY_HELP,
        earliest_expiry(&peers) as f64,
    );
    let anchors: Vec<x509::Cert<'_>> = anchors
        .iter()
        .filter_map(|der| x509::parse(der.as_ref()).ok())
        .collect();
    let last = if info.verified {
        last_chain_expiry(&peers, &anchors, now)
    } else {
        GO_ZERO_TIME
    };
    out.gauge(LAST_CHAIN_EXPIRY, LAST_CHAIN_EXPIRY_HELP, last as f64);
    if let Some(leaf_der) = info.peer_certificates.first() {
        let leaf = Leaf::of(leaf_der);
        out.gauge_with(
            LAST_CHAIN_INFO,
            LAST_CHAIN_INFO_HELP,
            &[
                ("fingerprint_sha256", &leaf.fingerprint_sha256),
                ("subject", &leaf.subject),
                ("issuer", &leaf.issuer),
                ("subjectalternative", &leaf.subjectalternative),
                ("serialnumber", &leaf.serialnumber),
            ],
            1.0,
        );
    }
    out.gauge_with(
        VERSION_INFO,
        VERSION_INFO_HELP,
        &[("version", version_name(info.version))],
        1.0,
    );
    if cipher {
        out.gauge_with(
            CIPHER_INFO,
            CIPHER_INFO_HELP,
            &[("cipher", &cipher_name(info.cipher_suite))],
            1.0,
        );
    }
}

/// The leaf's labels on `probe_ssl_last_chain_info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leaf {
    pub fingerprint_sha256: String,
    pub subject: String,
    pub issuer: String,
    pub subjectalternative: String,
    pub serialnumber: String,
}

impl Leaf {
    /// From the leaf's DER. A certificate that does not parse still has its fingerprint.
    pub fn of(der: &[u8]) -> Leaf {
        let fingerprint_sha256 =
            x509::hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
        match x509::parse(der) {
            Ok(c) => Leaf {
                fingerprint_sha256,
                subject: x509::name_string(c.subject).unwrap_or_default(),
                issuer: x509::name_string(c.issuer).unwrap_or_default(),
                subjectalternative: c.dns_names.join(","),
                serialnumber: x509::serial_hex(c.serial),
            },
            Err(_) => Leaf {
                fingerprint_sha256,
                ..Leaf::default()
            },
        }
    }
}

/// The earliest `notAfter` of the certificates the server presented (Go's zero time when
/// there are none).
pub fn earliest_expiry(peers: &[x509::Cert<'_>]) -> i64 {
    peers
        .iter()
        .map(|c| c.not_after)
        .min()
        .unwrap_or(GO_ZERO_TIME)
}

/// blackbox_exporter's `getLastChainExpiry` over Go's verified chains: for each chain from
/// the leaf through presented intermediates to a trusted certificate, the earliest
/// `notAfter` in it; the latest of those. Chains are rebuilt here as Go's verifier would
/// (issuer name matching subject name, key identifiers agreeing when both are present,
/// every certificate valid `now`); Go's zero time when none is found.
pub fn last_chain_expiry(peers: &[x509::Cert<'_>], anchors: &[x509::Cert<'_>], now: i64) -> i64 {
    let Some(leaf) = peers.first() else {
        return GO_ZERO_TIME;
    };
    let mut chains: Vec<i64> = Vec::new();
    if anchors.iter().any(|a| a.der == leaf.der) {
        chains.push(leaf.not_after);
    } else {
        let mut path = vec![leaf];
        build(&mut path, &peers[1..], anchors, now, &mut chains);
    }
    chains.into_iter().max().unwrap_or(GO_ZERO_TIME)
}

fn valid(c: &x509::Cert<'_>, now: i64) -> bool {
    c.not_before <= now && now <= c.not_after
}

fn issued(child: &x509::Cert<'_>, parent: &x509::Cert<'_>) -> bool {
    child.issuer == parent.subject
        && match (child.authority_key_id, parent.subject_key_id) {
            (Some(a), Some(s)) => a == s,
            _ => true,
        }
}

fn build<'a>(
    path: &mut Vec<&'a x509::Cert<'a>>,
    intermediates: &'a [x509::Cert<'a>],
    anchors: &'a [x509::Cert<'a>],
    now: i64,
    chains: &mut Vec<i64>,
) {
    let Some(last) = path.last().copied() else {
        return;
    };
    let in_path = |c: &x509::Cert<'_>, path: &[&x509::Cert<'_>]| {
        path.iter()
            .any(|p| p.der == c.der || (p.subject == c.subject && p.spki == c.spki))
    };
    for root in anchors {
        if chains.len() >= MAX_CHAINS {
            return;
        }
        if issued(last, root) && valid(root, now) && !in_path(root, path) {
            let earliest = path
                .iter()
                .map(|c| c.not_after)
                .chain([root.not_after])
                .min()
                .unwrap_or(GO_ZERO_TIME);
            chains.push(earliest);
        }
    }
    if path.len() >= MAX_DEPTH {
        return;
    }
    for inter in intermediates {
        if chains.len() >= MAX_CHAINS {
            return;
        }
        if issued(last, inter) && valid(inter, now) && !in_path(inter, path) {
            path.push(inter);
            build(path, intermediates, anchors, now, chains);
            path.pop();
        }
    }
}

/// Go's `tls.VersionName` as blackbox_exporter spells it.
pub fn version_name(v: u16) -> &'static str {
    match v {
        0x0301 => "TLS 1.0",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        _ => "unknown",
    }
}

/// Go's `tls.CipherSuiteName`: the suites rustls can negotiate, or `0xABCD`.
pub fn cipher_name(id: u16) -> String {
    let name = match id {
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        _ => return format!("0x{id:04X}"),
    };
    name.to_string()
}

/// A test PKI of known expiry, and TLS servers presenting it (for the prober tests).
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;

    /// 2034-01-01T00:00:00Z: the root's `notAfter` (only in the trust store).
    pub const ROOT_NOT_AFTER: i64 = 2_019_686_400;
    /// 2036-01-01T00:00:00Z: the intermediate's.
    pub const INTER_NOT_AFTER: i64 = 2_082_758_400;
    /// 2035-06-15T12:34:56Z: the leaf's.
    pub const LEAF_NOT_AFTER: i64 = 2_065_523_696;
    /// 2031-01-01T00:00:00Z: a stray self-signed certificate the server also sends.
    pub const STRAY_NOT_AFTER: i64 = 1_924_992_000;

    /// root → intermediate → leaf (`probe.test`, `127.0.0.1`), and a stray certificate.
    pub struct Pki {
        pub root_pem: String,
        pub root_der: Vec<u8>,
        /// The server's chain: leaf, intermediate, stray.
        pub chain: Vec<Vec<u8>>,
        pub leaf_key: Vec<u8>,
    }

    /// A CA valid until midnight UTC of `(year, month, day)`.
    fn ca(cn: &str, (y, m, d): (i32, u8, u8)) -> rcgen::CertificateParams {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.not_after = rcgen::date_time_ymd(y, m, d);
        p
    }

    impl Pki {
        pub fn new() -> Pki {
            let root_key = rcgen::KeyPair::generate().unwrap();
            let root = ca("eos probe test root", (2034, 1, 1))
                .self_signed(&root_key)
                .unwrap();
            let inter_key = rcgen::KeyPair::generate().unwrap();
            let mut inter = ca("eos probe test intermediate", (2036, 1, 1));
            inter.use_authority_key_identifier_extension = true;
            let inter = inter.signed_by(&inter_key, &root, &root_key).unwrap();
            let leaf_key = rcgen::KeyPair::generate().unwrap();
            let mut p =
                rcgen::CertificateParams::new(vec!["probe.test".to_string(), "127.0.0.1".into()])
                    .unwrap();
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name.push(rcgen::DnType::CountryName, "DE");
            p.distinguished_name
                .push(rcgen::DnType::OrganizationName, "Eos, Probes");
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "probe.test");
            p.not_after =
                rcgen::date_time_ymd(2035, 6, 15) + std::time::Duration::from_secs(45_296);
            p.serial_number = Some(rcgen::SerialNumber::from(vec![0x0a, 0xbc, 0xde]));
            p.use_authority_key_identifier_extension = true;
            let leaf = p.signed_by(&leaf_key, &inter, &inter_key).unwrap();
            let stray_key = rcgen::KeyPair::generate().unwrap();
            let stray = ca("stray", (2031, 1, 1)).self_signed(&stray_key).unwrap();
            Pki {
                root_pem: root.pem(),
                root_der: root.der().to_vec(),
                chain: vec![
                    leaf.der().to_vec(),
                    inter.der().to_vec(),
                    stray.der().to_vec(),
                ],
                leaf_key: leaf_key.serialize_der(),
            }
        }

        /// A rustls server config presenting the chain.
        pub fn server(&self) -> Arc<rustls::ServerConfig> {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let chain = self
                .chain
                .iter()
                .map(|c| rustls::pki_types::CertificateDer::from(c.clone()))
                .collect();
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
                rustls::pki_types::PrivatePkcs8KeyDer::from(self.leaf_key.clone()),
            );
            Arc::new(
                rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(chain, key)
                    .unwrap(),
            )
        }

        /// The root as a `ca_file` in `dir`.
        pub fn ca_file(&self, dir: &eos_testkit::TempDir) -> std::path::PathBuf {
            let p = dir.join("ca.pem");
            std::fs::write(&p, &self.root_pem).unwrap();
            p
        }
    }

    pub use crate::prober::testing::{run, Ran};
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    const NOW: i64 = 1_800_000_000; // 2027

    fn info(pki: &Pki, verified: bool) -> TlsInfo {
        TlsInfo {
            version: 0x0304,
            cipher_suite: 0x1302,
            alpn: None,
            peer_certificates: pki.chain.clone(),
            verified,
        }
    }

    #[test]
    fn chains_and_expiry() {
        let pki = Pki::new();
        let peers: Vec<_> = pki.chain.iter().map(|d| x509::parse(d).unwrap()).collect();
        let root = x509::parse(&pki.root_der).unwrap();
        assert_eq!(
            earliest_expiry(&peers),
            STRAY_NOT_AFTER,
            "every presented certificate"
        );
        assert_eq!(
            (peers[0].not_after, peers[1].not_after),
            (LEAF_NOT_AFTER, INTER_NOT_AFTER)
        );
        assert!(peers[0].authority_key_id.is_some());
        assert_eq!(peers[0].authority_key_id, peers[1].subject_key_id);
        assert_eq!(
            last_chain_expiry(&peers, std::slice::from_ref(&root), NOW),
            ROOT_NOT_AFTER,
            "leaf → intermediate → root from the trust store"
        );
        // An anchor the chain does not lead to: no verified chain.
        let stray = x509::parse(&pki.chain[2]).unwrap();
        assert_eq!(last_chain_expiry(&peers, &[stray], NOW), GO_ZERO_TIME);
        // A root of the same name but another key (the key identifiers disagree).
        let other = Pki::new();
        let other_root = x509::parse(&other.root_der).unwrap();
        assert_eq!(other_root.subject, root.subject);
        assert_eq!(last_chain_expiry(&peers, &[other_root], NOW), GO_ZERO_TIME);
        // The leaf itself trusted.
        assert_eq!(
            last_chain_expiry(&peers, &[peers[0].clone()], NOW),
            LEAF_NOT_AFTER
        );
        // The intermediate trusted directly: a shorter chain, and the longer one.
        assert_eq!(
            last_chain_expiry(&peers, &[peers[1].clone(), root.clone()], NOW),
            LEAF_NOT_AFTER
        );
        // An expired root does not make a chain.
        assert_eq!(
            last_chain_expiry(&peers, &[root], ROOT_NOT_AFTER + 1),
            GO_ZERO_TIME
        );
        assert_eq!(earliest_expiry(&[]), GO_ZERO_TIME);
        assert_eq!(last_chain_expiry(&[], &[], NOW), GO_ZERO_TIME);
    }

    #[test]
    fn metrics_as_blackbox_writes_them() {
        let pki = Pki::new();
        let mut out = Registry::new();
        record(
            &mut out,
            &info(&pki, true),
            std::slice::from_ref(&pki.root_der),
            true,
        );
        assert_eq!(
            out.value(EARLIEST_EXPIRY, &[]),
            Some(STRAY_NOT_AFTER as f64)
        );
        assert_eq!(
            out.value(LAST_CHAIN_EXPIRY, &[]),
            Some(ROOT_NOT_AFTER as f64)
        );
        assert_eq!(
            out.value(VERSION_INFO, &[("version", "TLS 1.3")]),
            Some(1.0)
        );
        assert_eq!(
            out.value(CIPHER_INFO, &[("cipher", "TLS_AES_256_GCM_SHA384")]),
            Some(1.0)
        );
        let leaf = Leaf::of(&pki.chain[0]);
        assert_eq!(leaf.subject, "CN=probe.test,O=Eos\\, Probes,C=DE");
        assert_eq!(leaf.issuer, "CN=eos probe test intermediate");
        assert_eq!(leaf.subjectalternative, "probe.test");
        assert_eq!(leaf.serialnumber, "0abcde");
        assert_eq!(leaf.fingerprint_sha256.len(), 64);
        let text = out.text();
        assert!(text.contains(&format!(
            "probe_ssl_last_chain_info{{fingerprint_sha256=\"{}\",issuer=\"CN=eos probe test intermediate\",serialnumber=\"0abcde\",subject=\"CN=probe.test,O=Eos\\\\, Probes,C=DE\",subjectalternative=\"probe.test\"}} 1\n",
            leaf.fingerprint_sha256
        )), "{text}");

        // Not verified (insecure_skip_verify): Go's zero time; no cipher for tcp.
        let mut out = Registry::new();
        record(&mut out, &info(&pki, false), &[] as &[Vec<u8>], false);
        assert_eq!(out.value(LAST_CHAIN_EXPIRY, &[]), Some(GO_ZERO_TIME as f64));
        assert!(!out.names().contains(&CIPHER_INFO));
        assert_eq!(Leaf::of(b"junk").subject, "");
    }

    #[test]
    fn names_of_versions_and_ciphers() {
        assert_eq!(version_name(0x0303), "TLS 1.2");
        assert_eq!(version_name(0x0300), "unknown");
        assert_eq!(
            cipher_name(0xcca8),
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        );
        assert_eq!(cipher_name(0x00ff), "0x00FF");
    }
}
