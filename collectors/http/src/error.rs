//! Why a request failed, by what the caller can do about it.

/// A failed request. The message starts with the method and the URL (password hidden) and
/// says which step failed (`POST https://loki:3100/loki/api/v1/push: connecting to
/// loki:3100: Connection refused`); the variant says whether trying again can help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request cannot work as given: a bad URL, TLS files that cannot be read, a bad
    /// header. Only a change of settings fixes it.
    #[error("{0}")]
    Config(String),
    /// No connection: the name did not resolve, or the connection was refused or timed out
    /// at the TCP level. Names `host:port`.
    #[error("{0}")]
    Connect(String),
    /// TLS failed: the server's certificate did not verify, the server rejected our client
    /// certificate, or there is no common protocol version.
    #[error("{0}")]
    Tls(String),
    /// No complete answer within the request's timeout; says what it was waiting for.
    #[error("{0}")]
    Timeout(String),
    /// The connection broke while sending or reading (reset, closed before the answer was
    /// complete).
    #[error("{0}")]
    Io(String),
    /// The server's answer is not HTTP/1.1 this client can read.
    #[error("{0}")]
    Protocol(String),
    /// The response body is larger than the request's `max_response_bytes`.
    #[error("{0}")]
    BodyTooLarge(String),
}

impl Error {
    /// Whether the same request can succeed later without a change on our side: connect
    /// failures, timeouts and broken connections.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Connect(_) | Error::Timeout(_) | Error::Io(_))
    }
}

/// `e` and its sources, joined with `": "`, without repeating a source the text already has.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// The rustls error somewhere in `e`'s sources, also inside an `io::Error`.
pub(crate) fn rustls_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        next = err.source();
    }
    None
}

/// What a rustls error means for the user: our verification of the server failed, or the
/// server did not accept our client certificate, or something else.
pub(crate) fn tls_detail(r: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    match r {
        rustls::Error::InvalidCertificate(_) => {
            format!("server certificate verification failed: {r}")
        }
        rustls::Error::AlertReceived(
            A::CertificateRequired
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::UnsupportedCertificate
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::AccessDenied,
        ) => format!("the server did not accept our client certificate (cert_file, key_file): {r}"),
        _ => r.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        for e in [
            Error::Connect(String::new()),
            Error::Timeout(String::new()),
            Error::Io(String::new()),
        ] {
            assert!(e.is_retryable(), "{e:?}");
        }
        for e in [
            Error::Config(String::new()),
            Error::Tls(String::new()),
            Error::Protocol(String::new()),
            Error::BodyTooLarge(String::new()),
        ] {
            assert!(!e.is_retryable(), "{e:?}");
        }
        assert_eq!(Error::Io("GET u: reset".into()).to_string(), "GET u: reset");
    }

    #[test]
    fn finds_rustls_errors_in_io_errors() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::General("x".into()),
        );
        assert_eq!(rustls_error(&io), Some(&rustls::Error::General("x".into())));
        let plain = std::io::Error::other("y");
        assert_eq!(rustls_error(&plain), None);
        assert_eq!(chain(&io), "unexpected error: x");
    }
}
