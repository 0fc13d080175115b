//! Negotiating permessage-deflate (RFC 7692 §5, §7.1) in `Sec-WebSocket-Extensions`, both roles.
//!
//! Pure string work: the client builds its offer and checks the server's answer; the server picks
//! the first acceptable offer and builds its answer. Parameter names follow the RFC in both roles:
//! `server_*` always means the server-to-client direction.
//!
//! Window bits 8: zlib cannot compress with a 256-byte window. When the peer obliges our compressor
//! to use 8 bits we still agree (the RFC allows any window up to the agreed one, and RSV1 is set per
//! message, §6), but send every message uncompressed. Inflating with a larger window than the
//! peer's is always correct, so our decompressor never uses less than 9 bits.

use crate::proto::config::DeflateConfig;
use crate::proto::error::HandshakeError;

/// The extension's token (RFC 7692 §7).
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The smallest window zlib compresses with; a smaller agreed window means "send uncompressed".
#[cfg_attr(not(feature = "deflate"), allow(dead_code))]
pub(crate) const MIN_COMPRESS_WINDOW_BITS: u8 = 9;

/// Parameters both sides agreed on, in the RFC's terms (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateParams {
    /// The server resets its compression context after each message (§7.1.1.1).
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after each message (§7.1.1.2).
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window the server compresses with, as a power of two (§7.1.2.1). 8–15.
    pub server_max_window_bits: u8,
    /// The largest LZ77 window the client compresses with, as a power of two (§7.1.2.2). 8–15.
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    /// The extension with no parameters: context takeover and 15-bit windows both ways.
    fn default() -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

impl DeflateParams {
    /// The response's (or agreement's) header value, e.g.
    /// `permessage-deflate; server_no_context_takeover; client_max_window_bits=10`.
    /// Parameters with their default values are left out.
    pub fn to_header_value(&self) -> String {
        let mut value = String::from(EXTENSION_NAME);
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            value.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if self.client_max_window_bits < 15 {
            value.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        value
    }

    /// What the endpoint in `role` sends with: (no context takeover, window bits).
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn outgoing(&self, role: super::super::Role) -> (bool, u8) {
        match role {
            super::super::Role::Server => {
                (self.server_no_context_takeover, self.server_max_window_bits)
            }
            super::super::Role::Client => {
                (self.client_no_context_takeover, self.client_max_window_bits)
            }
        }
    }

    /// What the endpoint in `role` receives with: (peer resets its context, peer's window bits).
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn incoming(&self, role: super::super::Role) -> (bool, u8) {
        match role {
            super::super::Role::Server => self.outgoing(super::super::Role::Client),
            super::super::Role::Client => self.outgoing(super::super::Role::Server),
        }
    }
}

/// One element of an extension list: a name and its parameters, values unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Extension {
    /// The extension token, as sent.
    pub name: String,
    /// Parameters in order; `None` for a parameter without a value.
    pub params: Vec<(String, Option<String>)>,
}

/// A malformed `Sec-WebSocket-Extensions` value (not RFC 6455 §9.1's grammar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError;

/// Parses header values (all `Sec-WebSocket-Extensions` fields, in order) into extensions.
///
/// Grammar (RFC 6455 §9.1): `1#( token *( ";" token [ "=" ( token | quoted-string ) ] ) )`.
pub fn parse_extensions<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Extension>, SyntaxError> {
    let mut out = Vec::new();
    for value in values {
        for element in split_outside_quotes(value, ',')? {
            let element = element.trim();
            if element.is_empty() {
                // RFC 7230 §7: empty list elements are allowed and ignored.
                continue;
            }
            let mut parts = split_outside_quotes(element, ';')?.into_iter();
            let name = parts.next().unwrap_or_default().trim();
            if !is_token(name) {
                return Err(SyntaxError);
            }
            let mut params = Vec::new();
            for part in parts {
                let (key, value) = match part.split_once('=') {
                    Some((key, value)) => (key.trim(), Some(parse_value(value.trim())?)),
                    None => (part.trim(), None),
                };
                if !is_token(key) {
                    return Err(SyntaxError);
                }
                params.push((key.to_owned(), value));
            }
            out.push(Extension {
                name: name.to_owned(),
                params,
            });
        }
    }
    Ok(out)
}

fn split_outside_quotes(text: &str, separator: char) -> Result<Vec<&str>, SyntaxError> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(SyntaxError);
    }
    parts.push(&text[start..]);
    Ok(parts)
}

/// A parameter value: a token, or a quoted string whose content is a token (RFC 6455 §9.1).
fn parse_value(raw: &str) -> Result<String, SyntaxError> {
    let value = match raw.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').ok_or(SyntaxError)?.replace('\\', ""),
        None => raw.to_owned(),
    };
    if is_token(&value) {
        Ok(value)
    } else {
        Err(SyntaxError)
    }
}

