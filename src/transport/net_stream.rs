//! The stream a connection runs over: plain TCP, or TLS over TCP (`wss://`), for clients and
//! servers alike.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
#[cfg(feature = "native-tls")]
use {crate::transport::tls_session::Session, std::sync::Arc, std::time::Instant};

/// A network connection: plain TCP (`ws://`) or TLS over TCP (`wss://`).
#[derive(Debug)]
#[non_exhaustive]
pub enum NetStream {
    /// `ws://`: the TCP connection itself.
    Plain(TcpStream),
    /// `wss://`: TLS (native-tls) over the TCP connection.
    #[cfg(feature = "native-tls")]
    Tls(Box<TlsStream>),
}

/// A TLS session over a TCP socket that a split connection's reader can also wait on, so a
/// `wss://` connection costs one file descriptor, split or not.
#[cfg(feature = "native-tls")]
#[derive(Debug)]
pub struct TlsStream {
    pub(crate) tls: Session,
    pub(crate) socket: Arc<TcpStream>,
}

#[cfg(feature = "native-tls")]
impl TlsStream {
    pub(crate) fn new(tls: Session) -> TlsStream {
        let socket = Arc::clone(tls.socket().tcp());
        TlsStream { tls, socket }
    }

    /// Bounds every later read and write together (the WebSocket handshake's one deadline):
    /// each waits only for the time left. `None` ends that; the socket's timeouts are then left
    /// as the last call set them, for the caller to set.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.tls.socket_mut().set_deadline(deadline);
    }

    /// The peer's certificate, DER-encoded, if it sent one.
    pub fn peer_certificate_der(&self) -> Option<Vec<u8>> {
        self.tls.peer_certificate_der()
    }
}

impl NetStream {
    /// The TCP connection underneath, for socket options and addresses.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            NetStream::Plain(tcp) => tcp,
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => &tls.socket,
        }
    }

    /// The local address of the TCP connection.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.tcp().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.tcp().peer_addr()
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        !matches!(self, NetStream::Plain(_))
    }

    /// Bounds every later read and write over TLS together: each waits only for the time left
    /// before `deadline` (a trickling peer cannot stretch it). `None` ends that. Plain TCP: no
    /// effect (its callers bound each read themselves).
    #[cfg_attr(not(feature = "native-tls"), allow(unused_variables))]
    pub(crate) fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        #[cfg(feature = "native-tls")]
        if let NetStream::Tls(tls) = self {
            tls.set_deadline(deadline);
        }
    }

    /// Sets the read deadline of every later read (`None`: wait forever). A read that times out
    /// returns an error for which [`Error::is_timeout`](crate::Error::is_timeout) holds; retrying
    /// it loses nothing.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    /// Sets the write deadline of every later write.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(timeout)
    }
}

// The vectored calls are forwarded for plain TCP, so that a frame's header and a large payload
// go in one system call (see `WebSocket::send` and `Receiver::read_bufs`). TLS keeps std's
// default, one slice per call.
impl Read for NetStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            NetStream::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => tls.tls.read(buf),
        }
    }

    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        match self {
            NetStream::Plain(tcp) => tcp.read_vectored(bufs),
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => tls.tls.read_vectored(bufs),
        }
    }
}

impl Write for NetStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            NetStream::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => tls.tls.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            NetStream::Plain(tcp) => tcp.write_vectored(bufs),
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => tls.tls.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            NetStream::Plain(tcp) => tcp.flush(),
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => tls.tls.flush(),
        }
    }
}
