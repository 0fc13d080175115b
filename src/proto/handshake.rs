//! The opening handshake (RFC 6455 §4): building and checking the HTTP/1.1 upgrade request and
//! its `101 Switching Protocols` response, without I/O.

use super::frame::Decoded;
use crate::proto::error::HandshakeError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};
use std::fmt::Write as _;

/// The GUID RFC 6455 §1.3 appends to the client's key before hashing.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
///
/// ```
/// // The example of RFC 6455 §1.3.
/// assert_eq!(syncws::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.trim().as_bytes());
    sha1.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64 (RFC 6455 §4.1, §10.3).
pub fn generate_key() -> String {
    BASE64.encode(rand::random::<[u8; 16]>())
}

/// HTTP header fields in arrival order, looked up case-insensitively (RFC 7230 §3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Appends a field.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether any `name` field lists `token` in its comma-separated value (case-insensitive),
    /// as `Connection: keep-alive, Upgrade` lists `upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// All fields as (name, value) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn from_httparse(headers: &[httparse::Header<'_>]) -> Headers {
        Headers(
            headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
        )
    }

    /// Checks every field against RFC 9110's grammar: the name a token (§5.1), the value a
    /// field-value (§5.5), so no CR, LF or NUL can split the head into extra lines.
    ///
    /// Errors: [`HandshakeError::InvalidField`] naming the first bad field.
    pub fn validate(&self) -> Result<(), HandshakeError> {
        self.0
            .iter()
            .try_for_each(|(name, value)| check_field(name, value))
    }

    /// Writes the fields as header lines. A field that fails [`Headers::validate`] is left out:
    /// the callers in this crate validate first and report it; this only keeps a forgotten check
    /// from ever putting a caller's CR/LF on the wire.
    fn write_to(&self, out: &mut String) {
        for (name, value) in &self.0 {
            if check_field(name, value).is_ok() {
                let _ = write!(out, "{name}: {value}\r\n");
            }
        }
    }
}

/// Whether `s` is an RFC 9110 §5.6.2 token: one or more `tchar`s. Header names and
/// subprotocol names (RFC 6455 §4.1) are tokens.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `s` is an RFC 9110 §5.5 field-value: visible characters (and obs-text, bytes from
/// 0x80) with spaces or tabs between them but not around them; no CR, LF, NUL or other control.
pub fn is_field_value(s: &str) -> bool {
    let visible = |b: u8| b > 0x20 && b != 0x7f;
    let bytes = s.as_bytes();
    let edges_ok = match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => visible(first) && visible(last),
        _ => true,
    };
    edges_ok && bytes.iter().all(|&b| visible(b) || b == b' ' || b == b'\t')
}

/// One field against the grammar; the error names the field but never echoes its value, which
/// may be a secret.
fn check_field(name: &str, value: &str) -> Result<(), HandshakeError> {
    if !is_token(name) {
        return Err(HandshakeError::InvalidField(format!(
            "header name {name:?} is not an RFC 9110 token"
        )));
    }
    if !is_field_value(value) {
        return Err(HandshakeError::InvalidField(format!(
            "value of header {name} has a control character (CR, LF, NUL...) or surrounding whitespace"
        )));
    }
    Ok(())
}

/// Checks subprotocol names: each must be a token (RFC 6455 §4.1).
pub fn check_subprotocols<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), HandshakeError> {
    for name in names {
        if !is_token(name) {
            return Err(HandshakeError::InvalidField(format!(
                "subprotocol {name:?} is not an RFC 9110 token"
            )));
        }
    }
    Ok(())
}

/// A client's opening handshake request, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// The method; a WebSocket upgrade is a GET.
    pub method: String,
    /// The request target: path and query, e.g. `/chat?room=1`. An upgrade request always has
    /// this origin form ([`check_request`] refuses others); a plain HTTP request may not.
    pub target: String,
    /// The HTTP minor version: 1 for HTTP/1.1, 0 for HTTP/1.0 (plain HTTP only: an upgrade
    /// needs 1.1).
    pub version: u8,
    /// The header fields.
    pub headers: Headers,
}

