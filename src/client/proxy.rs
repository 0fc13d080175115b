//! HTTP CONNECT proxies (RFC 9110 §9.3.6): a tunnel to the WebSocket server through an HTTP proxy,
//! configured explicitly or from the usual environment variables.

use crate::error::{Error, HandshakeError, ProxyError, UrlError};
use crate::proto::frame::Decoded;
use crate::proto::handshake::{HeadLimits, parse_response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// An HTTP proxy that tunnels with `CONNECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Proxy {
    /// The proxy's host.
    pub host: String,
    /// The proxy's port (default 8080 when the URL names none).
    pub port: u16,
    /// `user:password` for `Proxy-Authorization: Basic`.
    pub credentials: Option<String>,
}

impl Proxy {
    /// Parses `http://[user:password@]host[:port][/]` (the scheme may be omitted).
    ///
    /// ```
    /// let proxy = syncws::Proxy::parse("http://bob:secret@127.0.0.1:3128")?;
    /// assert_eq!((proxy.host.as_str(), proxy.port), ("127.0.0.1", 3128));
    /// assert_eq!(proxy.credentials.as_deref(), Some("bob:secret"));
    /// # Ok::<(), syncws::Error>(())
    /// ```
    pub fn parse(url: &str) -> Result<Proxy, Error> {
        let rest = match url.split_once("://") {
            Some(("http" | "HTTP", rest)) => rest,
            Some((scheme, _)) => return Err(UrlError::UnsupportedScheme(scheme.to_owned()).into()),
            None => url,
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (credentials, hostport) = match authority.rsplit_once('@') {
            Some((user, hostport)) => (Some(user.to_owned()), hostport),
            None => (None, authority),
        };
        // Reuse the WebSocket URL parser for host, port and IPv6 brackets.
        let parsed = crate::client::url::WsUrl::parse(&format!("ws://{hostport}/"))?;
        let port = if hostport.ends_with(&format!(":{}", parsed.port)) {
            parsed.port
        } else {
            8080
        };
        Ok(Proxy {
            host: parsed.host,
            port,
            credentials,
        })
    }

    /// The proxy the environment names for a connection to `host` (`secure`: wss). Reads
    /// `https_proxy` (wss) or `http_proxy` (ws), then `all_proxy`, lower case first, then upper
    /// case; `no_proxy` lists hosts (or domain suffixes, or `*`) to reach directly.
    pub fn from_env(host: &str, secure: bool) -> Option<Proxy> {
        Proxy::from_lookup(host, secure, |name| std::env::var(name).ok())
    }

    fn from_lookup(
        host: &str,
        secure: bool,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Option<Proxy> {
        let get = |name: &str| {
            lookup(name)
                .or_else(|| lookup(&name.to_ascii_uppercase()))
                .filter(|v| !v.trim().is_empty())
        };
        if let Some(no_proxy) = get("no_proxy") {
            if bypasses(&no_proxy, host) {
                return None;
            }
        }
        let scheme_var = if secure { "https_proxy" } else { "http_proxy" };
        let url = get(scheme_var).or_else(|| get("all_proxy"))?;
        Proxy::parse(url.trim()).ok()
    }

    /// Opens a TCP connection to the proxy and asks it for a tunnel to `target` (`host:port`).
    ///
    /// Each read of the answer waits only for the time left before `deadline`, so a proxy that
    /// trickles its answer cannot hold the client past it.
    pub(crate) fn tunnel(
        &self,
        target: &str,
        connect: impl FnOnce(&str) -> Result<TcpStream, Error>,
        limits: HeadLimits,
        deadline: Option<Instant>,
    ) -> Result<TcpStream, Error> {
        let mut stream = connect(
            &crate::client::url::WsUrl::parse(&format!(
                "ws://{}:{}/",
                bracket(&self.host),
                self.port
            ))?
            .socket_addr(),
        )?;
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(credentials) = &self.credentials {
            request.push_str(&format!(
                "Proxy-Authorization: Basic {}\r\n",
                BASE64.encode(credentials)
            ));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        // Read the answer byte by byte: nothing past its head may be consumed, because the
        // tunnel's first bytes (a TLS handshake or the 101) belong to what follows.
        let mut head = Vec::with_capacity(256);
        let mut byte = [0u8; 1];
        let response = loop {
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(HandshakeError::Timeout.into());
                }
                stream.set_read_timeout(Some(left))?;
            }
            if stream.read(&mut byte)? == 0 {
                return Err(ProxyError::Closed(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "no answer to CONNECT",
                ))
                .into());
            }
            head.push(byte[0]);
            if head.ends_with(b"\r\n\r\n") {
                match parse_response(&head, limits)? {
                    Decoded::Complete(response, _) => break response,
                    Decoded::Partial => {}
                }
            } else if head.len() > limits.max_size {
                return Err(HandshakeError::HeadTooLarge.into());
            }
        };
        match response.status {
            200..=299 => Ok(stream),
            // RFC 9110 §15.5.8 says 407; some proxies (tinyproxy) answer 401.
            401 | 407 => Err(ProxyError::Unauthorized(response.status).into()),
            status => Err(ProxyError::Refused(status, response.reason).into()),
        }
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Whether `no_proxy` (comma-separated hosts, `.suffix` or `suffix` domains, or `*`) covers `host`.
fn bypasses(no_proxy: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    no_proxy
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            let entry = entry.to_ascii_lowercase();
            // Drop a `:port`, but not the colons of an IPv6 address.
            let entry = match entry.rsplit_once(':') {
                Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
                    h
                }
                _ => entry.as_str(),
            };
            let entry = entry.trim_start_matches("*.");
            entry == "*"
                || host == entry.trim_start_matches('.')
                || host.ends_with(&format!(".{}", entry.trim_start_matches('.')))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn parses_proxy_urls() {
        assert_eq!(
            Proxy::parse("http://p:3128").unwrap(),
            Proxy {
                host: "p".into(),
                port: 3128,
                credentials: None
            }
        );
        assert_eq!(Proxy::parse("p").unwrap().port, 8080);
        assert_eq!(Proxy::parse("http://[::1]:8888/").unwrap().host, "::1");
        assert!(Proxy::parse("socks5://p:1080").is_err());
    }

    #[test]
    fn picks_the_variable_for_the_scheme() {
        let lookup = env(&[
            ("http_proxy", "http://plain:1"),
            ("HTTPS_PROXY", "http://secure:2"),
        ]);
        assert_eq!(
            Proxy::from_lookup("example.com", false, &lookup)
                .unwrap()
                .host,
            "plain"
        );
        assert_eq!(
            Proxy::from_lookup("example.com", true, &lookup)
                .unwrap()
                .host,
            "secure"
        );
        let all = env(&[("ALL_PROXY", "http://any:3")]);
        assert_eq!(
            Proxy::from_lookup("example.com", true, all).unwrap().port,
            3
        );
        assert_eq!(Proxy::from_lookup("example.com", false, env(&[])), None);
    }

    #[test]
    fn no_proxy_bypasses() {
        for no_proxy in [
            "*",
            "example.com",
            ".example.com",
            "other, example.com:443",
            "*.example.com",
        ] {
            let lookup = env(&[("http_proxy", "http://p:1"), ("no_proxy", no_proxy)]);
            assert_eq!(
                Proxy::from_lookup("ws.example.com", false, lookup),
                None,
                "{no_proxy}"
            );
        }
        let lookup = env(&[("http_proxy", "http://p:1"), ("NO_PROXY", "example.org")]);
        assert!(Proxy::from_lookup("example.com", false, lookup).is_some());
        let lookup = env(&[("http_proxy", "http://p:1"), ("no_proxy", "::1")]);
        assert_eq!(Proxy::from_lookup("::1", false, lookup), None);
    }
}
