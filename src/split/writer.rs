//! The sending half: the state machine and the write half of the stream behind one lock.

use super::transport::Transport;
use crate::ending::EndCause;
use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::message::Message;
use crate::proto::{Role, Sender, State};
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// How long the heartbeat thread or a shutdown may spend writing a ping or close frame to one
/// connection. Such a small frame only blocks when the peer has stopped reading, and those writes
/// come from threads that serve every connection, so they must not wait long.
pub(crate) const SHARED_THREAD_WRITE_BOUND: Duration = Duration::from_millis(50);

/// What the lock guards: the state machine and the stream's write half.
pub(crate) struct Outbound {
    pub(crate) sender: Sender,
    pub(super) stream: Box<dyn Transport>,
    /// The stream's own write timeout, read once at the split (nothing changes it after), so a
    /// ping from the heartbeat thread costs no extra system call to look it up.
    write_timeout: Option<Duration>,
}

impl Outbound {
    /// Writes all queued bytes; a timeout leaves the rest queued.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        while !self.sender.data_to_send().is_empty() {
            match self.stream.write(self.sender.data_to_send()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sender.advance(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.stream.flush()
    }

    /// Queues `message` and writes it. A large payload a server sends unchanged is written from
    /// the message itself, in one vectored write with its header, rather than copied first.
    fn send(&mut self, message: &Message) -> Result<(), Error> {
        self.flush()?;
        if self.stream.writes_vectored() && self.sender.send_header(message)? {
            crate::socket::write_with_payload(
                &mut *self.stream,
                &mut self.sender,
                message.as_bytes(),
            )
        } else {
            self.sender.send(message)?;
            Ok(self.flush()?)
        }
    }

    /// Queues `message` and writes it within `bound`, restoring the stream's own write timeout.
    fn send_within(&mut self, message: &Message, bound: Duration) -> Result<(), Error> {
        if !self.sender.data_to_send().is_empty() {
            // A write timed out earlier: the peer is not reading.
            return Err(io::Error::from(io::ErrorKind::TimedOut).into());
        }
        self.sender.send(message)?;
        let bound = self.write_timeout.map_or(bound, |own| own.min(bound));
        self.stream.set_write_timeout(Some(bound))?;
        let result = self.flush();
        self.stream.set_write_timeout(self.write_timeout)?;
        Ok(result?)
    }
}

/// Everything both halves share.
pub(crate) struct Shared {
    pub(super) out: Mutex<Outbound>,
    /// The socket, to shut the connection down without the lock, waking a blocked reader or
    /// writer.
    pub(super) tcp: Arc<TcpStream>,
    pub(super) cause: Mutex<Option<EndCause>>,
    /// When bytes last arrived, in nanoseconds since `epoch`; read by the heartbeat thread.
    pub(super) last_activity: AtomicU64,
    /// When a data message last completed, in nanoseconds since `epoch`.
    pub(super) last_data: AtomicU64,
    /// When the message now arriving began, in nanoseconds since `epoch` plus one; 0: none.
    pub(super) message_started: AtomicU64,
    pub(super) epoch: Instant,
    pub(super) id: u64,
    pub(super) role: Role,
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Outbound> {
        // A panic while holding the lock cannot leave the sender half-updated in a way that
        // matters more than losing the connection; keep going.
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records why the connection ended, unless a cause is already known.
    pub(crate) fn record(&self, cause: EndCause) {
        let mut slot = self.cause.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(cause);
        }
    }

    /// Bytes arrived; `in_message`: a data message is now partly received.
    pub(super) fn touch(&self, in_message: bool) {
        let nanos = self.epoch.elapsed().as_nanos().min(u64::MAX as u128 - 1) as u64;
        self.last_activity.store(nanos, Ordering::Relaxed);
        if in_message && self.message_started.load(Ordering::Relaxed) == 0 {
            self.message_started.store(nanos + 1, Ordering::Relaxed);
        }
    }