/// RFC 7230 §3.2.6 token.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A `*_max_window_bits` value: 1*DIGIT in 8..=15, no leading zeros (RFC 7692 §7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    if value.len() > 2 || value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

/// The parameters of one permessage-deflate element, checked for the RFC's rules: known names,
/// no duplicates, valid values (§7: "MUST decline" / "MUST _Fail the WebSocket Connection_").
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct RawParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value (allowed in an offer only).
    client_max_window_bits: Option<Option<u8>>,
}

fn check_params(ext: &Extension) -> Option<RawParams> {
    let mut raw = RawParams::default();
    let mut seen = [false; 4];
    for (name, value) in &ext.params {
        let slot = match name.as_str() {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return None,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
        match (slot, value) {
            (0, None) => raw.server_no_context_takeover = true,
            (1, None) => raw.client_no_context_takeover = true,
            (2, Some(v)) => raw.server_max_window_bits = Some(window_bits(v)?),
            (3, None) => raw.client_max_window_bits = Some(None),
            (3, Some(v)) => raw.client_max_window_bits = Some(Some(window_bits(v)?)),
            _ => return None,
        }
    }
    Some(raw)
}

/// The client's offer, from its configuration (RFC 7692 §7.1).
///
/// `client_max_window_bits` is always offered (bare when 15) so the server may ask for a smaller
/// client window, as browsers do.
pub fn client_offer(config: &DeflateConfig) -> String {
    let mut offer = String::from(EXTENSION_NAME);
    if config.client_no_context_takeover {
        offer.push_str("; client_no_context_takeover");
    }
    if config.server_no_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    if config.server_max_window_bits < 15 {
        offer.push_str(&format!(
            "; server_max_window_bits={}",
            config.server_max_window_bits
        ));
    }
    if config.client_max_window_bits < 15 {
        offer.push_str(&format!(
            "; client_max_window_bits={}",
            config.client_max_window_bits
        ));
    } else {
        offer.push_str("; client_max_window_bits");
    }
    offer
}

/// The client's check of the server's `Sec-WebSocket-Extensions` values (RFC 6455 §4.1,
/// RFC 7692 §7.1): `Ok(None)` when the server declined, the agreed parameters otherwise.
///
/// `offered` is whether we offered permessage-deflate (built with [`client_offer`] from `config`).
/// Fails for an extension we did not offer, permessage-deflate twice, or a parameter that is
/// unknown, duplicated, out of range, or not allowed by our offer.
pub fn check_server_response<'a>(
    values: impl IntoIterator<Item = &'a str>,
    offered: bool,
    config: &DeflateConfig,
) -> Result<Option<DeflateParams>, HandshakeError> {
    let invalid = |what: &str| HandshakeError::InvalidExtension(what.to_owned());
    let extensions =
        parse_extensions(values).map_err(|_| invalid("malformed Sec-WebSocket-Extensions"))?;
    let mut agreed = None;
    for ext in &extensions {
        if !offered || !ext.name.eq_ignore_ascii_case(EXTENSION_NAME) || agreed.is_some() {
            return Err(HandshakeError::InvalidExtension(ext.name.clone()));
        }
        let raw = check_params(ext)
            .ok_or_else(|| invalid("permessage-deflate with invalid parameters"))?;
        // §7.1.2.2: the response's client_max_window_bits needs a value, and the offer had one.
        let client_bits = match raw.client_max_window_bits {
            None => config.client_max_window_bits,
            Some(None) => return Err(invalid("client_max_window_bits without a value")),
            Some(Some(bits)) if bits <= config.client_max_window_bits => bits,
            Some(Some(_)) => return Err(invalid("client_max_window_bits above our offer")),
        };
        // §7.1.2.1: the server must not pick a larger window than the client asked for.
        let server_bits = match raw.server_max_window_bits {
            None if config.server_max_window_bits < 15 => {
                return Err(invalid("server_max_window_bits missing"));
            }
            None => 15,
            Some(bits) if bits <= config.server_max_window_bits => bits,
            Some(_) => return Err(invalid("server_max_window_bits above our offer")),
        };
        // §7.1.1.1: a server that was asked not to take over context must say so.
        if config.server_no_context_takeover && !raw.server_no_context_takeover {
            return Err(invalid("server_no_context_takeover missing"));
        }
        agreed = Some(DeflateParams {
            server_no_context_takeover: raw.server_no_context_takeover,
            // Our hint in the offer binds us even if the server left it out (§7.1.1.2).
            client_no_context_takeover: raw.client_no_context_takeover
                || config.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        });
    }
    Ok(agreed)
}

