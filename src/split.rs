//! A connection split in two: a [`Reader`] for one thread and a [`Writer`] for any number of
//! others.
//!
//! The writer owns the protocol's [`Sender`] — and with it the connection state — behind a mutex,
//! together with the write half of the stream. The reader owns the [`Receiver`] and reads without
//! the lock; it takes the lock only to apply what it decoded (answer a ping, echo a close) and to
//! write that answer. So pongs and close replies go through the same writer as the application's
//! messages, and every frame is written whole under the lock: frames of two senders never
//! interleave (RFC 6455 §5.4).
//!
//! # How long a writer may wait
//!
//! A writer waits for the lock while another thread writes one message (or the reader writes one
//! pong or close reply). Each of those writes is bounded by the stream's write timeout; a write
//! that times out fails the connection (1008), so a writer waits at most about one write timeout
//! per message queued ahead of it. Without a write timeout a peer that stops reading blocks
//! writers until something closes the TCP connection (the heartbeat, or [`Writer::abort`]).
//!
//! # wss:// later
//!
//! A TLS stream cannot be cloned, so its reader cannot simply read a second handle as the TCP
//! reader does. [`ReadHalf`] is the seam: a TLS read half will wait for bytes on a clone of the
//! underlying `TcpStream` with `peek()` (after checking bytes the TLS layer already holds) without
//! the lock, then take the lock and read with a short read timeout. Nothing else here changes.

use crate::config::Config;
use crate::ending::EndCause;
use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::connection::next_event;
use crate::proto::message::{Event, Message};
use crate::proto::{Receiver, Role, Sender, State};
use crate::socket::WebSocket;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// How long the heartbeat thread or a shutdown may spend writing a ping or close frame to one
/// connection. Such a small frame only blocks when the peer has stopped reading, and those writes
/// come from threads that serve every connection, so they must not wait long.
pub(crate) const SHARED_THREAD_WRITE_BOUND: Duration = Duration::from_millis(50);

/// How many bytes a client discards while it waits for the server to close TCP.
const CLOSE_DRAIN_LIMIT: usize = 64 * 1024;

/// The write half of a stream, kept under the writer's lock.
pub(crate) trait Transport: Write + Send + 'static {
    /// Bounds each write; `None` blocks without limit.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// The current write bound.
    fn write_timeout(&self) -> io::Result<Option<Duration>>;
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
pub(crate) struct SharedTcp(pub(crate) Arc<TcpStream>);

impl Write for SharedTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
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
}

/// The read half of a stream, owned by the reader's thread. `out` is the writer's lock: a read
/// half that needs the write half to read (TLS) must wait for bytes without holding it.
pub(crate) trait ReadHalf: Send + 'static {
    fn read(&mut self, buf: &mut [u8], out: &Mutex<Outbound>) -> io::Result<usize>;
}

