//! The byte path under a TLS session (feature `native-tls`).
//!
//! A `native_tls::TlsStream` reads and writes ciphertext through a stream of our choosing; this
//! is that stream, in one of two modes:
//!
//! - DIRECT: blocking reads and writes on the TCP socket. Used for the TLS handshake and for an
//!   unsplit `WebSocket<NetStream>`. An optional deadline bounds every read and write together
//!   (each waits only for the time left), so a peer trickling a byte at a time cannot stretch a
//!   handshake past it: the socket's own timeouts bound each system call, not the whole.
//! - SPLIT: memory queues, after a split connection takes the session apart. Reads take from the
//!   ciphertext the read half received (WouldBlock when there is none), writes append to the
//!   ciphertext the write half will send. The session never touches the socket, so encrypting
//!   and decrypting are CPU work only and the lock around the session is never held while a
//!   peer is waited on (see `transport::tls_halves`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A queue that empties is given back if it grew past this, so an idle connection does not keep
/// the memory of its largest burst.
const IDLE_QUEUE_KEEP: usize = 4 * 1024;

/// The stream a TLS session runs over; see the module docs.
#[derive(Debug)]
pub(crate) struct TlsSocket {
    tcp: Arc<TcpStream>,
    /// DIRECT mode: every read and write ends by then.
    deadline: Option<Instant>,
    /// SPLIT mode once set.
    queues: Option<Queues>,
}

#[derive(Debug, Default)]
struct Queues {
    /// Ciphertext received, not yet taken by the session: `incoming[taken..]`.
    incoming: Vec<u8>,
    taken: usize,
    /// Ciphertext the session produced, not yet taken by the write half.
    outgoing: Vec<u8>,
}

impl TlsSocket {
    /// DIRECT mode over `tcp`, without a deadline.
    pub(crate) fn new(tcp: Arc<TcpStream>) -> TlsSocket {
        TlsSocket {
            tcp,
            deadline: None,
            queues: None,
        }
    }

    /// The socket underneath.
    pub(crate) fn tcp(&self) -> &Arc<TcpStream> {
        &self.tcp
    }

    /// DIRECT mode: bounds every later read and write together; each waits at most for the time
    /// left before `deadline` (or the socket's own timeout, if shorter), then fails with
    /// `WouldBlock` (a timeout). `None` stops adjusting the socket's timeouts, leaving them as
    /// the last call set them: set them afterwards.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Switches to SPLIT mode: from now on the session only sees the memory queues.
    pub(crate) fn enter_split_mode(&mut self) {
        self.deadline = None;
        self.queues = Some(Queues::default());
    }

    /// SPLIT mode: ciphertext the read half received, for the session to decrypt.
    pub(crate) fn push_incoming(&mut self, ciphertext: &[u8]) {
        let queues = self.queues.get_or_insert_with(Queues::default);
        if queues.taken == queues.incoming.len() {
            queues.incoming.clear();
            queues.taken = 0;
        }
        queues.incoming.extend_from_slice(ciphertext);
    }

    /// SPLIT mode: moves the ciphertext the session produced to the end of `unsent`.
    pub(crate) fn take_outgoing(&mut self, unsent: &mut Vec<u8>) {
        let Some(queues) = &mut self.queues else {
            return;
        };
        if unsent.is_empty() {
            // No copy: the buffer itself changes hands (the write half frees large ones once
            // sent, so an idle connection does not keep a record's worth here or there).
            std::mem::swap(unsent, &mut queues.outgoing);
        } else {
            unsent.extend_from_slice(&queues.outgoing);
            queues.outgoing.clear();
        }
    }

    /// SPLIT mode: whether the session produced ciphertext the write half has not taken.
    pub(crate) fn has_outgoing(&self) -> bool {
        self.queues.as_ref().is_some_and(|q| !q.outgoing.is_empty())
    }

    /// The time left before the deadline as a socket timeout, or a timeout error once it passed.
    fn time_left(&self) -> io::Result<Option<Duration>> {
        let Some(deadline) = self.deadline else {
            return Ok(None);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // WouldBlock, as an expired socket timeout reports it: the TLS layer keeps what it
            // has and a retry (with a new deadline) could go on.
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the deadline passed",
            ));
        }
        Ok(Some(left))
    }
}

impl Read for TlsSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(queues) = &mut self.queues {
            let available = &queues.incoming[queues.taken..];
            if available.is_empty() {
                if queues.incoming.capacity() > IDLE_QUEUE_KEEP {
                    queues.incoming = Vec::new();
                    queues.taken = 0;
                }
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            queues.taken += n;
            return Ok(n);
        }
        if let Some(left) = self.time_left()? {
            // Shortens the socket's own timeout, never lengthens it (a caller's shorter wait,
            // such as a brief drain, stands).
            let own = self.tcp.read_timeout()?;
            self.tcp
                .set_read_timeout(Some(own.map_or(left, |own| own.min(left))))?;
        }
        (&*self.tcp).read(buf)
    }
}

impl Write for TlsSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(queues) = &mut self.queues {
            queues.outgoing.extend_from_slice(buf);
            return Ok(buf.len());
        }
        if let Some(left) = self.time_left()? {
            let own = self.tcp.write_timeout()?;
            self.tcp
                .set_write_timeout(Some(own.map_or(left, |own| own.min(left))))?;
        }
        (&*self.tcp).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (client, listener.accept().unwrap().0)
    }

    #[test]
    fn split_mode_reads_only_what_was_pushed_and_queues_writes() {
        let (a, _b) = pair();
        let mut socket = TlsSocket::new(Arc::new(a));
        socket.enter_split_mode();
        let mut buf = [0u8; 4];
        assert_eq!(
            socket.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        socket.push_incoming(b"abcdef");
        assert_eq!(socket.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"abcd");
        socket.push_incoming(b"gh");
        assert_eq!(socket.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"efgh");
        assert!(socket.read(&mut buf).is_err());
        assert_eq!(socket.write(b"xyz").unwrap(), 3);
        assert!(socket.has_outgoing());
        let mut unsent = b"old".to_vec();
        socket.take_outgoing(&mut unsent);
        assert_eq!(unsent, b"oldxyz");
        assert!(!socket.has_outgoing());
    }

    #[test]
    fn a_deadline_bounds_reads_in_total_not_each() {
        let (a, mut b) = pair();
        let mut socket = TlsSocket::new(Arc::new(a));
        socket.set_deadline(Some(Instant::now() + Duration::from_millis(300)));
        let started = Instant::now();
        let mut buf = [0u8; 1];
        let mut got = 0;
        let error = loop {
            // A byte every 50 ms: each read succeeds well within any per-read timeout.
            b.write_all(b"x").unwrap();
            match socket.read(&mut buf) {
                Ok(_) => got += 1,
                Err(e) => break e,
            }
            std::thread::sleep(Duration::from_millis(50));
            assert!(started.elapsed() < Duration::from_secs(20), "not cut");
        };
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
        assert!(got >= 1);
    }
}
