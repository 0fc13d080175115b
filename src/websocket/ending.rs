//! Why a connection ended, as one typed value for handlers and logs.

use crate::error::ProtocolError;
use crate::proto::close::{CloseCode, CloseFrame};
use std::{fmt, io};

/// Why a connection ended. The first cause observed wins: a server shutdown that makes the peer
/// answer with its own close frame is still reported as [`EndCause::ServerShutdown`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndCause {
    /// The peer started the closing handshake with this frame (`None`: no status code, 1005).
    PeerClosed(Option<CloseFrame>),
    /// This end started the closing handshake with this frame (the handler, or the server after
    /// the handler returned).
    LocalClosed(Option<CloseFrame>),
    /// Nothing arrived within the heartbeat timeout after a ping; 1011 was sent if possible and
    /// the TCP connection was closed.
    HeartbeatTimeout,
    /// The peer broke the protocol; the close frame sent carried
    /// [`ProtocolError::close_code`].
    ProtocolViolation(ProtocolError),
    /// A write did not finish within the write timeout (a peer that stopped reading); 1008 was
    /// sent if possible and the TCP connection was closed.
    WriteTimeout,
    /// The transport failed; `UnexpectedEof` means the peer vanished without a close frame
    /// (reported to peers as 1006).
    Io(io::ErrorKind, String),
    /// The server shut down and sent 1001.
    ServerShutdown,
    /// A message was still incomplete when its deadline passed (a peer dribbling it); 1008 was
    /// sent if possible and the TCP connection was closed.
    MessageTimeout,
    /// No data message arrived within the idle timeout; 1001 was sent if possible and the TCP
    /// connection was closed.
    IdleTimeout,
}

impl EndCause {
    pub(crate) fn io(error: &io::Error) -> EndCause {
        EndCause::Io(error.kind(), error.to_string())
    }

    /// The close code that describes the ending from this end's point of view: the code of the
    /// close frame received or sent, or 1006 when none was exchanged.
    pub fn close_code(&self) -> CloseCode {
        let frame_code =
            |frame: &Option<CloseFrame>| frame.as_ref().map_or(CloseCode::NoStatus, |f| f.code);
        match self {
            EndCause::PeerClosed(frame) | EndCause::LocalClosed(frame) => frame_code(frame),
            EndCause::HeartbeatTimeout => CloseCode::InternalError,
            EndCause::ProtocolViolation(e) => e.close_code(),
            EndCause::WriteTimeout => CloseCode::Policy,
            EndCause::Io(..) => CloseCode::Abnormal,
            EndCause::ServerShutdown | EndCause::IdleTimeout => CloseCode::GoingAway,
            EndCause::MessageTimeout => CloseCode::Policy,
        }
    }

    /// Whether the closing handshake completed normally (either side started it).
    pub fn is_clean(&self) -> bool {
        matches!(self, EndCause::PeerClosed(_) | EndCause::LocalClosed(_))
    }
}

impl fmt::Display for EndCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = |f: &mut fmt::Formatter<'_>, who: &str, frame: &Option<CloseFrame>| match frame
        {
            Some(c) if c.reason.is_empty() => write!(f, "{who} closed ({})", c.code.as_u16()),
            Some(c) => write!(f, "{who} closed ({} {:?})", c.code.as_u16(), c.reason),
            None => write!(f, "{who} closed (no status)"),
        };
        match self {
            EndCause::PeerClosed(c) => frame(f, "peer", c),
            EndCause::LocalClosed(c) => frame(f, "we", c),
            EndCause::HeartbeatTimeout => f.write_str("heartbeat timeout (sent 1011)"),
            EndCause::ProtocolViolation(e) => write!(f, "protocol violation: {e}"),
            EndCause::WriteTimeout => {
                f.write_str("write timeout: peer stopped reading (sent 1008)")
            }
            EndCause::Io(io::ErrorKind::UnexpectedEof, _) => {
                f.write_str("peer vanished without a close frame (1006)")
            }
            EndCause::Io(_, message) => write!(f, "I/O error: {message}"),
            EndCause::ServerShutdown => f.write_str("server shutdown (sent 1001)"),
            EndCause::MessageTimeout => f.write_str("message not completed in time (sent 1008)"),
            EndCause::IdleTimeout => f.write_str("idle timeout (sent 1001)"),
        }
    }
}
