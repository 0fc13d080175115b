//! The server's side (RFC 6455 §4.2): checking a client's request and writing the answer, a
//! `101 Switching Protocols` or an HTTP error.

use super::accept_key;
use super::fields::{Headers, check_subprotocols, is_token};
use super::heads::Request;
use crate::proto::error::HandshakeError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::fmt::Write as _;

/// Header fields an upgrade request may carry once only: a second one would be read by one
/// party and ignored by another (a second `Origin` slipping past an allowlist that reads the
/// first, or a proxy routing on one `Host` while the application sees the other).
const SINGLE_FIELDS: [&str; 4] = [
    "host",
    "origin",
    "sec-websocket-key",
    "sec-websocket-version",
];

/// Checks a request against RFC 6455 §4.2.1; returns the client's `Sec-WebSocket-Key`.
///
/// Beyond the RFC's list it refuses, with 400: a second `Host`, `Origin`, `Sec-WebSocket-Key` or
/// `Sec-WebSocket-Version`; a body (`Content-Length` other than 0, or `Transfer-Encoding`), whose
/// bytes would otherwise be read as WebSocket frames; and a request target that is not origin
/// form (`/path?query`): the absolute form (`GET http://other.example/admin`) and `*` are
/// refused rather than rewritten, so [`Request::path`] is always a path. HTTP/1.0 gets 505.
pub fn check_request(request: &Request) -> Result<String, HandshakeError> {
    if request.method != "GET" {
        return Err(HandshakeError::MethodNotAllowed(request.method.clone()));
    }
    let headers = &request.headers;
    if headers.get("upgrade").is_none() {
        return Err(HandshakeError::NotUpgrade);
    }
    // RFC 6455 §4.1: "The method of the request MUST be GET, and the HTTP version MUST be at
    // least 1.1."
    if request.version < 1 {
        return Err(HandshakeError::UnsupportedHttpVersion);
    }
    // RFC 9112 §3.2.1: the origin form is "absolute-path [ "?" query ]".
    if !request.target.starts_with('/') {
        return Err(HandshakeError::BadHeader(
            "request target is not a path (origin form)",
        ));
    }
    for name in SINGLE_FIELDS {
        if headers.get_all(name).nth(1).is_some() {
            return Err(HandshakeError::DuplicateField(name));
        }
    }
    // RFC 9112 §6.3: a request has a body if it has Transfer-Encoding or a Content-Length; an
    // upgrade request has none, or its body would be taken for the first frames.
    let has_body = headers.get("transfer-encoding").is_some()
        || headers.get_all("content-length").any(|v| v.trim() != "0");
    if has_body {
        return Err(HandshakeError::BadHeader("an upgrade request has no body"));
    }
    if !headers.has_token("upgrade", "websocket") {
        return Err(HandshakeError::BadHeader("Upgrade must be websocket"));
    }
    if !headers.has_token("connection", "upgrade") {
        return Err(HandshakeError::BadHeader("Connection must include Upgrade"));
    }
    if headers.get("host").is_none() {
        return Err(HandshakeError::BadHeader("missing Host"));
    }
    // RFC 6455 §4.2.2: a version the server does not speak gets 426 and the versions it does.
    match headers.get("sec-websocket-version").map(str::trim) {
        Some("13") => {}
        Some(_) => return Err(HandshakeError::UnsupportedVersion),
        None => return Err(HandshakeError::BadHeader("missing Sec-WebSocket-Version")),
    }
    let key = headers
        .get("sec-websocket-key")
        .map(str::trim)
        .ok_or(HandshakeError::BadHeader("missing Sec-WebSocket-Key"))?;
    // RFC 6455 §4.1: the key is "a randomly selected 16-byte value that has been base64-encoded".
    match BASE64.decode(key) {
        Ok(bytes) if bytes.len() == 16 => Ok(key.to_owned()),
        _ => Err(HandshakeError::BadHeader(
            "Sec-WebSocket-Key is not 16 bytes in base64",
        )),
    }
}

/// Whether the library writes `name` itself on every answer: the framing of RFC 9112 §6
/// (`Content-Length`, `Transfer-Encoding`) and `Connection`. A caller's copy would be a second,
/// conflicting one (RFC 9110 §8.6: an intermediary may read either; response splitting).
fn is_framing_field(name: &str) -> bool {
    ["content-length", "transfer-encoding", "connection"]
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f))
}

/// Whether `name` is a field of the WebSocket handshake (RFC 6455 §11.3: `Sec-WebSocket-*`) or
/// `Upgrade`.
fn is_handshake_field(name: &str) -> bool {
    name.eq_ignore_ascii_case("upgrade")
        || name
            .as_bytes()
            .get(..14)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"sec-websocket-"))
}

/// Whether [`accept_response`] writes `name` itself: framing, `Upgrade`, and every handshake
/// field but `Sec-WebSocket-Extensions`, which a sans-I/O server adds from its own negotiation.
fn written_by_accept_response(name: &str) -> bool {
    is_framing_field(name)
        || (is_handshake_field(name) && !name.eq_ignore_ascii_case("sec-websocket-extensions"))
}

