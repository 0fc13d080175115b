//! Close codes (RFC 6455 §7.4) and the close frame's payload (§5.5.1).

use crate::proto::error::{Error, ProtocolError};
use std::fmt;

/// A status code from a close frame (RFC 6455 §7.4, IANA "WebSocket Close Code Number Registry").
///
/// Codes compare and hash by number, so a code built from a number equals the named one:
/// `CloseCode::Other(1000) == CloseCode::Normal`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    Normal,
    /// 1001: the endpoint is going away (server shutdown, page navigated away).
    GoingAway,
    /// 1002: the peer broke the protocol.
    Protocol,
    /// 1003: a kind of data the endpoint cannot accept.
    Unsupported,
    /// 1005: reported locally when a close frame carried no code; never sent.
    NoStatus,
    /// 1006: reported locally when the connection ended without a close frame; never sent.
    Abnormal,
    /// 1007: message data inconsistent with its type (e.g. non-UTF-8 text).
    InvalidPayload,
    /// 1008: a message that violates the endpoint's policy.
    Policy,
    /// 1009: a message too big to process.
    TooBig,
    /// 1010: the client needed an extension the server did not negotiate.
    MandatoryExtension,
    /// 1011: the server met an unexpected condition.
    InternalError,
    /// 1012: the service is restarting.
    ServiceRestart,
    /// 1013: try again later (temporary overload).
    TryAgainLater,
    /// 1014: a gateway or proxy got an invalid response upstream.
    BadGateway,
    /// 1015: reported locally when the TLS handshake failed; never sent.
    TlsHandshake,
    /// Any other code; [`is_sendable`](Self::is_sendable) tells whether it may appear on the wire.
    Other(u16),
}

impl CloseCode {
    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::NoStatus => 1005,
            CloseCode::Abnormal => 1006,
            CloseCode::InvalidPayload => 1007,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::MandatoryExtension => 1010,
            CloseCode::InternalError => 1011,
            CloseCode::ServiceRestart => 1012,
            CloseCode::TryAgainLater => 1013,
            CloseCode::BadGateway => 1014,
            CloseCode::TlsHandshake => 1015,
            CloseCode::Other(code) => code,
        }
    }

    /// Whether the code may be carried by a close frame.
    ///
    /// RFC 6455 §7.4.1 and §7.4.2: 1000–1003 and 1007–1011 are defined for use; 1012–1014 were
    /// registered later for the same use; 1004 is reserved; 1005, 1006 and 1015 "MUST NOT be set as
    /// a status code in a Close control frame"; 0–999 are unused; 1016–2999 are reserved for future
    /// revisions; 3000–3999 are for libraries and frameworks (IANA-registered); 4000–4999 are private.
    ///
    /// ```
    /// use syncws::proto::close::CloseCode;
    /// assert!(CloseCode::from(1000).is_sendable());
    /// assert!(!CloseCode::from(1005).is_sendable());
    /// assert!(CloseCode::from(4321).is_sendable());
    /// assert!(!CloseCode::from(2999).is_sendable());
    /// ```
    pub fn is_sendable(self) -> bool {
        matches!(self.as_u16(), 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// A short description, for logs and tools.
    pub fn description(self) -> &'static str {
        match self.as_u16() {
            1000 => "normal closure",
            1001 => "going away",
            1002 => "protocol error",
            1003 => "unsupported data",
            1004 => "reserved",
            1005 => "no status received",
            1006 => "abnormal closure",
            1007 => "invalid frame payload data",
            1008 => "policy violation",
            1009 => "message too big",
            1010 => "mandatory extension",
            1011 => "internal error",
            1012 => "service restart",
            1013 => "try again later",
            1014 => "bad gateway",
            1015 => "TLS handshake failure",
            3000..=3999 => "registered for libraries and frameworks",
            4000..=4999 => "private use",
            _ => "reserved or unused",
        }
    }
}

impl PartialEq for CloseCode {
    fn eq(&self, other: &CloseCode) -> bool {
        self.as_u16() == other.as_u16()
    }
}

impl Eq for CloseCode {}

impl std::hash::Hash for CloseCode {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_u16().hash(state);
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> CloseCode {
        match code {
            1000 => CloseCode::Normal,
            1001 => CloseCode::GoingAway,
            1002 => CloseCode::Protocol,
            1003 => CloseCode::Unsupported,
            1005 => CloseCode::NoStatus,
            1006 => CloseCode::Abnormal,
            1007 => CloseCode::InvalidPayload,
            1008 => CloseCode::Policy,
            1009 => CloseCode::TooBig,
            1010 => CloseCode::MandatoryExtension,
            1011 => CloseCode::InternalError,
            1012 => CloseCode::ServiceRestart,
            1013 => CloseCode::TryAgainLater,
            1014 => CloseCode::BadGateway,
            1015 => CloseCode::TlsHandshake,
            other => CloseCode::Other(other),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.as_u16()
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.as_u16(), self.description())
    }
}

