//! [`SplitStream`]: what a stream must offer to be split into a reader and writers.

use super::transport::{ReadHalf, SharedTcp, Transport};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A stream that can be split into a [`Reader`](crate::Reader) and [`Writer`](crate::Writer)s
/// ([`WebSocket::split`](crate::WebSocket::split)): a second handle to the same connection for
/// the read half, timeouts on each wait, and a shutdown that wakes a blocked read or write.
///
/// Implemented for [`TcpStream`], [`NetStream`](crate::NetStream) (TLS too, which splits by its
/// own means) and, on Unix, `UnixStream`. A split reader uses the read timeout to bound its
/// closing handshake ([`Config::close_timeout`](crate::Config::close_timeout)) and to keep
/// buffers only while messages keep coming.
pub trait SplitStream: Read + Write + Send + Sized + 'static {
    /// Another handle to the same connection (`try_clone` of the socket types); the read half
    /// reads through it while the write half writes through the original.
    fn try_clone(&self) -> io::Result<Self>;
    /// The bound on each wait of a read (`None`: none).
    fn read_timeout(&self) -> io::Result<Option<Duration>>;
    /// Bounds each wait of a read; a read that waits longer fails with `WouldBlock` or
    /// `TimedOut`. `None` removes the bound.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// The bound on each wait of a write.
    fn write_timeout(&self) -> io::Result<Option<Duration>>;
    /// Bounds each wait of a write.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Shuts the connection down: blocked reads and writes on every handle wake with an error.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    /// The halves; the default splits through [`try_clone`](Self::try_clone). Not for callers.
    #[doc(hidden)]
    fn split_halves(self) -> io::Result<SplitHalves> {
        split_by_clones(self)
    }
}

macro_rules! socket_split_stream {
    ($type:ty $(, $split:item)?) => {
        impl SplitStream for $type {
            fn try_clone(&self) -> io::Result<Self> {
                <$type>::try_clone(self)
            }
            fn read_timeout(&self) -> io::Result<Option<Duration>> {
                <$type>::read_timeout(self)
            }
            fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                <$type>::set_read_timeout(self, timeout)
            }
            fn write_timeout(&self) -> io::Result<Option<Duration>> {
                <$type>::write_timeout(self)
            }
            fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                <$type>::set_write_timeout(self, timeout)
            }
            fn shutdown(&self, how: Shutdown) -> io::Result<()> {
                <$type>::shutdown(self, how)
            }
            $($split)?
        }
    };
}

socket_split_stream!(
    TcpStream,
    fn split_halves(self) -> io::Result<SplitHalves> {
        Ok(split_tcp_stream(Arc::new(self)))
    }
);
#[cfg(unix)]
socket_split_stream!(std::os::unix::net::UnixStream);

/// The halves a [`SplitStream`] splits into. Opaque: made by the crate only.
#[doc(hidden)]
pub struct SplitHalves {
    pub(crate) read: Box<dyn ReadHalf>,
    pub(crate) write: Box<dyn Transport>,
    pub(crate) socket: Arc<dyn Socket>,
}

impl std::fmt::Debug for SplitHalves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SplitHalves")
    }
}

/// Socket-level control of a split connection, shared by both halves: the reader's timeouts,
/// shutdown (abort, failing, closing after the handshake) and the peer's address.
pub(crate) trait Socket: Send + Sync + 'static {
    fn read_timeout(&self) -> io::Result<Option<Duration>>;
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "not an IP connection",
        ))
    }
}

impl Socket for TcpStream {
    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        TcpStream::read_timeout(self)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::peer_addr(self)
    }
}

/// A handle of any [`SplitStream`] used for control only; behind a mutex (held for one system
/// call that never waits for the peer) because the stream need not be `Sync`.
struct Control<S>(Mutex<S>);

impl<S: SplitStream> Control<S> {
    fn lock(&self) -> std::sync::MutexGuard<'_, S> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S: SplitStream> Socket for Control<S> {
    fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.lock().read_timeout()
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.lock().set_read_timeout(timeout)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        SplitStream::shutdown(&*self.lock(), how)
    }
}

/// One handle of a [`SplitStream`], as the read half or the write half.
struct Owned<S>(S);

impl<S: SplitStream> ReadHalf for Owned<S> {
    fn read(&mut self, buf: &mut [u8], arrived: &dyn Fn()) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        if n > 0 {
            arrived();
        }
        Ok(n)
    }
}

impl<S: SplitStream> Transport for Owned<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }
    fn writes_now(&self) -> bool {
        super::transport::writes_any_now(&self.0)
    }
    fn write_now(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        super::transport::write_any_now(&self.0, bufs)
            .unwrap_or_else(|| self.0.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_write_timeout(timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.0.write_timeout()
    }
}

/// Splits any [`SplitStream`] through two more handles: one reads, one writes, one controls.
pub(crate) fn split_by_clones<S: SplitStream>(stream: S) -> io::Result<SplitHalves> {
    let read = stream.try_clone()?;
    let control = stream.try_clone()?;
    Ok(SplitHalves {
        read: Box::new(Owned(read)),
        write: Box::new(Owned(stream)),
        socket: Arc::new(Control(Mutex::new(control))),
    })
}

/// Splits a TCP stream without new file descriptors: all three share the one socket.
pub(crate) fn split_tcp_stream(tcp: Arc<TcpStream>) -> SplitHalves {
    SplitHalves {
        read: Box::new(SharedTcp(Arc::clone(&tcp))),
        write: Box::new(SharedTcp(Arc::clone(&tcp))),
        socket: tcp,
    }
}
