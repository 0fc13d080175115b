//! Splitting a [`NetStream`] connection: plain TCP as in [`split`](crate::split), and `wss://`
//! (feature `native-tls`).
//!
//! A TLS stream is one object for both directions: it cannot be cloned like a `TcpStream`, so it
//! lives under the writer's lock. The reader must still not hold that lock while it waits for the
//! peer, or no one could send. So it waits on a clone of the TCP socket with `peek()`, which
//! blocks without consuming anything; when bytes are there, it takes the lock and lets TLS read
//! them with a short socket timeout, so a TLS record that arrives only in part costs a writer at
//! most [`TLS_READ_SLICE`] before the reader lets go and waits again.
//!
//! Bound on a writer's wait: one [`TLS_READ_SLICE`] (plus decrypting one record) behind the
//! reader, on top of the messages queued ahead of it (see [`split`](crate::split)).

use crate::config::Config;
use crate::error::Error;
use crate::net_stream::NetStream;
use crate::socket::WebSocket;
use crate::split::{ReadHalf, Reader, Transport, Writer, split_parts};
use std::net::TcpStream;
#[cfg(feature = "native-tls")]
use {
    crate::split::Outbound,
    std::io::{self, Read},
    std::sync::Mutex,
    std::time::Duration,
};

#[cfg(feature = "native-tls")]
/// The longest the reader holds the writer's lock while TLS waits for the rest of a record.
pub const TLS_READ_SLICE: Duration = Duration::from_millis(5);

#[cfg(feature = "native-tls")]
impl Transport for native_tls::TlsStream<TcpStream> {
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.get_ref().set_write_timeout(timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.get_ref().write_timeout()
    }
    fn read_locked(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(self, buf)
    }
    fn buffered(&self) -> usize {
        self.buffered_read_size().unwrap_or(0)
    }
}

#[cfg(feature = "native-tls")]
/// The reader's side of a split TLS connection: a clone of the TCP socket to wait on.
struct TlsReadHalf {
    tcp: TcpStream,
}

#[cfg(feature = "native-tls")]
impl ReadHalf for TlsReadHalf {
    fn read(&mut self, buf: &mut [u8], out: &Mutex<Outbound>) -> io::Result<usize> {
        let lock = || out.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            {
                let mut guard = lock();
                if guard.stream.buffered() > 0 {
                    // Already decrypted: no waiting involved.
                    return guard.stream.read_locked(buf);
                }
            }
            // Wait without the lock; the caller's read timeout applies here.
            let mut probe = [0u8; 1];
            if self.tcp.peek(&mut probe)? == 0 {
                return Ok(0);
            }
            let mut guard = lock();
            let callers_timeout = self.tcp.read_timeout()?;
            self.tcp.set_read_timeout(Some(TLS_READ_SLICE))?;
            let result = guard.stream.read_locked(buf);
            self.tcp.set_read_timeout(callers_timeout)?;
            match result {
                // Part of a record, or a record with no application data (a TLS 1.3 session
                // ticket): let go of the lock and wait for more.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }
}

impl WebSocket<NetStream> {
    /// Splits a plain or TLS connection into a [`Reader`] and a `Clone + Send + Sync` [`Writer`];
    /// see [`WebSocket::<TcpStream>::split`](WebSocket::split) and, for TLS, the module docs on
    /// how long a writer may wait.
    ///
    /// Errors: [`Error::Io`] if the socket cannot be duplicated.
    pub fn split(self) -> Result<(Reader, Writer), Error> {
        let role = self.role();
        let (stream, conn, config, subprotocol): (NetStream, _, Config, _) = self.into_parts();
        let (receiver, sender) = conn.into_parts();
        let (source, write_half, tcp): (Box<dyn ReadHalf>, Box<dyn Transport>, TcpStream) =
            match stream {
                NetStream::Plain(tcp) => {
                    (Box::new(tcp.try_clone()?), Box::new(tcp.try_clone()?), tcp)
                }
                #[cfg(feature = "native-tls")]
                NetStream::Tls(tls) => {
                    let tcp = tls.get_ref().try_clone()?;
                    let wait_on = tls.get_ref().try_clone()?;
                    (Box::new(TlsReadHalf { tcp: wait_on }), Box::new(*tls), tcp)
                }
            };
        Ok(split_parts(
            receiver,
            sender,
            source,
            write_half,
            tcp,
            role,
            config,
            subprotocol,
        ))
    }
}