/// Checks the fields a caller adds to a response: RFC 9110 fields (§5.1, §5.5), and none the
/// library writes or negotiates itself (framing, `Connection`, `Upgrade`, `Sec-WebSocket-*`):
/// a second `Content-Length` or `Sec-WebSocket-Accept` would make two answers of one.
///
/// Errors: [`HandshakeError::InvalidField`] naming the first bad field.
pub(crate) fn check_caller_fields(fields: &Headers) -> Result<(), HandshakeError> {
    fields.validate()?;
    match fields
        .iter()
        .find(|(name, _)| is_framing_field(name) || is_handshake_field(name))
    {
        Some((name, _)) => Err(HandshakeError::InvalidField(format!(
            "header {name} is written by the library; a caller may not set it"
        ))),
        None => Ok(()),
    }
}

/// Checks what a server is about to put in a 101: the subprotocol a token, the extra headers
/// RFC 9110 fields and none that [`accept_response`] writes itself (`Content-Length`,
/// `Transfer-Encoding`, `Connection`, `Upgrade`, `Sec-WebSocket-*` but
/// `Sec-WebSocket-Extensions`). Call it before [`accept_response`] to refuse (500) instead of
/// answering.
pub fn check_accept(protocol: Option<&str>, extra: &Headers) -> Result<(), HandshakeError> {
    check_subprotocols(protocol)?;
    extra.validate()?;
    match extra
        .iter()
        .find(|(name, _)| written_by_accept_response(name))
    {
        Some((name, _)) => Err(HandshakeError::InvalidField(format!(
            "header {name} is written by accept_response itself"
        ))),
        None => Ok(()),
    }
}

/// `extra` without the fields `skip` names.
fn without(extra: &Headers, skip: fn(&str) -> bool) -> Headers {
    let mut kept = Headers::new();
    for (name, value) in extra.iter().filter(|(name, _)| !skip(name)) {
        kept.push(name, value);
    }
    kept
}

/// The `101 Switching Protocols` answer to a checked request. Fields that fail
/// [`check_accept`] are left out: the answer never carries two of a field it writes.
pub fn accept_response(key: &str, protocol: Option<&str>, extra: &Headers) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if let Some(protocol) = protocol.filter(|p| is_token(p)) {
        let _ = write!(head, "Sec-WebSocket-Protocol: {protocol}\r\n");
    }
    without(extra, written_by_accept_response).write_to(&mut head);
    head.push_str("\r\n");
    head.into_bytes()
}

/// A refusal: `status` with `headers` and a plain-text `body`; the connection closes after it.
/// Fields that fail [`Headers::validate`] are left out, and so are `Content-Length`,
/// `Transfer-Encoding` and `Connection`, which it writes itself.
pub fn reject_response(status: u16, extra: &Headers, body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        reason_phrase(status),
        body.len()
    );
    if extra.get("content-type").is_none() && !body.is_empty() {
        head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    without(extra, is_framing_field).write_to(&mut head);
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The answer a server gives to a request that failed `error`: its status, the headers RFC 6455
/// asks for, and the reason as the body.
pub fn error_response(error: &HandshakeError) -> Vec<u8> {
    let mut headers = Headers::new();
    if *error == HandshakeError::UnsupportedVersion {
        headers.push("Sec-WebSocket-Version", "13");
    }
    reject_response(error.status(), &headers, format!("{error}\n").as_bytes())
}

/// The standard reason phrase for the statuses a WebSocket server uses.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &str) -> Headers {
        let mut headers = Headers::new();
        headers.push(name, "x");
        headers
    }

    #[test]
    fn the_101_never_carries_a_second_copy_of_a_field_it_writes() {
        for name in [
            "Sec-WebSocket-Accept",
            "upgrade",
            "Connection",
            "Content-Length",
        ] {
            assert!(
                matches!(
                    check_accept(None, &with(name)),
                    Err(HandshakeError::InvalidField(_))
                ),
                "{name}"
            );
            let head = String::from_utf8(accept_response("k", Some("chat"), &with(name))).unwrap();
            assert_eq!(head.matches(": x\r\n").count(), 0, "{head}");
        }
        // Sec-WebSocket-Extensions is the sans-I/O server's own negotiation: kept.
        let extensions = with("Sec-WebSocket-Extensions");
        assert!(check_accept(None, &extensions).is_ok());
        assert!(check_caller_fields(&extensions).is_err());
        let head = String::from_utf8(accept_response("k", None, &extensions)).unwrap();
        assert!(head.contains("Sec-WebSocket-Extensions: x\r\n"), "{head}");
    }

    #[test]
    fn a_refusal_never_carries_a_second_framing() {
        for name in ["Content-Length", "transfer-encoding", "CONNECTION"] {
            let head = String::from_utf8(reject_response(401, &with(name), b"abc")).unwrap();
            assert_eq!(head.matches(": x\r\n").count(), 0, "{head}");
            assert!(head.contains("Content-Length: 3\r\n"), "{head}");
        }
    }
}
