//! Opening a connection: DNS, TCP, TLS and the HTTP/1.1 handshake, each failure named with
//! the step and `host:port`. The connection's task runs on its own; the returned sender is
//! what the pool keeps.

use crate::error::{chain, rustls_error, tls_detail, Error};
use crate::pool::Conn;
use crate::tls::Tls;
use crate::url::Target;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How far a request got, for the timeout message.
#[derive(Default)]
pub(crate) struct Stage(AtomicU8);

impl Stage {
    pub const CONNECTING: u8 = 0;
    pub const TLS: u8 = 1;
    pub const WAITING: u8 = 2;
    pub const BODY: u8 = 3;

    pub fn set(&self, stage: u8) {
        self.0.store(stage, Ordering::Relaxed);
    }

    /// What the request was doing, e.g. `waiting for the response`.
    pub fn describe(&self, target: &Target) -> String {
        match self.0.load(Ordering::Relaxed) {
            Self::CONNECTING => format!("connecting to {}", target.host_port()),
            Self::TLS => format!("in the TLS handshake with {}", target.host_port()),
            Self::WAITING => "waiting for the response".into(),
            _ => "reading the response body".into(),
        }
    }
}

/// Opens a connection to `target`, with TLS when `tls` is given. `what` (`GET <url>`)
/// starts every error message.
pub(crate) async fn open(
    target: &Target,
    tls: Option<&Tls>,
    what: &str,
    stage: &Stage,
) -> Result<Conn, Error> {
    stage.set(Stage::CONNECTING);
    let hp = target.host_port();
    let tcp = tcp_connect(target, what).await?;
    // Requests are small and written whole: don't wait for more to fill a segment.
    let _ = tcp.set_nodelay(true);
    let received = Arc::new(AtomicU64::new(0));
    let sender = match tls {
        None => handshake(Watched::new(tcp, Received(received.clone())), what).await?,
        Some(tls) => {
            stage.set(Stage::TLS);
            let name = match &tls.server_name {
                Some(n) => n.clone(),
                None => ServerName::try_from(target.host.clone()).map_err(|_| {
                    Error::Config(format!(
                        "{what}: {:?} cannot be checked against a certificate; set tls server_name",
                        target.host
                    ))
                })?,
            };
            let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| handshake_error(what, &hp, &e))?;
            handshake(Watched::new(stream, Received(received.clone())), what).await?
        }
    };
    Ok(Conn { sender, received })
}

async fn tcp_connect(target: &Target, what: &str) -> Result<TcpStream, Error> {
    let hp = target.host_port();
    let addrs: Vec<_> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| Error::Connect(format!("{what}: resolving {}: {e}", target.host)))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(Error::Connect(match last {
        None => format!("{what}: resolving {}: no address", target.host),
        Some((addr, e)) if addr.ip().to_string() == target.host => {
            format!("{what}: connecting to {hp}: {e}")
        }
        Some((addr, e)) => format!("{what}: connecting to {hp} ({addr}): {e}"),
    }))
}

/// A TLS handshake failure: `Tls` when rustls refused (certificate, alert, version), `Io`
/// when the connection broke under it.
pub(crate) fn handshake_error(what: &str, hp: &str, e: &io::Error) -> Error {
    match rustls_error(e) {
        Some(r) => Error::Tls(format!(
            "{what}: TLS handshake with {hp}: {}",
            tls_detail(r)
        )),
        None => Error::Io(format!("{what}: TLS handshake with {hp}: {}", chain(e))),
    }
}

async fn handshake<S>(
    io: Watched<S, Received>,
    what: &str,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| Error::Io(format!("{what}: starting HTTP/1.1: {}", chain(&e))))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("HTTP connection ended: {}", chain(&e));
        }
    });
    Ok(sender)
}

/// What a [`Watched`] stream tells about each read that returned bytes.
pub(crate) trait OnRead: Unpin {
    fn read(&mut self, n: usize);
}

/// A stream that reports the bytes read from it to an [`OnRead`]; writes pass through.
pub(crate) struct Watched<S, O> {
    io: S,
    on: O,
}

impl<S, O> Watched<S, O> {
    pub(crate) fn new(io: S, on: O) -> Self {
        Watched { io, on }
    }
}

impl<S: AsyncRead + Unpin, O: OnRead> AsyncRead for Watched<S, O> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            this.on.read(n);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin, O: OnRead> AsyncWrite for Watched<S, O> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Counts the bytes read (after TLS: response bytes only), for the stale-connection retry.
struct Received(Arc<AtomicU64>);

impl OnRead for Received {
    fn read(&mut self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}
