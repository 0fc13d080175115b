//! The halves of a split `wss://` connection (feature `native-tls`).
//!
//! One TLS session serves both directions, so it sits behind a mutex shared by the halves. The
//! session runs over [`TlsSocket`] in SPLIT mode (memory queues), so everything done under that
//! mutex is CPU work: decrypting what already arrived, encrypting one record. The socket is read
//! and written only outside it. Hence a reader waiting for (or receiving a trickle of) ciphertext
//! never holds up a writer, and a writer blocked on a peer that does not read never holds up the
//! reader.

use crate::split::transport::{ReadHalf, Transport, write_tcp};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub(crate) use crate::transport::tls_session::Session;

/// Plaintext encrypted per call: one TLS record's worth (RFC 8446 §5.1: 2^14 bytes).
const RECORD_PLAINTEXT: usize = 16 * 1024;

/// Ciphertext read from the socket per system call, at most.
const CIPHERTEXT_READ: usize = 32 * 1024;

/// A read buffer below this is not used to gather the rest of a record.
const SMALL_READ: usize = 4 * 1024;

/// Room for one whole record: 2^14 bytes of plaintext plus the header and the AEAD expansion
/// (RFC 8446 §5.2 allows up to 2^14 + 256 after the 5-byte header).
const RECORD_CIPHERTEXT: usize = (1 << 14) + 256 + 5;

/// Sent ciphertext buffers larger than this are given back once empty: a record's worth is
/// not kept per connection between messages (small control frames keep theirs).
const IDLE_UNSENT_KEEP: usize = 4 * 1024;

/// Within one write call, the socket's write timeout is cut to what is left of the call's bound
/// only once more than this is used up (each cut costs a system call).
const TIMEOUT_SLACK: Duration = Duration::from_millis(1);

/// How long dropping the write half may spend sending TLS close_notify.
const CLOSE_NOTIFY_BOUND: Duration = Duration::from_millis(10);

fn lock(session: &Mutex<Session>) -> MutexGuard<'_, Session> {
    // A panic under the lock leaves at worst a broken session, which the next call reports.
    session.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a handshaken session apart into its read half and its write half.
pub(crate) fn tls_halves(mut session: Session) -> (TlsReadHalf, TlsTransport) {
    session.socket_mut().enter_split_mode();
    let tcp = Arc::clone(session.socket().tcp());
    let write_timeout = tcp.write_timeout().unwrap_or(None);
    let session = Arc::new(Mutex::new(session));
    let read_half = TlsReadHalf {
        session: Arc::clone(&session),
        tcp: Arc::clone(&tcp),
        decrypt_first: true,
        pending_output: false,
    };
    let transport = TlsTransport {
        session,
        tcp,
        unsent: Vec::new(),
        sent: 0,
        write_timeout: Cell::new(write_timeout),
        notified: false,
    };
    (read_half, transport)
}

/// Reads ciphertext from the socket without any lock, then decrypts it under the session lock.
pub(crate) struct TlsReadHalf {
    session: Arc<Mutex<Session>>,
    tcp: Arc<TcpStream>,
    /// The session may hold plaintext, or ciphertext not yet decrypted: ask it before the socket.
    decrypt_first: bool,
    /// The last decryption produced ciphertext to send (a post-handshake reply).
    pending_output: bool,
}