impl Request {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(&self.target, |(path, _)| path)
    }

    /// The query string after `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// The value of query parameter `name` (the first one; not percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The value of cookie `name` from the `Cookie` headers.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all("cookie")
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// The subprotocols the client offers, in its order of preference.
    pub fn subprotocols(&self) -> impl Iterator<Item = &str> {
        self.headers
            .get_all("sec-websocket-protocol")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
    }

    /// The `Origin` header, sent by browsers.
    pub fn origin(&self) -> Option<&str> {
        self.header("origin")
    }
}

/// A server's answer to the opening handshake, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The status code: 101 on success.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// The header fields.
    pub headers: Headers,
    /// Body bytes that came with a non-101 answer (as far as they were read).
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The subprotocol the server selected.
    pub fn subprotocol(&self) -> Option<&str> {
        self.header("sec-websocket-protocol")
    }
}

/// Limits on an HTTP head, applied while parsing.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct HeadLimits {
    /// The largest head, request line to blank line.
    pub max_size: usize,
    /// The most header fields.
    pub max_headers: usize,
}

impl HeadLimits {
    /// At most `max_size` bytes, request or status line to blank line, and `max_headers` fields.
    pub const fn new(max_size: usize, max_headers: usize) -> HeadLimits {
        HeadLimits {
            max_size,
            max_headers,
        }
    }
}

fn map_httparse(e: httparse::Error) -> HandshakeError {
    match e {
        httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders,
        httparse::Error::Version => HandshakeError::UnsupportedHttpVersion,
        httparse::Error::HeaderName => HandshakeError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HandshakeError::Malformed("invalid header value"),
        httparse::Error::NewLine => HandshakeError::Malformed("invalid line ending"),
        httparse::Error::Status => HandshakeError::Malformed("invalid status"),
        httparse::Error::Token => HandshakeError::Malformed("invalid token"),
    }
}

/// Parses a request head from the start of `buf`. `Complete` carries the head's length: bytes
/// after it already belong to the WebSocket stream.
///
/// A head that is still incomplete at `limits.max_size` bytes is `HeadTooLarge` (431).
/// HTTP/1.0 parses (a plain page request may use it); [`check_request`] refuses it for an upgrade.
/// A second `Host` is an error for every request (RFC 9112 §3.2).
pub fn parse_request(buf: &[u8], limits: HeadLimits) -> Result<Decoded<Request>, HandshakeError> {
    let mut fields = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut fields);
    let window = &buf[..buf.len().min(limits.max_size)];
    match req.parse(window).map_err(map_httparse)? {
        httparse::Status::Partial if window.len() >= limits.max_size => {
            Err(HandshakeError::HeadTooLarge)
        }
        httparse::Status::Partial => Ok(Decoded::Partial),
        httparse::Status::Complete(len) => {
            // RFC 9112 §3.2: a request with more than one Host gets 400, page or upgrade.
            if req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("host"))
                .nth(1)
                .is_some()
            {
                return Err(HandshakeError::DuplicateField("host"));
            }
            // httparse reads HTTP/1.0 and 1.1 only.
            let request = Request {
                method: req.method.unwrap_or_default().to_owned(),
                target: req.path.unwrap_or_default().to_owned(),
                version: req.version.unwrap_or_default(),
                headers: Headers::from_httparse(req.headers),
            };
            Ok(Decoded::Complete(request, len))
        }
    }
}

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

/// Checks what a server is about to put in a 101: the subprotocol a token, the extra headers
/// RFC 9110 fields. Call it before [`accept_response`] to refuse (500) instead of answering.
pub fn check_accept(protocol: Option<&str>, extra: &Headers) -> Result<(), HandshakeError> {
    check_subprotocols(protocol)?;
    extra.validate()
}

/// The `101 Switching Protocols` answer to a checked request. Fields that fail
/// [`check_accept`] are left out.
pub fn accept_response(key: &str, protocol: Option<&str>, extra: &Headers) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if let Some(protocol) = protocol.filter(|p| is_token(p)) {
        let _ = write!(head, "Sec-WebSocket-Protocol: {protocol}\r\n");
    }
    extra.write_to(&mut head);
    head.push_str("\r\n");
    head.into_bytes()
}

