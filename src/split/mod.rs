//! A connection split in two: a [`Reader`] for one thread and a [`Writer`] for any number of
//! others.
//!
//! The writer owns the protocol's [`Sender`] — and with it the connection state — behind a mutex,
//! together with the write half of the stream. The reader owns the [`Receiver`] and reads without
//! the lock; it takes the lock only to apply what it decoded (answer a ping, echo a close) and to
//! write that answer. So pongs and close replies go through the same writer as the application's
//! messages, and every frame is written whole under the lock: frames of two senders never
//! interleave (RFC 6455 §5.4).
//!
//! # How long a writer may wait
//!
//! A writer waits for the lock while another thread writes one message (or the reader writes one
//! pong or close reply). Each of those writes is bounded by the stream's write timeout; a write
//! that times out fails the connection (1008), so a writer waits at most about one write timeout
//! per message queued ahead of it. Without a write timeout a peer that stops reading blocks
//! writers until something closes the TCP connection (the heartbeat, or [`Writer::abort`]).
//!
//! # wss:// later
//!
//! A TLS stream cannot be cloned, so its reader cannot simply read a second handle as the TCP
//! reader does. [`ReadHalf`] is the seam: a TLS read half will wait for bytes on a clone of the
//! underlying `TcpStream` with `peek()` (after checking bytes the TLS layer already holds) without
//! the lock, then take the lock and read with a short read timeout. Nothing else here changes.

mod read_deadline;
mod reader;
#[cfg(feature = "native-tls")]
pub(crate) mod tls_halves;
mod transport;
mod writer;

pub use reader::Reader;
#[allow(unused_imports)] // ReadHalf and Transport: for the TLS halves (feature native-tls)
pub(crate) use transport::{ReadHalf, SharedTcp, Transport};
pub use writer::Writer;

use crate::config::Config;
use crate::error::Error;
use crate::proto::{Connection, Role};
use crate::socket::WebSocket;
use std::net::TcpStream;
use std::sync::Arc;

impl WebSocket<TcpStream> {
    /// Splits the connection into a [`Reader`] and a `Clone + Send + Sync` [`Writer`], so that one
    /// thread can block in [`Reader::read`] while others send.
    ///
    /// ```no_run
    /// let (ws, _) = syncws::connect("ws://127.0.0.1:9001/")?;
    /// let (mut reader, writer) = ws.split()?;
    /// let ticker = std::thread::spawn(move || writer.send(syncws::Message::text("tick")));
    /// println!("{}", reader.read()?);
    /// ticker.join().unwrap()?;
    /// # Ok::<(), syncws::Error>(())
    /// ```
    ///
    /// Errors: none today; the `Result` leaves room for streams whose split can fail.
    pub fn split(self) -> Result<(Reader, Writer), Error> {
        let role = self.role();
        let (stream, conn, config, subprotocol) = self.into_parts();
        Ok(split_tcp(conn, Arc::new(stream), role, config, subprotocol))
    }
}

/// Splits a TCP connection: both halves and the shutdown handle share the one socket.
pub(crate) fn split_tcp(
    conn: Box<Connection>,
    tcp: Arc<TcpStream>,
    role: Role,
    config: Config,
    subprotocol: Option<String>,
) -> (Reader, Writer) {
    let source = Box::new(SharedTcp(Arc::clone(&tcp)));
    let write_half = Box::new(SharedTcp(Arc::clone(&tcp)));
    split_parts(conn, source, write_half, tcp, role, config, subprotocol)
}

/// Assembles the halves; the seam where a TLS stream will plug in its own [`ReadHalf`] and
/// [`Transport`]. The connection comes boxed down to here: its halves are moved out of the box
/// only now, so each layer of the split does not carry a copy of them in its stack frame.
pub(crate) fn split_parts(
    conn: Box<Connection>,
    source: Box<dyn ReadHalf>,
    write_half: Box<dyn Transport>,
    tcp: Arc<TcpStream>,
    role: Role,
    config: Config,
    subprotocol: Option<String>,
) -> (Reader, Writer) {
    let (receiver, sender) = conn.into_parts();
    let writer = Writer::new(sender, write_half, tcp, role);
    let reader = Reader::new(receiver, source, writer.clone(), config, subprotocol);
    (reader, writer)
}
