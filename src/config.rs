//! Connection settings with safe defaults.

use crate::error::Error;
use crate::proto::Limits;
use crate::proto::handshake::HeadLimits;
use std::time::Duration;

/// Limits, buffer sizes and timeouts for one connection. Every field documents its default.
///
/// ```
/// let mut config = syncws::Config::default();
/// config.max_message_size = 1 << 20;
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The largest message accepted, in bytes; a larger one fails the connection with 1009.
    /// Defaults to 64 MiB.
    pub max_message_size: usize,
    /// The largest single frame accepted, in bytes; a larger one fails the connection with 1009.
    /// Checked on the header, before anything is allocated. Defaults to 16 MiB.
    pub max_frame_size: usize,
    /// The input buffer's size, in bytes. Large payloads bypass it, so it need only hold headers
    /// and small frames. Defaults to 4 KiB.
    pub read_buffer_size: usize,
    /// The fragment size used when a message is streamed with
    /// [`WebSocket::send_stream`](crate::WebSocket::send_stream). Defaults to 64 KiB.
    pub write_fragment_size: usize,
    /// The largest opening handshake head (request or response), in bytes; a larger request
    /// gets 431. Defaults to 8 KiB.
    pub max_handshake_size: usize,
    /// The most header fields in a handshake head; more get 431. Defaults to 64.
    pub max_headers: usize,
    /// How long the opening handshake may take, where the stream supports deadlines
    /// ([`connect`](crate::connect) and the server). Defaults to 10 s.
    pub handshake_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_message_size: 64 << 20,
            max_frame_size: 16 << 20,
            read_buffer_size: 4 << 10,
            write_fragment_size: 64 << 10,
            max_handshake_size: 8 << 10,
            max_headers: 64,
            handshake_timeout: Some(Duration::from_secs(10)),
        }
    }
}

impl Config {
    /// Checks that the values make sense together.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_frame_size == 0 || self.max_message_size == 0 {
            return Err(Error::InvalidConfig("size limits must be positive"));
        }
        if self.read_buffer_size < 64 {
            return Err(Error::InvalidConfig(
                "read_buffer_size must be at least 64 bytes",
            ));
        }
        if self.write_fragment_size == 0 {
            return Err(Error::InvalidConfig("write_fragment_size must be positive"));
        }
        if self.max_handshake_size < 256 || self.max_headers == 0 {
            return Err(Error::InvalidConfig(
                "handshake limits too small for any request",
            ));
        }
        Ok(())
    }

    /// The receiver's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_frame_size: self.max_frame_size.min(self.max_message_size),
            max_message_size: self.max_message_size,
        }
    }

    /// The handshake head limits.
    pub fn head_limits(&self) -> HeadLimits {
        HeadLimits {
            max_size: self.max_handshake_size,
            max_headers: self.max_headers,
        }
    }
}
