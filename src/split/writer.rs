//! The sending half: the state machine behind one lock, the stream's write half behind another.
//!
//! `state` guards the [`Sender`] (the connection state and its output buffer) and is held only
//! for CPU work: encoding a frame, applying a decoded event. `io` guards the write half and is
//! held by the one thread that writes now, the *write owner*. A frame is appended whole to the
//! sender's output, and the owner takes the output in order, so frames never interleave
//! (RFC 6455 §5.4). Every queue is followed by a `try_lock` of `io`, and every owner re-checks
//! the output after releasing `io`: nothing queued is left unwritten while nobody owns `io`.

use super::ping::Pings;
use super::stream::Socket;
use super::transport::Transport;
use super::write_side::{
    SHARED_THREAD_WRITE_ATTEMPT, Until, WRITE_TICK, WriteSide, is_timeout, take_output,
};
use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::message::Message;
use crate::proto::{Role, Sender, State};
use crate::websocket::ending::EndCause;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// How long the heartbeat thread or a shutdown may spend writing a ping or close frame to one
/// connection. Such a small frame only blocks when the peer has stopped reading, and those writes
/// come from threads that serve every connection, so they must not wait long.
pub(crate) const SHARED_THREAD_WRITE_BOUND: Duration = Duration::from_millis(50);

