//! The core's own errors: what a peer or a caller can get wrong while [`Connection`] and the
//! handshake functions run. The crate-wide `syncws::Error` wraps these; nothing here knows
//! about sockets, TLS or URLs.
//!
//! [`Connection`]: super::Connection

use super::close::CloseCode;
use super::handshake::Response;
use std::fmt;

/// What a [`Connection`](super::Connection) (or its halves) can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol; a close frame with [`ProtocolError::close_code`] was queued
    /// and the connection is closed.
    Protocol(ProtocolError),
    /// The connection had ended (closed, failed, or a close frame was sent) when this call tried
    /// to use it.
    AlreadyClosed,
    /// The caller asked for something the protocol does not allow, e.g. a 126-byte ping, a close
    /// code that may not be sent, or a new message while a streamed one is unfinished.
    InvalidInput(&'static str),
    /// Our permessage-deflate compressor failed; the connection was failed with close code 1011
    /// (RFC 6455 §7.4.1, "an unexpected condition") rather than send a truncated stream.
    CompressionFailed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(e) => write!(f, "protocol violation by the peer: {e}"),
            Error::AlreadyClosed => f.write_str("the connection was already closed"),
            Error::InvalidInput(what) => write!(f, "invalid input: {what}"),
            Error::CompressionFailed => f.write_str(
                "permessage-deflate compression failed; the connection was failed with 1011",
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Error {
        Error::Protocol(e)
    }
}

/// A [`Config`](super::config::Config) value out of range, found by
/// [`Config::validate`](super::config::Config::validate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    reason: &'static str,
}

impl ConfigError {
    pub(crate) const fn new(reason: &'static str) -> ConfigError {
        ConfigError { reason }
    }

    /// Which value is wrong and why.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// A violation of RFC 6455 (or of a limit this endpoint sets) by the peer. Each maps to the close
/// code sent when failing the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// RSV1, RSV2 or RSV3 set without an extension that defines it (§5.2).
    ReservedBits,
    /// An opcode reserved for future use (§5.2).
    ReservedOpcode(u8),
    /// A 64-bit payload length with the most significant bit set (§5.2).
    InvalidLength,
    /// A client frame without a mask (§5.1).
    UnmaskedFrame,
    /// A server frame with a mask (§5.1).
    MaskedFrame,
    /// A control frame longer than 125 bytes (§5.5).
    ControlFrameTooLong,
    /// A control frame without FIN (§5.5).
    FragmentedControlFrame,
    /// A continuation frame with no message to continue (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message was unfinished (§5.4).
    ExpectedContinuation,
    /// A close frame with a 1-byte payload (§5.5.1).
    InvalidClosePayload,
    /// A close code that may not be sent (§7.4): 1005, 1006, 1015, reserved or unassigned.
    InvalidCloseCode(u16),
    /// Text (or a close reason) that is not UTF-8 (§8.1).
    InvalidUtf8,
    /// A frame longer than the configured `max_frame_size` (§10.4).
    FrameTooLarge,
    /// A message longer than the configured `max_message_size` (§10.4).
    MessageTooLarge,
    /// Compressed data that does not inflate (RFC 7692 §6.2).
    InvalidCompressedData,
    /// Pings and pongs faster than the configured rate: not an RFC 6455 rule but this endpoint's
    /// policy against floods (close code 1008, §7.4.1).
    ControlFrameFlood,
}

impl ProtocolError {
    /// The close code RFC 6455 §7.4.1 assigns to this violation.
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::InvalidPayload
            }
            ProtocolError::FrameTooLarge | ProtocolError::MessageTooLarge => CloseCode::TooBig,
            ProtocolError::ControlFrameFlood => CloseCode::Policy,
            _ => CloseCode::Protocol,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            ProtocolError::ReservedBits => "reserved bits set without a negotiated extension",
            ProtocolError::ReservedOpcode(op) => return write!(f, "reserved opcode {op:#x}"),
            ProtocolError::InvalidLength => "payload length with its most significant bit set",
            ProtocolError::UnmaskedFrame => "unmasked frame from a client",
            ProtocolError::MaskedFrame => "masked frame from a server",
            ProtocolError::ControlFrameTooLong => "control frame longer than 125 bytes",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::UnexpectedContinuation => "continuation frame with nothing to continue",
            ProtocolError::ExpectedContinuation => "new message inside a fragmented message",
            ProtocolError::InvalidClosePayload => "close frame with a 1-byte payload",
            ProtocolError::InvalidCloseCode(code) => {
                return write!(f, "close code {code} may not be sent");
            }
            ProtocolError::InvalidUtf8 => "invalid UTF-8 in text",
            ProtocolError::FrameTooLarge => "frame larger than max_frame_size",
            ProtocolError::MessageTooLarge => "message larger than max_message_size",
            ProtocolError::InvalidCompressedData => "compressed data that does not inflate",
            ProtocolError::ControlFrameFlood => "pings and pongs faster than the allowed rate",
        };
        write!(f, "{what} (close code {})", self.close_code().as_u16())
    }
}

