//! `Authorization` header values: HTTP basic auth (RFC 7617) and bearer tokens (RFC 6750).
//! Both are marked sensitive, so `Debug` of a request never prints them.

use hyper::header::HeaderValue;

/// `Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> HeaderValue {
    let encoded = base64(format!("{user}:{password}").as_bytes());
    // Base64 is always a valid header value; the fallback is never taken.
    let mut v = HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    v.set_sensitive(true);
    v
}

/// `Bearer <token>`, surrounding white space (a token file's newline) trimmed. Errors when
/// the token has characters a header cannot carry; the message does not repeat the token.
pub fn bearer_auth(token: &str) -> Result<HeaderValue, String> {
    let token = token.trim();
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        "the token has characters that cannot go in an HTTP header (a control character or line break inside it)".to_string()
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        // RFC 4648 section 10.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc, "{plain:?}");
        }
    }

    #[test]
    fn headers() {
        // RFC 7617's example.
        let v = basic_auth("Aladdin", "open sesame");
        assert_eq!(v, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(v.is_sensitive());
        let b = bearer_auth("abc.def\n").unwrap();
        assert_eq!(b, "Bearer abc.def");
        assert!(b.is_sensitive());
        assert_eq!(format!("{b:?}"), "Sensitive");
        let e = bearer_auth("secret\nsecond line").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }
}
