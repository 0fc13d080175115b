//! Connection settings with safe defaults.

use crate::proto::Limits;
use crate::proto::error::ConfigError;
use crate::proto::handshake::HeadLimits;
use std::time::Duration;

/// Limits, buffer sizes and timeouts for one connection. Every field documents its default.
///
/// ```
/// let mut config = syncws::proto::config::Config::default();
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
    /// The input buffer's initial size, in bytes: what an idle connection holds for input. It
    /// grows for large frames and shrinks back when the connection goes quiet. Defaults to 2 KiB.
    pub read_buffer_size: usize,
    /// The fragment size used when a message is streamed (the blocking layer's
    /// `WebSocket::send_stream`). Defaults to 64 KiB.
    pub write_fragment_size: usize,
    /// The largest opening handshake head (request or response), in bytes; a larger request
    /// gets 431. Defaults to 8 KiB.
    pub max_handshake_size: usize,
    /// The most header fields in a handshake head; more get 431. Defaults to 64.
    pub max_headers: usize,
    /// How long the opening handshake may take, where the stream supports deadlines (the
    /// blocking layer's `connect` and server). Defaults to 10 s; at most
    /// [`MAX_TIMEOUT`](Config::MAX_TIMEOUT) (use `None` for no limit).
    pub handshake_timeout: Option<Duration>,
    /// permessage-deflate (RFC 7692) settings. Enabled by default when the crate is built with the
    /// `deflate` feature; see [`DeflateConfig`].
    pub deflate: DeflateConfig,
    /// The most pings and pongs accepted per second (and at once, as a burst); past it the
    /// connection fails with 1008. Each ping costs a pong (RFC 6455 §5.5.2), so this bounds the
    /// writes a peer can make the connection do for nothing. `None` accepts any number.
    /// Defaults to 1,000.
    pub max_control_frames_per_second: Option<u32>,
    /// How long a `close` call (the closing handshake: our close frame, the peer's reply, the end
    /// of TCP) may take in all, so a peer that never answers cannot hold it. On a server it also
    /// bounds the close the server sends when a handler returns;
    /// [`ServerBuilder::close_timeout`](crate::ServerBuilder::close_timeout) sets it. Defaults to
    /// 5 s; at most [`MAX_TIMEOUT`](Config::MAX_TIMEOUT).
    pub close_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_message_size: 64 << 20,
            max_frame_size: 16 << 20,
            read_buffer_size: 2 << 10,
            write_fragment_size: 64 << 10,
            max_handshake_size: 8 << 10,
            max_headers: 64,
            handshake_timeout: Some(Duration::from_secs(10)),
            deflate: DeflateConfig::default(),
            max_control_frames_per_second: Some(1000),
            close_timeout: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// The longest timeout a configuration may hold (365 days): deadlines are computed as
    /// `now + timeout`, which must stay within what the clock can represent.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

    /// Checks that the values make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_frame_size == 0 || self.max_message_size == 0 {
            return Err(ConfigError::new("size limits must be positive"));
        }
        if self.read_buffer_size < 64 {
            return Err(ConfigError::new(
                "read_buffer_size must be at least 64 bytes",
            ));
        }
        if self.write_fragment_size == 0 {
            return Err(ConfigError::new("write_fragment_size must be positive"));
        }
        if self
            .handshake_timeout
            .is_some_and(|t| t > Config::MAX_TIMEOUT)
        {
            // A deadline is "now + timeout": one too far for the clock would panic.
            return Err(ConfigError::new(
                "handshake_timeout over a year; use None for no limit",
            ));
        }
        if self.close_timeout > Config::MAX_TIMEOUT {
            return Err(ConfigError::new("close_timeout over a year"));
        }
        if self.max_control_frames_per_second == Some(0) {
            return Err(ConfigError::new(
                "max_control_frames_per_second must be positive (None: no limit)",
            ));
        }
        if self.max_handshake_size < 256 || self.max_headers == 0 {
            return Err(ConfigError::new(
                "handshake limits too small for any request",
            ));
        }
        self.deflate.validate()
    }

    /// The receiver's limits.
    pub(crate) fn limits(&self) -> Limits {
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

/// permessage-deflate (RFC 7692) settings for one side of a connection.
///
/// Names follow the RFC in both roles: `server_*` is about what the server sends, `client_*` about
/// what the client sends. A client offers these; a server uses them to choose among the client's
/// offers. Each compressing direction costs memory per connection (docs/compression.md):
/// smaller windows, no context takeover and [`receive_only`] reduce it.
///
/// [`receive_only`]: DeflateConfig::receive_only
///
/// ```
/// let mut config = syncws::proto::config::Config::default();
/// config.deflate.enabled = cfg!(feature = "deflate");
/// config.deflate.server_max_window_bits = 10; // 1 KiB window for server-to-client data
/// config.deflate.threshold = 256;
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Offer (client) or accept (server) permessage-deflate. Defaults to `true` when built with
    /// the `deflate` feature, `false` otherwise; `true` without the feature is a config error.
    pub enabled: bool,
    /// The server resets its compression context after every message: less memory kept between
    /// messages on the client, worse compression of similar messages. A client requests it; a
    /// server imposes it on itself. Defaults to `false`.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after every message. A client promises it in its
    /// offer; a server demands it in its answer (and always confirms a client's promise, which
    /// binds the client either way). Defaults to `false`.
    pub client_no_context_takeover: bool,
    /// The largest window the server compresses with, 2^bits bytes, 9–15 (8 is accepted from a
    /// peer, but then that side sends uncompressed: zlib cannot compress with 8). A client
    /// requests it, a server caps itself, and never above 12 (4 KiB: a quiet connection keeps a
    /// window of history). Defaults to 15.
    pub server_max_window_bits: u8,
    /// The largest window the client compresses with, 9–15. A client caps itself; a server asks
    /// for it (declining offers that do not allow it when below 15), and asks for at most 12
    /// when the client lets it choose, as browsers do. Defaults to 15.
    pub client_max_window_bits: u8,
    /// zlib compression level, 0 (store) to 9 (best). Defaults to 1, the fastest that still
    /// compresses (docs/compression.md). A message that wakes a quiet connection's compressor,
    /// which must be primed anew anyway, is compressed at level 6 at least (unless 0).
    pub level: u32,
    /// Messages shorter than this many bytes are sent uncompressed. Defaults to 128.
    pub threshold: usize,
    /// Accept the extension and inflate what arrives, but send everything uncompressed: no
    /// compressor is allocated. Defaults to `false`.
    pub receive_only: bool,
}

impl Default for DeflateConfig {
    fn default() -> DeflateConfig {
        DeflateConfig {
            enabled: cfg!(feature = "deflate"),
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 1,
            threshold: 128,
            receive_only: false,
        }
    }
}

impl DeflateConfig {
    /// Checks the values; see [`Config::validate`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.enabled && !cfg!(feature = "deflate") {
            return Err(ConfigError::new(
                "deflate.enabled needs the `deflate` feature",
            ));
        }
        let bits = 9..=15;
        if !bits.contains(&self.server_max_window_bits)
            || !bits.contains(&self.client_max_window_bits)
        {
            return Err(ConfigError::new("deflate window bits must be 9 to 15"));
        }
        if self.level > 9 {
            return Err(ConfigError::new("deflate level must be 0 to 9"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_too_long_for_the_clock_is_refused() {
        let mut config = Config {
            handshake_timeout: Some(Duration::MAX),
            ..Config::default()
        };
        assert!(config.validate().is_err());
        config.handshake_timeout = Some(Config::MAX_TIMEOUT);
        assert!(config.validate().is_ok());
        config.handshake_timeout = None;
        assert!(config.validate().is_ok());
    }
}
