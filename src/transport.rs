//! The stream a client connection runs over: plain TCP, or TLS over TCP for `wss://`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A client's transport: `ws://` is plain TCP, `wss://` is TLS over TCP.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientStream {
    /// `ws://`: the TCP connection itself.
    Plain(TcpStream),
    /// `wss://`: TLS (native-tls) over the TCP connection.
    #[cfg(feature = "native-tls")]
    Tls(Box<native_tls::TlsStream<TcpStream>>),
}

impl ClientStream {
    /// The TCP connection underneath, for socket options and addresses.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(tcp) => tcp,
            #[cfg(feature = "native-tls")]
            ClientStream::Tls(tls) => tls.get_ref(),
        }
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        !matches!(self, ClientStream::Plain(_))
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

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "native-tls")]
            ClientStream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "native-tls")]
            ClientStream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(tcp) => tcp.flush(),
            #[cfg(feature = "native-tls")]
            ClientStream::Tls(tls) => tls.flush(),
        }
    }
}