    /// A data message completed: its last bytes arrived at the latest `touch` (or came with the
    /// handshake), so that time is reused rather than the clock read twice per message.
    pub(super) fn message_done(&self) {
        let nanos = self.last_activity.load(Ordering::Relaxed);
        self.last_data.store(nanos, Ordering::Relaxed);
        self.message_started.store(0, Ordering::Relaxed);
    }
}

/// The sending half of a split connection: `Clone + Send + Sync`; send from any thread while the
/// [`Reader`](crate::Reader) blocks in [`read`](crate::Reader::read).
///
/// Each message is written whole under a lock, so frames of two senders never interleave
/// (RFC 6455 §5.4); pongs and close replies from the [`Reader`](crate::Reader) go through the same lock.
/// Clones send on the same connection.
///
/// # How long a send may wait
///
/// For the lock: while another thread writes one message, or the reader writes one pong or
/// close reply (over TLS, also while the reader reads one record it has seen arrive, at most
/// 10 ms). Each write is bounded by the stream's write timeout ([`ServerBuilder::write_timeout`],
/// 10 s by default in a server), and a write that times out fails the connection, so a send waits
/// at most about one write timeout per message queued ahead of it. Without a write timeout a peer
/// that stops reading blocks senders until something closes the connection (the heartbeat, or
/// [`Writer::abort`]).
///
/// [`ServerBuilder::write_timeout`]: crate::ServerBuilder::write_timeout
#[derive(Clone)]
pub struct Writer {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("id", &self.shared.id)
            .finish()
    }
}

impl Writer {
    pub(super) fn new(
        sender: Sender,
        write_half: Box<dyn Transport>,
        tcp: Arc<TcpStream>,
        role: Role,
    ) -> Writer {
        let write_timeout = write_half.write_timeout().unwrap_or(None);
        let shared = Arc::new(Shared {
            out: Mutex::new(Outbound {
                sender,
                stream: write_half,
                write_timeout,
            }),
            tcp,
            cause: Mutex::new(None),
            last_activity: AtomicU64::new(0),
            last_data: AtomicU64::new(0),
            message_started: AtomicU64::new(0),
            epoch: Instant::now(),
            id: next_id(),
            role,
        });
        Writer { shared }
    }

    /// Sends a message. Blocks until it is handed to the stream.
    ///
    /// Errors: [`Error::AlreadyClosed`] once a close frame was sent or the connection failed;
    /// [`Error::InvalidInput`] as for [`WebSocket::send`](crate::WebSocket::send); [`Error::Io`] when the transport
    /// fails. A write that times out fails the connection ([`EndCause::WriteTimeout`], 1008).
    pub fn send(&self, message: Message) -> Result<(), Error> {
        self.send_returning(message).map(drop)
    }

    /// [`send`](Self::send), then gives back the message's buffer for reuse.
    pub(crate) fn send_returning(&self, message: Message) -> Result<Vec<u8>, Error> {
        let mut out = self.shared.lock();
        let result = out.send(&message);
        drop(out);
        self.after_write(result)?;
        Ok(message.into_bytes())
    }

    /// Sends a frame encoded once for many connections (see [`Room`](crate::Room)).
    pub(crate) fn send_encoded(&self, frame: &[u8]) -> Result<(), Error> {
        let mut out = self.shared.lock();
        let result = self.flush_then(&mut out, |sender| sender.send_encoded(frame));
        drop(out);
        self.after_write(result)
    }

    fn flush_then(
        &self,
        out: &mut Outbound,
        queue: impl FnOnce(&mut Sender) -> Result<(), Error>,
    ) -> Result<(), Error> {
        out.flush()?;
        queue(&mut out.sender)?;
        Ok(out.flush()?)
    }

