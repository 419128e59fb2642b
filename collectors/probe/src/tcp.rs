//! The tcp prober: blackbox_exporter's `ProbeTCP`, with its metric names, help texts, labels
//! and semantics.
//!
//! The target is `host:port` (an IPv6 address in brackets). The host is resolved with the
//! preferred IP protocol and checked against the allow list; the connection is made from
//! `source_ip_address` if set, with TLS from the start when `tls: true`. Then each
//! `query_response` step in order:
//!
//! - `expect`: lines are read (split at `\n`, a `\r` before it dropped, at most 64 KiB, as
//!   Go's `bufio.Scanner`) until one matches; none before the end of the stream fails the
//!   probe with `probe_failed_due_to_regex` 1. The match's groups fill `${1}`, `$name` and
//!   `${name}` in the step's `send` and `labels` values; `labels` are written as
//!   `probe_expect_info{<name>="<value>",...} 1`.
//! - `send`: written with `\n` after it.
//! - `starttls`: a TLS handshake on the connection (bytes read but not yet consumed are
//!   dropped, as upstream), then the conversation goes on over TLS.
//!
//! TLS metrics (`probe_ssl_*`, `probe_tls_version_info`; not `probe_tls_cipher_info`, which
//! upstream's tcp prober does not have) come from [`crate::tls_info`]; the TLS server name is
//! `tls_config.server_name` (the `hostname` parameter fills it) or the target's host.
//!
//! An eos extension: `probe_tcp_connect_duration_seconds`, the time the TCP connect took
//! (blackbox_exporter has no phase times for tcp). Written when the connection was made.
//!
//! Where eos departs: the port must be a number (Go also takes service names such as
//! `smtp`); a `labels` name that is not a valid label name is skipped with an error logged
//! (Go panics); several steps with `labels` add series to one `probe_expect_info` (Go
//! panics on the second).

use crate::prober::Probe;
use crate::tls_info;
use eos_http::Tls;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const REGEX: &str = "probe_failed_due_to_regex";
const REGEX_HELP: &str = "Indicates if probe failed due to regex";
const EXPECT_INFO: &str = "probe_expect_info";
const EXPECT_INFO_HELP: &str = "Explicit content matched";
/// eos extension.
pub const CONNECT_DURATION: &str = "probe_tcp_connect_duration_seconds";
const CONNECT_DURATION_HELP: &str =
    "Returns the time taken to establish the TCP connection in seconds (eos extension)";

/// Go's `bufio.MaxScanTokenSize`: a longer line is an error.
const MAX_LINE: usize = 64 * 1024;
/// The prober stops this much before the probe's deadline, to write its metrics.
const MARGIN: Duration = Duration::from_millis(5);

