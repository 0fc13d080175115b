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
//! drives every connection's heartbeat. [`WebSocket::split`] (and [`Session::writer`]) give a
//! [`Writer`] that any thread may send with while the [`Reader`] blocks in `read()`; [`Room`]s
//! broadcast through writers.
//!
//! ## Layers
//!
//! - [`proto`]: the protocol without I/O: frames, masking, UTF-8, close rules, the state machine
//!   and the handshake. Bytes in, events and bytes out; no sockets, threads or clock.
//! - [`WebSocket`]: the blocking driver that moves bytes between a stream and the core.
//! - [`connect`] / [`ClientBuilder`] and [`accept`] / [`Acceptor`]: the two handshakes.
//! - [`Server`]: accept loop, thread per connection, policy, heartbeats, shutdown.
//!
//! ## Learning the protocol
//!
//! - [`inspect::tour`]: RFC 6455 walked through — handshake, frame layout, masking, fragmentation,
//!   control frames, closing, heartbeats — with every number computed by the crate.
//! - [`frame`], [`apply_mask`], [`accept_key`]: the wire format as functions.
//! - [`dissect`]: frames explained field by field; [`WebSocket::set_frame_hook`] and the `log`
//!   feature show every frame of a live connection.
//! - `examples/`: a tutorial in order, listed in the README.
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
//! - `native-tls` (default): `wss://` through the platform's TLS (OpenSSL on Linux). Without it,
//!   `wss://` URLs give [`UrlError::TlsNotEnabled`].
//! - `deflate`: permessage-deflate, RFC 7692, via flate2's zlib-rs backend. Built with it, clients
//!   offer and servers accept the extension by default; [`DeflateConfig`] (in [`Config::deflate`])
//!   picks the parameters, the level, a size threshold and receive-only mode, and
//!   [`WebSocket::deflate`] tells what was agreed. See the README's "Compression" section for
//!   memory per connection and speed.
//! - `log`: every frame sent and received logged through the `log` crate (level `trace`,
//!   target `syncws::frame`).

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod client;
mod error;
pub mod inspect;
pub mod proto;
mod rooms;
mod server;
mod split;
mod timing;
mod transport;
mod websocket;

pub use client::proxy::Proxy;
pub use client::reconnect::{
    Disconnect, ReconnectBuilder, Reconnecting, Sender as ReconnectSender,
};
pub use client::url::WsUrl;
pub use client::{ClientBuilder, client, connect};
pub use error::{Error, HandshakeError, ProtocolError, UrlError};
pub use proto::close::{CloseCode, CloseFrame};
pub use proto::config::{Config, DeflateConfig};
pub use proto::deflate::DeflateParams;
pub use proto::dissect;
pub use proto::frame;
pub use proto::handshake::{Headers, Request, Response, accept_key};
pub use proto::mask::apply_mask;
pub use proto::message::{Chunk, DataKind, Event, Message};
pub use proto::{Direction, FrameObserver, Role, State};
pub use rooms::{Broadcast, Room, Rooms};
/// Rooms with one order, offsets, replay and presence, in one process or across many through
/// Redis (feature `redis`): [`Hub`](hub::Hub).
pub mod hub {
    pub use crate::rooms::{
        BrokerStatus, Delivery, EntryId, Hub, HubBuilder, HubError, Joined, Offset, PRESENCE_TTL,
        Presence,
    };
}
pub use server::accept::{Accept, Acceptor, accept};
pub use server::{HttpResponse, Server, ServerBuilder, ServerHandle, Session, ShutdownHandle};
pub use split::{Reader, Writer};
pub use timing::backoff::{Backoff, RetryPolicy};
pub use transport::net_stream::NetStream;
#[cfg(feature = "native-tls")]
pub use transport::net_stream::TlsStream;
pub use transport::tls::TlsOptions;
#[cfg(feature = "native-tls")]
pub use transport::tls::{TlsIdentity, TlsVersion};
pub use websocket::ending::EndCause;
pub use websocket::{MessageWriter, WebSocket};
