//! The receiving half: decodes without the writer's lock and answers through the writer.

use super::read_deadline::ReadDeadline;
use super::transport::ReadHalf;
use super::writer::Writer;
use crate::config::Config;
use crate::ending::EndCause;
use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::connection::next_event;
use crate::proto::message::{Chunk, Event, Message};
use crate::proto::{Receiver, Role, State};
use std::cell::Cell;
use std::io;
use std::net::Shutdown;
use std::time::Duration;

/// How many bytes a client discards while it waits for the server to close TCP.
const CLOSE_DRAIN_LIMIT: usize = 64 * 1024;

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
    /// [`WebSocket::read`](crate::WebSocket::read): pings are answered (through the writer) before they are returned, the
    /// peer's close is returned once, then [`Error::ConnectionClosed`], then
    /// [`Error::AlreadyClosed`]. [`end_cause`](Self::end_cause) says why it ended.
    ///
    /// Does not hold the writer's lock while it waits for bytes.
    pub fn read(&mut self) -> Result<Message, Error> {
        let mid_stream = self.inbound.receiver.is_mid_stream();
        crate::socket::whole_message(mid_stream, || self.read_with(false))
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
        loop {
            let mut out = self.writer.shared.lock();
            if out.sender.state() == State::Closed {
                let close_received = out.sender.close_received();
                drop(out);
                return Err(self.finish(close_received));
            }
            match next_event(&mut self.inbound.receiver, &mut out.sender) {
                Ok(Some(event)) => {
                    // A pong or our close reply may be due.
                    let flushed = out.flush();
                    drop(out);
                    match &event {
                        Event::Message(Message::Close(frame)) => {
                            self.writer.record(EndCause::PeerClosed(frame.clone()));
                        }
                        Event::Message(Message::Text(_) | Message::Binary(_))
                        | Event::Chunk(Chunk { last: true, .. }) => {
                            self.writer.shared.message_done()
                        }
                        _ => {}
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

    // Out of line: its scratch buffer would otherwise sit in every read's stack frame.
    #[cold]
    #[inline(never)]
    fn wait_for_server_close(&mut self) {
        // The caller's bound, not a window kept for buffers, limits this wait.
        let tcp = &*self.writer.shared.tcp;
        if self.inbound.deadline.get_mut().close_window(tcp).is_err() {
            return;
        }
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
        let tcp = &*self.writer.shared.tcp;
        if !self.inbound.receiver.has_buffered_data() {
            // This read may wait long. Buffers kept for large messages are held through it only
            // for a short window (see `read_deadline`); otherwise, or without room for a window,
            // they go now.
            if !((self.inbound.receiver.holds_more_than_idle()
                || sender_holds_more_than_idle(&self.writer.shared.out))
                && self.inbound.deadline.get_mut().open_window(tcp)?)
            {
                self.inbound.receiver.shrink();
                self.inbound.deadline.get_mut().close_window(tcp)?;
            }
        }
        loop {
            let out = &self.writer.shared.out;
            let receiver = &mut self.inbound.receiver;
            let read = if self.source.reads_vectored() {
                match receiver.read_bufs() {
                    (buf, []) => self.source.read(buf, out),
                    // A predicted frame: header and payload in one read (`Receiver::read_bufs`).
                    (head, rest) => self.source.read_vectored(head, rest, out),
                }
            } else {
                self.source.read(receiver.read_buf(), out)
            };
            match read {
                Ok(0) => {
                    self.inbound.receiver.commit(0);
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
                    self.inbound.receiver.commit(n);
                    self.writer
                        .shared
                        .touch(self.inbound.receiver.is_receiving_message());
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
                            shrink_sender(&self.writer.shared.out);
                            self.inbound.deadline.get_mut().window_expired(tcp)?;
                        }
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
        let mut deadline = self.inbound.deadline.get();
        let result = deadline.set_caller(&self.writer.shared.tcp, timeout);
        self.inbound.deadline.set(deadline);
        Ok(result?)
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
        self.inbound.receiver.buffered_capacity()
            + self.writer.shared.lock().sender.data_to_send().len()
    }
}

/// Whether the sender holds state to release once the connection goes quiet (a compressor's, with
/// permessage-deflate). A writer holding the lock is busy, so the answer is then no.
fn sender_holds_more_than_idle(out: &std::sync::Mutex<super::writer::Outbound>) -> bool {
    out.try_lock()
        .is_ok_and(|out| out.sender.holds_more_than_idle())
}

/// Releases the sender's idle state, unless a writer holds the lock (it is not idle then).
fn shrink_sender(out: &std::sync::Mutex<super::writer::Outbound>) {
    if let Ok(mut out) = out.try_lock() {
        out.sender.shrink();
    }
}
