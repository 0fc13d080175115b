//! The opening handshake (RFC 6455 §4): building and checking the HTTP/1.1 upgrade request and
//! its `101 Switching Protocols` response, without I/O.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

mod client;
mod fields;
mod heads;
mod server;

pub use client::{ClientRequest, check_response};
pub use fields::{Headers, check_subprotocols, is_field_value, is_token};
pub use heads::{HeadLimits, Request, Response, parse_request, parse_response};
pub(crate) use server::check_caller_fields;
pub use server::{
    accept_response, check_accept, check_request, error_response, reason_phrase, reject_response,
};

/// The GUID RFC 6455 §1.3 appends to the client's key before hashing.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
///
/// ```
/// // The example of RFC 6455 §1.3.
/// assert_eq!(syncws::proto::handshake::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
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

#[cfg(test)]
mod tests;
