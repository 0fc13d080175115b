//! Splitting a [`NetStream`] connection: plain TCP as in [`split`](crate::split), and `wss://`
//! (feature `native-tls`).
//!
//! A TLS session is one object for both directions, so it lives under the writer's lock and the
//! reader waits for bytes on the socket with `peek()` before taking the lock to read
//! (`ReadUnderLock`). A writer therefore waits for the reader at most `LOCKED_READ_BOUND` (10 ms)
//! plus the decryption of one record — measured in `tests/tls_split.rs`.

use crate::error::Error;
use crate::net_stream::NetStream;
use crate::socket::WebSocket;
use crate::split::{Reader, Writer, split_tcp};
use std::sync::Arc;
#[cfg(feature = "native-tls")]
use {
    crate::net_stream::TlsStream,
    crate::split::{ReadUnderLock, Transport, split_parts},
    std::io::{self, Read, Write},
    std::time::Duration,
};

#[cfg(feature = "native-tls")]
impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tls.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tls.flush()
    }
}

#[cfg(feature = "native-tls")]
impl Transport for TlsStream {
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_write_timeout(timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.socket.write_timeout()
    }
    fn read_locked(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tls.read(buf)
    }
    fn has_buffered_input(&self) -> bool {
        self.tls.buffered_read_size().is_ok_and(|n| n > 0)
    }
}

impl WebSocket<NetStream> {
    /// Splits a plain or TLS connection into a [`Reader`] and a `Clone + Send + Sync`
    /// [`Writer`]; see [`WebSocket::<TcpStream>::split`](WebSocket::split) and, for TLS, the
    /// module docs on how long a writer may wait. Either way the connection keeps one socket.
    ///
    /// Errors: none today; the `Result` matches the TCP split.
    pub fn split(self) -> Result<(Reader, Writer), Error> {
        let role = self.role();
        let (stream, conn, config, subprotocol) = self.into_parts();
        Ok(match stream {
            NetStream::Plain(tcp) => split_tcp(conn, Arc::new(tcp), role, config, subprotocol),
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => split_tls(conn, tls, role, config, subprotocol),
        })
    }
}

/// Splits a TLS session: it goes under the writer's lock, the reader waits on its socket.
#[cfg(feature = "native-tls")]
pub(crate) fn split_tls(
    conn: Box<crate::proto::Connection>,
    tls: Box<TlsStream>,
    role: crate::proto::Role,
    config: crate::config::Config,
    subprotocol: Option<String>,
) -> (Reader, Writer) {
    let socket = Arc::clone(&tls.socket);
    let source = Box::new(ReadUnderLock {
        socket: Arc::clone(&socket),
    });
    split_parts(conn, source, tls, socket, role, config, subprotocol)
}