impl ReadHalf for TlsReadHalf {
    fn read(&mut self, buf: &mut [u8], arrived: &dyn Fn()) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // For the rest of a record when `buf` is small (allocated only then, freed on return):
        // a record comes in a few reads, not in `buf`-sized pieces.
        let mut scratch = Vec::new();
        // Ciphertext the last round read (into `buf`, or into `scratch` if it is not empty).
        let mut received = 0;
        loop {
            if self.decrypt_first || received > 0 {
                let mut session = lock(&self.session);
                if received > 0 {
                    let ciphertext = if scratch.is_empty() {
                        &buf[..received]
                    } else {
                        &scratch[..received]
                    };
                    session.socket_mut().push_incoming(ciphertext);
                }
                let result = session.read(buf);
                self.pending_output = session.socket().has_outgoing();
                drop(session);
                match result {
                    // n == 0: the peer's close_notify, the end of its data.
                    Ok(n) => {
                        self.decrypt_first = true;
                        return Ok(n);
                    }
                    // All that arrived is decrypted (or part of a record): read more.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.decrypt_first = false,
                    Err(e) => return Err(e),
                }
            }
            // Outside the lock. A timeout here loses nothing: what came before is in the session.
            // The first wait uses `buf` only, so an idle connection holds no extra memory.
            let part_of_a_record = received > 0;
            received = if part_of_a_record && buf.len() < SMALL_READ {
                if scratch.is_empty() {
                    scratch = vec![0; RECORD_CIPHERTEXT];
                }
                (&*self.tcp).read(&mut scratch)?
            } else {
                scratch = Vec::new();
                let limit = buf.len().min(CIPHERTEXT_READ);
                (&*self.tcp).read(&mut buf[..limit])?
            };
            if received == 0 {
                return Ok(0);
            }
            // Even part of a record shows the peer is alive.
            arrived();
        }
    }

    fn has_pending_output(&self) -> bool {
        self.pending_output
    }
}

/// Encrypts under the session lock, one record per call, and writes the ciphertext without it.
pub(crate) struct TlsTransport {
    session: Arc<Mutex<Session>>,
    tcp: Arc<TcpStream>,
    /// Ciphertext taken from the session but not yet on the socket: `unsent[sent..]`. Written
    /// before anything newer, so records go out in order.
    unsent: Vec<u8>,
    sent: usize,
    /// The bound on one call (the socket's own write timeout is shortened within a call).
    write_timeout: Cell<Option<Duration>>,
    /// close_notify was sent (or tried): once per session.
    notified: bool,
}

impl TlsTransport {
    /// Writes the unsent ciphertext by `deadline` (with `now`: without any wait); what is left
    /// stays for the next call, so a record cut by a full socket goes on where it stopped.
    fn send_unsent(&mut self, deadline: Option<Instant>, now: bool) -> io::Result<()> {
        let full = self.write_timeout.get().filter(|_| !now);
        let mut shortened = false;
        let result = loop {
            if self.sent == self.unsent.len() {
                break Ok(());
            }
            if let (Some(deadline), Some(full)) = (deadline, full) {
                // The call's bound is a total: a write waits only for what is left of it (the
                // socket's timeout is changed only once a noticeable part is used up).
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the write timeout passed with TLS records unsent",
                    ));
                }
                if left + TIMEOUT_SLACK < full {
                    shortened = true;
                    if let Err(e) = self.tcp.set_write_timeout(Some(left)) {
                        break Err(e);
                    }
                }
            }
            match write_tcp(&self.tcp, &self.unsent[self.sent..], now) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if shortened {
            self.tcp.set_write_timeout(self.write_timeout.get())?;
        }
        if self.sent == self.unsent.len() {
            self.sent = 0;
            if self.unsent.capacity() > IDLE_UNSENT_KEEP {
                self.unsent = Vec::new();
            } else {
                self.unsent.clear();
            }
        }
        result
    }

    fn deadline(&self) -> Option<Instant> {
        self.write_timeout
            .get()
            .and_then(|timeout| Instant::now().checked_add(timeout))
    }
}

impl Transport for TlsTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_record(buf, false)
    }

    #[cfg(unix)]
    fn writes_now(&self) -> bool {
        true
    }

    fn write_now(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(first) => self.write_record(first, true),
            None => Ok(0),
        }
    }

    fn flush_now(&mut self) -> io::Result<()> {
        lock(&self.session)
            .socket_mut()
            .take_outgoing(&mut self.unsent);
        self.send_unsent(None, true)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(first) => self.write(first),
            None => Ok(0),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let deadline = self.deadline();
        lock(&self.session)
            .socket_mut()
            .take_outgoing(&mut self.unsent);
        self.send_unsent(deadline, false)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_write_timeout(timeout)?;
        self.write_timeout.set(timeout);
        Ok(())
    }

    fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.write_timeout.get())
    }

    fn close_notify(&mut self) {
        self.send_close_notify();
    }
}

