//! A small HTTP/1.1 site on a loopback port for probes to hit: each request is answered by a
//! function of its path (a page, a redirect, silence), one thread per connection, the
//! connection closed after the answer. The probe tests and `cargo xtask bench probe` use it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the site answers one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A status, extra headers and a body.
    Page(u16, Vec<(String, String)>, String),
    /// A 302 to this location.
    Redirect(String),
    /// Reads the request and never answers (until the site is dropped).
    Silence,
}

impl Reply {
    /// `200` with this body.
    pub fn ok(body: &str) -> Reply {
        Reply::Page(200, Vec::new(), body.to_string())
    }
}

type Route = dyn Fn(&str) -> Reply + Send + Sync;

/// A running site; stops on drop.
pub struct Site {
    addr: String,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
}

impl Site {
    /// Serves `route` on `127.0.0.1:<a port the kernel picks>`.
    pub fn start(route: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the test site");
        let addr = listener.local_addr().expect("local addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let route: Arc<Route> = Arc::new(route);
        let (s, r) = (stop.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (route, s, r) = (route.clone(), s.clone(), r.clone());
                std::thread::spawn(move || serve(conn, &*route, &s, &r));
            }
        });
        Site {
            addr,
            stop,
            requests,
        }
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://127.0.0.1:port<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests answered or being answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn serve(mut conn: TcpStream, route: &Route, stop: &AtomicBool, requests: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 << 10 {
            return;
        }
    };
    requests.fetch_add(1, Ordering::Relaxed);
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_string();
    let (status, headers, body) = match route(&path) {
        Reply::Page(s, h, b) => (s, h, b),
        Reply::Redirect(to) => (302, vec![("Location".to_string(), to)], String::new()),
        Reply::Silence => {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
    };
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    let _ = conn.write_all(out.as_bytes());
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_answer() {
        let site = Site::start(|p| match p {
            "/" => Reply::ok("hello"),
            "/r" => Reply::Redirect("/".into()),
            _ => Reply::Page(404, Vec::new(), "no".into()),
        });
        let (status, body) = crate::http::http("GET", site.addr(), "/", &[], b"").unwrap();
        assert_eq!((status, body.as_str()), (200, "hello"));
        let r = crate::http::request("GET", site.addr(), "/r", &[], b"").unwrap();
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some("/"));
        assert_eq!(
            crate::http::http("GET", site.addr(), "/x", &[], b"")
                .unwrap()
                .0,
            404
        );
        assert_eq!(site.requests(), 3);
    }
}
