//! The crate's error type. [`Error`] wraps the sans-I/O core's errors ([`ProtocolError`],
//! [`HandshakeError`]) and adds what only the I/O layers can meet: URLs, TLS, proxies, the
//! transport. Every wrapped error is reachable through [`std::error::Error::source`].

use crate::proto::error::{ConfigError, Error as CoreError};
pub use crate::proto::error::{HandshakeError, ProtocolError};
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
    Tls(TlsError),
    /// The HTTP proxy refused or failed to open a tunnel.
    Proxy(ProxyError),
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
            Error::Tls(e) => write!(f, "TLS error: {e}"),
            Error::Proxy(e) => write!(f, "proxy error: {e}"),
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
            Error::Tls(e) => Some(e),
            Error::Proxy(e) => Some(e),
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

impl From<TlsError> for Error {
    fn from(e: TlsError) -> Error {
        Error::Tls(e)
    }
}

impl From<ProxyError> for Error {
    fn from(e: ProxyError) -> Error {
        Error::Proxy(e)
    }
}

/// The core's errors map one to one onto the crate's; a failed compressor, which the core
/// reports on its own, surfaces as an I/O error (the connection is gone) that keeps it as source.
impl From<CoreError> for Error {
    fn from(e: CoreError) -> Error {
        match e {
            CoreError::Protocol(e) => Error::Protocol(e),
            CoreError::AlreadyClosed => Error::AlreadyClosed,
            CoreError::InvalidInput(what) => Error::InvalidInput(what),
            other => Error::Io(io::Error::other(other)),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::InvalidConfig(e.reason())
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

/// The error a TLS library reported, kept as [`source`](std::error::Error::source).
type BoxedSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// TLS failed: setup (certificates, keys), the handshake, or verification of the peer. Says
/// which step failed; the TLS library's own error, when there is one, is the
/// [`source`](std::error::Error::source).
#[derive(Debug)]
#[non_exhaustive]
pub struct TlsError {
    context: String,
    source: Option<BoxedSource>,
}

#[cfg_attr(not(feature = "native-tls"), allow(dead_code))]
impl TlsError {
    /// A failure of the step `context` names, caused by `source`.
    pub(crate) fn new(context: impl Into<String>, source: impl Into<BoxedSource>) -> TlsError {
        TlsError {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A failure with no underlying error (e.g. a timeout, or a PEM without a certificate).
    pub(crate) fn message(context: impl Into<String>) -> TlsError {
        TlsError {
            context: context.into(),
            source: None,
        }
    }

    /// Which step failed, e.g. "invalid root certificate" or "TLS handshake with example.com
    /// failed".
    pub fn context(&self) -> &str {
        &self.context
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.context),
            None => f.write_str(&self.context),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// An HTTP proxy did not open the tunnel (`CONNECT`, RFC 9110 §9.3.6).
#[derive(Debug)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy closed the connection before answering; the source is the `UnexpectedEof`.
    Closed(io::Error),
    /// The proxy wants credentials, or refused the ones given (401 or 407).
    Unauthorized(u16),
    /// The proxy answered with this status and reason instead of 2xx.
    Refused(u16, String),
}

impl ProxyError {
    /// The HTTP status the proxy answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ProxyError::Unauthorized(status) | ProxyError::Refused(status, _) => Some(*status),
            ProxyError::Closed(_) => None,
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::Closed(_) => f.write_str("the proxy closed the connection"),
            ProxyError::Unauthorized(status) => write!(
                f,
                "the proxy refused the credentials ({status}); give them as \
                 http://user:password@host:port"
            ),
            ProxyError::Refused(status, reason) => {
                write!(f, "the proxy refused the tunnel: {status} {reason}")
            }
        }
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProxyError::Closed(e) => Some(e),
            _ => None,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_tls_error_keeps_the_library_error_as_its_source() {
        let cause = io::Error::new(io::ErrorKind::InvalidData, "bad certificate");
        let error = Error::from(TlsError::new("invalid root certificate", cause));
        assert_eq!(
            error.to_string(),
            "TLS error: invalid root certificate: bad certificate"
        );
        let tls = error.source().expect("the TlsError");
        assert!(tls.is::<TlsError>());
        let root = tls.source().expect("the library error");
        assert_eq!(root.to_string(), "bad certificate");
        assert!(root.is::<io::Error>());
        assert!(
            TlsError::message("TLS handshake timed out")
                .source()
                .is_none()
        );
    }

    #[test]
    fn a_proxy_error_names_the_status_and_keeps_the_io_error() {
        let closed = ProxyError::Closed(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert_eq!(closed.status(), None);
        let error = Error::from(closed);
        let source = error.source().and_then(|proxy| proxy.source());
        let io = source.and_then(|e| e.downcast_ref::<io::Error>()).unwrap();
        assert_eq!(io.kind(), io::ErrorKind::UnexpectedEof);
        let refused = ProxyError::Refused(403, "Forbidden".into());
        assert_eq!(refused.status(), Some(403));
        assert_eq!(
            refused.to_string(),
            "the proxy refused the tunnel: 403 Forbidden"
        );
        assert_eq!(ProxyError::Unauthorized(407).status(), Some(407));
    }

    #[test]
    fn core_errors_map_onto_the_crate_error_and_keep_their_chain() {
        let error = Error::from(CoreError::Protocol(ProtocolError::InvalidUtf8));
        assert!(matches!(error, Error::Protocol(ProtocolError::InvalidUtf8)));
        assert!(error.source().unwrap().is::<ProtocolError>());
        assert!(matches!(
            Error::from(CoreError::AlreadyClosed),
            Error::AlreadyClosed
        ));
        let failed = Error::from(CoreError::CompressionFailed);
        let io = failed
            .source()
            .and_then(|e| e.downcast_ref::<io::Error>())
            .unwrap();
        let core = io.get_ref().and_then(|e| e.downcast_ref::<CoreError>());
        assert_eq!(core, Some(&CoreError::CompressionFailed));
        let config = Error::from(ConfigError::new("write_fragment_size must be positive"));
        assert!(matches!(
            config,
            Error::InvalidConfig("write_fragment_size must be positive")
        ));
    }

    #[test]
    fn handshake_and_url_errors_are_sources() {
        let error = Error::from(HandshakeError::InvalidAccept);
        assert!(error.source().unwrap().is::<HandshakeError>());
        let error = Error::from(UrlError::MissingHost);
        assert!(error.source().unwrap().is::<UrlError>());
    }
}
