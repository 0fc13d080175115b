//! Trusted proxies, and the client address they forward in `Forwarded` (RFC 7239) or
//! `X-Forwarded-For`.
//!
//! Each proxy appends the address it received the request from, so the right end of the list
//! is the most trustworthy: walking from the right, addresses of trusted proxies are skipped and
//! the first other one is the client. Values further left were written by the client itself
//! and are never read, so they cannot spoof an address.

use crate::proto::handshake::{Headers, is_token};
use std::net::{IpAddr, SocketAddr};

/// Addresses and CIDR ranges whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    /// Each range as its network address (canonical: IPv4-mapped IPv6 as IPv4) and prefix length.
    ranges: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses `10.0.0.7`, `::1`, `10.0.0.0/8`, `fd00::/8`; `None` if any is neither an address
    /// nor a range (host bits after the prefix are ignored).
    pub(crate) fn parse(specs: &[String]) -> Option<TrustedProxies> {
        let ranges = specs
            .iter()
            .map(|spec| parse_range(spec.trim()))
            .collect::<Option<Vec<_>>>()?;
        Some(TrustedProxies { ranges })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.ranges
            .iter()
            .any(|&(network, prefix)| in_range(ip, network, prefix))
    }

    /// The client's address: the TCP `peer`'s unless it is a trusted proxy whose headers name
    /// one. `Forwarded` wins over `X-Forwarded-For`; a malformed header gives the peer. A port
    /// the proxy did not forward is 0.
    pub(crate) fn client_addr(&self, peer: SocketAddr, headers: &Headers) -> SocketAddr {
        if self.ranges.is_empty() || !self.contains(peer.ip()) {
            return peer;
        }
        let forwarded = join(headers, "forwarded");
        let found = if !forwarded.trim().is_empty() {
            forwarded_hops(&forwarded).and_then(|hops| self.right_most_untrusted(hops))
        } else {
            let chain = join(headers, "x-forwarded-for");
            let hops = chain.split(',').map(|hop| parse_node(hop.trim()));
            (!chain.trim().is_empty())
                .then(|| self.right_most_untrusted(hops.collect()))
                .flatten()
        };
        found.unwrap_or(peer)
    }

    /// The right-most hop that is not a trusted proxy (the left-most if all are); `None` if a
    /// hop read on the way is not an address.
    fn right_most_untrusted(&self, hops: Vec<Option<SocketAddr>>) -> Option<SocketAddr> {
        let mut last = None;
        for hop in hops.into_iter().rev() {
            let addr = hop?;
            if !self.contains(addr.ip()) {
                return Some(addr);
            }
            last = Some(addr);
        }
        last
    }
}

/// Every field `name`, joined as one list (RFC 9110 §5.3).
fn join(headers: &Headers, name: &str) -> String {
    headers.get_all(name).collect::<Vec<_>>().join(",")
}

fn parse_range(spec: &str) -> Option<(IpAddr, u8)> {
    let (ip, prefix) = match spec.split_once('/') {
        Some((ip, prefix)) => {
            let ip = ip.parse::<IpAddr>().ok()?.to_canonical();
            if !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (ip, prefix.parse::<u8>().ok()?)
        }
        None => {
            let ip = spec.parse::<IpAddr>().ok()?.to_canonical();
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((ip, prefix))
}

fn in_range(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let shift = 32 - u32::from(prefix);
            (u32::from(ip) ^ u32::from(net))
                .checked_shr(shift)
                .unwrap_or(0)
                == 0
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let shift = 128 - u32::from(prefix);
            (u128::from(ip) ^ u128::from(net))
                .checked_shr(shift)
                .unwrap_or(0)
                == 0
        }
        _ => false,
    }
}

/// The `for=` of each element of a `Forwarded` list, left to right (RFC 7239 §4):
/// `Forwarded = 1#forwarded-element`, an element `pair *( ";" pair )`, a pair
/// `token "=" ( token / quoted-string )`. An element without `for`, or a `for` that is `unknown`
/// or obfuscated (§6.3), is a hop of unknown address (`None`). `None` overall if the list does
/// not parse (an unterminated quoted string).
fn forwarded_hops(list: &str) -> Option<Vec<Option<SocketAddr>>> {
    let mut hops = Vec::new();
    for element in split_outside_quotes(list, ',')? {
        if element.trim().is_empty() {
            continue; // RFC 9110 §5.6.1: empty list elements are ignored.
        }
        let mut node = None;
        for pair in split_outside_quotes(element, ';')? {
            let Some((name, value)) = pair.split_once('=') else {
                return None;
            };
            if name.trim().eq_ignore_ascii_case("for") {
                node = parse_node(&unquote(value.trim())?);
            }
        }
        hops.push(node);
    }
    Some(hops)
}