/// A refusal: `status` with `headers` and a plain-text `body`; the connection closes after it.
/// Fields that fail [`Headers::validate`] are left out.
pub fn reject_response(status: u16, extra: &Headers, body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        reason_phrase(status),
        body.len()
    );
    if extra.get("content-type").is_none() && !body.is_empty() {
        head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    extra.write_to(&mut head);
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

/// What a client puts in its upgrade request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientRequest<'a> {
    /// The `Host` header value (host, and port when not the default).
    pub host: &'a str,
    /// The request target: path and query.
    pub target: &'a str,
    /// The `Sec-WebSocket-Key`.
    pub key: &'a str,
    /// Subprotocols offered, most preferred first.
    pub subprotocols: &'a [String],
    /// The `Sec-WebSocket-Extensions` offer, if any.
    pub extensions: Option<&'a str>,
    /// Further header fields.
    pub headers: &'a Headers,
}

impl ClientRequest<'_> {
    /// Checks everything that goes on the wire: the target an origin-form request target of
    /// RFC 3986 characters (the blocking layer's `WsUrl` builds one), the host a value,
    /// the subprotocols tokens, the headers RFC 9110 fields. [`to_bytes`](Self::to_bytes) of a
    /// request that fails this would not be the request asked for.
    ///
    /// Errors: [`HandshakeError::InvalidField`].
    pub fn validate(&self) -> Result<(), HandshakeError> {
        let target_ok = self.target.starts_with('/')
            && self
                .target
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'#');
        if !target_ok {
            return Err(HandshakeError::InvalidField(format!(
                "request target {:?} is not a path of RFC 3986 characters",
                self.target
            )));
        }
        check_field("Host", self.host)?;
        check_field("Sec-WebSocket-Key", self.key)?;
        if let Some(extensions) = self.extensions {
            check_field("Sec-WebSocket-Extensions", extensions)?;
        }
        check_subprotocols(self.subprotocols.iter().map(String::as_str))?;
        self.headers.validate()
    }

    /// The request head (RFC 6455 §4.1). Call [`validate`](Self::validate) first: header
    /// fields that fail it are left out, but a bad target or host is written as given.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
            self.target, self.host, self.key
        );
        if !self.subprotocols.is_empty() {
            let _ = write!(
                head,
                "Sec-WebSocket-Protocol: {}\r\n",
                self.subprotocols.join(", ")
            );
        }
        if let Some(extensions) = self.extensions {
            let _ = write!(head, "Sec-WebSocket-Extensions: {extensions}\r\n");
        }
        self.headers.write_to(&mut head);
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// Parses a response head from the start of `buf`; bytes after it belong to the WebSocket stream.
pub fn parse_response(buf: &[u8], limits: HeadLimits) -> Result<Decoded<Response>, HandshakeError> {
    let mut fields = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut res = httparse::Response::new(&mut fields);
    let window = &buf[..buf.len().min(limits.max_size)];
    match res.parse(window).map_err(map_httparse)? {
        httparse::Status::Partial if window.len() >= limits.max_size => {
            Err(HandshakeError::HeadTooLarge)
        }
        httparse::Status::Partial => Ok(Decoded::Partial),
        httparse::Status::Complete(len) => {
            let response = Response {
                status: res.code.unwrap_or_default(),
                reason: res.reason.unwrap_or_default().to_owned(),
                headers: Headers::from_httparse(res.headers),
                body: Vec::new(),
            };
            Ok(Decoded::Complete(response, len))
        }
    }
}

