//! TLS for outgoing HTTPS: the `tls_config` section in Prometheus' and blackbox_exporter's
//! shape ([`TlsConfig`]), and the rustls client setup built from it ([`Tls`]).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// The system's CA bundle (Debian, Ubuntu, Alpine and distroless images), used when no
/// `ca_file` is set. The workspace bundles no roots of its own.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How to talk TLS to a server, with Prometheus' `tls_config` field names. All fields are
/// optional; the default verifies the server against the system CA bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file with the CA certificates that may sign the server's certificate. Empty: the
    /// system bundle `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_file: PathBuf,
    /// PEM client certificate (and chain) for mutual TLS; goes with `key_file`.
    pub cert_file: PathBuf,
    /// PEM private key of `cert_file` (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// The name sent in SNI and checked against the server's certificate, instead of the
    /// URL's host (e.g. when connecting by IP to a server with a DNS-name certificate).
    pub server_name: String,
    /// Accept any server certificate. The handshake signatures are still checked, so the
    /// session is at least consistent, but anyone on the path can impersonate the server.
    pub insecure_skip_verify: bool,
    /// The lowest TLS version to accept, spelled as Prometheus does: `TLS12` or `TLS13`.
    /// Empty: TLS 1.2 (rustls has no older versions).
    pub min_version: String,
}

/// The TLS versions [`TlsConfig::min_version`] allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MinVersion {
    Tls12,
    Tls13,
}

impl TlsConfig {
    /// What the types cannot say: `cert_file` and `key_file` both or neither, a known
    /// `min_version`, a valid `server_name`. Messages start with the field name.
    pub fn validate(&self) -> Result<(), String> {
        let has_cert = !self.cert_file.as_os_str().is_empty();
        let has_key = !self.key_file.as_os_str().is_empty();
        if has_cert != has_key {
            return Err(format!(
                "{}: cert_file and key_file go together: set both for a client certificate, or neither",
                if has_cert { "key_file" } else { "cert_file" }
            ));
        }
        self.min_version()?;
        self.server_name()?;
        Ok(())
    }

    fn min_version(&self) -> Result<MinVersion, String> {
        match self.min_version.as_str() {
            "" | "TLS12" => Ok(MinVersion::Tls12),
            "TLS13" => Ok(MinVersion::Tls13),
            "TLS10" | "TLS11" => Err(format!(
                "min_version: {:?} is not supported (TLS 1.0 and 1.1 are insecure): use TLS12 or TLS13",
                self.min_version
            )),
            other => Err(format!(
                "min_version: {other:?} is not a TLS version: use TLS12 or TLS13"
            )),
        }
    }

