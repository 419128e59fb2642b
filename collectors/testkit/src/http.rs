//! A raw HTTP/1.1 client for tests and benchmarks: one request per connection
//! (`Connection: close`), the whole response read, chunked bodies joined. Raw on purpose: a
//! test sees the bytes the server sent (e.g. a gzip body), and timing covers connect to last
//! byte.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A whole response.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The status line and headers, as sent, without the blank line.
    pub head: String,
    /// The body as sent (not decompressed), chunked transfer encoding removed.
    pub body: Vec<u8>,
}

impl Response {
    /// The value of the first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method path` with `headers` and `body` to `addr` (`host:port`) on a new connection
/// and reads the whole response (30 s read timeout).
pub fn request(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_nodelay(true)?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw).map_err(std::io::Error::other)
}

/// [`request`], returning the status and the body as text.
pub fn http(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    request(method, addr, path, headers, body).map(|r| (r.status, r.text()))
}

/// Splits a whole HTTP/1.1 response into status, head and body (chunked bodies are joined).
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers in the response")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let rest = &raw[end + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {:?}", head.lines().next()))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Response { status, head, body })
}

/// Joins a chunked body (chunk extensions ignored); fails on a bad size or a truncated chunk.
pub fn dechunk(mut s: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = s
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size = std::str::from_utf8(&s[..eol]).unwrap_or("");
        let size = size.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {size:?}"))?;
        s = &s[eol + 2..];
        if n == 0 {
            return Ok(out);
        }
        let chunk = s.get(..n).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        s = s.get(n..).unwrap_or(&[]);
        s = s.strip_prefix(b"\r\n").unwrap_or(s);
    }
}

/// Percent-encodes a query-string value (everything but `A-Za-z0-9-_.~`).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_chunked_responses() {
        let plain =
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";
        let r = parse_response(plain).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("Content-Encoding"), None);
        let chunked =
            b"HTTP/1.1 503 No\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let r = parse_response(chunked).unwrap();
        assert_eq!((r.status, r.text().as_str()), (503, "abcde"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
        let truncated = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nabc";
        assert!(parse_response(truncated).is_err());
    }

    #[test]
    fn dechunk_keeps_binary_and_multibyte_chunks() {
        // A chunk boundary inside a UTF-8 character, and bytes that are not UTF-8.
        let body = b"1\r\n\xc3\r\n1\r\n\xa9\r\n2\r\n\x1f\x8b\r\n0\r\n\r\n";
        assert_eq!(dechunk(body).unwrap(), b"\xc3\xa9\x1f\x8b");
        assert_eq!(
            dechunk(b"A\r\n0123456789\r\n0\r\n\r\n").unwrap(),
            b"0123456789"
        );
        assert_eq!(dechunk(b"0\r\n\r\n").unwrap(), b"");
        assert!(dechunk(b"zz\r\nab\r\n")
            .unwrap_err()
            .contains("bad chunk size"));
        assert!(dechunk(b"3\r\nab").unwrap_err().contains("truncated chunk"));
        assert!(dechunk(b"3").unwrap_err().contains("truncated chunk size"));
    }

    #[test]
    fn url_encoding() {
        assert_eq!(
            url_encode(r#"up{job="a b"} > 0"#),
            "up%7Bjob%3D%22a%20b%22%7D%20%3E%200"
        );
        assert_eq!(url_encode("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn request_against_a_local_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") || !req.ends_with(b"body") {
                let n = s.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
            }
            s.write_all(
                b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            )
            .unwrap();
            String::from_utf8(req).unwrap()
        });
        let got = http("POST", &addr, "/x?y=1", &[("X-Test", "1")], b"body").unwrap();
        assert_eq!(got, (201, "ok".to_string()));
        let req = server.join().unwrap();
        assert!(req.starts_with("POST /x?y=1 HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("\r\nContent-Length: 4\r\n"), "{req}");
        assert!(req.contains("\r\nX-Test: 1\r\n"), "{req}");
    }
}
