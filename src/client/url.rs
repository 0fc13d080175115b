//! `ws://` and `wss://` URLs (RFC 6455 §3).

use crate::error::UrlError;
use std::fmt;

/// A parsed WebSocket URL.
///
/// ```
/// let url: syncws::WsUrl = "ws://[::1]:9001/chat?room=1".parse()?;
/// assert_eq!((url.host.as_str(), url.port, url.target.as_str()), ("::1", 9001, "/chat?room=1"));
/// assert_eq!(url.host_header(), "[::1]:9001");
/// # Ok::<(), syncws::error::UrlError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsUrl {
    /// `wss://`: TLS.
    pub secure: bool,
    /// The host name or IP address, without brackets.
    pub host: String,
    /// The port: given, or 80 for ws and 443 for wss.
    pub port: u16,
    /// The request target: the path (at least `/`) and the query.
    pub target: String,
    /// `user:password` from the URL, if any (sent as Basic authorization).
    pub userinfo: Option<String>,
}

impl WsUrl {
    /// Parses `ws://host[:port][/path][?query]` or the `wss://` form.
    pub fn parse(url: &str) -> Result<WsUrl, UrlError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| UrlError::UnsupportedScheme(String::new()))?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" => true,
            other => return Err(UrlError::UnsupportedScheme(other.to_owned())),
        };
        // RFC 6455 §3: "Fragment identifiers are meaningless in the context of WebSocket URIs and
        // MUST NOT be used on these URIs."
        if rest.contains('#') {
            return Err(UrlError::Fragment);
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        let target = match target {
            "" => "/".to_owned(),
            t if t.starts_with('?') => request_target(&format!("/{t}"))?,
            t => request_target(t)?,
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((user, hostport)) => (Some(user.to_owned()), hostport),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or(UrlError::InvalidPort)?,
            None if secure => 443,
            None => 80,
        };
        Ok(WsUrl {
            secure,
            host: host.to_owned(),
            port,
            target,
            userinfo,
        })
    }

    /// The `Host` header: the host (bracketed if IPv6) and the port if it is not the default.
    pub fn host_header(&self) -> String {
        let default = if self.secure { 443 } else { 80 };
        let host = self.bracketed_host();
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `host:port`, for connecting.
    pub fn socket_addr(&self) -> String {
        format!("{}:{}", self.bracketed_host(), self.port)
    }

    /// Resolves a redirect's `Location` against this URL: an absolute `ws`/`wss` URL, an
    /// `http`/`https` one (mapped to `ws`/`wss`), or a path on the same host.
    pub fn join(&self, location: &str) -> Result<WsUrl, UrlError> {
        let location = location.trim();
        let lower = location.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("http://").map(|_| &location[7..]) {
            return WsUrl::parse(&format!("ws://{rest}"));
        }
        if let Some(rest) = lower.strip_prefix("https://").map(|_| &location[8..]) {
            return WsUrl::parse(&format!("wss://{rest}"));
        }
        if location.contains("://") {
            return WsUrl::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            let scheme = if self.secure { "wss" } else { "ws" };
            return WsUrl::parse(&format!("{scheme}://{rest}"));
        }
        if location.contains('#') {
            return Err(UrlError::Fragment);
        }
        let target = if location.starts_with('/') {
            request_target(location)?
        } else {
            let path = self.target.split('?').next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            request_target(&format!("{dir}{location}"))?
        };
        Ok(WsUrl {
            target,
            ..self.clone()
        })
    }

    fn bracketed_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

/// The path and query as a request target of RFC 3986 characters (§3.3 path-abempty, §3.4
/// query): a character the grammar allows is kept, as is a `%XX` escape; any other printable
/// character (a space, `"`, `<`, non-ASCII...) is percent-encoded as its UTF-8 bytes, as browsers
/// do. A control character (CR, LF, NUL, ...) or a `%` without two hex digits is an error: it
/// has no meaning a server could agree on, and CR/LF would split the request line.
fn request_target(raw: &str) -> Result<String, UrlError> {
    // unreserved, sub-delims, ":", "@" (pchar), "/" and "?" (path separators and query).
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b);
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_control() {
            return Err(UrlError::InvalidTarget);
        }
        if b == b'%' {
            let escape = bytes.get(i + 1..i + 3);
            if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                return Err(UrlError::InvalidTarget);
            }
            out.push('%');
        } else if allowed(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

fn split_host_port(hostport: &str) -> Result<(&str, Option<&str>), UrlError> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(UrlError::InvalidHost)?;
        // RFC 3986 §3.2.2: brackets hold an IPv6 literal and nothing else.
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlError::InvalidHost);
        }
        return match after {
            "" => Ok((host, None)),
            a => a
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or(UrlError::InvalidHost),
        };
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (hostport, None),
    };
    // RFC 3986 §3.2.2 reg-name: unreserved, percent-encoded and sub-delims characters only, which
    // also keeps CR, LF and spaces out of the Host header.
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=".contains(c);
    if !host.chars().all(allowed) {
        return Err(UrlError::InvalidHost);
    }
    Ok((host, port))
}

