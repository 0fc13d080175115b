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
//! ```no_run
//! // The same with the built-in Server: handshake policy, heartbeats, shutdown, end causes.
//! use std::time::Duration;
//! syncws::Server::builder()
//!     .heartbeat(Duration::from_secs(20), Duration::from_secs(20))
//!     .on_end(|peer, cause| println!("{peer}: {cause}"))
//!     .bind("127.0.0.1:9001")?
//!     .serve(|mut session| {
//!         while let Ok(msg) = session.read() {
//!             if msg.is_data() && session.send(msg).is_err() { break; }
//!         }
//!     })?;
//! # Ok::<(), syncws::Error>(())
//! ```
//!
//! ## Threads
//!
//! [`Server`] runs each connection's handshake and handler on its own thread; one more thread
//! drives every connection's heartbeat, and one writes what room broadcasts could not hand to a
//! slow member at once. [`WebSocket::split`] (and [`Session::writer`]) give a [`Writer`] that any
//! thread may send with while the [`Reader`] blocks in `read()`; [`Room`]s broadcast through
//! writers, each member behind a queue bounded in bytes.
//!
//! ## Layers and where they live
//!
//! ```text
//!  server/        Server, Session, Acceptor: accept loop, hooks, shutdown   rooms/  Room, Rooms
//!  client/        connect, ClientBuilder, URL, proxy, Reconnecting
//!       │                    │
//!  websocket/     WebSocket: the blocking driver      split/  Reader, Writer (one write owner)
//!       │                    │                                 │
//!  transport/     TcpStream or TLS, whole or in halves    timing/  heartbeat, backoff, the timer
//!       │
//!  proto/         the sans-I/O core: frames, masking, UTF-8, close rules, the state machine
//!                 (Connection), the opening handshake, permessage-deflate; no sockets, no threads
//! ```
//!
//! Each layer uses only those below it; [`proto`] imports nothing from the rest of the crate, so
//! a test, a fuzzer or another I/O model can drive it directly. [`error`] holds the crate's
//! [`Error`], which wraps the core's own error types.
//!
//! ## Learning the protocol
//!
//! - [`inspect::tour`]: RFC 6455 walked through (handshake, frame layout, masking,
//!   fragmentation, control frames, closing, heartbeats) with every number computed by the crate.
//! - [`proto::frame`], [`proto::mask::apply_mask`], [`proto::handshake::accept_key`]: the wire
//!   format as functions; [`proto::dissect`] explains a frame field by field.
//! - [`WebSocket::set_frame_hook`] and the `log` feature show every frame of a live connection.
//! - `examples/`: a tutorial in order, listed in `examples/README.md`.
//!
//! ## Errors
//!
//! One [`Error`] enum. A read loop ends with [`Error::ConnectionClosed`] after a clean close;
//! [`Error::Protocol`] means the peer broke the protocol and the connection was failed with the
//! close code [`error::ProtocolError::close_code`] names; [`Error::AlreadyClosed`] means the
//! calling code used a connection that had ended.
//!
//! ## Features
//!
//! - `native-tls` (default): `wss://` through the platform's TLS (OpenSSL on Linux). Without it,
//!   `wss://` URLs give [`error::UrlError::TlsNotEnabled`].
//! - `deflate`: permessage-deflate, RFC 7692, via flate2's zlib-rs backend. Built with it, clients
//!   offer and servers accept the extension by default; [`DeflateConfig`] (in [`Config::deflate`])
//!   picks the parameters, and [`WebSocket::deflate`] tells what was agreed. Memory and speed:
//!   `docs/compression.md`.
//! - `redis`: [`rooms::RoomsBuilder::redis`], the same [`Rooms`] shared by many processes through
//!   Redis Streams (one order, offsets and replay, presence); without it rooms live in one
//!   process.
//! - `log`: every frame sent and received logged through the `log` crate (level `trace`,
//!   target `syncws::frame`).

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod client;
pub mod error;
pub mod inspect;
pub mod proto;
pub mod rooms;
mod server;
mod split;
mod timing;
mod transport;
mod websocket;

pub use client::proxy::Proxy;
pub use client::reconnect::{Disconnect, ReconnectBuilder, Reconnecting, ReconnectingWriter};
pub use client::url::WsUrl;
pub use client::{ClientBuilder, connect};
pub use error::Error;
pub use proto::Role;
pub use proto::close::{CloseCode, CloseFrame};
pub use proto::config::{Config, DeflateConfig};
pub use proto::handshake::{Request, Response};
pub use proto::message::{DataKind, Message};
pub use rooms::{Room, Rooms};
pub use server::accept::{Accept, Acceptor, accept};
pub use server::{HttpResponse, Server, ServerBuilder, ServerHandle, Session, ShutdownHandle};
pub use split::{Reader, SplitStream, Writer};
pub use timing::backoff::{Backoff, RetryPolicy};
pub use transport::net_stream::NetStream;
#[cfg(feature = "native-tls")]
pub use transport::net_stream::TlsStream;
#[cfg(feature = "native-tls")]
pub use transport::tls::{TlsIdentity, TlsVersion};
pub use websocket::ending::EndCause;
pub use websocket::{MessageWriter, WebSocket};

/// The README's examples, compiled with the doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
