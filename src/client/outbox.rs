//! The sending side of a reconnecting client: the outbox that keeps messages in order across
//! reconnects, and [`ReconnectingWriter`], the handle other threads send and close through.
//!
//! Sending never holds a lock across a network write: one thread at a time (the "drainer")
//! writes the outbox in order, outside the lock, while other senders only append to it.

use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::message::Message;
use crate::split::Writer;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The state every [`ReconnectingWriter`] shares with the reading side.
pub(super) struct Shared {
    pub(super) state: Mutex<Link>,
    /// Wakes a backoff wait early when the client is closed.
    pub(super) wake: Condvar,
    pub(super) capacity: usize,
}

#[derive(Default)]
pub(super) struct Link {
    pub(super) writer: Option<Writer>,
    /// Counts connections, so a drainer can tell whether a failed write hit the current one.
    pub(super) generation: u64,
    /// `writer` takes messages: false once a write on it failed.
    pub(super) usable: bool,
    /// A thread is writing the outbox; the others only append to it.
    pub(super) draining: bool,
    pub(super) outbox: VecDeque<Message>,
    pub(super) closing: bool,
    /// The close a sender asked for while no connection was up (a reconnect under way): sent
    /// on the connection that attempt brings up, so the close is never lost. `Some(None)` is a
    /// close asked for without a code (`Message::Close(None)`), `None` no close asked for.
    pub(super) pending_close: Option<Option<CloseFrame>>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Link> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the client closing, wakes a backoff wait, and returns the current connection. With
    /// none up, `frame` is kept for the connection a reconnect under way may still bring up.
    pub(super) fn stop_reconnecting(&self, frame: Option<CloseFrame>) -> Option<Writer> {
        let writer = {
            let mut link = self.lock();
            link.closing = true;
            if link.writer.is_none() {
                link.pending_close = Some(frame);
            }
            link.writer.clone()
        };
        self.wake.notify_all();
        writer
    }

    /// Sends in order with whatever was sent before: at once when nothing is waiting, else
    /// behind the outbox.
    pub(super) fn send(&self, message: Message) -> Result<(), Error> {
        check_sendable(&message)?;
        if let Message::Close(frame) = message {
            // One way to close: as `start_close` (never queued for a later connection).
            return self.start_close(frame);
        }
        let mut link = self.lock();
        if link.closing {
            return Err(Error::AlreadyClosed);
        }
        if link.draining || !link.usable || !link.outbox.is_empty() {
            if link.outbox.len() >= self.capacity {
                return Err(Error::Disconnected);
            }
            link.outbox.push_back(message);
            if link.usable && !link.draining {
                self.drain(link, None)?;
            }
            return Ok(());
        }
        self.drain(link, Some(message))
    }

    /// Closes for good: see [`ReconnectingWriter::start_close`]. `None` sends a close frame
    /// without a code on the current connection.
    pub(super) fn start_close(&self, frame: Option<CloseFrame>) -> Result<(), Error> {
        check_sendable(&Message::Close(frame.clone()))?;
        match self.stop_reconnecting(frame.clone()) {
            Some(writer) => writer.send(Message::Close(frame)),
            None => Ok(()),
        }
    }

    /// Writes `first`, then the outbox, in order, without holding the lock while writing. A
    /// write that fails because the connection is going puts its message back at the front;
    /// if a newer connection is up by then, draining goes on with it, else the next connect
    /// drains. Errors only for `first`: [`Error::Disconnected`] when it cannot be kept, or an
    /// error that is not the connection's.
    pub(super) fn drain<'a>(
        &'a self,
        mut link: MutexGuard<'a, Link>,
        first: Option<Message>,
    ) -> Result<(), Error> {
        link.draining = true;
        let mut first = first;
        let mut result = Ok(());
        loop {
            let (message, own) = match first.take() {
                Some(message) => (message, true),
                None => match link.outbox.pop_front() {
                    Some(message) => (message, false),
                    None => break,
                },
            };
            let (Some(writer), true) = (link.writer.clone(), link.usable) else {
                link.outbox.push_front(message);
                break;
            };
            let generation = link.generation;
            drop(link);
            let sent = writer.send(message.clone());
            link = self.lock();
            match sent {
                Ok(()) => {}
                Err(Error::Io(_) | Error::AlreadyClosed) => {
                    if own && link.outbox.len() >= self.capacity {
                        result = Err(Error::Disconnected);
                    } else {
                        link.outbox.push_front(message);
                    }
                    if link.generation == generation {
                        link.usable = false;
                        break;
                    }
                }
                // Checked before queueing, so only a message of this caller's gets here.
                Err(other) if own => result = Err(other),
                Err(_) => {}
            }
        }
        link.draining = false;
        result
    }
}

/// The checks [`WebSocket::send`](crate::WebSocket::send) makes on a message itself, made before
/// it is queued: a message in the outbox is one the connection will take.
pub(super) fn check_sendable(message: &Message) -> Result<(), Error> {
    match message {
        Message::Ping(data) | Message::Pong(data) if data.len() > 125 => Err(Error::InvalidInput(
            "control frame payload over 125 bytes (RFC 6455 §5.5)",
        )),
        Message::Close(Some(frame)) => Ok(frame.check_sendable()?),
        _ => Ok(()),
    }
}

/// A `Clone + Send + Sync` handle that sends through whichever connection is current; from
/// [`Reconnecting::writer`](crate::Reconnecting::writer).
#[derive(Clone)]
pub struct ReconnectingWriter {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for ReconnectingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReconnectingWriter")
    }
}

impl ReconnectingWriter {
    /// Sends now if connected, else queues in the outbox. Messages go out in the order they were
    /// sent: while another thread is writing, this one only queues (and returns at once), and a
    /// message whose write failed because the connection went is sent again, first, on the next.
    /// No lock is held while writing; the thread that finds no write in progress writes the
    /// outbox, including what other threads queue meanwhile, so `Ok` means written or queued.
    ///
    /// Errors: [`Error::Disconnected`] when the message cannot wait (the outbox is full, or
    /// disabled, while disconnected or behind another thread's write);
    /// [`Error::AlreadyClosed`] after a close; [`Error::InvalidInput`] as for
    /// [`WebSocket::send`](crate::WebSocket::send).
    ///
    /// A [`Message::Close`] is [`start_close`](Self::start_close) by another name: checked the
    /// same way, it stops reconnecting and closes the current connection, never waiting in the
    /// outbox (`Message::Close(None)` sends a close frame without a code).
    pub fn send(&self, message: Message) -> Result<(), Error> {
        self.shared.send(message)
    }

    /// Closes for good from any thread: sends a close frame on the current connection, stops
    /// reconnecting, and returns; the reading thread's [`Reconnecting::read`](crate::Reconnecting::read) then returns the
    /// server's close, then [`Error::ConnectionClosed`].
    pub fn start_close(&self, code: impl Into<CloseCode>, reason: &str) -> Result<(), Error> {
        self.shared.start_close(Some(CloseFrame::new(code, reason)))
    }

    /// Whether a connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.shared
            .lock()
            .writer
            .as_ref()
            .is_some_and(Writer::is_open)
    }
}
