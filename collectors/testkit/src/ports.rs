//! Loopback ports for servers a test starts.

use std::net::TcpListener;

/// A port on 127.0.0.1 that was free a moment ago (another process may take it before the
/// server binds it; where the server can report its port, bind port 0 instead).
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: binding 127.0.0.1:0: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_free_port_can_be_bound() {
        let port = super::free_port().unwrap();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