    fn server_name(&self) -> Result<Option<ServerName<'static>>, String> {
        if self.server_name.is_empty() {
            return Ok(None);
        }
        ServerName::try_from(self.server_name.clone())
            .map(Some)
            .map_err(|_| {
                format!(
                    "server_name: {:?} is not a DNS name or IP address",
                    self.server_name
                )
            })
    }

    /// Reads the files and builds the client setup. Errors name the field or the file and
    /// what is wrong with it (`reading CA /x/ca.pem: No such file or directory (os error 2)`).
    /// Build once and reuse the result: reading the system bundle takes a moment.
    pub fn build(&self) -> Result<Tls, String> {
        self.build_with(Path::new(SYSTEM_CA_BUNDLE))
    }

    fn build_with(&self, system_bundle: &Path) -> Result<Tls, String> {
        self.validate()?;
        let mut id = DefaultHasher::new();
        self.hash(&mut id);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version()? {
            MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            MinVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS setup: {e}"))?;
        let mut anchors = Arc::new(Vec::new());
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        } else {
            let (roots, ders) = self.roots(system_bundle, &mut id)?;
            anchors = ders;
            builder.with_root_certificates(roots)
        };
        let mut config = if self.cert_file.as_os_str().is_empty() {
            builder.with_no_client_auth()
        } else {
            let (certs, key) = self.client_identity(&mut id)?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                format!(
                    "client certificate {} with key {}: {e}",
                    self.cert_file.display(),
                    self.key_file.display()
                )
            })?
        };
        // Plain TLS (tcp probes, STARTTLS) offers no application protocol, as Go's does.
        let raw = Arc::new(config.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            raw,
            server_name: self.server_name()?,
            id: id.finish(),
            anchors,
            verifies: !self.insecure_skip_verify,
        })
    }

    /// The trusted CAs, `ca_file` or the system bundle, and their certificates (DER) as read.
    fn roots(
        &self,
        system_bundle: &Path,
        id: &mut DefaultHasher,
    ) -> Result<(RootCertStore, Arc<Vec<CertificateDer<'static>>>), String> {
        let mut roots = RootCertStore::empty();
        if !self.ca_file.as_os_str().is_empty() {
            let ca = self.ca_file.display();
            let pem = std::fs::read(&self.ca_file).map_err(|e| format!("reading CA {ca}: {e}"))?;
            pem.hash(id);
            let mut ders = Vec::new();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("reading CA {ca}: {e}"))?;
                roots
                    .add(cert.clone())
                    .map_err(|e| format!("reading CA {ca}: {e}"))?;
                ders.push(cert);
            }
            if roots.is_empty() {
                return Err(format!("reading CA {ca}: no certificate in the file"));
            }
            return Ok((roots, Arc::new(ders)));
        }
        let bundle = system_roots(system_bundle)?;
        bundle.pem_hash.hash(id);
        Ok((bundle.roots.clone(), bundle.ders.clone()))
    }

    /// The client certificate chain and its key, for mutual TLS.
    fn client_identity(
        &self,
        id: &mut DefaultHasher,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        let cert_path = self.cert_file.display();
        let pem = std::fs::read(&self.cert_file)
            .map_err(|e| format!("reading client certificate {cert_path}: {e}"))?;
        pem.hash(id);
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("reading client certificate {cert_path}: {e}"))?;
        if certs.is_empty() {
            return Err(format!(
                "reading client certificate {cert_path}: no certificate in the file"
            ));
        }
        let key_path = self.key_file.display();
        let pem = std::fs::read(&self.key_file)
            .map_err(|e| format!("reading client key {key_path}: {e}"))?;
        pem.hash(id);
        let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                format!("reading client key {key_path}: no private key in the file")
            }
            e => format!("reading client key {key_path}: {e}"),
        })?;
        Ok((certs, key))
    }
}

/// A built TLS client setup, ready for [`Request::tls`](crate::Request::tls): cheap to clone.
///
/// Connections are pooled per setup. Two builds from equal settings and equal file
/// contents are the same setup and share connections; when a CA or key file changes, a new
/// build gets new connections.
#[derive(Clone)]
pub struct Tls {
    /// For HTTPS: offers ALPN `http/1.1`.
    pub(crate) config: Arc<ClientConfig>,
    /// For plain TLS ([`crate::tls_connect`]): no ALPN.
    pub(crate) raw: Arc<ClientConfig>,
    /// `server_name` from the config; `None`: the URL's host.
    pub(crate) server_name: Option<ServerName<'static>>,
    /// Hash of the settings and the bytes of every file read: the pool's key.
    pub(crate) id: u64,
    /// The trusted CA certificates (empty with `insecure_skip_verify`).
    anchors: Arc<Vec<CertificateDer<'static>>>,
    verifies: bool,
}

impl Tls {
    /// The CA certificates (DER) a server's chain is verified against: `ca_file`'s, or the
    /// system bundle's. Empty with `insecure_skip_verify`.
    pub fn trust_anchors(&self) -> &[CertificateDer<'static>] {
        &self.anchors
    }

    /// Whether server certificates are verified (false with `insecure_skip_verify`).
    pub fn verifies(&self) -> bool {
        self.verifies
    }
}

/// The system bundle as last read: its roots, its certificates and the hash of its bytes.
struct SystemRoots {
    path: PathBuf,
    mtime: Option<SystemTime>,
    len: u64,
    roots: RootCertStore,
    ders: Arc<Vec<CertificateDer<'static>>>,
    pem_hash: u64,
}

/// The last system bundle read, so that a setup built per probe does not parse it again
/// while it has not changed (same path, modification time and size).
static SYSTEM_ROOTS: Mutex<Option<Arc<SystemRoots>>> = Mutex::new(None);