/// Checks a response against RFC 6455 §4.1 (the client's side); returns the selected subprotocol.
pub fn check_response(
    response: &Response,
    key: &str,
    offered: &[String],
) -> Result<Option<String>, HandshakeError> {
    if response.status != 101 {
        return Err(HandshakeError::UnexpectedResponse(Box::new(
            response.clone(),
        )));
    }
    let headers = &response.headers;
    if !headers.has_token("upgrade", "websocket") {
        return Err(HandshakeError::BadHeader(
            "response Upgrade is not websocket",
        ));
    }
    if !headers.has_token("connection", "upgrade") {
        return Err(HandshakeError::BadHeader(
            "response Connection does not include Upgrade",
        ));
    }
    if headers.get("sec-websocket-accept").map(str::trim) != Some(accept_key(key).as_str()) {
        return Err(HandshakeError::InvalidAccept);
    }
    // RFC 6455 §4.1: a subprotocol "that was not present in the client's handshake" fails.
    match response.subprotocol().map(str::trim) {
        None => Ok(None),
        Some(chosen) if offered.iter().any(|p| p == chosen) => Ok(Some(chosen.to_owned())),
        Some(_) => Err(HandshakeError::InvalidSubprotocol),
    }
}

#[cfg(test)]
mod tests {
    //! RFC 6455 §1.3 and §4.
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_size: 8192,
        max_headers: 32,
    };

    #[test]
    fn accept_keys_from_the_rfc_and_real_traffic() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            accept_key("pNgZr2dChVwcNts30DxZiQ=="),
            "W3UNJiLyRMXlwQ2lsHe8hNFegRU="
        );
        assert_eq!(
            accept_key("x3JJHMbDL1EzLkh9GBhXDw=="),
            "HSmrc0sMlYUkAGmm5OPpG2HaGWk="
        );
    }

    #[test]
    fn generated_keys_are_16_random_bytes() {
        let (a, b) = (generate_key(), generate_key());
        assert_eq!(BASE64.decode(&a).unwrap().len(), 16);
        assert_ne!(a, b);
    }

    fn request(text: &str) -> Request {
        match parse_request(text.as_bytes(), LIMITS).unwrap() {
            Decoded::Complete(req, _) => req,
            Decoded::Partial => panic!("partial"),
        }
    }

    const GOOD: &str = "GET /chat?room=1&token=abc HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: a=1; session=xyz\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n";

    #[test]
    fn the_rfc_request_is_accepted() {
        let req = request(GOOD);
        assert_eq!(check_request(&req).unwrap(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(
            (req.path(), req.query_param("token")),
            ("/chat", Some("abc"))
        );
        assert_eq!(req.cookie("session"), Some("xyz"));
        assert_eq!(
            req.subprotocols().collect::<Vec<_>>(),
            ["chat", "superchat"]
        );
        let response = String::from_utf8(accept_response(
            "dGhlIHNhbXBsZSBub25jZQ==",
            Some("chat"),
            &Headers::new(),
        ))
        .unwrap();
        assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(response.contains("Sec-WebSocket-Protocol: chat\r\n"));
    }

    #[test]
    fn each_fault_has_its_status() {
        let cases = [
            (GOOD.replace("GET", "POST"), 405),
            (GOOD.replace("Upgrade: websocket\r\n", ""), 400),
            (GOOD.replace("Upgrade: websocket", "Upgrade: h2c"), 400),
            (GOOD.replace("keep-alive, Upgrade", "keep-alive"), 400),
            (GOOD.replace("Host: server.example.com\r\n", ""), 400),
            (GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="), 400),
            (
                GOOD.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
                400,
            ),
            (GOOD.replace("Version: 13", "Version: 8"), 426),
        ];
        for (text, status) in cases {
            let err = check_request(&request(&text)).unwrap_err();
            assert_eq!(err.status(), status, "{err}");
        }
        // HTTP/1.0 parses (a plain page request), but an upgrade needs 1.1.
        let v10 = request(&GOOD.replace("HTTP/1.1", "HTTP/1.0"));
        assert_eq!(v10.version, 0);
        assert_eq!(check_request(&v10).unwrap_err().status(), 505);
    }

    #[test]
    fn duplicates_bodies_and_other_targets_are_400() {
        let with = |extra: &str| GOOD.replace("\r\n\r\n", &format!("\r\n{extra}\r\n\r\n"));
        for text in [with("Host: evil.example"), with("HOST: server.example.com")] {
            assert_eq!(
                parse_request(text.as_bytes(), LIMITS),
                Err(HandshakeError::DuplicateField("host"))
            );
        }
        let cases = [
            with("Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw=="),
            with("Sec-WebSocket-Version: 8"),
            with("Origin: https://a.example\r\nOrigin: https://evil.example"),
            with("Content-Length: 5"),
            with("Transfer-Encoding: chunked"),
            GOOD.replace(
                "GET /chat?room=1&token=abc",
                "GET http://evil.example/admin",
            ),
            GOOD.replace("GET /chat?room=1&token=abc", "GET *"),
        ];
        for text in cases {
            let err = check_request(&request(&text)).unwrap_err();
            assert_eq!(err.status(), 400, "{err}: {text}");
        }
        assert!(check_request(&request(&with("Content-Length: 0"))).is_ok());
        assert!(check_request(&request(&with("Origin: https://a.example"))).is_ok());
    }

    #[test]
    fn fields_follow_rfc_9110() {
        for good in ["X-Test", "a", "!#$%&'*+-.^_`|~09azAZ"] {
            assert!(is_token(good), "{good}");
        }
        for bad in ["", "X Test", "X:Test", "X\r\nY", "é", "(x)"] {
            assert!(!is_token(bad), "{bad:?}");
        }
        for good in ["", "a", "a b\tc", "caf\u{e9}", "Bearer abc=="] {
            assert!(is_field_value(good), "{good:?}");
        }
        for bad in [
            "a\r\nInjected: yes",
            "a\nb",
            "a\rb",
            "a\0b",
            " a",
            "a ",
            "\ta",
            "a\x7f",
        ] {
            assert!(!is_field_value(bad), "{bad:?}");
        }
        let mut headers = Headers::new();
        headers.push("X-Test", "a\r\nInjected: yes");
        assert!(matches!(
            headers.validate(),
            Err(HandshakeError::InvalidField(_))
        ));
        // Even unchecked, the writers leave the field out rather than split the head.
        let head = String::from_utf8(reject_response(403, &headers, b"")).unwrap();
        assert!(!head.contains("Injected"), "{head}");
        let head = String::from_utf8(accept_response("k", Some("a\r\nB: c"), &headers)).unwrap();
        assert!(
            !head.contains("Injected") && !head.contains("B: c"),
            "{head}"
        );
    }

    #[test]
    fn version_426_names_13() {
        let text = String::from_utf8(error_response(&HandshakeError::UnsupportedVersion)).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
    }

    #[test]
    fn head_limits_give_431() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(9000));
        assert_eq!(
            parse_request(big.as_bytes(), LIMITS),
            Err(HandshakeError::HeadTooLarge)
        );
        let many: String = (0..40).map(|i| format!("X-{i}: v\r\n")).collect();
        let text = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse_request(text.as_bytes(), LIMITS),
            Err(HandshakeError::TooManyHeaders)
        );
    }

    #[test]
    fn partial_heads_are_not_errors() {
        for cut in 0..GOOD.len() {
            assert_eq!(
                parse_request(&GOOD.as_bytes()[..cut], LIMITS),
                Ok(Decoded::Partial)
            );
        }
    }

    #[test]
    fn response_checks() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n";
        let parse = |text: &str| match parse_response(text.as_bytes(), LIMITS).unwrap() {
            Decoded::Complete(r, _) => r,
            Decoded::Partial => panic!(),
        };
        let offered = vec!["chat".to_owned()];
        assert_eq!(
            check_response(&parse(ok), key, &offered),
            Ok(Some("chat".into()))
        );
        assert_eq!(
            check_response(&parse(ok), key, &[]),
            Err(HandshakeError::InvalidSubprotocol)
        );
        let bad_accept = ok.replace("s3pP", "AAAA");
        assert_eq!(
            check_response(&parse(&bad_accept), key, &offered),
            Err(HandshakeError::InvalidAccept)
        );
        let refused = parse("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        assert!(
            matches!(check_response(&refused, key, &offered), Err(HandshakeError::UnexpectedResponse(r)) if r.status == 403)
        );
    }
}
