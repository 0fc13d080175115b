//! The receiving half: reads and decodes without any lock and answers through the writer.

use super::read_deadline::ReadDeadline;
use super::transport::ReadHalf;
use super::writer::Writer;
use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::config::Config;
use crate::proto::message::{Chunk, Event, Message};
use crate::proto::{Receiver, Role, State};
use crate::websocket::ending::EndCause;
use std::cell::Cell;
use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many bytes a client discards while it waits for the server to close TCP.
const CLOSE_DRAIN_LIMIT: usize = 64 * 1024;

/// The longest a client's `read` waits for the server to close TCP after the peer's close.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The receiving half of a split connection; see [`WebSocket::split`](crate::WebSocket::split).
///
/// Holds a [`Writer`] to send the protocol's answers (pongs, close replies) through.
pub struct Reader {
    /// Boxed for the same reason as in [`WebSocket`](crate::WebSocket): a `Reader` is moved by
    /// value into handlers, and its bytes would stay in each connection thread's resident stack.
    inbound: Box<Inbound>,
    source: Box<dyn ReadHalf>,
    writer: Writer,
    config: Config,
    subprotocol: Option<String>,
    /// The end of the connection was reported to the caller.
    ended: bool,
    /// A pong was queued for a ping with more frames held behind it; it goes out before the
    /// next wait for bytes.
    pong_held: bool,
    /// [`close`](Self::close) already waited for the server to close TCP.
    server_close_awaited: bool,
    /// The shared heartbeat timer watches this connection (a split client's keepalive).
    watched: bool,
}

/// The reader's state, in one allocation.
struct Inbound {
    receiver: Receiver,
    /// The read timeout on the socket: the caller's, or a window while large buffers are kept.
    /// (A `Cell`, so that `set_read_timeout` can keep taking `&self`.)
    deadline: Cell<ReadDeadline>,
    /// The buffer of a message the session just sent, for the next message to be received into
    /// (see [`Reader::offer_buffer`]).
    offered: Cell<Vec<u8>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("id", &self.writer.id())
            .finish()
    }
}

impl Reader {
    pub(super) fn new(
        receiver: Receiver,
        source: Box<dyn ReadHalf>,
        writer: Writer,
        config: Config,
        subprotocol: Option<String>,
    ) -> Reader {
        let deadline = ReadDeadline::new(writer.shared.tcp.read_timeout().unwrap_or(None));
        Reader {
            inbound: Box::new(Inbound {
                receiver,
                deadline: Cell::new(deadline),
                offered: Cell::new(Vec::new()),
            }),
            source,
            writer,
            config,
            subprotocol,
            ended: false,
            pong_held: false,
            server_close_awaited: false,
            watched: false,
        }
    }

    /// Offers the buffer of a message sent from this reader's thread for the next message to be
    /// received into, as [`WebSocket::send`](crate::WebSocket::send) does: an echo or a relay then
    /// reuses one allocation per connection. Taken by the next read, if the receiver can use it.
    pub(crate) fn offer_buffer(&self, buffer: Vec<u8>) {
        if self.inbound.receiver.would_recycle(&buffer) {
            self.inbound.offered.set(buffer);
        }
    }

    /// Reads the next message, blocking until one arrives; the same contract as
    /// [`WebSocket::read`](crate::WebSocket::read): pings are answered (through the writer) before they are returned (a batch of pings that
    /// arrived together: once, for the latest, when the batch has been read), the
    /// peer's close is returned once, then [`Error::ConnectionClosed`], then
    /// [`Error::AlreadyClosed`]. [`end_cause`](Self::end_cause) says why it ended.
    ///
    /// Never waits for a data message being written: it reads and decodes without any lock. A
    /// pong is written at once if no other thread is writing, otherwise by that thread after
    /// its message; a pong this reader writes itself is bounded by the write timeout like any
    /// frame. Only the reply to the peer's close frame is waited for: it must be on the wire
    /// before the close is reported.
    ///
    /// After the peer's close, a client's next read waits for the server to close TCP
    /// (RFC 6455 §7.1.1) at most 5 s, or the read timeout if shorter.
    pub fn read(&mut self) -> Result<Message, Error> {
        let mid_stream = self.inbound.receiver.is_mid_stream();
        crate::websocket::whole_message(mid_stream, || self.read_with(false))
    }

