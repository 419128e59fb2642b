//! The small HTTP surface modules see: a request with a parsed query and a response body.
//! The agent converts to and from hyper, so module crates need no HTTP stack.

/// A request routed to a module.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    /// For `/debug/<module>/x` this is `/x`; for a module's own top-level path, the full path.
    pub path: String,
    /// Decoded query parameters, in order; a name may repeat.
    pub query: Vec<(String, String)>,
    /// Header names are lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
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
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }

    pub fn json(body: impl Into<String>) -> Self {
        Response {
            status: 200,
            content_type: "application/json",
            body: body.into().into_bytes(),
        }
    }

    pub fn not_found() -> Self {
        Response::text(404, "not found\n")
    }
}