impl ReadHalf for SharedTcp {
    fn read(&mut self, buf: &mut [u8], _out: &Mutex<Outbound>) -> io::Result<usize> {
        // The socket itself: reading never touches the lock.
        (&*self.0).read(buf)
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

/// What the lock guards: the state machine and the stream's write half.
pub(crate) struct Outbound {
    pub(crate) sender: Sender,
    stream: Box<dyn Transport>,
    /// The stream's own write timeout, read once at the split (nothing changes it after), so a
    /// ping from the heartbeat thread costs no extra system call to look it up.
    write_timeout: Option<Duration>,
}

impl Outbound {
    /// Writes all queued bytes; a timeout leaves the rest queued.
    fn flush(&mut self) -> io::Result<()> {
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
    out: Mutex<Outbound>,
    /// The socket, to shut the connection down without the lock, waking a blocked reader or
    /// writer.
    tcp: Arc<TcpStream>,
    cause: Mutex<Option<EndCause>>,
    /// When bytes last arrived, in nanoseconds since `epoch`; read by the heartbeat thread.
    last_activity: AtomicU64,
    epoch: Instant,
    id: u64,
    role: Role,
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Outbound> {
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

    fn touch(&self) {
        let nanos = self.epoch.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        self.last_activity.store(nanos, Ordering::Relaxed);
    }
}

/// The sending half of a split connection: `Clone + Send + Sync`; send from any thread while the
/// [`Reader`] blocks in [`read`](Reader::read).
///
/// Each message is written whole under a lock, so frames of two senders never interleave
/// (RFC 6455 §5.4); pongs and close replies from the [`Reader`] go through the same lock.
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
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("id", &self.shared.id)
            .finish()
    }
}

impl Writer {
    /// Sends a message. Blocks until it is handed to the stream.
    ///
    /// Errors: [`Error::AlreadyClosed`] once a close frame was sent or the connection failed;
    /// [`Error::InvalidInput`] as for [`WebSocket::send`]; [`Error::Io`] when the transport
    /// fails. A write that times out fails the connection ([`EndCause::WriteTimeout`], 1008).
    pub fn send(&self, message: Message) -> Result<(), Error> {
        let mut out = self.shared.lock();
        let result = self.flush_then(&mut out, |sender| sender.send(&message));
        drop(out);
        self.after_write(result)
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

    fn after_write(&self, result: Result<(), Error>) -> Result<(), Error> {
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

    /// Starts the closing handshake: sends a close frame. The [`Reader`] receives the peer's
    /// reply as [`Message::Close`]; [`Reader::close`] sends and waits in one call.
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
    /// waits for the lock for at most about `patience`, writes within the shared bound.
    pub(crate) fn close_from_shared_thread(
        &self,
        cause: EndCause,
        code: CloseCode,
        reason: &str,
        patience: Duration,
    ) {
        self.shared.record(cause);
        let give_up = Instant::now() + patience;
        loop {
            match self.shared.out.try_lock() {
                Ok(mut out) => {
                    let close = Message::Close(Some(CloseFrame::new(code, reason)));
                    let _ = out.send_within(&close, SHARED_THREAD_WRITE_BOUND);
                    return;
                }
                Err(_) if Instant::now() < give_up => {
                    // Another thread is writing one message; back off briefly.
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(_) => return,
            }
        }
    }
}

/// The receiving half of a split connection; see [`WebSocket::split`].
///
/// Holds a [`Writer`] to send the protocol's answers (pongs, close replies) through.
pub struct Reader {
    receiver: Receiver,
    source: Box<dyn ReadHalf>,
    writer: Writer,
    config: Config,
    subprotocol: Option<String>,
    /// The end of the connection was reported to the caller.
    ended: bool,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("id", &self.writer.id())
            .finish()
    }
}

impl WebSocket<TcpStream> {
    /// Splits the connection into a [`Reader`] and a `Clone + Send + Sync` [`Writer`], so that one
    /// thread can block in [`Reader::read`] while others send.
    ///
    /// ```no_run
    /// let (ws, _) = syncws::connect("ws://127.0.0.1:9001/")?;
    /// let (mut reader, writer) = ws.split()?;
    /// let ticker = std::thread::spawn(move || writer.send(syncws::Message::text("tick")));
    /// println!("{}", reader.read()?);
    /// ticker.join().unwrap()?;
    /// # Ok::<(), syncws::Error>(())
    /// ```
    ///
    /// Errors: none today; the `Result` leaves room for streams whose split can fail.
    pub fn split(self) -> Result<(Reader, Writer), Error> {
        let role = self.role();
        let (stream, conn, config, subprotocol) = self.into_parts();
        let (receiver, sender) = conn.into_parts();
        Ok(split_tcp(
            receiver,
            sender,
            Arc::new(stream),
            role,
            config,
            subprotocol,
        ))
    }
}

/// Splits a TCP connection: both halves and the shutdown handle share the one socket.
pub(crate) fn split_tcp(
    receiver: Receiver,
    sender: Sender,
    tcp: Arc<TcpStream>,
    role: Role,
    config: Config,
    subprotocol: Option<String>,
) -> (Reader, Writer) {
    let source = Box::new(SharedTcp(Arc::clone(&tcp)));
    let write_half = Box::new(SharedTcp(Arc::clone(&tcp)));
    split_parts(
        receiver,
        sender,
        source,
        write_half,
        tcp,
        role,
        config,
        subprotocol,
    )
}

/// Assembles the halves; the seam where a TLS stream will plug in its own [`ReadHalf`] and
/// [`Transport`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn split_parts(
    receiver: Receiver,
    sender: Sender,
    source: Box<dyn ReadHalf>,
    write_half: Box<dyn Transport>,
    tcp: Arc<TcpStream>,
    role: Role,
    config: Config,
    subprotocol: Option<String>,
) -> (Reader, Writer) {
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
        epoch: Instant::now(),
        id: next_id(),
        role,
    });
    let writer = Writer { shared };
    let reader = Reader {
        receiver,
        source,
        writer: writer.clone(),
        config,
        subprotocol,
        ended: false,
    };
    (reader, writer)
}

impl Reader {
    /// Reads the next message, blocking until one arrives; the same contract as
    /// [`WebSocket::read`]: pings are answered (through the writer) before they are returned, the
    /// peer's close is returned once, then [`Error::ConnectionClosed`], then
    /// [`Error::AlreadyClosed`]. [`end_cause`](Self::end_cause) says why it ended.
    ///
    /// Does not hold the writer's lock while it waits for bytes.
    pub fn read(&mut self) -> Result<Message, Error> {
        match self.read_with(false)? {
            Event::Message(message) => Ok(message),
            Event::Chunk(_) => unreachable!("chunks only in streaming mode"),
        }
    }