    /// Reads the next piece of data or control frame; see [`WebSocket::read_event`](crate::WebSocket::read_event).
    pub fn read_event(&mut self) -> Result<Event, Error> {
        self.read_with(true)
    }

    fn read_with(&mut self, streaming: bool) -> Result<Event, Error> {
        if self.ended {
            return Err(Error::AlreadyClosed);
        }
        self.inbound.receiver.set_streaming(streaming);
        let offered = self.inbound.offered.take();
        if offered.capacity() > 0 {
            self.inbound.receiver.recycle(offered);
        }
        let shared = Arc::clone(&self.writer.shared);
        // Pongs to the heartbeat are not returned, so they must not stretch the caller's bound
        // on the read: it is kept by deadline (only while a heartbeat watches this connection).
        let caller = self
            .inbound
            .deadline
            .get()
            .caller()
            .filter(|_| self.watched);
        let until = caller.and_then(|timeout| Instant::now().checked_add(timeout));
        loop {
            {
                let sender = shared.state();
                // RFC 6455 §5.5.1: after the peer's close "the endpoint ... will not process
                // further data"; after a failure nothing is read either.
                if sender.state() == State::Closed || sender.close_received() {
                    let close_received = sender.close_received();
                    drop(sender);
                    return Err(self.finish(close_received));
                }
            }
            // Decoded without any lock: a writer blocked on the peer never delays a read.
            match self.inbound.receiver.next_event() {
                Ok(Some(event)) => {
                    match &event {
                        Event::Message(Message::Ping(_)) => {
                            // The pong is written now if nobody is writing, else by the writer
                            // after its frames; either way this read does not wait. With more
                            // frames held behind this ping (a batch), it waits for them: the
                            // batch is answered once, for the latest ping (RFC 6455 §5.5.3),
                            // before the reader next waits for bytes.
                            shared.state().on_event(&event);
                            if self.inbound.receiver.has_buffered_data() {
                                self.pong_held = true;
                            } else {
                                shared.kick(None);
                            }
                        }
                        // The answer to our own ping (heartbeat or `Writer::ping`) is not
                        // the caller's.
                        Event::Message(Message::Pong(payload)) if shared.pings.pong(payload) => {
                            if until.is_some_and(|until| Instant::now() >= until) {
                                return Err(io::Error::from(io::ErrorKind::TimedOut).into());
                            }
                            continue;
                        }
                        Event::Message(Message::Close(frame)) => {
                            shared.state().on_event(&event);
                            self.writer.record(EndCause::PeerClosed(frame.clone()));
                            // The reply must be on the wire before TCP closes.
                            shared.flush_waiting();
                        }
                        Event::Message(Message::Text(_) | Message::Binary(_))
                        | Event::Chunk(Chunk { last: true, .. }) => shared.message_done(),
                        _ => {}
                    }
                    return Ok(event);
                }
                Ok(None) => {
                    if std::mem::take(&mut self.pong_held) {
                        shared.kick(None);
                    }
                    // Everything held is decoded: a data frame's header among it starts the
                    // message's deadline, even if no more bytes come.
                    shared.mark_message(self.inbound.receiver.is_receiving_message());
                    self.fill()?;
                }
                Err(violation) => {
                    // Fail the connection (RFC 6455 §7.1.7): send the close frame if the
                    // transport still works.
                    shared.state().on_violation(violation);
                    shared.flush_waiting();
                    self.writer.record(EndCause::ProtocolViolation(violation));
                    if self.writer.role() == Role::Server {
                        let _ = shared.tcp.shutdown(Shutdown::Both);
                    }
                    return Err(Error::Protocol(violation));
                }
            }
        }
    }