/// The server's choice among the client's offers (RFC 7692 §5.1, §7.1): the first acceptable
/// permessage-deflate offer, or `None` to decline.
///
/// An offer is declined if it is malformed, has unknown, duplicated or invalid parameters, or
/// cannot meet `config`: a smaller client window than 15 needs the client to have offered
/// `client_max_window_bits`. A header that does not parse declines everything.
pub fn select_offer<'a>(
    values: impl IntoIterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<DeflateParams> {
    let extensions = parse_extensions(values).ok()?;
    extensions
        .iter()
        .filter(|ext| ext.name.eq_ignore_ascii_case(EXTENSION_NAME))
        .find_map(|ext| accept_offer(check_params(ext)?, config))
}

/// The largest window a server compresses with, and asks a client for when the client lets it
/// choose (`client_max_window_bits` in the offer, as browsers send): a quiet connection keeps a
/// window of history per direction, so 4 KiB rather than 32 (see docs/compression.md).
pub(crate) const SERVER_WINDOW_BITS: u8 = 12;

fn accept_offer(offer: RawParams, config: &DeflateConfig) -> Option<DeflateParams> {
    // Our window: what we want, no more than the client allows (§7.1.2.1). An 8 the client asks
    // for is agreed; we then send uncompressed (see the module docs).
    let ours = config.server_max_window_bits.min(SERVER_WINDOW_BITS);
    let server_bits = offer
        .server_max_window_bits
        .map_or(ours, |asked| asked.min(ours));
    // The client's window: we may only limit it if the client offered the parameter (§7.1.2.2).
    let asked = config.client_max_window_bits.min(SERVER_WINDOW_BITS);
    let client_bits = match offer.client_max_window_bits {
        None if config.client_max_window_bits < 15 => return None,
        None => 15,
        Some(None) => asked,
        Some(Some(offered)) => offered.min(asked),
    };
    Some(DeflateParams {
        // §7.1.1.1: a server accepting an offer with server_no_context_takeover MUST include it.
        server_no_context_takeover: offer.server_no_context_takeover
            || config.server_no_context_takeover,
        // §7.1.1.2: an offered client_no_context_takeover is a hint that binds the client even if
        // unanswered, so echoing it costs nothing; some clients (npm `ws`) reset their context
        // only when it is echoed, and our inflater may then reset too.
        client_no_context_takeover: offer.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    })
}

#[cfg(test)]
mod tests {
    //! RFC 7692 §5 and §7.1, both roles, from header strings.
    use super::*;

    fn config() -> DeflateConfig {
        DeflateConfig {
            enabled: true,
            ..DeflateConfig::default()
        }
    }

