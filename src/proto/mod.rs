//! The sans-I/O protocol core (RFC 6455, RFC 7692): no sockets, no threads, no clock.
//!
//! Everything here works on byte slices and values passed in, and depends on nothing else in the
//! crate: the blocking layer above moves bytes between a stream and this core; a test, a fuzzer
//! or another I/O model can drive it directly through [`Connection`].
//!
//! The layers, bottom up:
//!
//! 1. The wire format: [`mask`] (§5.3) and [`frame`] (§5.2 headers, whole frames).
//! 2. Payload rules and values: [`utf8`] (§8.1), [`close`] (codes and the close payload, §5.5.1,
//!    §7.4), [`message`] (messages and events), [`error`] (what a peer or caller can get wrong),
//!    [`config`] (limits and settings).
//! 3. Extensions: [`deflate`] (permessage-deflate: `negotiation`; with the `deflate` feature the
//!    `codec`, its quiet-connection `resumable` wrapper and a process-wide `pool` of zlib
//!    states), plugged in through `extension`.
//! 4. One direction each (crate-internal): `receiver` (decoding and validation in `receiver/mod.rs`,
//!    where bytes land in `receiver/intake.rs`, over `read_buffer` and the ping/pong bound
//!    `control_rate`) and `sender` (encoding, and the connection's state).
//! 5. [`Connection`]: both directions and the state machine (§5–§7).
//! 6. Beside the connection: [`handshake`] (the HTTP upgrade of §4, before a connection exists:
//!    `fields`, `heads`, `server`, `client`), and inspection: [`observer`] (the frame hook),
//!    [`scanner`] (frames of a stream one only watches) and [`dissect`] (frames explained).

pub mod close;
pub mod config;
mod connection;
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

pub use close::{CloseCode, CloseFrame};
pub use connection::Connection;
pub use error::Error;
pub use message::{Chunk, DataKind, Event, Message};
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