/// The code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// A UTF-8 reason for humans; at most 123 bytes, so that the frame fits in 125.
    pub reason: String,
}

/// The longest reason that fits a close frame: 125 bytes of payload less 2 of code.
pub const MAX_REASON_LEN: usize = 123;

impl CloseFrame {
    /// A close frame with `code` and `reason`.
    pub fn new(code: impl Into<CloseCode>, reason: impl Into<String>) -> CloseFrame {
        CloseFrame {
            code: code.into(),
            reason: reason.into(),
        }
    }

    /// Parses a close frame's payload (RFC 6455 §5.5.1): empty, or a 2-byte code and a UTF-8 reason.
    ///
    /// Returns `None` for an empty payload (the peer gave no code; locally that reads as 1005).
    pub fn parse(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
        match payload {
            [] => Ok(None),
            // A body "MUST start with a two-byte unsigned integer": one byte cannot.
            [_] => Err(ProtocolError::InvalidClosePayload),
            [hi, lo, reason @ ..] => {
                let code = CloseCode::from(u16::from_be_bytes([*hi, *lo]));
                if !code.is_sendable() {
                    return Err(ProtocolError::InvalidCloseCode(code.as_u16()));
                }
                // "the data MAY contain UTF-8-encoded data" and it is not guaranteed readable,
                // but §8.1 applies: invalid UTF-8 fails the connection (1007).
                let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
                Ok(Some(CloseFrame::new(code, reason)))
            }
        }
    }

    /// Refuses a frame this end may not send: a code kept off the wire (RFC 6455 §7.4.1: 1005,
    /// 1006 and 1015 "MUST NOT be set as a status code in a Close control frame"), or a reason
    /// too long for a control frame (§5.5: "All control frames MUST have a payload length of 125
    /// bytes or less").
    pub(crate) fn check_sendable(&self) -> Result<(), Error> {
        if !self.code.is_sendable() {
            return Err(Error::InvalidInput(
                "this close code may not be sent (RFC 6455 §7.4)",
            ));
        }
        if self.reason.len() > MAX_REASON_LEN {
            return Err(Error::InvalidInput("close reason over 123 bytes"));
        }
        Ok(())
    }

    /// The wire payload: the code big-endian, then the reason.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut payload = Vec::with_capacity(2 + self.reason.len());
        payload.extend_from_slice(&self.code.as_u16().to_be_bytes());
        payload.extend_from_slice(self.reason.as_bytes());
        payload
    }
}

impl fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {:?}", self.code, self.reason)
        }
    }
}

#[cfg(test)]
mod tests {
    //! RFC 6455 §5.5.1 and §7.4.
    use super::*;

    #[test]
    fn codes_compare_and_hash_by_number() {
        use std::collections::HashSet;
        assert_eq!(CloseCode::from(1000), CloseCode::Normal);
        assert_eq!(CloseCode::Other(1000), CloseCode::Normal);
        assert_eq!(CloseCode::Other(1011), CloseCode::InternalError);
        assert_ne!(CloseCode::Other(4000), CloseCode::Normal);
        let set: HashSet<CloseCode> = [CloseCode::Normal, CloseCode::Other(1000)].into();
        assert_eq!(set.len(), 1);
        assert!(set.contains(&CloseCode::from(1000)));
    }

    #[test]
    fn every_named_code_round_trips() {
        for code in 1000..=1015u16 {
            assert_eq!(CloseCode::from(code).as_u16(), code);
        }
        assert_eq!(CloseCode::from(1004), CloseCode::Other(1004));
    }

    #[test]
    fn codes_allowed_on_the_wire() {
        let allowed = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ];
        for code in allowed.into_iter().chain([3000, 3999, 4000, 4999]) {
            assert!(CloseCode::from(code).is_sendable(), "{code}");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode::from(code).is_sendable(), "{code}");
        }
    }

    #[test]
    fn payload_rules() {
        assert_eq!(CloseFrame::parse(&[]), Ok(None));
        assert_eq!(
            CloseFrame::parse(&[0x03]),
            Err(ProtocolError::InvalidClosePayload)
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xed]),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xe8, 0xff]),
            Err(ProtocolError::InvalidUtf8)
        );
        let frame = CloseFrame::parse(&[0x03, 0xe8, b'b', b'y', b'e'])
            .unwrap()
            .unwrap();
        assert_eq!(frame, CloseFrame::new(CloseCode::Normal, "bye"));
        assert_eq!(frame.to_payload(), [0x03, 0xe8, b'b', b'y', b'e']);
    }
}