    fn params(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: sbits,
            client_max_window_bits: cbits,
        }
    }

    #[test]
    fn parses_lists_params_and_quoted_values() {
        let parsed = parse_extensions([
            "permessage-deflate; client_max_window_bits, foo",
            "permessage-deflate ; server_max_window_bits=\"10\" ;server_no_context_takeover",
        ])
        .unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(
            parsed[0].params,
            [("client_max_window_bits".to_owned(), None)]
        );
        assert_eq!(parsed[1].name, "foo");
        assert_eq!(
            parsed[2].params,
            [
                ("server_max_window_bits".to_owned(), Some("10".to_owned())),
                ("server_no_context_takeover".to_owned(), None)
            ]
        );
        for bad in [
            "permessage-deflate; x=\"1",
            "per message",
            "; a",
            "a; =1",
            "a; b=\"1 2\"",
        ] {
            assert_eq!(parse_extensions([bad]), Err(SyntaxError), "{bad}");
        }
        assert_eq!(parse_extensions([" , "]).unwrap(), []);
    }

    #[test]
    fn window_bits_values() {
        for (text, bits) in [("8", Some(8)), ("15", Some(15)), ("9", Some(9))] {
            assert_eq!(window_bits(text), bits);
        }
        for bad in ["7", "16", "08", "", "1a", "+9", "150"] {
            assert_eq!(window_bits(bad), None, "{bad}");
        }
    }

    #[test]
    fn server_accepts_the_browser_offer() {
        // What Chromium and Firefox send.
        let offer = "permessage-deflate; client_max_window_bits";
        let agreed = select_offer([offer], &config()).unwrap();
        // Both windows at SERVER_WINDOW_BITS: the client let us choose its window.
        assert_eq!(agreed, params(false, false, 12, 12));
        assert_eq!(
            agreed.to_header_value(),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
        );
    }

    #[test]
    fn server_honours_each_parameter() {
        // Our own window is at most SERVER_WINDOW_BITS; the client's stays 15 unless it lets us
        // choose (§7.1.2.2).
        let cases = [
            ("permessage-deflate", params(false, false, 12, 15)),
            (
                "permessage-deflate; server_no_context_takeover",
                params(true, false, 12, 15),
            ),
            // A hint the client is bound by either way; echoed, so the client knows it was seen.
            (
                "permessage-deflate; client_no_context_takeover",
                params(false, true, 12, 15),
            ),
            (
                "permessage-deflate; server_max_window_bits=10",
                params(false, false, 10, 15),
            ),
            (
                "permessage-deflate; server_max_window_bits=8",
                params(false, false, 8, 15),
            ),
            (
                "permessage-deflate; client_max_window_bits=9",
                params(false, false, 12, 9),
            ),
            (
                "permessage-deflate; client_max_window_bits=14",
                params(false, false, 12, 12),
            ),
        ];
        for (offer, want) in cases {
            assert_eq!(select_offer([offer], &config()), Some(want), "{offer}");
        }
        assert_eq!(
            params(true, true, 10, 9).to_header_value(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=9"
        );
    }

    #[test]
    fn server_config_limits_and_requests() {
        let mut config = config();
        config.server_max_window_bits = 12;
        config.client_max_window_bits = 10;
        config.client_no_context_takeover = true;
        config.server_no_context_takeover = true;
        let agreed = select_offer(
            ["permessage-deflate; server_max_window_bits=14; client_max_window_bits"],
            &config,
        );
        assert_eq!(agreed, Some(params(true, true, 12, 10)));
        let agreed = select_offer(
            ["permessage-deflate; client_max_window_bits=9; server_max_window_bits=9"],
            &config,
        );
        assert_eq!(agreed, Some(params(true, true, 9, 9)));
        // Without client_max_window_bits in the offer the client's window cannot be limited.
        assert_eq!(select_offer(["permessage-deflate"], &config), None);
    }

    #[test]
    fn server_declines_invalid_offers_and_takes_the_next() {
        let declined = [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; unknown_param",
            "x-webkit-deflate-frame",
        ];
        for offer in declined {
            assert_eq!(select_offer([offer], &config()), None, "{offer}");
        }
        let several = "permessage-deflate; server_max_window_bits=99, permessage-deflate; server_no_context_takeover, permessage-deflate";
        assert_eq!(
            select_offer([several], &config()),
            Some(params(true, false, 12, 15))
        );
        // The same across header fields.
        assert_eq!(
            select_offer(
                ["foo", "permessage-deflate; client_max_window_bits=12"],
                &config()
            ),
            Some(params(false, false, 12, 12))
        );
    }

    #[test]
    fn client_offer_follows_config() {
        assert_eq!(
            client_offer(&config()),
            "permessage-deflate; client_max_window_bits"
        );
        let mut config = config();
        config.client_no_context_takeover = true;
        config.server_no_context_takeover = true;
        config.server_max_window_bits = 10;
        config.client_max_window_bits = 12;
        assert_eq!(
            client_offer(&config),
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=12"
        );
    }

    #[test]
    fn client_accepts_valid_responses() {
        let ok = |v: &str| check_server_response([v], true, &config());
        assert_eq!(ok("permessage-deflate"), Ok(Some(DeflateParams::default())));
        assert_eq!(
            ok("permessage-deflate; client_max_window_bits=8; server_max_window_bits=9"),
            Ok(Some(params(false, false, 9, 8)))
        );
        assert_eq!(
            ok("permessage-deflate; client_no_context_takeover; server_no_context_takeover"),
            Ok(Some(params(true, true, 15, 15)))
        );
        assert_eq!(check_server_response([], true, &config()), Ok(None));
        assert_eq!(check_server_response([], false, &config()), Ok(None));
    }

    #[test]
    fn client_fails_invalid_responses() {
        let bad = [
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate, permessage-deflate",
            "x-other",
            "permessage-deflate; server_max_window_bits=\"1",
        ];
        for value in bad {
            assert!(
                check_server_response([value], true, &config()).is_err(),
                "{value}"
            );
        }
        // Nothing offered: any extension fails (RFC 6455 §4.1).
        assert!(check_server_response(["permessage-deflate"], false, &config()).is_err());
        // Above what we offered.
        let mut config = config();
        config.server_max_window_bits = 10;
        config.client_max_window_bits = 10;
        config.server_no_context_takeover = true;
        for value in [
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11",
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover",
        ] {
            assert!(
                check_server_response([value], true, &config).is_err(),
                "{value}"
            );
        }
        assert_eq!(
            check_server_response(
                ["permessage-deflate; server_no_context_takeover; server_max_window_bits=9"],
                true,
                &config
            ),
            Ok(Some(params(true, false, 9, 10)))
        );
    }
}
