//! Splitting a request URL into what the client needs: where to connect, what to send as
//! `Host` and request target, and a copy for messages with the password hidden. Pure.

use std::net::Ipv6Addr;

/// A parsed `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub https: bool,
    /// For DNS, connecting and TLS: lower case, IPv6 literals without brackets.
    pub host: String,
    /// The URL's port, or 80/443.
    pub port: u16,
    /// The `Host` header: the authority as written, without user info.
    pub host_header: String,
    /// The request target: path and query, at least `/`; the fragment is dropped.
    pub path_and_query: String,
    /// `user:password@` from the URL, percent-decoded, for basic auth.
    pub credentials: Option<(String, String)>,
}

impl Target {
    /// `host:port` for messages, IPv6 in brackets.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses `url`. Errors say what is wrong, without repeating the URL (the caller names it).
pub(crate) fn parse(url: &str) -> Result<Target, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("not an http:// or https:// URL")?;
    let https = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        return Err(format!(
            "scheme {scheme:?} is not supported: use http:// or https://"
        ));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let tail = tail.split('#').next().unwrap_or("");
    let path_and_query = match tail.chars().next() {
        None => "/".to_string(),
        Some('?') => format!("/{tail}"),
        Some(_) => tail.to_string(),
    };
    hyper::http::uri::PathAndQuery::try_from(path_and_query.as_str())
        .map_err(|e| format!("path {path_and_query:?}: {e}"))?;

    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => (Some(credentials(userinfo)), hp),
        None => (None, authority),
    };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (ip, after) = bracketed
            .split_once(']')
            .ok_or("IPv6 address without a closing ']'")?;
        ip.parse::<Ipv6Addr>()
            .map_err(|_| format!("{ip:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("unexpected {p:?} after the IPv6 address"))?,
            ),
        };
        (ip.to_ascii_lowercase(), port)
    } else {
        match host_port.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h.to_ascii_lowercase(), Some(p)),
            Some(_) => return Err("an IPv6 address must be in brackets, e.g. [::1]".into()),
            None => (host_port.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%')))
    {
        return Err(format!("host {host:?} has a {bad:?}"));
    }
    let default_port = if https { 443 } else { 80 };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port {p:?} is not a number from 1 to 65535"))?,
    };
    Ok(Target {
        https,
        host,
        port,
        host_header: host_port.to_string(),
        path_and_query,
        credentials,
    })
}

/// `url` with the password of `user:password@` replaced by `xxxxx`, for messages and logs.
/// Works on any string, also one that [`parse`] rejects.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') { ":xxxxx" } else { "" };
            format!("{scheme}://{user}{hidden}@{hp}{tail}")
        }
        None => url.to_string(),
    }
}

/// A URL's `user:password` (without the `@`), decoded, for basic auth: the password is
/// empty when there is no `:`.
pub fn credentials(userinfo: &str) -> (String, String) {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    (percent_decode(user), percent_decode(password))
}

/// `%XX` escapes to bytes; anything that is not a valid escape stays as it is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str) -> Target {
        parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn hosts_ports_and_targets() {
        let a = t("https://Loki.example:3100/loki/api/v1/push?x=1#frag");
        assert!(a.https);
        assert_eq!((a.host.as_str(), a.port), ("loki.example", 3100));
        assert_eq!(a.host_header, "Loki.example:3100");
        assert_eq!(a.path_and_query, "/loki/api/v1/push?x=1");
        assert_eq!(a.credentials, None);
        assert_eq!(a.host_port(), "loki.example:3100");

        let b = t("http://10.0.0.1");
        assert_eq!(
            (b.https, b.port, b.path_and_query.as_str()),
            (false, 80, "/")
        );
        assert_eq!(b.host_header, "10.0.0.1");
        assert_eq!(t("HTTPS://h?q").path_and_query, "/?q");
        assert_eq!(t("https://h").port, 443);
        assert_eq!(t("http://h:/x").port, 80);

        let v6 = t("https://[::1]:10250/pods");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 10250));
        assert_eq!(v6.host_header, "[::1]:10250");
        assert_eq!(v6.host_port(), "[::1]:10250");
        assert_eq!(t("http://[FE80::1]/").port, 80);
        assert_eq!(t("http://[FE80::1]/").host, "fe80::1");
    }

    #[test]
    fn credentials_are_decoded_and_hidden_in_messages() {
        let a = t("https://us%40er:p%3Ass@host/x");
        assert_eq!(a.credentials, Some(("us@er".into(), "p:ss".into())));
        assert_eq!(a.host_header, "host");
        assert_eq!(
            redact("https://us%40er:p%3Ass@host/x?a@b"),
            "https://us%40er:xxxxx@host/x?a@b"
        );
        assert_eq!(redact("http://token@h/"), "http://token@h/");
        assert_eq!(redact("http://h/a@b"), "http://h/a@b");
        assert_eq!(redact("not a url"), "not a url");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }

    #[test]
    fn rejects() {
        let e = |url: &str| parse(url).unwrap_err();
        assert_eq!(
            e("ftp://h/"),
            "scheme \"ftp\" is not supported: use http:// or https://"
        );
        assert_eq!(e("127.0.0.1:10250/pods"), "not an http:// or https:// URL");
        assert_eq!(e("https:///pods"), "no host");
        assert_eq!(e("http://:80/"), "no host");
        assert_eq!(
            e("http://::1/"),
            "an IPv6 address must be in brackets, e.g. [::1]"
        );
        assert_eq!(e("http://[::1/"), "IPv6 address without a closing ']'");
        assert_eq!(e("http://[zz]/"), "\"zz\" is not an IPv6 address");
        assert_eq!(
            e("http://[::1]x/"),
            "unexpected \"x\" after the IPv6 address"
        );
        assert_eq!(
            e("http://h:99999/"),
            "port \"99999\" is not a number from 1 to 65535"
        );
        assert_eq!(
            e("http://h:0/"),
            "port \"0\" is not a number from 1 to 65535"
        );
        assert_eq!(e("http://h o/"), "host \"h o\" has a ' '");
        assert!(
            e("http://h/a b").starts_with("path \"/a b\": "),
            "{}",
            e("http://h/a b")
        );
    }
}