/// A connection, plain or TLS (or TLS inside TLS).
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Probes `p.target`.
pub async fn probe(p: &mut Probe<'_>) -> bool {
    let cfg = &p.module.tcp;
    let deadline = p
        .deadline
        .checked_sub(MARGIN)
        .unwrap_or(p.deadline)
        .max(Instant::now());
    p.out.gauge(REGEX, REGEX_HELP, 0.0);

    let (host, port) = match split_host_port(p.target) {
        Ok(hp) => hp,
        Err(e) => {
            p.log
                .error("Error splitting target address and port", &[("err", &e)]);
            p.log.error("Error dialing TCP", &[("err", &e)]);
            return false;
        }
    };
    let ip = match p.resolve(&host, cfg).await {
        Ok(ip) => ip,
        Err(None) => return false,
        Err(Some(e)) => {
            p.log.error("Error dialing TCP", &[("err", &e)]);
            return false;
        }
    };
    let source = match p.source_address(&cfg.source_ip_address, "Using local address") {
        Ok(source) => source,
        Err(e) => {
            p.log.error("Error dialing TCP", &[("err", &e)]);
            return false;
        }
    };
    let addr = SocketAddr::new(ip, port);
    p.log.info(
        if cfg.tls {
            "Dialing TCP with TLS"
        } else {
            "Dialing TCP without TLS"
        },
        &[],
    );
    let start = Instant::now();
    let tcp = match tokio::time::timeout_at(deadline.into(), connect(addr, source)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            p.log.error("Error dialing TCP", &[("err", &e)]);
            return false;
        }
        Err(_) => {
            let e = format!("dial tcp {addr}: i/o timeout");
            p.log.error("Error dialing TCP", &[("err", &e)]);
            return false;
        }
    };
    p.out.gauge(
        CONNECT_DURATION,
        CONNECT_DURATION_HELP,
        start.elapsed().as_secs_f64(),
    );
    let name = if cfg.tls_config.server_name.is_empty() {
        host.clone()
    } else {
        cfg.tls_config.server_name.clone()
    };
    let mut tls_setup: Option<Tls> = None;
    let io: Box<dyn Io> = if cfg.tls {
        let tls = match cfg.tls_config.build() {
            Ok(t) => t,
            Err(e) => {
                p.log
                    .error("Error creating TLS configuration", &[("err", &e)]);
                p.log.error("Error dialing TCP", &[("err", &e)]);
                return false;
            }
        };
        let shaken = tokio::time::timeout_at(
            deadline.into(),
            eos_http::tls_connect(tcp, &tls, &name, &addr.to_string()),
        )
        .await;
        match shaken {
            Ok(Ok((stream, info))) => {
                p.log.info("Successfully dialed", &[]);
                tls_info::record(p.out, &info, tls.trust_anchors(), false);
                tls_setup = Some(tls);
                Box::new(stream)
            }
            Ok(Err(e)) => {
                p.log.error("Error dialing TCP", &[("err", &e)]);
                return false;
            }
            Err(_) => {
                let e = format!("TLS handshake with {addr}: i/o timeout");
                p.log.error("Error dialing TCP", &[("err", &e)]);
                return false;
            }
        }
    } else {
        p.log.info("Successfully dialed", &[]);
        Box::new(tcp)
    };

    let mut lines = Lines::new(io);
    for (i, qr) in cfg.query_response.iter().enumerate() {
        p.log
            .debug("Processing query response entry", &[("entry_number", &i)]);
        let mut send = qr.send.as_bytes().to_vec();
        if !qr.expect.is_empty() {
            let re = match regex::bytes::Regex::new(&qr.expect) {
                Ok(re) => re,
                Err(e) => {
                    p.log.error(
                        "Invalid regular expression",
                        &[("regexp", &qr.expect), ("err", &e)],
                    );
                    return false;
                }
            };
            let mut matched = None;
            loop {
                match lines.next_line(deadline).await {
                    Ok(Some(line)) => {
                        let text = String::from_utf8_lossy(&line).into_owned();
                        p.log.debug("Read line", &[("line", &text)]);
                        if re.is_match(&line) {
                            p.log.debug(
                                "Regexp matched",
                                &[("regexp", &qr.expect), ("line", &text)],
                            );
                            matched = Some(line);
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        p.log.error("Error reading from connection", &[("err", &e)]);
                        return false;
                    }
                }
            }
            let Some(line) = matched else {
                p.out.gauge(REGEX, REGEX_HELP, 1.0);
                p.log.error(
                    "Regexp did not match",
                    &[("regexp", &qr.expect), ("line", &"")],
                );
                return false;
            };
            p.out.gauge(REGEX, REGEX_HELP, 0.0);
            if let Some(caps) = re.captures(&line) {
                let mut expanded = Vec::new();
                caps.expand(qr.send.as_bytes(), &mut expanded);
                send = expanded;
                if !qr.labels.is_empty() {
                    let mut labels: Vec<(&'static str, String)> = Vec::new();
                    for l in &qr.labels {
                        if !valid_label_name(&l.name) {
                            p.log.error(
                                "Invalid label name in query_response labels",
                                &[("name", &l.name)],
                            );
                            continue;
                        }
                        let mut v = Vec::new();
                        caps.expand(l.value.as_bytes(), &mut v);
                        labels.push((intern(&l.name), String::from_utf8_lossy(&v).into_owned()));
                    }
                    let refs: Vec<(&'static str, &str)> =
                        labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    p.out.gauge_with(EXPECT_INFO, EXPECT_INFO_HELP, &refs, 1.0);
                }
            }
        }
        if !send.is_empty() {
            p.log
                .debug("Sending line", &[("line", &String::from_utf8_lossy(&send))]);
            send.push(b'\n');
            let wrote = tokio::time::timeout_at(deadline.into(), async {
                lines.io.write_all(&send).await?;
                lines.io.flush().await
            })
            .await;
            let err = match wrote {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("i/o timeout".to_string()),
            };
            if let Some(e) = err {
                p.log.error("Failed to send", &[("err", &e)]);
                return false;
            }
        }
        if qr.starttls {
            let tls = match &tls_setup {
                Some(t) => t.clone(),
                None => match cfg.tls_config.build() {
                    Ok(t) => t,
                    Err(e) => {
                        p.log
                            .error("Failed to create TLS configuration", &[("err", &e)]);
                        return false;
                    }
                },
            };
            let io = lines.into_inner();
            let shaken = tokio::time::timeout_at(
                deadline.into(),
                eos_http::tls_connect(io, &tls, &name, &addr.to_string()),
            )
            .await;
            let (stream, info) = match shaken {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    p.log.error("TLS Handshake (client) failed", &[("err", &e)]);
                    return false;
                }
                Err(_) => {
                    p.log
                        .error("TLS Handshake (client) failed", &[("err", &"i/o timeout")]);
                    return false;
                }
            };
            p.log.debug("TLS Handshake (client) succeeded.", &[]);
            tls_info::record(p.out, &info, tls.trust_anchors(), false);
            tls_setup = Some(tls);
            lines = Lines::new(Box::new(stream));
        }
    }
    true
}

/// Connects, from `source` if given.
async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> Result<tokio::net::TcpStream, String> {
    let fail = |e: std::io::Error| format!("dial tcp {addr}: {e}");
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(fail)?;
    if let Some(src) = source {
        sock.bind(SocketAddr::new(src, 0)).map_err(fail)?;
    }
    let tcp = sock.connect(addr).await.map_err(fail)?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Go's `net.SplitHostPort`, and a numeric port.
fn split_host_port(hp: &str) -> Result<(String, u16), String> {
    let missing = || format!("address {hp}: missing port in address");
    let (host, port) = if let Some(rest) = hp.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {hp}: missing ']' in address"))?;
        let port = after.strip_prefix(':').ok_or_else(|| {
            if after.is_empty() {
                missing()
            } else {
                format!("address {hp}: unexpected {after:?} after the address")
            }
        })?;
        (host, port)
    } else {
        let (host, port) = hp.rsplit_once(':').ok_or_else(missing)?;
        if host.contains(':') {
            return Err(format!("address {hp}: too many colons in address"));
        }
        (host, port)
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("address {hp}: port {port:?} is not a number from 0 to 65535"))?;
    Ok((host.to_string(), port))
}

/// A Prometheus label name.
fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !n.starts_with("__")
}