/// The roots of the system bundle at `path`, from the cache while the file is unchanged.
fn system_roots(path: &Path) -> Result<Arc<SystemRoots>, String> {
    let bundle = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
            "no ca_file and no system CA bundle ({bundle}): set ca_file, or insecure_skip_verify"
        ))
        }
        Err(e) => {
            return Err(format!(
                "no ca_file, and reading the system CA bundle {bundle}: {e}"
            ))
        }
    };
    let (mtime, len) = (meta.modified().ok(), meta.len());
    {
        let cached = SYSTEM_ROOTS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cached.as_ref() {
            if c.path == path && c.mtime.is_some() && c.mtime == mtime && c.len == len {
                return Ok(c.clone());
            }
        }
    }
    let pem = match std::fs::read(path) {
        Ok(pem) => pem,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
            "no ca_file and no system CA bundle ({bundle}): set ca_file, or insecure_skip_verify"
        ))
        }
        Err(e) => {
            return Err(format!(
                "no ca_file, and reading the system CA bundle {bundle}: {e}"
            ))
        }
    };
    let mut h = DefaultHasher::new();
    pem.hash(&mut h);
    // A system bundle may hold a certificate webpki cannot use; skip it, as Go does.
    let ders: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&pem).flatten().collect();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(ders.iter().cloned());
    if roots.is_empty() {
        return Err(format!(
            "no ca_file, and the system CA bundle {bundle} has no usable certificate"
        ));
    }
    let fresh = Arc::new(SystemRoots {
        path: path.to_path_buf(),
        mtime,
        len: pem.len() as u64,
        roots,
        ders: Arc::new(ders),
        pem_hash: h.finish(),
    });
    *SYSTEM_ROOTS.lock().unwrap_or_else(PoisonError::into_inner) = Some(fresh.clone());
    Ok(fresh)
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .field("id", &format_args!("{:016x}", self.id))
            .finish_non_exhaustive()
    }
}

