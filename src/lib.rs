//! # syncws
//!
//! A blocking WebSocket library (RFC 6455) for programs without an async runtime: a
//! [`WebSocket`] wraps any `Read + Write` stream, usually a [`std::net::TcpStream`].
//!
//! ```no_run
//! // Client: connect, send, read the echo, close.
//! let (mut ws, _) = syncws::connect("ws://127.0.0.1:9001/")?;
//! ws.send(syncws::Message::text("hello"))?;
//! println!("{}", ws.read()?);
//! ws.close(syncws::CloseCode::Normal, "done")?;
//! # Ok::<(), syncws::Error>(())
//! ```
//!
//! ```no_run
//! // Server: one thread per connection, echoing.
//! let listener = std::net::TcpListener::bind("127.0.0.1:9001")?;
//! for stream in listener.incoming() {
//!     std::thread::spawn(move || -> Result<(), syncws::Error> {
//!         let mut ws = syncws::accept(stream?)?;
//!         loop {
//!             let msg = ws.read()?;
//!             if msg.is_data() { ws.send(msg)?; }
//!         }
//!     });
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Layers
//!
//! - [`proto`]: the protocol without I/O: frames, masking, UTF-8, close rules, the state machine
//!   and the handshake. Bytes in, events and bytes out; no sockets, threads or clock.
//! - [`WebSocket`]: the blocking driver that moves bytes between a stream and the core.
//! - [`connect`] / [`ClientBuilder`] and [`accept`] / [`accept_with`]: the two handshakes.
//!
//! ## Errors
//!
//! One [`Error`] enum. A read loop ends with [`Error::ConnectionClosed`] after a clean close;
//! [`Error::Protocol`] means the peer broke the protocol and the connection was failed with the
//! close code [`ProtocolError::close_code`] names; [`Error::AlreadyClosed`] means the calling code
//! used a connection that had ended.
//!
//! ## Features
//!
//! - `native-tls`: `wss://` (planned; today `wss://` URLs give [`UrlError::TlsNotEnabled`]).
//! - `deflate`: permessage-deflate, RFC 7692, via flate2's zlib-rs backend. Built with it, clients
//!   offer and servers accept the extension by default; [`DeflateConfig`] (in [`Config::deflate`])
//!   picks the parameters, the level, a size threshold and receive-only mode, and
//!   [`WebSocket::deflate`] tells what was agreed. See the README's "Compression" section for
//!   memory per connection and speed.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accept;
mod client;
mod config;
mod error;
pub mod proto;
mod socket;
mod url;

pub use accept::{Accept, Acceptor, Reject, accept, accept_with};
pub use client::{ClientBuilder, client, connect};
pub use config::{Config, DeflateConfig};
pub use error::{Error, HandshakeError, ProtocolError, UrlError};
pub use proto::close::{CloseCode, CloseFrame};
pub use proto::deflate::DeflateParams;
pub use proto::frame;
pub use proto::handshake::{Headers, Request, Response, accept_key};
pub use proto::mask::apply_mask;
pub use proto::message::{Chunk, DataKind, Event, Message};
pub use proto::{Role, State};
pub use socket::{MessageWriter, WebSocket};
pub use url::WsUrl;
