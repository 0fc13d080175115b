//! The stream halves a split connection reads and writes through: the seam where TLS plugs in.
//!
//! Neither half ever waits for the other: the read half belongs to the reader's thread, the
//! write half to whichever thread currently owns writing (see [`writer`](super::writer)).

use std::any::Any;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// The write half. Only the current write owner calls it. Must not wait for the reader.
///
/// `write` returning `Err` means no byte of `buf` was taken, so the caller may retry the same
/// bytes without duplicating any.
pub(crate) trait Transport: Send + 'static {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// May write only the first non-empty slice.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize>;
    /// Whether `write_vectored` writes several slices in one go. If not (TLS: one record per
    /// write), a frame is better copied into one buffer than written header and payload apart.
    fn writes_vectored(&self) -> bool {
        false
    }
    /// Whether [`write_now`](Self::write_now) never waits for the peer.
    fn writes_now(&self) -> bool {
        false
    }
    /// Writes like `write_vectored` but returns `WouldBlock` at once, without any wait, when the
    /// socket's buffer is full (only where [`writes_now`](Self::writes_now) says so; otherwise
    /// it waits as `write_vectored` does). For shared threads, which must never wait on one peer:
    /// a write timeout cannot do this (the kernel waits at least a clock tick, several ms).
    fn write_now(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored(bufs)
    }
    /// Also writes output a [`ReadHalf`] left (TLS).
    fn flush(&mut self) -> io::Result<()>;
    /// [`flush`](Self::flush) without any wait where [`writes_now`](Self::writes_now) says so:
    /// `WouldBlock` when the socket is full, what is left kept for the next call.
    fn flush_now(&mut self) -> io::Result<()> {
        self.flush()
    }
    /// Bounds each wait of a write; `None` blocks without limit.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// The current bound on each wait of a write.
    fn write_timeout(&self) -> io::Result<Option<Duration>>;
    /// The connection ended cleanly and TCP is about to be closed: end the transport's own
    /// session first, best effort and briefly (TLS close_notify, RFC 8446 §6.1).
    fn close_notify(&mut self) {}
}

/// The read half, owned by the reader thread. Must never wait for the write half.
///
/// A read timeout (the socket's, set by the reader) returns `WouldBlock`/`TimedOut` and loses
/// nothing: the next read continues.
pub(crate) trait ReadHalf: Send + 'static {
    /// `arrived` is called each time raw bytes arrive from the socket (TLS: ciphertext, even a
    /// partial record), so a trickling peer counts as alive for the heartbeat.
    fn read(&mut self, buf: &mut [u8], arrived: &dyn Fn()) -> io::Result<usize>;
    /// Reads into `head`, then on into `rest`, in one call. Only called when
    /// [`reads_vectored`](Self::reads_vectored) says it does that.
    fn read_vectored(
        &mut self,
        head: &mut [u8],
        _rest: &mut [u8],
        arrived: &dyn Fn(),
    ) -> io::Result<usize> {
        self.read(head, arrived)
    }
    /// Whether [`read_vectored`](Self::read_vectored) reads into both slices at once.
    fn reads_vectored(&self) -> bool {
        false
    }
    /// The last read produced bytes that must reach the peer (TLS post-handshake messages such
    /// as a KeyUpdate reply); the reader then asks for a flush through the write owner.
    fn has_pending_output(&self) -> bool {
        false
    }
}

/// Flags of a write that never waits; like std's writes, never raising `SIGPIPE` where the
/// flag exists (elsewhere std sets `SO_NOSIGPIPE` on its sockets).
#[cfg(unix)]
const DONT_WAIT: libc::c_int = libc::MSG_DONTWAIT | NO_SIGPIPE;

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
const NO_SIGPIPE: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(all(
    unix,
    not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))
))]
const NO_SIGPIPE: libc::c_int = 0;

/// One `send` that never waits for the peer: `WouldBlock` when the socket's buffer is full.
#[cfg(unix)]
pub(crate) fn send_now(
    socket: &impl std::os::fd::AsFd,
    bufs: &[io::IoSlice<'_>],
) -> io::Result<usize> {
    socket2::SockRef::from(socket).send_vectored_with_flags(bufs, DONT_WAIT)
}

/// A write to `tcp`, without any wait if `now` (where the system allows; elsewhere it waits
/// up to the socket's write timeout).
#[cfg(feature = "native-tls")]
pub(crate) fn write_tcp(tcp: &TcpStream, buf: &[u8], now: bool) -> io::Result<usize> {
    #[cfg(unix)]
    if now {
        return send_now(tcp, &[io::IoSlice::new(buf)]);
    }
    let _ = now;
    let mut tcp = tcp;
    tcp.write(buf)
}

/// Whether [`write_any_now`] writes to `stream` without waiting: the socket types of std on
/// Unix, for halves split by clones.
pub(crate) fn writes_any_now(stream: &dyn Any) -> bool {
    #[cfg(unix)]
    if stream.is::<std::os::unix::net::UnixStream>() || stream.is::<TcpStream>() {
        return true;
    }
    let _ = stream;
    false
}

/// A write that never waits to `stream` where [`writes_any_now`] says so; `None` elsewhere.
pub(crate) fn write_any_now(
    stream: &dyn Any,
    bufs: &[io::IoSlice<'_>],
) -> Option<io::Result<usize>> {
    #[cfg(unix)]
    {
        if let Some(unix) = stream.downcast_ref::<std::os::unix::net::UnixStream>() {
            return Some(send_now(unix, bufs));
        }
        if let Some(tcp) = stream.downcast_ref::<TcpStream>() {
            return Some(send_now(tcp, bufs));
        }
    }
    let _ = (stream, bufs);
    None
}

/// The TCP halves share one socket (one file descriptor per connection): `Read` and `Write` are
/// implemented for `&TcpStream`, so neither half needs the other.
#[derive(Debug)]
pub(crate) struct SharedTcp(pub(crate) Arc<TcpStream>);

impl Read for SharedTcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for SharedTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

impl Transport for SharedTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }
    fn writes_vectored(&self) -> bool {
        true
    }
    #[cfg(unix)]
    fn writes_now(&self) -> bool {
        true
    }
    /// `send` with `MSG_DONTWAIT`: non-blocking for this one call, leaving the socket (which
    /// the reader shares) blocking; `O_NONBLOCK` would make the reader's reads fail too.
    #[cfg(unix)]
    fn write_now(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        send_now(&*self.0, bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_write_timeout(timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.0.write_timeout()
    }
}

impl ReadHalf for SharedTcp {
    fn read(&mut self, buf: &mut [u8], arrived: &dyn Fn()) -> io::Result<usize> {
        let n = (&*self.0).read(buf)?;
        if n > 0 {
            arrived();
        }
        Ok(n)
    }
    fn read_vectored(
        &mut self,
        head: &mut [u8],
        rest: &mut [u8],
        arrived: &dyn Fn(),
    ) -> io::Result<usize> {
        let n = (&*self.0)
            .read_vectored(&mut [io::IoSliceMut::new(head), io::IoSliceMut::new(rest)])?;
        if n > 0 {
            arrived();
        }
        Ok(n)
    }
    fn reads_vectored(&self) -> bool {
        true
    }
}
