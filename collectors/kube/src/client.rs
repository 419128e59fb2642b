//! One `GET /pods` against the kubelet through the shared HTTP client (`eos_http`): HTTPS
//! with the service account token, or plain HTTP. Here only the kubelet's part: which TLS
//! setup, the token, and what each failure means for pod metadata.

use crate::config::KubeletConfig;
use crate::error::KubeletError;
use eos_http::{header, Client, Error as HttpError, Request, TlsConfig};

/// A pod list larger than this is refused rather than buffered.
const MAX_BODY: usize = 64 << 20;

/// Fetches the pod list body. Errors say which step failed.
pub async fn fetch_pods(http: &Client, cfg: &KubeletConfig) -> Result<Vec<u8>, KubeletError> {
    let url = &cfg.url;
    let mut req = Request {
        timeout: cfg.timeout.get(),
        max_response_bytes: MAX_BODY,
        ..Request::get(url)
    }
    .header(
        header::ACCEPT,
        header::HeaderValue::from_static("application/json"),
    );
    if url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        req.tls = Some(tls(cfg)?);
    }
    if let Some(token) = read_token(cfg)? {
        req.headers.insert(header::AUTHORIZATION, token);
    }
    let resp = http.send(req).await.map_err(from_http)?;
    if !resp.is_success() {
        return Err(KubeletError::for_status(
            resp.status,
            format!(
                "GET {url}: HTTP {} {}: {}",
                resp.status,
                resp.reason(),
                resp.body_snippet(200)
            ),
        ));
    }
    Ok(resp.body.to_vec())
}

/// The TLS setup for the kubelet: its CA, or no verification. The system roots are not a
/// fallback: they never sign a kubelet's serving certificate.
fn tls(cfg: &KubeletConfig) -> Result<eos_http::Tls, KubeletError> {
    if !cfg.insecure_skip_verify && cfg.ca_file.as_os_str().is_empty() {
        return Err(KubeletError::Config(
            "kubelet: set ca_file or insecure_skip_verify for HTTPS".into(),
        ));
    }
    TlsConfig {
        ca_file: cfg.ca_file.clone(),
        insecure_skip_verify: cfg.insecure_skip_verify,
        ..TlsConfig::default()
    }
    .build()
    .map_err(KubeletError::Config)
}

/// `Bearer <token>` from the token file, re-read every time (service account tokens rotate).
fn read_token(cfg: &KubeletConfig) -> Result<Option<header::HeaderValue>, KubeletError> {
    if cfg.token_file.as_os_str().is_empty() {
        return Ok(None);
    }
    let path = cfg.token_file.display();
    let t = std::fs::read_to_string(&cfg.token_file)
        .map_err(|e| KubeletError::Config(format!("reading token {path}: {e}")))?;
    eos_http::bearer_auth(&t)
        .map(Some)
        .map_err(|e| KubeletError::Config(format!("token {path}: {e}")))
}

/// What an HTTP failure means here: a config problem, the kubelet refusing us (TLS), or
/// something the next refresh may get past.
fn from_http(e: HttpError) -> KubeletError {
    match e {
        HttpError::Config(m) => KubeletError::Config(m),
        HttpError::Tls(m) => KubeletError::Refused(m),
        HttpError::BodyTooLarge(m) => KubeletError::Malformed(m),
        HttpError::Connect(m)
        | HttpError::Timeout(m)
        | HttpError::Io(m)
        | HttpError::Protocol(m) => KubeletError::Unavailable(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds() {
        assert_eq!(
            from_http(HttpError::Tls("t".into())),
            KubeletError::Refused("t".into())
        );
        assert!(from_http(HttpError::Connect("c".into())).is_retryable());
        assert!(from_http(HttpError::Timeout("c".into())).is_retryable());
        assert!(!from_http(HttpError::Config("c".into())).is_retryable());
        assert!(matches!(
            from_http(HttpError::BodyTooLarge("b".into())),
            KubeletError::Malformed(_)
        ));
    }

    #[test]
    fn https_needs_a_ca_or_skip_verify() {
        let cfg = KubeletConfig {
            ca_file: Default::default(),
            ..KubeletConfig::default()
        };
        assert_eq!(
            tls(&cfg).unwrap_err(),
            KubeletError::Config("kubelet: set ca_file or insecure_skip_verify for HTTPS".into())
        );
        let insecure = KubeletConfig {
            insecure_skip_verify: true,
            ..cfg
        };
        assert!(tls(&insecure).is_ok());
    }
}
