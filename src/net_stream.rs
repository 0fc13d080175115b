//! The stream a connection runs over: plain TCP, or TLS over TCP (`wss://`), for clients and
//! servers alike.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A network connection: plain TCP (`ws://`) or TLS over TCP (`wss://`).
#[derive(Debug)]
#[non_exhaustive]
pub enum NetStream {
    /// `ws://`: the TCP connection itself.
    Plain(TcpStream),
    /// `wss://`: TLS (native-tls) over the TCP connection.
    #[cfg(feature = "native-tls")]
    Tls(Box<native_tls::TlsStream<TcpStream>>),
}

impl NetStream {
    /// The TCP connection underneath, for socket options and addresses.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            NetStream::Plain(tcp) => tcp,
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => tls.get_ref(),
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

impl Read for NetStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            NetStream::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for NetStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            NetStream::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            NetStream::Plain(tcp) => tcp.flush(),
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => tls.flush(),
        }
    }
}
