//! The HTTP/1.1 heads of the handshake as values: [`Request`] and [`Response`], parsed from bytes
//! within [`HeadLimits`].

use super::fields::Headers;
use crate::proto::error::HandshakeError;
use crate::proto::frame::Decoded;

/// A client's opening handshake request, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request {
    /// The method; a WebSocket upgrade is a GET.
    pub method: String,
    /// The request target: path and query, e.g. `/chat?room=1`. An upgrade request always has
    /// this origin form ([`check_request`](super::check_request) refuses others); a plain HTTP request may not.
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
/// HTTP/1.0 parses (a plain page request may use it); [`check_request`](super::check_request) refuses it for an upgrade.
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
