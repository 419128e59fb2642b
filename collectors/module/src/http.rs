//! The small HTTP surface modules see: a request with a parsed query, headers and a deadline,
//! and a response with a status, a content type chosen at run time, headers and a body. The
//! agent converts to and from hyper, so module crates need no HTTP stack.

use std::borrow::Cow;
use std::time::Instant;

/// A request routed to a module.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// For `/debug/<module>/x` this is `/x`; for a module's own top-level path, the full path.
    pub path: String,
    /// Decoded query parameters, in order; a name may repeat.
    pub query: Vec<(String, String)>,
    /// Header names are lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the answer must be sent: Prometheus' `X-Prometheus-Scrape-Timeout-Seconds` minus
    /// the configured offset (as for `/metrics`), or the default scrape timeout.
    pub deadline: Instant,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            method: "GET".into(),
            path: "/".into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
            deadline: Instant::now() + std::time::Duration::from_secs(10),
        }
    }
}

impl Request {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A module's answer.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// E.g. `text/plain; version=0.0.4` or OpenMetrics, as the request's `Accept` asked.
    pub content_type: Cow<'static, str>,
    /// Extra response headers (names in lower case).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with any content type.
    pub fn new(status: u16, content_type: impl Into<Cow<'static, str>>, body: Vec<u8>) -> Self {
        Response {
            status,
            content_type: content_type.into(),
            headers: Vec::new(),
            body,
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    pub fn json(body: impl Into<String>) -> Self {
        Response::new(200, "application/json", body.into().into_bytes())
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn not_found() -> Self {
        Response::text(404, "not found\n")
    }
}

/// Escapes text for HTML and SVG (element content and quoted attributes): the agent's status
/// page and modules' `status_html` fragments use it for every piece of text they put in.
pub fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}
