//! Why a room call failed, and the broker's state as the outage hook hears it.

use std::fmt;

/// The broker's state, as told to [`RoomsBuilder::on_outage`](super::RoomsBuilder::on_outage).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerStatus {
    /// Redis could not be reached; broadcasts are held (up to the backlog bound).
    Down(String),
    /// Redis answers again; held broadcasts are being flushed in order.
    Up,
    /// Redis refused one message for `room` (e.g. over its size limit): it was dropped so the
    /// ones after it go through.
    Refused {
        /// The room the message was for.
        room: String,
        /// What Redis answered.
        error: String,
    },
}

/// Why a room call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomsError {
    /// The broker is unreachable and the held backlog is full: the message was not accepted.
    Backlog {
        /// Messages held.
        messages: usize,
        /// Bytes of payload held.
        bytes: usize,
    },
    /// The message is larger than the backlog's byte bound
    /// ([`RoomsBuilder::backlog`](super::RoomsBuilder::backlog)), so it could never be held:
    /// refused whatever the broker's state, and a retry fails the same way. Raise the bound or
    /// send it in parts.
    TooLarge {
        /// Bytes of payload of the message.
        size: usize,
        /// The backlog's byte bound.
        limit: usize,
    },
    /// The broker failed the call (unreachable, or it answered an error).
    Broker(String),
    /// The rooms were stopped.
    Stopped,
    /// Only text and binary messages are broadcast: pings, pongs and closes belong to one
    /// connection (RFC 6455 §5.5).
    NotData,
}

impl fmt::Display for RoomsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomsError::Backlog { messages, bytes } => write!(
                f,
                "broker unreachable and its backlog is full ({messages} messages, {bytes} bytes)"
            ),
            RoomsError::TooLarge { size, limit } => write!(
                f,
                "message of {size} bytes is larger than the backlog bound of {limit} bytes"
            ),
            RoomsError::Broker(error) => write!(f, "broker error: {error}"),
            RoomsError::Stopped => f.write_str("the rooms were stopped"),
            RoomsError::NotData => f.write_str("only text and binary messages are broadcast"),
        }
    }
}

impl std::error::Error for RoomsError {}