/// Label names from the configuration, kept for the life of the process (the registry
/// takes `&'static str` names; configured names are few).
fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// Lines read from a connection as Go's `bufio.Scanner` splits them. The end of the stream
/// and an error are sticky.
struct Lines {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    eof: bool,
    err: Option<String>,
}

impl Lines {
    fn new(io: Box<dyn Io>) -> Lines {
        Lines {
            io,
            buf: Vec::new(),
            eof: false,
            err: None,
        }
    }

    /// The connection; bytes read but not yet returned as lines are dropped.
    fn into_inner(self) -> Box<dyn Io> {
        self.io
    }

    /// The next line without its `\n` (and a `\r` before it); `None` at the end.
    async fn next_line(&mut self, deadline: Instant) -> Result<Option<Vec<u8>>, String> {
        loop {
            if let Some(e) = &self.err {
                return Err(e.clone());
            }
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let mut line = std::mem::take(&mut self.buf);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(line));
            }
            if self.buf.len() >= MAX_LINE {
                self.err = Some("bufio.Scanner: token too long".into());
                continue;
            }
            let mut chunk = [0u8; 4096];
            let room = (MAX_LINE - self.buf.len()).min(chunk.len());
            match tokio::time::timeout_at(deadline.into(), self.io.read(&mut chunk[..room])).await {
                Ok(Ok(0)) => self.eof = true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => self.err = Some(e.to_string()),
                Err(_) => self.err = Some("i/o timeout".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allow::Allow;
    use crate::config::{AllowConfig, BlackboxModule, QueryLabel, QueryResponse, TcpProbe};
    use crate::tls_info::testing::{self, run, Pki};
    use std::sync::Arc;
    use tokio::net::TcpListener;

    const T: Duration = Duration::from_secs(10);

    fn module(f: impl FnOnce(&mut TcpProbe)) -> BlackboxModule {
        let mut m = BlackboxModule {
            prober: "tcp".into(),
            ..BlackboxModule::default()
        };
        m.tcp.preferred_ip_protocol = "ip4".into();
        f(&mut m.tcp);
        m
    }

    fn step(expect: &str, send: &str) -> QueryResponse {
        QueryResponse {
            expect: expect.into(),
            send: send.into(),
            ..QueryResponse::default()
        }
    }

    /// A server running `talk` on its one connection; what it read comes back from the task.
    async fn server<F, Fut>(talk: F) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>)
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Vec<u8>> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            talk(tcp).await
        });
        (addr, task)
    }

    /// Reads until `\n`.
    async fn read_line<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while s.read(&mut b).await.unwrap_or(0) == 1 {
            out.push(b[0]);
            if b[0] == b'\n' {
                break;
            }
        }
        out
    }

    #[tokio::test]
    async fn expect_send_with_captures_and_expect_info() {
        let (addr, task) = server(|mut s| async move {
            s.write_all(b"220 mail.test ESMTP ready\r\n").await.unwrap();
            let got = read_line(&mut s).await;
            s.write_all(b"250-mail.test\r\n250 OK\r\n").await.unwrap();
            got
        })
        .await;
        let m = module(|t| {
            t.source_ip_address = "127.0.0.1".into();
            t.query_response = vec![
                QueryResponse {
                    labels: vec![
                        QueryLabel {
                            name: "host".into(),
                            value: "${1}".into(),
                        },
                        QueryLabel {
                            name: "banner".into(),
                            value: "$2!".into(),
                        },
                    ],
                    ..step("^220 ([^ ]+) (ESMTP)", "EHLO ${1}")
                },
                step("^250 OK$", ""),
            ];
        });
        let r = run(&m, &addr.to_string(), T, Allow::all()).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(task.await.unwrap(), b"EHLO mail.test\n");
        assert_eq!(r.v(REGEX, &[]), 0.0);
        assert_eq!(
            r.v(EXPECT_INFO, &[("banner", "ESMTP!"), ("host", "mail.test")]),
            1.0
        );
        assert!(r.v(CONNECT_DURATION, &[]) >= 0.0);
        assert_eq!(r.v("probe_ip_protocol", &[]), 4.0);
        assert!(
            r.out
                .text()
                .contains("probe_expect_info{banner=\"ESMTP!\",host=\"mail.test\"} 1\n"),
            "{}",
            r.out.text()
        );
        for line in [
            "msg=\"Using local address\" srcIP=127.0.0.1",
            "msg=\"Dialing TCP without TLS\"",
            "msg=\"Successfully dialed\"",
            "level=debug module=test target=127.0.0.1:",
            "msg=\"Read line\" line=\"220 mail.test ESMTP ready\"",
            "msg=\"Sending line\" line=\"EHLO mail.test\"",
        ] {
            assert!(r.log.contains(line), "{line} not in\n{}", r.log);
        }
    }

    #[tokio::test]
    async fn no_match_before_the_end_fails_on_the_regex() {
        let (addr, _task) = server(|mut s| async move {
            s.write_all(b"SSH-2.0-OpenSSH_9.6\r\nlast line without newline")
                .await
                .unwrap();
            Vec::new()
        })
        .await;
        let m = module(|t| t.query_response = vec![step("^220", "")]);
        let r = run(&m, &addr.to_string(), T, Allow::all()).await;
        assert!(!r.success);
        assert_eq!(r.v(REGEX, &[]), 1.0);
        assert!(
            r.log.contains("msg=\"Regexp did not match\" regexp=^220"),
            "{}",
            r.log
        );
        assert!(
            r.log.contains("line=\"last line without newline\""),
            "{}",
            r.log
        );
        assert!(!r.out.names().contains(&EXPECT_INFO));
    }

    #[tokio::test]
    async fn starttls_upgrades_mid_conversation() {
        let dir = eos_testkit::TempDir::new("probe-tcp-starttls");
        let pki = Pki::new();
        let cfg = pki.server();
        let (addr, task) = server(move |mut s| async move {
            s.write_all(b"220 ready\r\n").await.unwrap();
            let got = read_line(&mut s).await;
            s.write_all(b"220 go ahead\r\n").await.unwrap();
            let mut tls = tokio_rustls::TlsAcceptor::from(cfg)
                .accept(s)
                .await
                .unwrap();
            tls.write_all(b"250 secure\r\n").await.unwrap();
            let _ = read_line(&mut tls).await;
            got
        })
        .await;
        let ca = pki.ca_file(&dir);
        let m = module(|t| {
            t.tls_config.ca_file = ca;
            t.tls_config.server_name = "probe.test".into();
            t.query_response = vec![
                step("^220 ready", "STARTTLS"),
                QueryResponse {
                    starttls: true,
                    ..step("^220 go ahead", "")
                },
                step("^250 secure", "QUIT"),
            ];
        });
        let r = run(&m, &addr.to_string(), T, Allow::all()).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(task.await.unwrap(), b"STARTTLS\n");
        assert_eq!(
            r.v(tls_info::EARLIEST_EXPIRY, &[]),
            testing::STRAY_NOT_AFTER as f64
        );
        assert_eq!(
            r.v(tls_info::LAST_CHAIN_EXPIRY, &[]),
            testing::ROOT_NOT_AFTER as f64
        );
        assert_eq!(r.v(tls_info::VERSION_INFO, &[("version", "TLS 1.3")]), 1.0);
        assert!(
            !r.out.names().contains(&tls_info::CIPHER_INFO),
            "not for tcp"
        );
        assert!(
            r.log.contains("TLS Handshake (client) succeeded."),
            "{}",
            r.log
        );
    }

    #[tokio::test]
    async fn tls_from_the_start_and_its_failures() {
        let dir = eos_testkit::TempDir::new("probe-tcp-tls");
        let pki = Pki::new();
        let accept = |cfg: Arc<rustls::ServerConfig>| {
            move |s: tokio::net::TcpStream| async move {
                if let Ok(mut tls) = tokio_rustls::TlsAcceptor::from(cfg).accept(s).await {
                    let _ = tls.write_all(b"+OK POP3 ready\r\n").await;
                    let _ = tls.flush().await;
                    let _ = read_line(&mut tls).await;
                }
                Vec::new()
            }
        };
        let ca = pki.ca_file(&dir);
        let m = module(|t| {
            t.tls = true;
            t.tls_config.ca_file = ca.clone();
            t.query_response = vec![step("^\\+OK", "")];
        });
        // The server name defaults to the target's host, here an address in the SANs.
        let (addr, _t) = server(accept(pki.server())).await;
        let r = run(&m, &addr.to_string(), T, Allow::all()).await;
        assert!(r.success, "{}", r.log);
        assert!(r.log.contains("msg=\"Dialing TCP with TLS\""), "{}", r.log);
        let leaf = tls_info::Leaf::of(&pki.chain[0]);
        assert_eq!(
            r.v(
                tls_info::LAST_CHAIN_INFO,
                &[
                    ("fingerprint_sha256", &leaf.fingerprint_sha256),
                    ("subject", &leaf.subject),
                    ("issuer", &leaf.issuer),
                    ("subjectalternative", "probe.test"),
                    ("serialnumber", "0abcde"),
                ]
            ),
            1.0
        );

        // Another CA: the handshake fails, no TLS metrics.
        let other = Pki::new();
        let (addr, _t) = server(accept(other.server())).await;
        let r = run(&m, &addr.to_string(), T, Allow::all()).await;
        assert!(!r.success);
        assert!(r.log.contains("msg=\"Error dialing TCP\""), "{}", r.log);
        assert!(!r.out.names().contains(&tls_info::EARLIEST_EXPIRY));
        // A CA file that is not there.
        let mut broken = m.clone();
        broken.tcp.tls_config.ca_file = dir.join("missing.pem");
        let (addr, _t) = server(accept(pki.server())).await;
        let r = run(&broken, &addr.to_string(), T, Allow::all()).await;
        assert!(!r.success);
        assert!(
            r.log.contains("Error creating TLS configuration"),
            "{}",
            r.log
        );
    }

    #[tokio::test]
    async fn failures_are_probe_failures() {
        // Silent server: the read is cut by the deadline.
        let (addr, _t) = server(|mut s| async move {
            let _ = read_line(&mut s).await;
            Vec::new()
        })
        .await;
        let m = module(|t| t.query_response = vec![step("^220", "")]);
        let r = run(
            &m,
            &addr.to_string(),
            Duration::from_millis(300),
            Allow::all(),
        )
        .await;
        assert!(!r.success);
        assert!(
            r.log
                .contains("msg=\"Error reading from connection\" err=\"i/o timeout\""),
            "{}",
            r.log
        );
        assert_eq!(r.v(REGEX, &[]), 0.0);

        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = closed.local_addr().unwrap();
        drop(closed);
        let r = run(&module(|_| {}), &refused.to_string(), T, Allow::all()).await;
        assert!(!r.success);
        assert!(r.log.contains("msg=\"Error dialing TCP\""), "{}", r.log);
        assert!(!r.out.names().contains(&CONNECT_DURATION));

        for bad in ["127.0.0.1", "no-such-host.invalid:25", "a:b:c", "h:port"] {
            let r = run(&module(|_| {}), bad, T, Allow::all()).await;
            assert!(!r.success, "{bad}");
            assert!(r.log.contains("Error dialing TCP"), "{bad}: {}", r.log);
        }
        let r = run(
            &module(|t| t.source_ip_address = "nope".into()),
            &refused.to_string(),
            T,
            Allow::all(),
        )
        .await;
        assert!(
            r.log.contains("Error parsing source ip address"),
            "{}",
            r.log
        );

        let deny = Allow::new(&AllowConfig::default()).unwrap();
        let r = run(&module(|_| {}), "169.254.169.254:80", T, deny).await;
        assert!(!r.success && r.denied.is_some());
    }

    #[test]
    fn host_and_port() {
        assert_eq!(split_host_port("a.test:25"), Ok(("a.test".into(), 25)));
        assert_eq!(split_host_port("[::1]:443"), Ok(("::1".into(), 443)));
        assert_eq!(
            split_host_port("a.test"),
            Err("address a.test: missing port in address".into())
        );
        assert_eq!(
            split_host_port("::1:443"),
            Err("address ::1:443: too many colons in address".into())
        );
        assert!(split_host_port("[::1]").is_err());
        assert!(split_host_port("[::1]x:1").is_err());
        assert!(split_host_port("h:70000").is_err());
        assert!(valid_label_name("ssh_version") && valid_label_name("_x"));
        assert!(!valid_label_name("1x") && !valid_label_name("a-b") && !valid_label_name("__x"));
        assert!(std::ptr::eq(intern("same"), intern("same")));
    }

    #[tokio::test]
    async fn lines_as_bufio_scanner_splits_them() {
        let (mut a, b) = tokio::io::duplex(1 << 20);
        let mut lines = Lines::new(Box::new(b));
        let deadline = Instant::now() + T;
        a.write_all(b"one\r\ntwo\n\nthree\r").await.unwrap();
        drop(a);
        let mut got = Vec::new();
        while let Some(l) = lines.next_line(deadline).await.unwrap() {
            got.push(String::from_utf8(l).unwrap());
        }
        assert_eq!(got, ["one", "two", "", "three"]);
        assert_eq!(
            lines.next_line(deadline).await,
            Ok(None),
            "the end is sticky"
        );

        let (mut a, b) = tokio::io::duplex(1 << 20);
        let mut lines = Lines::new(Box::new(b));
        a.write_all(&vec![b'x'; MAX_LINE + 10]).await.unwrap();
        let e = lines.next_line(deadline).await.unwrap_err();
        assert_eq!(e, "bufio.Scanner: token too long");
        assert_eq!(
            lines.next_line(deadline).await.unwrap_err(),
            e,
            "errors are sticky"
        );
    }
}