    /// Reads the next piece of data or control frame; see [`WebSocket::read_event`].
    pub fn read_event(&mut self) -> Result<Event, Error> {
        self.read_with(true)
    }

    fn read_with(&mut self, streaming: bool) -> Result<Event, Error> {
        if self.ended {
            return Err(Error::AlreadyClosed);
        }
        self.receiver.set_streaming(streaming);
        loop {
            let mut out = self.writer.shared.lock();
            if out.sender.state() == State::Closed {
                let close_received = out.sender.close_received();
                drop(out);
                return Err(self.finish(close_received));
            }
            match next_event(&mut self.receiver, &mut out.sender) {
                Ok(Some(event)) => {
                    // A pong or our close reply may be due.
                    let flushed = out.flush();
                    drop(out);
                    if let Event::Message(Message::Close(frame)) = &event {
                        self.writer.record(EndCause::PeerClosed(frame.clone()));
                    }
                    if let Err(e) = flushed {
                        self.writer.after_write(Err(e.into()))?;
                    }
                    return Ok(event);
                }
                Ok(None) => {
                    drop(out);
                    self.fill()?;
                }
                Err(error) => {
                    // Fail the connection: send the close frame if the transport still works.
                    let _ = out.flush();
                    drop(out);
                    if let Error::Protocol(violation) = &error {
                        self.writer.record(EndCause::ProtocolViolation(*violation));
                    }
                    if self.writer.role() == Role::Server {
                        let _ = self.writer.shared.tcp.shutdown(Shutdown::Both);
                    }
                    return Err(error);
                }
            }
        }
    }

    /// The connection is closed: report it once, and end TCP as RFC 6455 §7.1.1 asks.
    fn finish(&mut self, close_received: bool) -> Error {
        self.ended = true;
        if !close_received {
            return Error::AlreadyClosed;
        }
        match self.writer.role() {
            // "the underlying TCP connection, in most normal cases, SHOULD be closed first by
            // the server": close it now, even if writer clones live on elsewhere.
            Role::Server => {
                let _ = self.writer.shared.tcp.shutdown(Shutdown::Both);
            }
            Role::Client => self.wait_for_server_close(),
        }
        Error::ConnectionClosed
    }

    fn wait_for_server_close(&mut self) {
        let mut scratch = [0u8; 1024];
        let mut drained = 0;
        while drained < CLOSE_DRAIN_LIMIT {
            match self.source.read(&mut scratch, &self.writer.shared.out) {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    }

    /// Reads once from the stream into the receiver, without the writer's lock.
    fn fill(&mut self) -> Result<(), Error> {
        if !self.receiver.has_buffered_data() {
            // Idle: give back a buffer that grew for a large frame.
            self.receiver.shrink();
        }
        loop {
            let buf = self.receiver.read_buf();
            match self.source.read(buf, &self.writer.shared.out) {
                Ok(0) => {
                    self.receiver.commit(0);
                    let eof = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection without a close frame (1006)",
                    );
                    self.writer.record(EndCause::io(&eof));
                    self.writer.shared.lock().sender.on_transport_closed();
                    self.ended = true;
                    return Err(eof.into());
                }
                Ok(n) => {
                    self.receiver.commit(n);
                    self.writer.shared.touch();
                    return Ok(());
                }
                Err(e) => {
                    self.receiver.commit(0);
                    match e.kind() {
                        io::ErrorKind::Interrupted => continue,
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                            return Err(e.into());
                        }
                        _ => {
                            self.writer.record(EndCause::io(&e));
                            self.writer.shared.lock().sender.on_transport_closed();
                            self.ended = true;
                            return Err(e.into());
                        }
                    }
                }
            }
        }
    }