/// Splits at `separator` where it is not inside a quoted string; `None` if a quote is left open.
fn split_outside_quotes(s: &str, separator: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ if c == separator && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    (!quoted).then_some(parts)
}

/// A token as it is (an IPv6 node, with its brackets and colons, must be quoted), a quoted string without its quotes and escapes (RFC 9110 §5.6.4).
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return is_token(value).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

/// A node (RFC 7239 §6): `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::17]`,
/// `[2001:db8::17]:4711`; a bare IPv6 address as `X-Forwarded-For` writes it. An obfuscated
/// port counts as none (0). `None` for `unknown`, obfuscated names and anything else.
fn parse_node(node: &str) -> Option<SocketAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip.to_canonical(), 0));
    }
    let (host, port) = if let Some(rest) = node.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        let (host, port) = node.rsplit_once(':')?;
        (host, Some(port))
    };
    let ip = host.parse::<IpAddr>().ok()?;
    if node.starts_with('[') != ip.is_ipv6() {
        return None;
    }
    let port = match port {
        None => 0,
        Some(obfuscated) if obfuscated.starts_with('_') => 0,
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => port.parse().ok()?,
        Some(_) => return None,
    };
    Some(SocketAddr::new(ip.to_canonical(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(specs: &[&str]) -> TrustedProxies {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        TrustedProxies::parse(&specs).expect("valid specs")
    }

    fn headers(fields: &[(&str, &str)]) -> Headers {
        let mut headers = Headers::new();
        for (name, value) in fields {
            headers.push(*name, *value);
        }
        headers
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const PROXY: &str = "10.0.0.2:40000";

    #[test]
    fn addresses_and_ranges_parse_and_garbage_does_not() {
        let ok = [
            "10.0.0.7",
            "::1",
            "10.0.0.0/8",
            "fd00::/8",
            "0.0.0.0/0",
            " 192.168.1.1/32 ",
        ];
        for spec in ok {
            assert!(
                TrustedProxies::parse(&[spec.to_string()]).is_some(),
                "{spec}"
            );
        }
        let bad = [
            "",
            "10.0.0",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "host.example",
            "10.0.0.0/8/8",
            "[::1]",
        ];
        for spec in bad {
            assert!(
                TrustedProxies::parse(&[spec.to_string()]).is_none(),
                "{spec}"
            );
        }
    }

    #[test]
    fn ranges_match_by_prefix_and_mapped_ipv4_counts_as_ipv4() {
        let proxies = trusted(&["10.0.0.0/8", "fd00::/8", "192.168.1.5"]);
        assert!(proxies.contains("10.255.0.1".parse().unwrap()));
        assert!(!proxies.contains("11.0.0.1".parse().unwrap()));
        assert!(proxies.contains("fd12::1".parse().unwrap()));
        assert!(!proxies.contains("fe80::1".parse().unwrap()));
        assert!(proxies.contains("192.168.1.5".parse().unwrap()));
        assert!(!proxies.contains("192.168.1.6".parse().unwrap()));
        assert!(proxies.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(trusted(&["0.0.0.0/0"]).contains("203.0.113.9".parse().unwrap()));
        assert!(!trusted(&["0.0.0.0/0"]).contains("::2".parse().unwrap()));
    }

    #[test]
    fn a_trusted_peer_forwards_the_client_from_x_forwarded_for() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let h = headers(&[("X-Forwarded-For", "203.0.113.9")]);
        assert_eq!(proxies.client_addr(addr(PROXY), &h), addr("203.0.113.9:0"));
        // Two proxies of ours: the one before the first is skipped too.
        let h = headers(&[("X-Forwarded-For", "203.0.113.9, 10.0.0.3")]);
        assert_eq!(proxies.client_addr(addr(PROXY), &h), addr("203.0.113.9:0"));
        // Several fields are one list.
        let h = headers(&[
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Forwarded-For", "10.0.0.3"),
        ]);
        assert_eq!(proxies.client_addr(addr(PROXY), &h), addr("203.0.113.9:0"));
        let h = headers(&[("X-Forwarded-For", "2001:db8::1")]);
        assert_eq!(
            proxies.client_addr(addr(PROXY), &h),
            addr("[2001:db8::1]:0")
        );
    }

    #[test]
    fn a_spoofed_chain_yields_the_address_our_proxy_saw() {
        let proxies = trusted(&["10.0.0.0/8"]);
        // The client sent "X-Forwarded-For: 1.1.1.1, 10.0.0.9"; our proxy appended what it saw.
        let h = headers(&[("X-Forwarded-For", "1.1.1.1, 10.0.0.9, 198.51.100.7")]);
        assert_eq!(proxies.client_addr(addr(PROXY), &h), addr("198.51.100.7:0"));
        // Garbage on the left is never read.
        let h = headers(&[("X-Forwarded-For", "<script>, not an ip, 198.51.100.7")]);
        assert_eq!(proxies.client_addr(addr(PROXY), &h), addr("198.51.100.7:0"));
        let h = headers(&[(
            "Forwarded",
            "for=1.1.1.1;by=evil, for=\"198.51.100.7:5000\"",
        )]);
        assert_eq!(
            proxies.client_addr(addr(PROXY), &h),
            addr("198.51.100.7:5000")
        );
        let h = headers(&[("Forwarded", "for=garbage!!, for=198.51.100.7")]);
        assert_eq!(proxies.client_addr(addr(PROXY), &h), addr("198.51.100.7:0"));
    }

    #[test]
    fn a_trusted_peer_forwards_the_client_from_forwarded() {
        let proxies = trusted(&["10.0.0.0/8", "::1"]);
        let cases = [
            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60:0"),
            ("For=\"192.0.2.43:47011\"", "192.0.2.43:47011"),
            (
                "for=\"[2001:db8:cafe::17]:4711\"",
                "[2001:db8:cafe::17]:4711",
            ),
            ("for=\"[2001:db8:cafe::17]\"", "[2001:db8:cafe::17]:0"),
            (
                "for=192.0.2.43, for=198.51.100.17;by=10.0.0.1",
                "198.51.100.17:0",
            ),
            ("for=\"192.0.2.43:_hidden\"", "192.0.2.43:0"),
        ];
        for (value, client) in cases {
            let h = headers(&[("Forwarded", value)]);
            assert_eq!(
                proxies.client_addr(addr(PROXY), &h),
                addr(client),
                "{value}"
            );
        }
        // Every hop a trusted proxy: the left-most is the client.
        let h = headers(&[("Forwarded", "for=\"[::1]:4711\", for=10.0.0.5")]);
        assert_eq!(proxies.client_addr(addr(PROXY), &h), addr("[::1]:4711"));
        // Behind an IPv6 proxy.
        let h = headers(&[("Forwarded", "for=\"[2001:db8::9]:4711\"")]);
        let v6_proxy = addr("[::1]:50000");
        assert_eq!(
            proxies.client_addr(v6_proxy, &h),
            addr("[2001:db8::9]:4711")
        );
        // Forwarded wins over X-Forwarded-For.
        let h = headers(&[
            ("X-Forwarded-For", "198.51.100.1"),
            ("Forwarded", "for=192.0.2.1"),
        ]);
        assert_eq!(proxies.client_addr(addr(PROXY), &h), addr("192.0.2.1:0"));
    }

    #[test]
    fn an_untrusted_peer_or_none_configured_is_the_client() {
        let h = headers(&[("X-Forwarded-For", "1.1.1.1"), ("Forwarded", "for=1.1.1.1")]);
        let peer = addr("192.0.2.200:1234");
        assert_eq!(trusted(&["10.0.0.0/8"]).client_addr(peer, &h), peer);
        assert_eq!(trusted(&[]).client_addr(addr(PROXY), &h), addr(PROXY));
        // Mapped IPv4 peer from a dual-stack listener is matched as IPv4.
        let mapped = addr("[::ffff:10.0.0.2]:40000");
        assert_eq!(
            trusted(&["10.0.0.0/8"]).client_addr(mapped, &h),
            addr("1.1.1.1:0")
        );
    }

    #[test]
    fn malformed_headers_give_the_tcp_peer() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let garbage = [
            ("X-Forwarded-For", "not an address"),
            ("X-Forwarded-For", "198.51.100.7, "),
            ("X-Forwarded-For", "198.51.100.7:99999"),
            ("X-Forwarded-For", "[198.51.100.7]"),
            ("Forwarded", "for=\"198.51.100.7"),
            ("Forwarded", "for"),
            ("Forwarded", "for=unknown"),
            ("Forwarded", "for=_hidden"),
            ("Forwarded", "proto=https"),
            ("Forwarded", "for=[::1]:80"),
            ("Forwarded", "for=\"[::1\""),
            ("Forwarded", "for=\"\\"),
            ("Forwarded", "for=\"1.2.3.4\\\""),
            ("Forwarded", "for=\"ä:ö\""),
        ];
        for (name, value) in garbage {
            let h = headers(&[(name, value)]);
            assert_eq!(
                proxies.client_addr(addr(PROXY), &h),
                addr(PROXY),
                "{name}: {value}"
            );
        }
        // Empty headers count as absent.
        let h = headers(&[("Forwarded", " "), ("X-Forwarded-For", "198.51.100.7")]);
        assert_eq!(proxies.client_addr(addr(PROXY), &h), addr("198.51.100.7:0"));
        let h = headers(&[("X-Forwarded-For", "")]);
        assert_eq!(proxies.client_addr(addr(PROXY), &h), addr(PROXY));
    }
}
