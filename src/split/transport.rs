//! The stream halves a split connection reads and writes through, and the seam for TLS.

use super::writer::Outbound;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The write half of a stream, kept under the writer's lock.
pub(crate) trait Transport: Write + Send + 'static {
    /// Bounds each write; `None` blocks without limit.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// The current write bound.
    fn write_timeout(&self) -> io::Result<Option<Duration>>;
    /// Whether `write_vectored` writes several slices in one go. If not (TLS: one record per
    /// write), a frame is better copied into one buffer than written header and payload apart.
    fn writes_vectored(&self) -> bool {
        false
    }
    /// Reads through the write half, for streams that only the lock holder may use (TLS).
    #[allow(dead_code)] // used by ReadUnderLock
    fn read_locked(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Whether the stream holds input already taken off the socket (decrypted TLS records):
    /// then no byte will show on the socket for it.
    #[allow(dead_code)] // used by ReadUnderLock
    fn has_buffered_input(&self) -> bool {
        false
    }
}

/// The TCP halves share one socket (one file descriptor per connection): `Read` and `Write` are
/// implemented for `&TcpStream`, so neither half needs the other's lock.
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
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.set_write_timeout(timeout)
    }
    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.0.write_timeout()
    }
    fn writes_vectored(&self) -> bool {
        true
    }
}

/// The read half of a stream, owned by the reader's thread. `out` is the writer's lock: a read
/// half that needs the write half to read (TLS) must wait for bytes without holding it.
pub(crate) trait ReadHalf: Send + 'static {
    fn read(&mut self, buf: &mut [u8], out: &Mutex<Outbound>) -> io::Result<usize>;
    /// Reads into `head`, then on into `rest`, in one call. Only called when
    /// [`reads_vectored`](Self::reads_vectored) says it does that.
    fn read_vectored(
        &mut self,
        head: &mut [u8],
        _rest: &mut [u8],
        out: &Mutex<Outbound>,
    ) -> io::Result<usize> {
        self.read(head, out)
    }
    /// Whether [`read_vectored`](Self::read_vectored) reads into both slices at once.
    fn reads_vectored(&self) -> bool {
        false
    }
}

impl ReadHalf for SharedTcp {
    fn read(&mut self, buf: &mut [u8], _out: &Mutex<Outbound>) -> io::Result<usize> {
        // The socket itself: reading never touches the lock.
        (&*self.0).read(buf)
    }
    fn read_vectored(
        &mut self,
        head: &mut [u8],
        rest: &mut [u8],
        _out: &Mutex<Outbound>,
    ) -> io::Result<usize> {
        (&*self.0).read_vectored(&mut [io::IoSliceMut::new(head), io::IoSliceMut::new(rest)])
    }
    fn reads_vectored(&self) -> bool {
        true
    }
}

/// How long the reader of a lock-only stream holds the lock for one read once bytes have shown
/// on the socket: enough for the rest of a record in flight, short for the writers that wait.
#[allow(dead_code)] // used by the TLS stream (feature native-tls) and the tests
pub(crate) const LOCKED_READ_BOUND: Duration = Duration::from_millis(10);

/// The read half of a stream that cannot be split (TLS): waits for bytes on the socket with
/// `peek()` WITHOUT the lock, then takes the lock and reads through the writer's stream with a
/// short read timeout. Writers therefore wait at most [`LOCKED_READ_BOUND`] for the reader.
#[allow(dead_code)] // used by the TLS stream (feature native-tls) and the tests
pub(crate) struct ReadUnderLock {
    pub(crate) socket: Arc<TcpStream>,
}

impl ReadHalf for ReadUnderLock {
    fn read(&mut self, buf: &mut [u8], out: &Mutex<Outbound>) -> io::Result<usize> {
        loop {
            {
                let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
                if out.stream.has_buffered_input() {
                    return out.stream.read_locked(buf);
                }
            }
            // Wait for bytes (or EOF) without the lock; the caller's read timeout applies.
            let mut probe = [0u8; 1];
            if self.socket.peek(&mut probe)? == 0 {
                return Ok(0);
            }
            let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
            let previous = self.socket.read_timeout()?;
            self.socket.set_read_timeout(Some(LOCKED_READ_BOUND))?;
            let result = out.stream.read_locked(buf);
            self.socket.set_read_timeout(previous)?;
            match result {
                // Part of a record arrived; wait for the rest without the lock.
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