impl TlsTransport {
    /// Encrypts one record of `buf` and writes it after older ciphertext (with `now`: without
    /// any wait). Returns the plaintext taken: none if older ciphertext could not go.
    fn write_record(&mut self, buf: &[u8], now: bool) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = if now { None } else { self.deadline() };
        // Older ciphertext first; if it cannot go, nothing of `buf` is taken.
        self.send_unsent(deadline, now)?;
        let record = &buf[..buf.len().min(RECORD_PLAINTEXT)];
        let mut session = lock(&self.session);
        // Output the reader left (a post-handshake reply) precedes the new record.
        session.socket_mut().take_outgoing(&mut self.unsent);
        let encrypted = session.write(record);
        session.socket_mut().take_outgoing(&mut self.unsent);
        drop(session);
        let taken = encrypted?;
        // The plaintext is taken: its ciphertext goes now as far as the bound allows, the rest
        // with the next call or flush (which then reports a failure).
        let _ = self.send_unsent(deadline, now);
        Ok(taken)
    }

    /// Ends the TLS session with close_notify (RFC 8446 §6.1), best effort and briefly: only
    /// if no record is half written, and only if the socket takes it within a few
    /// milliseconds. Call once the connection ended cleanly, before TCP is shut down.
    pub(crate) fn send_close_notify(&mut self) {
        if self.notified || !self.unsent.is_empty() {
            return;
        }
        self.notified = true;
        let mut session = lock(&self.session);
        if session.shutdown().is_err() {
            return;
        }
        session.socket_mut().take_outgoing(&mut self.unsent);
        drop(session);
        if self.tcp.set_write_timeout(Some(CLOSE_NOTIFY_BOUND)).is_ok() {
            let _ = (&*self.tcp).write(&self.unsent);
            let _ = self.tcp.set_write_timeout(self.write_timeout.get());
        }
        self.unsent.clear();
        self.sent = 0;
    }
}

impl Drop for TlsTransport {
    /// The connection's last writer is gone: close_notify, if the socket is still open.
    fn drop(&mut self) {
        self.send_close_notify();
    }
}

#[cfg(test)]
mod tests {
    //! The halves on their own, over a real TLS pair on loopback: each end's read half and
    //! write half used from two threads at once.
    use super::*;
    use crate::transport::tls_socket::TlsSocket;
    use std::net::TcpListener;

    const DEADLINE: Duration = Duration::from_secs(60);

