//! The sans-I/O protocol core: no sockets, no threads, no clock.
//!
//! Everything here works on byte slices and values passed in. The blocking layer
//! ([`WebSocket`](crate::WebSocket)) moves bytes between a stream and this core; a test, a fuzzer
//! or another I/O model can drive the core directly.
//!
//! The layers, bottom up: [`frame`] and [`mask`] (the wire format), [`utf8`] and [`close`]
//! (payload rules), [`Receiver`] and [`Sender`] (one direction each), [`Connection`] (both,
//! with the state machine), and [`handshake`] (the HTTP upgrade, before a connection exists).

pub mod close;
pub mod config;
pub mod connection;
pub(crate) mod control_rate;
pub mod deflate;
pub mod dissect;
pub mod error;
pub(crate) mod extension;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod observer;
mod read_buffer;
pub(crate) mod receiver;
pub mod scanner;
pub(crate) mod sender;
pub mod utf8;

pub use connection::Connection;
pub use error::Error;
pub use observer::{Direction, FrameObserver};
pub(crate) use receiver::{Limits, Receiver};
pub(crate) use sender::Sender;
pub use sender::State;

/// Which end of the connection this is. The roles differ in masking (RFC 6455 §5.1) and in who
/// closes the TCP connection first (§7.1.1: the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that sent the upgrade request; masks its frames.
    Client,
    /// The end that accepted it; never masks.
    Server,
}
