//! The agent's one HTTP/1.1 client, shared by the modules that talk to servers: the logs
//! module pushing to Loki, pod metadata asking the kubelet, and later the probe module.
//!
//! A [`Client`] is a cheap handle on one keep-alive connection pool (hyper's HTTP/1.1
//! connections, rustls for HTTPS). A [`Request`] says everything about one call: method,
//! URL, headers, body, a timeout that bounds the whole exchange, a response size limit and
//! the TLS setup. The answer is a complete [`Response`] (any status), or an [`Error`] whose
//! variant tells a caller whether to retry ([`Error::is_retryable`]) and whose message names
//! the method, the URL and the step that failed.
//!
//! TLS settings come from a [`TlsConfig`] (Prometheus' `tls_config` fields: `ca_file`,
//! `cert_file`/`key_file` for mutual TLS, `server_name`, `insecure_skip_verify`,
//! `min_version`), built once into a [`Tls`] that requests share.
//!
//! ```no_run
//! # async fn f() -> Result<(), eos_http::Error> {
//! use eos_http::{header, Client, Request, TlsConfig};
//! let client = Client::new("eos-agent/0.1.0");
//! let tls = TlsConfig { ca_file: "/etc/loki/ca.pem".into(), ..TlsConfig::default() }
//!     .build()
//!     .map_err(eos_http::Error::Config)?;
//! let mut req = Request::post("https://loki:3100/loki/api/v1/push", vec![0u8; 16])
//!     .header(header::CONTENT_TYPE, header::HeaderValue::from_static("application/x-protobuf"))
//!     .header(header::AUTHORIZATION, eos_http::basic_auth("tenant", "secret"));
//! req.tls = Some(tls);
//! let resp = client.send(req).await?;
//! if !resp.is_success() {
//!     eprintln!("Loki said {}: {}", resp.status, resp.body_snippet(200));
//! }
//! # Ok(()) }
//! ```
//!
//! What lives where:
//! - `client.rs`: [`Client`], [`Request`], [`Response`]: building the request head, the
//!   timeout, the body limit, and sending again once when a pooled connection was stale.
//! - `pool.rs`: idle connections by scheme, host, port and TLS setup; [`PoolStats`].
//! - `conn.rs`: opening one connection: DNS, TCP, TLS handshake, HTTP/1.1 handshake.
//! - `tls.rs`: [`TlsConfig`] and building it into a rustls setup ([`Tls`]).
//! - `url.rs`: splitting a URL (pure), hiding its password in messages.
//! - `trace.rs`: one-shot timed exchanges for probes ([`Client::trace`]: a new connection to
//!   a given address, phase times, TLS details, body read separately) and a TLS handshake on
//!   a stream the caller has ([`tls_connect`]).
//! - `auth.rs`: `Authorization` values ([`basic_auth`], [`bearer_auth`]).
//! - `error.rs`: [`Error`].

mod auth;
mod client;
mod conn;
mod error;
mod pool;
mod tls;
mod trace;
mod url;

pub use auth::{basic_auth, bearer_auth};
pub use client::{Client, Request, Response};
pub use error::Error;
pub use hyper::{header, HeaderMap, Method};
pub use pool::PoolStats;
pub use tls::{Tls, TlsConfig};
pub use trace::{tls_connect, BodyRead, Timings, TlsInfo, TlsStream, TraceRequest, TraceResponse};
pub use url::credentials as url_credentials;