    /// The connection is closed: report it once, and end TCP as RFC 6455 §7.1.1 asks.
    fn finish(&mut self, close_received: bool) -> Error {
        self.ended = true;
        self.release();
        if !close_received {
            return Error::AlreadyClosed;
        }
        match self.writer.role() {
            // "the underlying TCP connection, in most normal cases, SHOULD be closed first by
            // the server": close it now, even if writer clones live on elsewhere.
            Role::Server => self.writer.shutdown_cleanly(),
            Role::Client if !self.server_close_awaited => self.wait_for_server_close(None),
            Role::Client => {}
        }
        Error::ConnectionClosed
    }

    /// The connection is over: a waiting [`Writer::ping`] returns, and the heartbeat timer
    /// lets go of it.
    fn release(&mut self) {
        self.writer.shared.pings.end();
        if std::mem::take(&mut self.watched)
            && let Ok(timer) = crate::timing::timer::HeartbeatTimer::shared()
        {
            timer.remove(&self.writer);
        }
    }

    /// Has the shared heartbeat timer ping this connection every `interval` and fail it when
    /// nothing arrives within `timeout` (a split client's keepalive).
    pub(crate) fn watch(&mut self, interval: Duration, timeout: Duration) -> Result<(), Error> {
        let timer = crate::timing::timer::HeartbeatTimer::shared()?;
        timer.add_with(
            &self.writer,
            crate::timing::timer::HeartbeatConfig { interval, timeout },
        );
        self.writer.shared.pings.set_timeout(timeout);
        self.watched = true;
        Ok(())
    }

    /// The round trip of the last ping answered (the heartbeat's or
    /// [`Writer::ping`]'s), or `None` before the first answer.
    pub fn latency(&self) -> Option<Duration> {
        self.writer.latency()
    }

