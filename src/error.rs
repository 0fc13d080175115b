//! One error type for the whole crate, with comparable sub-enums for protocol and handshake faults.

use crate::proto::close::CloseCode;
use crate::proto::handshake::Response;
use std::{fmt, io};

/// Everything that can go wrong in syncws.
///
/// Three endings are kept apart: [`Error::ConnectionClosed`] (the closing handshake finished
/// cleanly), [`Error::AlreadyClosed`] (the caller used a connection after it ended) and
/// [`Error::Protocol`] (the peer broke RFC 6455; the close frame we sent carried
/// [`ProtocolError::close_code`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The closing handshake is complete and the connection is over. Not a failure: a read loop
    /// ends here after the peer's [`Message::Close`](crate::Message::Close) was returned.
    ConnectionClosed,
    /// The connection had already ended (closed, failed, or a close frame was sent) when this call
    /// tried to use it: a mistake in the calling code.
    AlreadyClosed,
    /// The peer violated the protocol; the connection was failed with the code this error names.
    Protocol(ProtocolError),
    /// The opening handshake failed.
    Handshake(HandshakeError),
    /// The URL given to connect is not a usable `ws://` or `wss://` URL.
    Url(UrlError),
    /// The caller asked for something the protocol does not allow, e.g. a 126-byte ping, a close
    /// code that may not be sent, or a text stream fed invalid UTF-8.
    InvalidInput(&'static str),
    /// A configuration value is out of range.
    InvalidConfig(&'static str),
    /// TLS failed: setup, handshake, or certificate verification.
    Tls(String),
    /// The HTTP proxy refused or failed to open a tunnel.
    Proxy(String),
    /// A reconnecting client is between connections and cannot take the message (its outbox is
    /// full or disabled), or it gave up reconnecting.
    Disconnected,
    /// The transport failed: includes timeouts (`WouldBlock`/`TimedOut`) and a peer that vanished
    /// without a close frame (`UnexpectedEof`).
    Io(io::Error),
}

impl Error {
    /// Whether this is a timeout of a read or write deadline; the operation can be retried.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ConnectionClosed => f.write_str("connection closed normally"),
            Error::AlreadyClosed => f.write_str("the connection was already closed"),
            Error::Protocol(e) => write!(f, "protocol violation by the peer: {e}"),
            Error::Handshake(e) => write!(f, "opening handshake failed: {e}"),
            Error::Url(e) => write!(f, "invalid WebSocket URL: {e}"),
            Error::InvalidInput(what) => write!(f, "invalid input: {what}"),
            Error::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
            Error::Tls(what) => write!(f, "TLS error: {what}"),
            Error::Proxy(what) => write!(f, "proxy error: {what}"),
            Error::Disconnected => f.write_str("not connected (reconnecting, or gave up)"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Protocol(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::Url(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Error {
        Error::Protocol(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Error {
        Error::Handshake(e)
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Error {
        Error::Url(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            Error::ConnectionClosed | Error::AlreadyClosed => {
                io::Error::new(io::ErrorKind::NotConnected, e)
            }
            Error::InvalidInput(_) | Error::InvalidConfig(_) => {
                io::Error::new(io::ErrorKind::InvalidInput, e)
            }
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

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

/// Why a URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is not `ws` or `wss`.
    UnsupportedScheme(String),
    /// There is no host.
    MissingHost,
    /// The port is not a number from 1 to 65535.
    InvalidPort,
    /// An IPv6 literal without its closing bracket, or a character not allowed in a host.
    InvalidHost,
    /// The URL has a `#fragment`, which RFC 6455 §3 forbids.
    Fragment,
    /// `wss://` needs the `native-tls` feature, which this build lacks.
    TlsNotEnabled,
    /// The path or query has a control character (CR, LF, NUL, ...) or a `%` not followed by
    /// two hex digits (RFC 3986 §2.1); other characters outside RFC 3986 are percent-encoded.
    InvalidTarget,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::UnsupportedScheme(s) => write!(f, "scheme {s:?} is not ws or wss"),
            UrlError::MissingHost => f.write_str("no host"),
            UrlError::InvalidPort => f.write_str("invalid port"),
            UrlError::InvalidHost => f.write_str("invalid host"),
            UrlError::Fragment => f.write_str("fragments (#...) are not allowed in WebSocket URLs"),
            UrlError::InvalidTarget => {
                f.write_str("the path or query has a control character or a malformed %-escape")
            }
            UrlError::TlsNotEnabled => {
                f.write_str("wss:// needs TLS: build syncws with the `native-tls` feature")
            }
        }
    }
}

impl std::error::Error for UrlError {}
