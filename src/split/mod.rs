//! A connection split in two: a [`Reader`] for one thread and a [`Writer`] for any number of
//! others.
//!
//! The protocol's [`Sender`](crate::proto::Sender) — and with it the connection state — sits
//! behind a mutex held only for CPU work (encoding a frame, applying what the reader decoded). The
//! stream's write half sits behind a second mutex, held by the one thread writing now (the write
//! owner). The reader owns the [`Receiver`](crate::proto::Receiver) and the read half: it reads
//! and decodes without any lock, takes the state lock briefly to apply a ping or a close (which
//! queues the pong or the close reply), and then writes the reply only if nobody else is writing;
//! otherwise the thread writing now writes it after its own frames. So:
//!
//! - no read ever waits for a data write, and no write waits for a read;
//! - every frame is queued whole and written in order by one owner at a time, so frames of two
//!   senders never interleave (RFC 6455 §5.4);
//! - nothing queued is stranded: each queue is followed by an attempt to write, and each owner
//!   looks for queued output again after letting go.
//!
//! Any [`SplitStream`] splits: TCP shares one socket between the halves, other streams use
//! duplicated handles, and over `wss://` the TLS halves implement [`ReadHalf`] and
//! [`Transport`] so that neither waits for the other.
//!
//! # How long a writer may wait
//!
//! A writer waits for the thread writing now to finish one message (or a pong, ping or close
//! frame). Each must be on the wire within the stream's write timeout, counted from when its
//! write first waits for the peer (at most 50 ms after it began) and checked every 50 ms, as each
//! system call waits at most that long; one that is late fails the
//! connection (1008, [`EndCause::WriteTimeout`](crate::EndCause::WriteTimeout)) without a byte
//! after the cut frame. So a writer waits at most about one write timeout per message queued
//! ahead of it. Without a write timeout a peer that stops reading blocks writers until something
//! closes the TCP connection (the heartbeat, or [`Writer::abort`]). While a long write moves on,
//! the peer counts as alive for the heartbeat, even though it sends nothing: it is reading.
//!
//! The reader waits for a write in one case only: its reply to the peer's close frame (or the
//! close frame failing the connection) is written before it reports the close, so it may wait
//! for the message being written now.
//!
//! # How long closing may wait
//!
//! [`Reader::close`] takes at most [`Config::close_timeout`] in all (5 s by default), the wait for
//! a server to close TCP (RFC 6455 §7.1.1) included.

mod closing;
#[cfg(test)]
mod closing_tests;
mod ping;
mod queue;
mod read_deadline;
mod reader;
mod stream;
pub(crate) mod transport;
mod weak;
mod write_side;
mod writer;

#[cfg(test)]
pub(crate) use queue::BACKPRESSURE_REASON;
pub(crate) use queue::{Enqueued, Frame};
pub use reader::Reader;
pub use stream::SplitStream;
pub(crate) use stream::{Socket, SplitHalves};
pub(crate) use transport::{ReadHalf, Transport};
pub(crate) use weak::WeakWriter;
pub use writer::Writer;

use crate::error::Error;
use crate::proto::config::Config;
use crate::proto::{Connection, Role};
use crate::websocket::WebSocket;
use std::net::TcpStream;
use std::sync::Arc;

impl<S: SplitStream> WebSocket<S> {
    /// Splits the connection into a [`Reader`] and a `Clone + Send + Sync` [`Writer`], so that one
    /// thread can block in [`Reader::read`] while others send. Works for any [`SplitStream`]:
    /// `TcpStream`, [`NetStream`](crate::NetStream) (`wss://` too), `UnixStream`, or a type of
    /// yours. A keepalive heartbeat set on the client moves to the shared timer thread.
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
    /// Errors: [`Error::Io`] when the stream cannot be duplicated ([`SplitStream::try_clone`]).
    pub fn split(self) -> Result<(Reader, Writer), Error> {
        let role = self.role();
        let heartbeat = self.heartbeat();
        let (stream, conn, config, subprotocol) = self.into_parts();
        let halves = stream.split_halves()?;
        let (mut reader, writer) = split_parts(
            conn,
            halves.read,
            halves.write,
            halves.socket,
            role,
            config,
            subprotocol,
        );
        if let Some((interval, timeout)) = heartbeat {
            reader.watch(interval, timeout)?;
        }
        Ok((reader, writer))
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
    let halves = stream::split_tcp_stream(tcp);
    split_parts(
        conn,
        halves.read,
        halves.write,
        halves.socket,
        role,
        config,
        subprotocol,
    )
}

/// Assembles the halves; the seam where a TLS stream plugs in its own [`ReadHalf`] and
/// [`Transport`]. The connection comes boxed down to here: its halves are moved out of the box
/// only now, so each layer of the split does not carry a copy of them in its stack frame.
pub(crate) fn split_parts(
    conn: Box<Connection>,
    source: Box<dyn ReadHalf>,
    write_half: Box<dyn Transport>,
    socket: Arc<dyn Socket>,
    role: Role,
    config: Config,
    subprotocol: Option<String>,
) -> (Reader, Writer) {
    let (receiver, sender) = conn.into_parts();
    let writer = Writer::new(sender, write_half, socket, role, config.close_timeout);
    let reader = Reader::new(receiver, source, writer.clone(), config, subprotocol);
    (reader, writer)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod review_tests;
