//! [`SplitStream`] for [`NetStream`]: plain TCP splits as `TcpStream` does, `wss://` (feature
//! `native-tls`) by its own means.
//!
//! A TLS session is one object for both directions, so after the split it sits behind a mutex
//! held only to encrypt or decrypt (its bytes go through memory queues, never the socket): the
//! reader reads ciphertext from the socket without any lock, the writer writes ciphertext
//! without it. A reader never waits for a writer nor a writer for a reader; a peer trickling a
//! TLS record holds up no one, and each byte of it counts as activity for the heartbeat
//! (`transport::tls_halves`).

use crate::split::{SplitHalves, SplitStream};
use crate::transport::net_stream::NetStream;
use std::io;
use std::net::Shutdown;
use std::time::Duration;
#[cfg(feature = "native-tls")]
use {
    crate::split::{Reader, Writer, split_parts},
    crate::transport::net_stream::TlsStream,
    crate::transport::tls_halves::tls_halves,
    std::sync::Arc,
};

/// Plain TCP splits as `TcpStream` does (one socket, no duplicate); TLS splits its session into
/// halves that share it only for CPU work.
impl SplitStream for NetStream {
    /// A second handle to a plain TCP connection; a TLS session cannot be duplicated
    /// (`Unsupported`), but splits all the same.
    fn try_clone(&self) -> io::Result<Self> {
        match self {
            NetStream::Plain(tcp) => tcp.try_clone().map(NetStream::Plain),
            #[cfg(feature = "native-tls")]
            NetStream::Tls(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a TLS session cannot be duplicated",
            )),
        }
    }
    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.tcp().read_timeout()
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.tcp().write_timeout()
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.tcp().shutdown(how)
    }
    fn split_halves(self) -> io::Result<SplitHalves> {
        match self {
            NetStream::Plain(tcp) => SplitStream::split_halves(tcp),
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => {
                let TlsStream { tls, socket } = *tls;
                let (read_half, write_half) = tls_halves(tls);
                Ok(SplitHalves {
                    read: Box::new(read_half),
                    write: Box::new(write_half),
                    socket: Arc::clone(&socket) as Arc<dyn crate::split::Socket>,
                })
            }
        }
    }
}

/// Splits a TLS session into a read half and a write half that share it only for CPU work.
#[cfg(feature = "native-tls")]
pub(crate) fn split_tls(
    conn: Box<crate::proto::Connection>,
    tls: TlsStream,
    role: crate::proto::Role,
    config: crate::proto::config::Config,
    subprotocol: Option<String>,
) -> (Reader, Writer) {
    let TlsStream { tls, socket } = tls;
    let (read_half, write_half) = tls_halves(tls);
    split_parts(
        conn,
        Box::new(read_half),
        Box::new(write_half),
        socket as Arc<dyn crate::split::Socket>,
        role,
        config,
        subprotocol,
    )
}