    /// Closes the connection: sends a close frame, then reads until the peer's reply (discarding
    /// data that arrives meanwhile). Returns the peer's close frame. Bound the wait with a read
    /// timeout ([`set_read_timeout`](Self::set_read_timeout)); a peer that never answers blocks
    /// forever otherwise.
    ///
    /// Errors: as for [`Writer::close`] and [`read`](Self::read).
    pub fn close(
        &mut self,
        code: impl Into<CloseCode>,
        reason: &str,
    ) -> Result<Option<CloseFrame>, Error> {
        self.writer.close(code, reason)?;
        loop {
            if let Message::Close(peer) = self.read()? {
                return Ok(peer);
            }
        }
    }

    /// Bounds each wait for bytes (`None`: wait for ever). A timed-out read returns
    /// [`Error::Io`] with `WouldBlock`/`TimedOut` and can be repeated.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), Error> {
        Ok(self.writer.shared.tcp.set_read_timeout(timeout)?)
    }

    /// The writer this reader answers through; clone it to send from other threads.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Why the connection ended, once it has.
    pub fn end_cause(&self) -> Option<EndCause> {
        self.writer.end_cause()
    }

    /// The subprotocol agreed in the opening handshake.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bytes of buffer memory this connection holds now (both directions).
    pub fn buffered_capacity(&self) -> usize {
        self.receiver.buffered_capacity() + self.writer.shared.lock().sender.data_to_send().len()
    }
}

#[cfg(test)]
mod tests {
    //! The seam for streams that cannot be split, exercised over plain TCP with a stream that
    //! may only be read under the lock, as a TLS stream will be.
    use super::*;
    use crate::proto::Connection;
    use std::net::TcpListener;

    /// A TCP stream pretending it cannot be cloned: reads only through the lock.
    struct LockOnly(SharedTcp);

    impl Write for LockOnly {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.0.flush()
        }
    }

    impl Transport for LockOnly {
        fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
            self.0.set_write_timeout(timeout)
        }
        fn write_timeout(&self) -> io::Result<Option<Duration>> {
            self.0.write_timeout()
        }
        fn read_locked(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            (&*self.0.0).read(buf)
        }
    }

    fn lock_only_pair() -> (Reader, Writer, WebSocket<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let tcp = Arc::new(server);
        let config = Config::default();
        let (receiver, sender) = Connection::new(Role::Server, &config).into_parts();
        let (reader, writer) = split_parts(
            receiver,
            sender,
            Box::new(ReadUnderLock {
                socket: Arc::clone(&tcp),
            }),
            Box::new(LockOnly(SharedTcp(Arc::clone(&tcp)))),
            tcp,
            Role::Server,
            config.clone(),
            None,
        );
        let peer = WebSocket::from_stream(client, Role::Client, config);
        (reader, writer, peer)
    }

    #[test]
    fn a_blocked_lock_only_reader_does_not_block_writers() {
        let (mut reader, writer, mut peer) = lock_only_pair();
        let (tx, rx) = std::sync::mpsc::channel();
        let reading = std::thread::spawn(move || {
            tx.send(()).unwrap();
            let first = reader.read();
            (first, reader)
        });
        rx.recv().unwrap();
        // The reader is (or is about to be) blocked waiting for bytes; writers get through.
        for i in 0..20 {
            writer.send(Message::text(format!("{i}"))).unwrap();
            assert_eq!(peer.read().unwrap(), Message::text(format!("{i}")));
        }
        peer.send(Message::text("wake up")).unwrap();
        let (first, mut reader) = reading.join().unwrap();
        assert_eq!(first.unwrap(), Message::text("wake up"));
        // Pongs go out through the lock-only stream too.
        peer.send(Message::Ping(b"p".to_vec())).unwrap();
        assert_eq!(reader.read().unwrap(), Message::Ping(b"p".to_vec()));
        assert_eq!(peer.read().unwrap(), Message::Pong(b"p".to_vec()));
        // And the closing handshake.
        peer.send(Message::Close(None)).unwrap();
        assert_eq!(reader.read().unwrap(), Message::Close(None));
        assert!(matches!(reader.read(), Err(Error::ConnectionClosed)));
    }
}