    // Out of line: its scratch buffer would otherwise sit in every read's stack frame.
    #[cold]
    #[inline(never)]
    fn wait_for_server_close(&mut self, until: Option<Instant>) {
        // Bounded in all: a server that never closes TCP costs at most `until`, else CLOSE_WAIT
        // (or the caller's read timeout, if shorter).
        let tcp = &*self.writer.shared.tcp;
        let caller = self.inbound.deadline.get_mut().caller();
        let bound = caller.map_or(CLOSE_WAIT, |caller| caller.min(CLOSE_WAIT));
        let until = until.unwrap_or_else(|| Instant::now() + bound);
        let mut scratch = [0u8; 1024];
        let mut drained = 0;
        while drained < CLOSE_DRAIN_LIMIT {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || tcp.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match self.source.read(&mut scratch, &|| {}) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
        // The socket's timeout was changed behind the deadline's back: put the caller's back.
        let _ = self.inbound.deadline.get_mut().set_caller(tcp, caller);
    }

    /// Reads once from the stream into the receiver, without any lock.
    fn fill(&mut self) -> Result<(), Error> {
        let tcp = &*self.writer.shared.tcp;
        if !self.inbound.receiver.has_buffered_data() {
            // This read may wait long. Buffers kept for large messages are held through it only
            // for a short window (see `read_deadline`); otherwise, or without room for a window,
            // they go now.
            if !((self.inbound.receiver.holds_more_than_idle()
                || self.writer.shared.state().holds_more_than_idle())
                && self.inbound.deadline.get_mut().open_window(tcp)?)
            {
                self.inbound.receiver.shrink();
                self.inbound.deadline.get_mut().close_window(tcp)?;
            }
        }
        loop {
            let shared = &*self.writer.shared;
            let arrived = || shared.touch();
            let receiver = &mut self.inbound.receiver;
            let read = if self.source.reads_vectored() {
                match receiver.read_bufs() {
                    (buf, []) => self.source.read(buf, &arrived),
                    // A predicted frame: header and payload in one read (`Receiver::read_bufs`).
                    (head, rest) => self.source.read_vectored(head, rest, &arrived),
                }
            } else {
                self.source.read(receiver.read_buf(), &arrived)
            };
            if self.source.has_pending_output() {
                // The transport answered something (TLS); its bytes go out through the owner.
                shared.want_flush();
            }
            match read {
                Ok(0) => {
                    self.inbound.receiver.commit(0);
                    let eof = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection without a close frame (1006)",
                    );
                    self.writer.record(EndCause::io(&eof));
                    self.writer.shared.state().on_transport_closed();
                    self.ended = true;
                    self.release();
                    return Err(eof.into());
                }
                Ok(n) => {
                    self.inbound.receiver.commit(n);
                    // Pings and pongs are counted per second (Config::max_control_frames_per_second),
                    // by the time `arrived` took for this read: no second clock read.
                    self.inbound.receiver.note_time(self.writer.last_activity());
                    return Ok(());
                }
                Err(e) => {
                    self.inbound.receiver.commit(0);
                    match e.kind() {
                        io::ErrorKind::Interrupted => continue,
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            if self.inbound.deadline.get_mut().in_window() =>
                        {
                            // Quiet for the whole window: idle. Release, and wait on.
                            self.inbound.receiver.shrink();
                            self.writer.shared.state().shrink();
                            self.inbound.deadline.get_mut().window_expired(tcp)?;
                        }
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                            return Err(e.into());
                        }
                        _ => {
                            self.writer.record(EndCause::io(&e));
                            self.writer.shared.state().on_transport_closed();
                            self.ended = true;
                            self.release();
                            return Err(e.into());
                        }
                    }
                }
            }
        }
    }

    /// The closing handshake: sends a close frame, reads until the peer's reply (discarding
    /// data that arrives meanwhile) and, as a client, waits for the server to close TCP
    /// (RFC 6455 §7.1.1). Returns the peer's close frame; the next [`read`](Self::read) returns
    /// [`Error::ConnectionClosed`].
    ///
    /// Takes at most [`Config::close_timeout`] in all (5 s by default), counted before the close
    /// frame is sent (it may wait for a message another thread is writing): a peer that does not
    /// take the frame or answer in time has its TCP connection closed, and `close` returns [`Error::Io`] with
    /// `TimedOut`. The read timeout set with [`set_read_timeout`](Self::set_read_timeout) is
    /// put back afterwards.
    ///
    /// Errors: as for [`Writer::start_close`] and [`read`](Self::read).
    pub fn close(
        &mut self,
        code: impl Into<CloseCode>,
        reason: &str,
    ) -> Result<Option<CloseFrame>, Error> {
        // One deadline for all: sending the close frame (perhaps after a message another
        // thread is writing) and waiting for the reply.
        let until = Instant::now().checked_add(self.config.close_timeout);
        self.writer.start_close_by(code, reason, until)?;
        let caller = self.inbound.deadline.get().caller();
        let result = self.close_within(until);
        let _ = self.set_read_timeout(caller);
        if let Err(e) = &result
            && e.is_timeout()
        {
            // The peer did not answer our close: give up on it.
            self.writer.shared.state().on_transport_closed();
            let _ = self.writer.shared.tcp.shutdown(Shutdown::Both);
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer did not answer the close within close_timeout",
            )));
        }
        result
    }

    fn close_within(&mut self, until: Option<Instant>) -> Result<Option<CloseFrame>, Error> {
        loop {
            if let Some(until) = until {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::from(io::ErrorKind::TimedOut).into());
                }
                self.set_read_timeout(Some(left))?;
            }
            // Streaming: data that arrives meanwhile is dropped in pieces, never assembled.
            match self.read_with(true) {
                Ok(Event::Message(Message::Close(peer))) => {
                    if self.writer.role() == Role::Client {
                        self.wait_for_server_close(until);
                        self.server_close_awaited = true;
                    }
                    return Ok(peer);
                }
                Ok(_) => {}
                Err(e) if e.is_timeout() => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Bounds each wait for bytes (`None`: wait for ever). A timed-out read returns
    /// [`Error::Io`] with `WouldBlock`/`TimedOut` and can be repeated.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), Error> {
        let mut deadline = self.inbound.deadline.get();
        // Kept only once the socket has it: a refused timeout (zero) changes nothing.
        deadline.set_caller(&*self.writer.shared.tcp, timeout)?;
        self.inbound.deadline.set(deadline);
        Ok(())
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
        self.inbound.receiver.buffered_capacity() + self.writer.shared.state().data_to_send().len()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.release();
    }
}