/// `insecure_skip_verify`: any certificate is accepted, but the handshake signatures are
/// still checked so the session is at least consistent.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eos_testkit::TempDir;

    fn self_signed(dir: &TempDir) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn yaml_field_names() {
        let c: TlsConfig = serde_yaml_ng::from_str(
            "ca_file: /ca.pem\ncert_file: /c.pem\nkey_file: /k.pem\nserver_name: loki\ninsecure_skip_verify: true\nmin_version: TLS13\n",
        )
        .unwrap();
        assert_eq!(c.ca_file, PathBuf::from("/ca.pem"));
        assert_eq!(
            (c.server_name.as_str(), c.min_version.as_str()),
            ("loki", "TLS13")
        );
        assert!(c.insecure_skip_verify);
        assert_eq!(c.validate(), Ok(()));
        let e = serde_yaml_ng::from_str::<TlsConfig>("ca: x\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `ca`"), "{e}");
        assert_eq!(
            serde_yaml_ng::from_str::<TlsConfig>("{}").unwrap(),
            TlsConfig::default()
        );
    }

    #[test]
    fn validation() {
        let with = |f: fn(&mut TlsConfig)| {
            let mut c = TlsConfig::default();
            f(&mut c);
            c.validate()
        };
        assert_eq!(with(|_| {}), Ok(()));
        assert_eq!(
            with(|c| c.cert_file = "/c.pem".into()),
            Err("key_file: cert_file and key_file go together: set both for a client certificate, or neither".into())
        );
        assert!(with(|c| c.key_file = "/k.pem".into())
            .unwrap_err()
            .starts_with("cert_file: "));
        assert_eq!(with(|c| c.min_version = "TLS12".into()), Ok(()));
        assert_eq!(
            with(|c| c.min_version = "TLS11".into()),
            Err("min_version: \"TLS11\" is not supported (TLS 1.0 and 1.1 are insecure): use TLS12 or TLS13".into())
        );
        assert_eq!(
            with(|c| c.min_version = "tls1.3".into()),
            Err("min_version: \"tls1.3\" is not a TLS version: use TLS12 or TLS13".into())
        );
        assert_eq!(
            with(|c| c.server_name = "not a name".into()),
            Err("server_name: \"not a name\" is not a DNS name or IP address".into())
        );
        assert_eq!(with(|c| c.server_name = "10.0.0.1".into()), Ok(()));
    }

    #[test]
    fn build_errors_name_the_file() {
        let dir = TempDir::new("http-tls");
        let missing = dir.join("ca.pem");
        let c = TlsConfig {
            ca_file: missing.clone(),
            ..TlsConfig::default()
        };
        let e = c.build().unwrap_err();
        assert!(
            e.starts_with(&format!("reading CA {}: ", missing.display())),
            "{e}"
        );
        std::fs::write(&missing, "not a pem\n").unwrap();
        assert_eq!(
            c.build().unwrap_err(),
            format!(
                "reading CA {}: no certificate in the file",
                missing.display()
            )
        );

        let e = TlsConfig::default()
            .build_with(&dir.join("no-bundle.crt"))
            .unwrap_err();
        assert!(e.starts_with("no ca_file and no system CA bundle ("), "{e}");
        assert!(
            e.ends_with("): set ca_file, or insecure_skip_verify"),
            "{e}"
        );

        let (cert, key) = self_signed(&dir);
        let insecure = TlsConfig {
            insecure_skip_verify: true,
            cert_file: cert.clone(),
            key_file: dir.join("nokey.pem"),
            ..TlsConfig::default()
        };
        let e = insecure.build().unwrap_err();
        assert!(e.starts_with("reading client key "), "{e}");
        assert!(e.contains("nokey.pem"), "{e}");
        std::fs::write(dir.join("nokey.pem"), "nothing here\n").unwrap();
        assert!(
            insecure
                .build()
                .unwrap_err()
                .ends_with("no private key in the file"),
            "{}",
            insecure.build().unwrap_err()
        );
        let e = TlsConfig {
            cert_file: key.clone(),
            key_file: key.clone(),
            ..insecure.clone()
        }
        .build()
        .unwrap_err();
        assert_eq!(
            e,
            format!(
                "reading client certificate {}: no certificate in the file",
                key.display()
            )
        );
        let ok = TlsConfig {
            key_file: key,
            ..insecure
        };
        assert!(ok.build().is_ok());
    }

    #[test]
    fn system_bundle_is_reread_when_it_changes() {
        let dir = TempDir::new("http-tls-bundle");
        let (one, _) = self_signed(&dir);
        let bundle = dir.join("bundle.crt");
        let first = std::fs::read_to_string(&one).unwrap();
        std::fs::write(&bundle, &first).unwrap();
        let a = TlsConfig::default().build_with(&bundle).unwrap();
        let b = TlsConfig::default().build_with(&bundle).unwrap();
        assert_eq!(a.trust_anchors().len(), 1);
        assert_eq!(a.id, b.id);
        assert!(a.verifies());
        let (two, _) = self_signed(&dir); // rewrites c.pem with another certificate
        let second = std::fs::read_to_string(two).unwrap();
        std::fs::write(&bundle, format!("{first}{second}")).unwrap();
        let c = TlsConfig::default().build_with(&bundle).unwrap();
        assert_eq!(c.trust_anchors().len(), 2);
        assert_ne!(a.id, c.id);
        let insecure = TlsConfig {
            insecure_skip_verify: true,
            ..TlsConfig::default()
        }
        .build_with(&bundle)
        .unwrap();
        assert!(insecure.trust_anchors().is_empty() && !insecure.verifies());
    }

    #[test]
    fn same_inputs_same_identity() {
        let dir = TempDir::new("http-tls-id");
        let (cert, _) = self_signed(&dir);
        let c = TlsConfig {
            ca_file: cert.clone(),
            ..TlsConfig::default()
        };
        let (a, b) = (c.build().unwrap(), c.build().unwrap());
        assert_eq!(a.id, b.id, "two builds of the same files share connections");
        let other = TlsConfig {
            server_name: "x.example".into(),
            ..c.clone()
        };
        assert_ne!(other.build().unwrap().id, a.id);
        let (other_cert, _) = self_signed(&dir); // rewrites c.pem with a new CA
        assert_eq!(other_cert, cert);
        assert_ne!(
            c.build().unwrap().id,
            a.id,
            "a changed CA file is a new setup"
        );
        assert!(format!("{a:?}").starts_with("Tls { server_name: None, id: "));
    }
}