    /// A handshaken client and server session over loopback.
    fn session_pair() -> (Session, Session) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let identity = native_tls::Identity::from_pkcs8(
            certified.cert.pem().as_bytes(),
            certified.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        let acceptor = native_tls::TlsAcceptor::new(identity).unwrap();
        let connector = native_tls::TlsConnector::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(DEADLINE)).unwrap();
            tcp.set_write_timeout(Some(DEADLINE)).unwrap();
            Session::Native(acceptor.accept(TlsSocket::new(Arc::new(tcp))).unwrap())
        });
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        tcp.set_write_timeout(Some(DEADLINE)).unwrap();
        let client = Session::Native(
            connector
                .connect("localhost", TlsSocket::new(Arc::new(tcp)))
                .unwrap(),
        );
        (client, server.join().unwrap())
    }

    fn byte_at(seed: u8, i: usize) -> u8 {
        (i.wrapping_mul(31) ^ (i >> 11)) as u8 ^ seed
    }

    fn write_all(transport: &mut TlsTransport, seed: u8, total: usize) {
        let chunk: Vec<u8> = (0..total).map(|i| byte_at(seed, i)).collect();
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let n = transport.write(rest).unwrap();
            assert!(n > 0 && n <= RECORD_PLAINTEXT);
            rest = &rest[n..];
        }
        transport.flush().unwrap();
    }

    fn read_exactly(read_half: &mut TlsReadHalf, seed: u8, total: usize) -> usize {
        read_exactly_by(read_half, seed, total, 40 * 1024)
    }

    /// Reads with a buffer of `size`; returns how many socket reads brought ciphertext.
    fn read_exactly_by(read_half: &mut TlsReadHalf, seed: u8, total: usize, size: usize) -> usize {
        let arrivals = Cell::new(0usize);
        let arrived = || arrivals.set(arrivals.get() + 1);
        let mut buf = vec![0u8; size];
        let mut got = 0;
        while got < total {
            let n = read_half.read(&mut buf, &arrived).unwrap();
            assert!(n > 0, "closed after {got} of {total}");
            for (k, byte) in buf[..n].iter().enumerate() {
                assert_eq!(*byte, byte_at(seed, got + k), "byte {}", got + k);
            }
            got += n;
        }
        arrivals.get()
    }

    #[test]
    fn both_directions_at_once_with_both_halves_on_both_ends() {
        const TOTAL: usize = 32 << 20;
        let (client, server) = session_pair();
        let (mut client_read, mut client_write) = tls_halves(client);
        let (mut server_read, mut server_write) = tls_halves(server);
        let started = Instant::now();
        let threads = [
            std::thread::spawn(move || write_all(&mut client_write, 1, TOTAL)),
            std::thread::spawn(move || write_all(&mut server_write, 2, TOTAL)),
            std::thread::spawn(move || assert!(read_exactly(&mut server_read, 1, TOTAL) > 0)),
            std::thread::spawn(move || assert!(read_exactly(&mut client_read, 2, TOTAL) > 0)),
        ];
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(started.elapsed() < DEADLINE);
    }

    #[test]
    fn a_read_timeout_loses_nothing_and_a_blocked_writer_does_not_block_the_reader() {
        let (client, server) = session_pair();
        let (mut client_read, mut client_write) = tls_halves(client);
        let (mut server_read, mut server_write) = tls_halves(server);
        // Nothing to read: the read times out, and a later read still gets every byte.
        server_read
            .tcp
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buf = [0u8; 64];
        let error = server_read.read(&mut buf, &|| {}).unwrap_err();
        assert!(matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
        server_read.tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        // The client never reads: its server's writer blocks (bounded by its write timeout)
        // while the server's reader goes on receiving.
        server_write
            .set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let writing = std::thread::spawn(move || {
            let block = vec![7u8; RECORD_PLAINTEXT];
            let started = Instant::now();
            let mut longest = Duration::ZERO;
            let result = loop {
                let call = Instant::now();
                let result = server_write.write(&block);
                longest = longest.max(call.elapsed());
                if result.is_err() || started.elapsed() > DEADLINE {
                    break result;
                }
            };
            (result, longest)
        });
        write_all(&mut client_write, 3, 1 << 20);
        assert!(read_exactly(&mut server_read, 3, 1 << 20) > 0);
        let (result, longest) = writing.join().unwrap();
        assert!(result.is_err(), "the writer never blocked");
        // Each call is bounded in total by the write timeout (generously here).
        assert!(longest < Duration::from_secs(5), "a write took {longest:?}");
        drop(client_read.read(&mut buf, &|| {}));
    }

    #[test]
    fn a_small_read_buffer_still_takes_a_record_in_few_socket_reads() {
        const TOTAL: usize = 1 << 20;
        let (client, server) = session_pair();
        let (_client_read, mut client_write) = tls_halves(client);
        let (mut server_read, _server_write) = tls_halves(server);
        let writing = std::thread::spawn(move || write_all(&mut client_write, 4, TOTAL));
        let socket_reads = read_exactly_by(&mut server_read, 4, TOTAL, 100);
        writing.join().unwrap();
        // 64 records; 100-byte socket reads would take over 10,000.
        assert!(socket_reads < 1000, "{socket_reads} socket reads");
    }

    #[test]
    fn dropping_the_halves_sends_close_notify() {
        let (client, server) = session_pair();
        let (client_read, client_write) = tls_halves(client);
        drop(client_read);
        drop(client_write);
        // Nothing else follows the client's Finished: any record now is the close_notify alert
        // (TLS 1.2: an alert record; TLS 1.3: an encrypted one, shown as application data).
        let mut raw = [0u8; 64];
        let n = (&**server.socket().tcp()).read(&mut raw).unwrap();
        assert!(n >= 5, "{n} bytes before EOF");
        assert!(matches!(raw[0], 0x15 | 0x17), "record type {}", raw[0]);
    }
}