/// Everything both halves share.
pub(crate) struct Shared {
    /// The protocol state and its output; held only for CPU work.
    state: Mutex<Sender>,
    /// The write half; held by the write owner.
    io: Mutex<WriteSide>,
    /// The transport has output of its own to write (TLS, after a read).
    flush_wanted: AtomicBool,
    /// A shared thread gave up writing and released the write half with output left: nobody
    /// owns it until a send, so the timer retries it (see `retry_stranded`).
    stranded: AtomicBool,
    /// The bound on writing one frame (or message) whole: the stream's write timeout at the split.
    write_timeout: Option<Duration>,
    /// [`Config::close_timeout`](crate::Config::close_timeout): bounds putting a close frame on
    /// the wire (see [`closing`](super::closing)).
    pub(in crate::split) close_timeout: Duration,
    /// The socket, to shut the connection down without the lock, waking a blocked reader or
    /// writer.
    pub(super) tcp: Arc<dyn Socket>,
    /// Round trips of pings (see [`ping`](super::ping)).
    pub(super) pings: Pings,
    pub(super) cause: Mutex<Option<EndCause>>,
    /// When bytes last arrived, in nanoseconds since `epoch`; read by the heartbeat thread.
    pub(super) last_activity: AtomicU64,
    /// When a write to a slow peer last moved on, in nanoseconds since `epoch` plus one; 0: never.
    last_progress: AtomicU64,
    /// How long the peer then still needed to read what the kernel held for it, in nanoseconds.
    write_backlog: AtomicU64,
    /// When a data message last completed, in nanoseconds since `epoch`.
    pub(super) last_data: AtomicU64,
    /// When the message now arriving began, in nanoseconds since `epoch` plus one; 0: none.
    pub(super) message_started: AtomicU64,
    pub(super) epoch: Instant,
    pub(super) id: u64,
    pub(super) role: Role,
    /// Frames rooms queued for this connection (see `split::queue`).
    pub(super) outbox: super::queue::Outbox,
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn relock<'a, T>(
    result: Result<MutexGuard<'a, T>, TryLockError<MutexGuard<'a, T>>>,
) -> Option<MutexGuard<'a, T>> {
    match result {
        Ok(guard) => Some(guard),
        // A panic in a holder cannot leave a state worse than losing the connection; go on.
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

impl Shared {
    /// The protocol state, for CPU work only.
    pub(super) fn state(&self) -> MutexGuard<'_, Sender> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Becomes the write owner, waiting for the current one (whose write is bounded by its
    /// frame's deadline).
    fn own(&self) -> MutexGuard<'_, WriteSide> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The protocol state if no other thread holds it now (one may be encoding a large message).
    pub(super) fn try_state(&self) -> Option<MutexGuard<'_, Sender>> {
        relock(self.state.try_lock())
    }

    pub(super) fn try_own(&self) -> Option<MutexGuard<'_, WriteSide>> {
        relock(self.io.try_lock())
    }

    fn until(&self, stop: Option<Instant>) -> Until {
        Until {
            timeout: self.write_timeout,
            stop,
        }
    }

    /// As the write owner: writes what is queued until the output is empty. `Ok(false)`: `stop`
    /// came first.
    pub(super) fn drain(&self, side: &mut WriteSide, stop: Option<Instant>) -> io::Result<bool> {
        loop {
            if stop.is_some_and(|stop| Instant::now() >= stop) {
                // A shared thread's patience is over, however fast others queue.
                return Ok(false);
            }
            if !side.unwritten.is_empty() && !side.write_out(&[], self.until(stop), self)? {
                return Ok(false);
            }
            {
                let mut sender = self.state();
                if sender.data_to_send().is_empty() {
                    break;
                }
                take_output(&mut sender, &mut side.unwritten);
            }
        }
        if self.flush_wanted.swap(false, Ordering::AcqRel)
            && !side.write_out(&[], self.until(stop), self)?
        {
            // The transport's own bytes (TLS) are still waiting: for the next owner.
            self.flush_wanted.store(true, Ordering::Release);
            return Ok(false);
        }
        self.stranded.store(false, Ordering::Release);
        Ok(true)
    }

    /// The bound on writing one frame whole (the stream's write timeout at the split).
    pub(super) fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    /// Whether output waits for an owner.
    pub(super) fn has_output(&self) -> bool {
        self.flush_wanted.load(Ordering::Acquire) || !self.state().data_to_send().is_empty()
    }

    /// Writes what others queued if nobody writes now; otherwise returns at once, and the owner
    /// writes it after its own frames. With `stop`, gives up writing then (a shared thread): the
    /// peer has not taken a small frame for that long, and what is left goes out with the next
    /// write (or the heartbeat fails the peer). Returns whether everything queued is written
    /// (false also when another thread owns the write half).
    pub(super) fn kick(&self, stop: Option<Instant>) -> bool {
        loop {
            let Some(mut side) = self.try_own() else {
                return false;
            };
            let result = self.drain(&mut side, stop);
            let torn = side.torn;
            if matches!(result, Ok(false)) {
                // Set while owning the write half; any owner's complete drain clears it.
                self.stranded.store(true, Ordering::Release);
            }
            drop(side);
            match result {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    self.write_failed(&e, torn);
                    return false;
                }
            }
            // Output queued while we owned `io` found it busy: it is ours to write.
            if !self.has_output() {
                return true;
            }
        }
    }

    /// Waits to become the owner, then writes what is queued (the reader's close reply, which
    /// must be on the wire before TCP is closed).
    pub(super) fn flush_waiting(&self) {
        let mut side = self.own();
        let result = self.drain(&mut side, None);
        let torn = side.torn;
        drop(side);
        match result {
            // Output queued while we owned `io` found it busy: it is ours to write.
            Ok(_) => {
                self.kick(None);
            }
            Err(e) => self.write_failed(&e, torn),
        }
    }

    /// A write failed: a timeout fails the connection with 1008; anything else means the
    /// transport is gone.
    pub(super) fn write_failed(&self, e: &io::Error, torn: bool) {
        if is_timeout(e) {
            self.fail(
                EndCause::WriteTimeout,
                CloseCode::Policy,
                "write timeout",
                torn,
            );
        } else {
            self.record(EndCause::io(e));
            self.state().on_transport_closed();
            let _ = self.tcp.shutdown(Shutdown::Both);
        }
    }

    /// See [`Writer::fail`]; `torn`: a frame was cut, so no close frame may follow.
    fn fail(&self, cause: EndCause, code: CloseCode, reason: &str, torn: bool) {
        self.record(cause);
        if !torn
            && let Some(mut side) = self.try_own()
            && !side.torn
        {
            let queued = {
                let mut sender = self.state();
                let queued = sender.close(Some(CloseFrame::new(code, reason))).is_ok();
                sender.on_transport_closed();
                queued
            };
            if queued {
                let stop = Instant::now() + SHARED_THREAD_WRITE_BOUND;
                let _ = self.drain(&mut side, Some(stop));
            }
        }
        self.state().on_transport_closed();
        let _ = self.tcp.shutdown(Shutdown::Both);
    }

    /// Records why the connection ended, unless a cause is already known.
    pub(crate) fn record(&self, cause: EndCause) {
        let mut slot = self.cause.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(cause);
        }
    }

    /// Bytes arrived.
    pub(super) fn touch(&self) {
        let nanos = self.epoch.elapsed().as_nanos().min(u64::MAX as u128 - 1) as u64;
        self.last_activity.store(nanos, Ordering::Relaxed);
    }

    /// A write to a slow peer moved on at `now`; the peer needs about `backlog` more to read
    /// what the kernel holds for it.
    pub(super) fn progressed(&self, now: Instant, backlog: Duration) {
        let nanos = now
            .saturating_duration_since(self.epoch)
            .as_nanos()
            .min(u64::MAX as u128 - 1) as u64;
        let backlog = backlog.as_nanos().min(u64::MAX as u128) as u64;
        self.write_backlog.store(backlog, Ordering::Relaxed);
        self.last_progress.store(nanos + 1, Ordering::Relaxed);
    }

    /// The reader has decoded what it holds: `receiving` says a data message has begun and not
    /// ended. Its start is the read that brought its first bytes (or the handshake's leftover).
    pub(super) fn mark_message(&self, receiving: bool) {
        if receiving && self.message_started.load(Ordering::Relaxed) == 0 {
            let nanos = self.last_activity.load(Ordering::Relaxed);
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

    /// Asks the write owner to flush the transport's own output (TLS), and writes it if nobody
    /// owns the write half now.
    pub(super) fn want_flush(&self) {
        self.flush_wanted.store(true, Ordering::Release);
        self.kick(None);
    }
}

/// The sending half of a split connection: `Clone + Send + Sync`; send from any thread while the
/// [`Reader`](crate::Reader) blocks in [`read`](crate::Reader::read).
///
/// Each message is written whole by one thread at a time, so frames of two senders never
/// interleave (RFC 6455 §5.4); pongs and close replies from the [`Reader`](crate::Reader) are
/// written between messages. Clones send on the same connection.
///
/// # How long a send may wait
///
/// A send first waits for the thread writing now to finish its message (or a pong, ping or
/// close frame), then writes its own. Each message must be on the wire within the stream's write
/// timeout ([`ServerBuilder::write_timeout`], 10 s by default in a server), counted from when its
/// write first has to wait for the peer (at most 50 ms after it began; each system call waits
/// at most 50 ms, so the deadline is kept within that); one that is late fails
/// the connection ([`EndCause::WriteTimeout`], 1008). So a send waits at most about one write
/// timeout per message queued ahead of it. Without a write timeout a peer that stops reading
/// blocks senders until something closes the connection (the heartbeat, or [`Writer::abort`]).
/// A send never waits for the [`Reader`](crate::Reader), nor the reader for a send (except to
/// put its reply to the peer's close frame on the wire before it reports the close).
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
        tcp: Arc<dyn Socket>,
        role: Role,
        close_timeout: Duration,
    ) -> Writer {
        let write_timeout = write_half.write_timeout().unwrap_or(None);
        // Each system call waits at most a tick; the frame's deadline is kept above it.
        let tick = write_timeout
            .map_or(WRITE_TICK, |timeout| timeout.min(WRITE_TICK))
            .max(Duration::from_millis(1));
        let _ = write_half.set_write_timeout(Some(tick));
        let shared = Arc::new(Shared {
            state: Mutex::new(sender),
            io: Mutex::new(WriteSide {
                stream: write_half,
                unwritten: Vec::new(),
                due: None,
                begun: false,
                torn: false,
                pipe: 0,
                tick,
            }),
            flush_wanted: AtomicBool::new(false),
            stranded: AtomicBool::new(false),
            write_timeout,
            close_timeout,
            tcp,
            pings: Pings::default(),
            cause: Mutex::new(None),
            last_activity: AtomicU64::new(0),
            last_progress: AtomicU64::new(0),
            write_backlog: AtomicU64::new(0),
            last_data: AtomicU64::new(0),
            message_started: AtomicU64::new(0),
            epoch: Instant::now(),
            id: next_id(),
            role,
            outbox: Default::default(),
        });
        Writer { shared }
    }

    /// Sends a message. Blocks until it is handed to the stream.
    ///
    /// [`Message::Close`] is [`start_close`](Self::start_close) by another name: the same checks
    /// of code and reason before anything is written, the same state afterwards (no message can
    /// be sent, the reader sees the peer's reply), the same bound
    /// ([`Config::close_timeout`](crate::Config::close_timeout)) and the same
    /// [`end_cause`](Self::end_cause). `Message::Close(None)` sends a close frame without a code
    /// (the peer reports 1005).
    ///
    /// Errors: [`Error::AlreadyClosed`] once a close frame was sent or the connection failed;
    /// [`Error::InvalidInput`] as for [`WebSocket::send`](crate::WebSocket::send); [`Error::Io`] when the transport
    /// fails. A message not written within the write timeout fails the connection
    /// ([`EndCause::WriteTimeout`], 1008).
    pub fn send(&self, message: Message) -> Result<(), Error> {
        self.send_returning(message).map(drop)
    }

    /// [`send`](Self::send), then gives back the message's buffer for reuse.
    pub(crate) fn send_returning(&self, message: Message) -> Result<Vec<u8>, Error> {
        if let Message::Close(frame) = message {
            // One way to close: the path `start_close` takes.
            self.close_within_timeout(frame)?;
            return Ok(Vec::new());
        }
        self.write_owned(
            |sender, vectored| {
                sender.note_time_if_compressing(Instant::now);
                // A large payload a server sends unchanged is written from the message itself,
                // after its header, rather than copied first.
                if vectored && sender.send_header(&message)? {
                    return Ok(true);
                }
                sender.send(&message)?;
                Ok(false)
            },
            message.as_bytes(),
        )?;
        Ok(message.into_bytes())
    }

    /// Becomes the write owner, queues with `queue` (whose `true` says `payload` follows the
    /// queued header unchanged), and writes everything queued.
    fn write_owned(
        &self,
        queue: impl FnOnce(&mut Sender, bool) -> Result<bool, Error>,
        payload: &[u8],
    ) -> Result<(), Error> {
        let shared = &*self.shared;
        let mut side = shared.own();
        let queued = {
            let mut sender = shared.state();
            let queued = queue(&mut sender, side.stream.writes_vectored());
            // What others queued goes first, then ours: whole frames, in order. Taken in the
            // same lock as the header, so nothing lands between header and payload.
            if queued.is_ok() {
                take_output(&mut sender, &mut side.unwritten);
            }
            queued
        };
        let result = match queued {
            Ok(direct) => {
                let payload = if direct { payload } else { &[] };
                side.write_out(payload, shared.until(None), shared)
            }
            Err(e) => {
                drop(side);
                shared.kick(None);
                return Err(e);
            }
        };
        let torn = side.torn;
        drop(side);
        match result {
            Ok(_) => {
                shared.kick(None);
                Ok(())
            }
            Err(e) => {
                shared.write_failed(&e, torn);
                Err(e.into())
            }
        }
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
        self.shared.state().state() == State::Open
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

    /// The peer's address (`Unsupported` for a stream that is not an IP connection).
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

    /// What the reader and the write owner last recorded, for the shared timer.
    pub(crate) fn observed(&self) -> crate::timing::watch::Observed {
        let at = |nanos: u64| self.shared.epoch + Duration::from_nanos(nanos);
        let started = self.shared.message_started.load(Ordering::Relaxed);
        let progress = self.shared.last_progress.load(Ordering::Relaxed);
        crate::timing::watch::Observed {
            last_activity: self.last_activity(),
            last_data: at(self.shared.last_data.load(Ordering::Relaxed)),
            message_started: (started != 0).then(|| at(started - 1)),
            last_write_progress: (progress != 0).then(|| at(progress - 1)),
            write_backlog: Duration::from_nanos(self.shared.write_backlog.load(Ordering::Relaxed)),
        }
    }

    pub(crate) fn record(&self, cause: EndCause) {
        self.shared.record(cause);
    }

    /// Closes TCP after a clean end, with the transport's own goodbye first (TLS close_notify)
    /// when nobody is writing and no frame is half written; never waits for a writer.
    pub(crate) fn shutdown_cleanly(&self) {
        if let Some(mut side) = self.shared.try_own()
            && side.unwritten.is_empty()
            && !side.torn
        {
            side.stream.close_notify();
        }
        let _ = self.shared.tcp.shutdown(Shutdown::Both);
    }

    /// Sends a ping from a thread that serves many connections: queues it, and writes what the
    /// socket takes at once (one attempt of at most [`SHARED_THREAD_WRITE_ATTEMPT`]) unless
    /// another thread is writing, which then writes it after its own frames. Never waits for
    /// that thread nor for the peer: what the peer cannot take now is left for
    /// [`retry_stranded`](Self::retry_stranded). Returns whether the ping is written.
    pub(crate) fn ping_from_shared_thread(&self) -> bool {
        let (_, payload, _) = self.shared.pings.sent(false);
        if self.shared.state().send(&Message::Ping(payload)).is_err() {
            return false;
        }
        self.shared
            .kick(Some(Instant::now() + SHARED_THREAD_WRITE_ATTEMPT))
    }

    /// Whether a shared thread left output that nobody owns (see [`Writer::retry_stranded`]).
    pub(crate) fn is_stranded(&self) -> bool {
        self.shared.stranded.load(Ordering::Acquire)
    }

    /// From a thread that serves many connections: writes output a shared thread left unowned
    /// (a ping the peer could not take at once), in one short attempt. Returns whether some
    /// is still left, for another try later.
    pub(crate) fn retry_stranded(&self) -> bool {
        if !self.is_stranded() {
            return false;
        }
        self.shared
            .kick(Some(Instant::now() + SHARED_THREAD_WRITE_ATTEMPT));
        self.is_stranded()
    }

    /// Fails the connection: records `cause`, sends a close frame if that can be done at once,
    /// then closes TCP so that a dead peer cannot hold the connection open. Never waits for a
    /// thread that is writing (closing TCP wakes it).
    pub(crate) fn fail(&self, cause: EndCause, code: CloseCode, reason: &str) {
        self.shared.fail(cause, code, reason, false);
    }

    /// Starts a closing handshake from a thread that serves many connections (server shutdown):
    /// queues the close frame (a thread writing now writes it after its own frames), and tries
    /// for at most about `patience` to write it itself, within the shared bound. Returns false if
    /// another thread kept writing all that time.
    pub(crate) fn close_from_shared_thread(
        &self,
        cause: EndCause,
        code: CloseCode,
        reason: &str,
        patience: Duration,
    ) -> bool {
        self.shared.record(cause);
        // Already sent or failed: nothing more to queue, but what is queued may still wait.
        let _ = self
            .shared
            .state()
            .close(Some(CloseFrame::new(code, reason)));
        let give_up = Instant::now() + patience;
        loop {
            let stop = Instant::now() + SHARED_THREAD_WRITE_BOUND;
            if self.shared.kick(Some(stop)) || !self.shared.has_output() {
                return true;
            }
            if Instant::now() >= give_up {
                return false;
            }
            // Another thread is writing one message; back off briefly.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
