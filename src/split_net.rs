//! Splitting a [`NetStream`] connection: plain TCP as in [`split`](crate::split), and `wss://`
//! (feature `native-tls`).
//!
//! A TLS session is one object for both directions. Until the TLS halves of the split contract
//! land, it sits behind its own mutex: the reader waits for bytes on the socket with `peek()`
//! without it, then decrypts under it with a 10 ms read timeout; the write half encrypts and
//! writes under it, each system call bounded by the split's write tick (50 ms).

use crate::error::Error;
use crate::net_stream::NetStream;
use crate::socket::WebSocket;
use crate::split::{Reader, Writer, split_tcp};
use std::sync::Arc;
#[cfg(feature = "native-tls")]
use {
    crate::net_stream::TlsStream,
    crate::split::{ReadHalf, Transport, split_parts},
    std::io::{self, Read, Write},
    std::sync::Mutex,
    std::time::Duration,
};

/// A stop-gap until the TLS halves of CONTRACT-split.md land: the session behind its own
/// mutex; the reader waits for bytes without it, then reads under it with a short timeout.
#[cfg(feature = "native-tls")]
type SharedTls = Arc<Mutex<Box<TlsStream>>>;

#[cfg(feature = "native-tls")]
struct TlsWriteHalf(SharedTls, Arc<std::net::TcpStream>);

#[cfg(feature = "native-tls")]
impl Transport for TlsWriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tls
            .write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        self.write(first)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).tls.flush()
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.1.set_write_timeout(timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.1.write_timeout()
    }
}

#[cfg(feature = "native-tls")]
struct TlsReadHalf(SharedTls, Arc<std::net::TcpStream>);

#[cfg(feature = "native-tls")]
impl ReadHalf for TlsReadHalf {
    fn read(&mut self, buf: &mut [u8], arrived: &dyn Fn()) -> io::Result<usize> {
        loop {
            {
                let mut tls = self.0.lock().unwrap_or_else(|e| e.into_inner());
                if tls.tls.buffered_read_size().is_ok_and(|n| n > 0) {
                    return tls.tls.read(buf);
                }
            }
            let mut probe = [0u8; 1];
            if self.1.peek(&mut probe)? == 0 {
                return Ok(0);
            }
            arrived();
            let mut tls = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let previous = self.1.read_timeout()?;
            self.1.set_read_timeout(Some(Duration::from_millis(10)))?;
            let result = tls.tls.read(buf);
            self.1.set_read_timeout(previous)?;
            match result {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                other => return other,
            }
        }
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
    let session = Arc::new(Mutex::new(tls));
    let source = Box::new(TlsReadHalf(Arc::clone(&session), Arc::clone(&socket)));
    let write_half = Box::new(TlsWriteHalf(session, Arc::clone(&socket)));
    split_parts(conn, source, write_half, socket, role, config, subprotocol)
}
