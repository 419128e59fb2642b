//! One `GET /pods` against the kubelet: HTTPS with the service account token, or plain HTTP.

use crate::config::KubeletConfig;
use crate::error::KubeletError;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::Uri;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A pod list larger than this is refused rather than buffered.
const MAX_BODY: usize = 64 << 20;

/// Fetches the pod list body. Errors say which step failed.
pub async fn fetch_pods(cfg: &KubeletConfig) -> Result<Vec<u8>, KubeletError> {
    let timeout = cfg.timeout.get();
    match tokio::time::timeout(timeout, fetch(cfg)).await {
        Ok(r) => r,
        Err(_) => Err(KubeletError::Unavailable(format!(
            "GET {}: no answer within {}",
            cfg.url, cfg.timeout
        ))),
    }
}

async fn fetch(cfg: &KubeletConfig) -> Result<Vec<u8>, KubeletError> {
    let url = &cfg.url;
    let uri: Uri = url
        .parse()
        .map_err(|e| KubeletError::Config(format!("kubelet url {url:?}: {e}")))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(KubeletError::Config(format!(
                "kubelet url {url:?}: use http:// or https://"
            )))
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| KubeletError::Config(format!("kubelet url {url:?}: no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let token = read_token(cfg)?;

    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| {
            KubeletError::Unavailable(format!("GET {url}: connecting to {host}:{port}: {e}"))
        })?;
    let authority = uri.authority().map_or(host.clone(), |a| a.to_string());
    if https {
        let tls = tls_config(cfg)?;
        let name = ServerName::try_from(host.clone()).map_err(|e| {
            KubeletError::Config(format!("kubelet url {url:?}: host {host:?}: {e}"))
        })?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| KubeletError::Refused(format!("GET {url}: TLS handshake: {e}")))?;
        request(stream, url, &authority, &path, token.as_deref()).await
    } else {
        request(tcp, url, &authority, &path, token.as_deref()).await
    }
}

fn read_token(cfg: &KubeletConfig) -> Result<Option<String>, KubeletError> {
    if cfg.token_file.as_os_str().is_empty() {
        return Ok(None);
    }
    let t = std::fs::read_to_string(&cfg.token_file).map_err(|e| {
        KubeletError::Config(format!("reading token {}: {e}", cfg.token_file.display()))
    })?;
    Ok(Some(t.trim().to_string()))
}

async fn request<S>(
    stream: S,
    url: &str,
    authority: &str,
    path: &str,
    token: Option<&str>,
) -> Result<Vec<u8>, KubeletError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| KubeletError::Unavailable(format!("GET {url}: {e}")))?;
    let conn = tokio::spawn(conn);
    let mut req = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::ACCEPT, "application/json");
    if let Some(t) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| KubeletError::Config(format!("GET {url}: building request: {e}")))?;
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| KubeletError::Unavailable(format!("GET {url}: {e}")))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| KubeletError::Unavailable(format!("GET {url}: reading body: {e}")))?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(KubeletError::for_status(
                status.as_u16(),
                format!("GET {url}: HTTP {status}: {}", text.trim()),
            ));
        }
        Ok(body.to_vec())
    }
    .await;
    conn.abort();
    result
}

fn tls_config(cfg: &KubeletConfig) -> Result<ClientConfig, KubeletError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| KubeletError::Config(format!("TLS setup: {e}")))?;
    let config = if cfg.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        if cfg.ca_file.as_os_str().is_empty() {
            return Err(KubeletError::Config(
                "kubelet: set ca_file or insecure_skip_verify for HTTPS".into(),
            ));
        }
        let ca = cfg.ca_file.display();
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&cfg.ca_file)
            .map_err(|e| KubeletError::Config(format!("reading CA {ca}: {e}")))?;
        for cert in certs {
            let cert = cert.map_err(|e| KubeletError::Config(format!("reading CA {ca}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| KubeletError::Config(format!("reading CA {ca}: {e}")))?;
        }
        if roots.is_empty() {
            return Err(KubeletError::Config(format!(
                "reading CA {ca}: no certificate in the file"
            )));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(config)
}

/// `insecure_skip_verify`: any certificate is accepted, but the handshake signatures are
/// still checked so the session is at least consistent.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

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