impl std::str::FromStr for WsUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<WsUrl, UrlError> {
        WsUrl::parse(s)
    }
}

impl fmt::Display for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "wss" } else { "ws" };
        write!(f, "{scheme}://{}{}", self.host_header(), self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let u = WsUrl::parse("ws://example.com").unwrap();
        assert_eq!(
            (u.secure, u.host.as_str(), u.port, u.target.as_str()),
            (false, "example.com", 80, "/")
        );
        let u = WsUrl::parse("wss://example.com/a/b?x=1").unwrap();
        assert_eq!(
            (u.secure, u.port, u.target.as_str()),
            (true, 443, "/a/b?x=1")
        );
        let u = WsUrl::parse("ws://127.0.0.1:9001?q").unwrap();
        assert_eq!(
            (u.port, u.target.as_str(), u.host_header()),
            (9001, "/?q", "127.0.0.1:9001".into())
        );
        let u = WsUrl::parse("ws://[::1]/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.socket_addr()),
            ("::1", 80, "[::1]:80".into())
        );
        let u = WsUrl::parse("WS://user:pw@host:81/").unwrap();
        assert_eq!(
            (u.userinfo.as_deref(), u.host_header()),
            (Some("user:pw"), "host:81".into())
        );
    }

    #[test]
    fn targets_are_rfc_3986() {
        let u = WsUrl::parse("ws://x/a b/\u{e9}?q=\"<>\"&r=%2F").unwrap();
        assert_eq!(u.target, "/a%20b/%C3%A9?q=%22%3C%3E%22&r=%2F");
        let u = WsUrl::parse("ws://x/p:@!$&'()*+,;=-._~?/?").unwrap();
        assert_eq!(u.target, "/p:@!$&'()*+,;=-._~?/?");
        let base = WsUrl::parse("ws://x/a/b").unwrap();
        assert_eq!(base.join("c d").unwrap().target, "/a/c%20d");
        assert_eq!(base.join("/x\ty"), Err(UrlError::InvalidTarget));
    }

    #[test]
    fn redirect_locations() {
        let base = WsUrl::parse("wss://a.example/chat/room?x=1").unwrap();
        assert_eq!(
            base.join("/other").unwrap().to_string(),
            "wss://a.example/other"
        );
        assert_eq!(
            base.join("lobby").unwrap().to_string(),
            "wss://a.example/chat/lobby"
        );
        assert_eq!(
            base.join("https://b.example:8443/x").unwrap().to_string(),
            "wss://b.example:8443/x"
        );
        assert_eq!(
            base.join("http://b.example/x").unwrap().to_string(),
            "ws://b.example/x"
        );
        assert_eq!(
            base.join("//c.example/y").unwrap().to_string(),
            "wss://c.example/y"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            WsUrl::parse("http://x/"),
            Err(UrlError::UnsupportedScheme("http".into()))
        );
        assert_eq!(WsUrl::parse("ws:///path"), Err(UrlError::MissingHost));
        assert_eq!(WsUrl::parse("ws://x:0/"), Err(UrlError::InvalidPort));
        assert_eq!(WsUrl::parse("ws://x:99999/"), Err(UrlError::InvalidPort));
        assert_eq!(WsUrl::parse("ws://[::1/"), Err(UrlError::InvalidHost));
        assert_eq!(WsUrl::parse("ws://[not-ipv6]/"), Err(UrlError::InvalidHost));
        assert_eq!(WsUrl::parse("ws://a b/"), Err(UrlError::InvalidHost));
        assert_eq!(
            WsUrl::parse("ws://evil\r\nX: 1/"),
            Err(UrlError::InvalidHost)
        );
        assert_eq!(WsUrl::parse("ws://x/#frag"), Err(UrlError::Fragment));
        for bad in [
            "ws://x/p HTTP/1.1\r\nSmuggled: yes\r\nX: /",
            "ws://x/\0",
            "ws://x/?a=%zz",
            "ws://x/%4",
        ] {
            assert_eq!(WsUrl::parse(bad), Err(UrlError::InvalidTarget), "{bad:?}");
        }
        assert!(WsUrl::parse("nonsense").is_err());
    }
}
