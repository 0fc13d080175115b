//! The client's side (RFC 6455 §4.1): writing the upgrade request and checking the server's
//! response.

use super::accept_key;
use super::fields::{Headers, check_field, check_subprotocols};
use super::heads::Response;
use crate::proto::error::HandshakeError;
use std::fmt::Write as _;

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

/// No further header fields: what [`ClientRequest::new`] starts with.
static NO_HEADERS: Headers = Headers::EMPTY;

impl<'a> ClientRequest<'a> {
    /// A request for `target` (path and query) on `host` with the `Sec-WebSocket-Key` `key`;
    /// no subprotocols, extensions or further headers until those fields are set.
    pub fn new(host: &'a str, target: &'a str, key: &'a str) -> ClientRequest<'a> {
        ClientRequest {
            host,
            target,
            key,
            subprotocols: &[],
            extensions: None,
            headers: &NO_HEADERS,
        }
    }
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