    pub(super) fn after_write(&self, result: Result<(), Error>) -> Result<(), Error> {
        if let Err(Error::Io(e)) = &result {
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                self.fail(EndCause::WriteTimeout, CloseCode::Policy, "write timeout");
            } else {
                self.shared.record(EndCause::io(e));
                self.shared.lock().sender.on_transport_closed();
                let _ = self.shared.tcp.shutdown(Shutdown::Both);
            }
        }
        result
    }

    /// Starts the closing handshake: sends a close frame. The [`Reader`](crate::Reader) receives the peer's
    /// reply as [`Message::Close`]; [`Reader::close`](crate::Reader::close) sends and waits in one call.
    ///
    /// Errors: [`Error::AlreadyClosed`] if a close frame was already sent;
    /// [`Error::InvalidInput`] for a code that may not be sent or a reason over 123 bytes.
    pub fn close(&self, code: impl Into<CloseCode>, reason: &str) -> Result<(), Error> {
        let frame = CloseFrame::new(code, reason);
        let mut out = self.shared.lock();
        let result = self.flush_then(&mut out, |sender| sender.close(Some(frame.clone())));
        drop(out);
        if result.is_ok() {
            self.shared.record(EndCause::LocalClosed(Some(frame)));
        }
        self.after_write(result)
    }

    /// Closes the TCP connection at once, without a close frame: a blocked reader or writer wakes
    /// with an error. For a peer that is gone or misbehaving.
    pub fn abort(&self) {
        self.shared.record(EndCause::Io(
            io::ErrorKind::ConnectionAborted,
            "aborted by this end".into(),
        ));
        let _ = self.shared.tcp.shutdown(Shutdown::Both);
    }

    /// Whether messages can still be sent.
    pub fn is_open(&self) -> bool {
        self.shared.lock().sender.state() == State::Open
    }

    /// Why the connection ended, once it has.
    pub fn end_cause(&self) -> Option<EndCause> {
        self.shared
            .cause
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A number unique to this connection within the process.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.shared.tcp.peer_addr()
    }

    /// Whether both writers send on the same connection.
    pub fn same_connection(&self, other: &Writer) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.shared.role
    }

    /// When bytes last arrived from the peer.
    pub(crate) fn last_activity(&self) -> Instant {
        self.shared.epoch + Duration::from_nanos(self.shared.last_activity.load(Ordering::Relaxed))
    }

    /// What the reader last recorded, for the shared timer.
    pub(crate) fn observed(&self) -> crate::proto::watch::Observed {
        let at = |nanos: u64| self.shared.epoch + Duration::from_nanos(nanos);
        let started = self.shared.message_started.load(Ordering::Relaxed);
        crate::proto::watch::Observed {
            last_activity: self.last_activity(),
            last_data: at(self.shared.last_data.load(Ordering::Relaxed)),
            message_started: (started != 0).then(|| at(started - 1)),
        }
    }

    pub(crate) fn record(&self, cause: EndCause) {
        self.shared.record(cause);
    }

    /// A handle to the connection's socket, for closing it.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.shared.tcp
    }

    /// Sends a ping from a thread that serves many connections: never waits for the lock and
    /// writes within [`SHARED_THREAD_WRITE_BOUND`]. Returns whether the ping went out.
    pub(crate) fn ping_from_shared_thread(&self) -> bool {
        match self.shared.out.try_lock() {
            Ok(mut out) => out
                .send_within(&Message::Ping(Vec::new()), SHARED_THREAD_WRITE_BOUND)
                .is_ok(),
            // Another thread is writing; the pong deadline still runs.
            Err(TryLockError::WouldBlock) => false,
            Err(TryLockError::Poisoned(_)) => false,
        }
    }

    /// Fails the connection: records `cause`, sends a close frame if that can be done at once,
    /// then closes TCP so that a dead peer cannot hold the connection open.
    pub(crate) fn fail(&self, cause: EndCause, code: CloseCode, reason: &str) {
        self.shared.record(cause);
        if let Ok(mut out) = self.shared.out.try_lock() {
            let close = Message::Close(Some(CloseFrame::new(code, reason)));
            let _ = out.send_within(&close, SHARED_THREAD_WRITE_BOUND);
            out.sender.on_transport_closed();
        }
        let _ = self.shared.tcp.shutdown(Shutdown::Both);
    }

    /// Starts a closing handshake from a thread that serves many connections (server shutdown):
    /// waits for the lock for at most about `patience`, writes within the shared bound. Returns
    /// false if the lock stayed busy.
    pub(crate) fn close_from_shared_thread(
        &self,
        cause: EndCause,
        code: CloseCode,
        reason: &str,
        patience: Duration,
    ) -> bool {
        self.shared.record(cause);
        let give_up = Instant::now() + patience;
        loop {
            match self.shared.out.try_lock() {
                Ok(mut out) => {
                    let close = Message::Close(Some(CloseFrame::new(code, reason)));
                    let _ = out.send_within(&close, SHARED_THREAD_WRITE_BOUND);
                    return true;
                }
                Err(_) if Instant::now() < give_up => {
                    // Another thread is writing one message; back off briefly.
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(_) => return false,
            }
        }
    }
}
