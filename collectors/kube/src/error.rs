//! Why asking the kubelet for its pod list failed, by what a caller can do about it.

/// A failed pod list request. The message names the step (`GET <url>: connecting to ...`,
/// `reading CA ...`); the kind says whether waiting can help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KubeletError {
    /// The settings cannot work: a bad URL, no CA for HTTPS, an unreadable CA or token file.
    /// Only a config change fixes it.
    #[error("{0}")]
    Config(String),
    /// Not reachable, too slow, or answering 429/5xx: the next refresh may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// Reached, but it refused us: a TLS verification failure, 401/403 (token or RBAC), or
    /// another 4xx.
    #[error("{0}")]
    Refused(String),
    /// It answered something that is not a pod list.
    #[error("{0}")]
    Malformed(String),
}

impl KubeletError {
    /// Whether the same request can succeed later without a change on our side.
    pub fn is_retryable(&self) -> bool {
        matches!(self, KubeletError::Unavailable(_))
    }

    /// The kind for an HTTP status that is not a success.
    pub(crate) fn for_status(status: u16, message: String) -> Self {
        if status == 429 || status >= 500 {
            KubeletError::Unavailable(message)
        } else {
            KubeletError::Refused(message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert!(KubeletError::for_status(503, "x".into()).is_retryable());
        assert!(KubeletError::for_status(429, "x".into()).is_retryable());
        assert_eq!(
            KubeletError::for_status(403, "GET u: HTTP 403 Forbidden".into()),
            KubeletError::Refused("GET u: HTTP 403 Forbidden".into())
        );
        assert!(!KubeletError::Config("x".into()).is_retryable());
        assert_eq!(KubeletError::Malformed("m".into()).to_string(), "m");
    }
}