impl std::error::Error for ProtocolError {}

/// Why an opening handshake failed, on either side.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The HTTP head is malformed.
    Malformed(&'static str),
    /// The head is larger than `max_handshake_size` (server answers 431).
    HeadTooLarge,
    /// More header lines than `max_headers` (server answers 431).
    TooManyHeaders,
    /// The request method is not GET (server answers 405).
    MethodNotAllowed(String),
    /// An upgrade request that is not HTTP/1.1 (server answers 505).
    UnsupportedHttpVersion,
    /// A required header is missing or has the wrong value (server answers 400).
    BadHeader(&'static str),
    /// `Sec-WebSocket-Version` is not 13 (server answers 426 with `Sec-WebSocket-Version: 13`).
    UnsupportedVersion,
    /// The request has no `Upgrade` header: plain HTTP (answered with 400).
    NotUpgrade,
    /// The server's accept hook rejected the request with this status.
    Rejected(u16),
    /// The server answered something other than 101; the whole response is here.
    UnexpectedResponse(Box<Response>),
    /// `Sec-WebSocket-Accept` does not match the key we sent.
    InvalidAccept,
    /// The server selected a subprotocol we did not offer, or none when it had to.
    InvalidSubprotocol,
    /// The server selected an extension we did not offer.
    InvalidExtension(String),
    /// More redirects than the client allows, a redirect without `Location`, or one from
    /// `wss://` to `ws://` (never followed: it would drop encryption).
    BadRedirect(String),
    /// The peer closed the connection before the handshake finished.
    ConnectionClosed,
    /// The handshake did not finish within its deadline.
    Timeout,
    /// A header name, header value, subprotocol name or request target this side was asked to
    /// send breaks RFC 9110's field grammar or RFC 3986 (e.g. a CR or LF that would add header
    /// lines). Nothing was sent; a server answers 500 instead.
    InvalidField(String),
    /// A request carries this header (lower case) more than once where only one may be
    /// (server answers 400).
    DuplicateField(&'static str),
}

impl HandshakeError {
    /// The HTTP status a server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::HeadTooLarge | HandshakeError::TooManyHeaders => 431,
            HandshakeError::MethodNotAllowed(_) => 405,
            HandshakeError::UnsupportedHttpVersion => 505,
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::Rejected(status) => *status,
            HandshakeError::Timeout => 408,
            HandshakeError::InvalidField(_) => 500,
            _ => 400,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Malformed(what) => write!(f, "malformed HTTP head: {what}"),
            HandshakeError::HeadTooLarge => f.write_str("HTTP head too large"),
            HandshakeError::TooManyHeaders => f.write_str("too many header lines"),
            HandshakeError::MethodNotAllowed(m) => write!(f, "method {m} is not GET"),
            HandshakeError::UnsupportedHttpVersion => f.write_str("HTTP version is not 1.1"),
            HandshakeError::BadHeader(what) => f.write_str(what),
            HandshakeError::UnsupportedVersion => f.write_str("Sec-WebSocket-Version is not 13"),
            HandshakeError::NotUpgrade => f.write_str("not a WebSocket upgrade request"),
            HandshakeError::Rejected(status) => write!(f, "rejected with status {status}"),
            HandshakeError::UnexpectedResponse(r) => {
                write!(
                    f,
                    "server answered {} {} instead of 101",
                    r.status, r.reason
                )
            }
            HandshakeError::InvalidAccept => f.write_str("Sec-WebSocket-Accept does not match"),
            HandshakeError::InvalidSubprotocol => {
                f.write_str("server chose an unoffered subprotocol")
            }
            HandshakeError::InvalidExtension(e) => {
                write!(f, "server chose an unoffered extension: {e}")
            }
            HandshakeError::BadRedirect(why) => write!(f, "redirect not followed: {why}"),
            HandshakeError::ConnectionClosed => {
                f.write_str("connection closed during the handshake")
            }
            HandshakeError::Timeout => f.write_str("handshake timed out"),
            HandshakeError::InvalidField(what) => write!(f, "not sent: {what}"),
            HandshakeError::DuplicateField(name) => write!(f, "more than one {name} header"),
        }
    }
}

impl std::error::Error for HandshakeError {}
