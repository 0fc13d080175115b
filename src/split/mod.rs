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
mod transport;
mod weak;
mod writer;

pub use reader::Reader;
#[allow(unused_imports)]
// ReadUnderLock: for the TLS stream (feature native-tls) and the tests
pub(crate) use transport::{ReadHalf, ReadUnderLock, SharedTcp, Transport};
pub(crate) use weak::WeakWriter;
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

#[cfg(test)]
mod tests {
    //! The seam for streams that cannot be split, exercised over plain TCP with a stream that
    //! may only be read under the lock, as a TLS stream will be.
    use super::*;
    use crate::proto::message::Message;
    use std::io::{self, Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    /// A TCP stream pretending it cannot be cloned: reads only through the lock.
    struct LockOnly(SharedTcp);

    impl Write for LockOnly {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.0.flush()
        }
    }

    impl Transport for LockOnly {
        fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            self.0.set_write_timeout(timeout)
        }
        fn write_timeout(&self) -> io::Result<Option<Duration>> {
            self.0.write_timeout()
        }
        fn read_locked(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            (&*self.0.0).read(buf)
        }
    }

    fn lock_only_pair() -> (Reader, Writer, WebSocket<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let tcp = Arc::new(server);
        let config = Config::default();
        let (reader, writer) = split_parts(
            Box::new(Connection::new(Role::Server, &config)),
            Box::new(ReadUnderLock {
                socket: Arc::clone(&tcp),
            }),
            Box::new(LockOnly(SharedTcp(Arc::clone(&tcp)))),
            tcp,
            Role::Server,
            config.clone(),
            None,
        );
        let peer = WebSocket::from_stream(client, Role::Client, config);
        (reader, writer, peer)
    }

    #[test]
    fn a_blocked_lock_only_reader_does_not_block_writers() {
        let (mut reader, writer, mut peer) = lock_only_pair();
        let (tx, rx) = std::sync::mpsc::channel();
        let reading = std::thread::spawn(move || {
            tx.send(()).unwrap();
            let first = reader.read();
            (first, reader)
        });
        rx.recv().unwrap();
        // The reader is (or is about to be) blocked waiting for bytes; writers get through.
        for i in 0..20 {
            writer.send(Message::text(format!("{i}"))).unwrap();
            assert_eq!(peer.read().unwrap(), Message::text(format!("{i}")));
        }
        peer.send(Message::text("wake up")).unwrap();
        let (first, mut reader) = reading.join().unwrap();
        assert_eq!(first.unwrap(), Message::text("wake up"));
        // Pongs go out through the lock-only stream too.
        peer.send(Message::Ping(b"p".to_vec())).unwrap();
        assert_eq!(reader.read().unwrap(), Message::Ping(b"p".to_vec()));
        assert_eq!(peer.read().unwrap(), Message::Pong(b"p".to_vec()));
        // And the closing handshake.
        peer.send(Message::Close(None)).unwrap();
        assert_eq!(reader.read().unwrap(), Message::Close(None));
        assert!(matches!(reader.read(), Err(Error::ConnectionClosed)));
    }
}
