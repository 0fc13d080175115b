//! A connection's fan-out queue: whole frames that rooms handed to this connection and that are
//! not yet on the wire, bounded in bytes, written without the broadcaster ever waiting for the
//! peer.
//!
//! A broadcast appends a frame to each member's [`Outbox`] and then tries, once, to hand it to
//! the member's write side: if nobody owns the write half, the frames are moved to the
//! connection's output and written in one write attempt that never waits for the peer (over
//! TCP on Unix, `MSG_DONTWAIT`; elsewhere one wait of at most [`ATTEMPT`], which the kernel
//! rounds up to a clock tick); a healthy peer's kernel buffers take them at once. What the socket does not
//! take, or what waits because another thread is writing, is left to the one fan-out thread
//! (see [`drainer`]), which tries again with a backoff per member. So a member whose peer stops
//! reading costs a broadcast nothing but a copy of a pointer, and its backlog grows only up to the
//! room's bound: past it the member is closed with 1008 (RFC 6455 §7.4.1, "a message that
//! violates its policy") and leaves the room.
//!
//! Frames are handed over in chunks ([`CHUNK`]) and only once the previous chunk is on the wire,
//! so at most one chunk sits in the writer's buffers; the rest stays here, frame by frame, where
//! it can be discarded whole when the member is dropped. Frames reach the wire in the order they
//! were queued, and whole: the writer never cuts a frame, and the close frame that ends a dropped
//! member follows the last whole frame handed over.

use super::writer::Writer;
use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::message::Message;
use crate::websocket::ending::EndCause;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod drainer;
#[cfg(test)]
mod tests;

/// The longest one write attempt of a broadcaster or of the fan-out thread waits for a peer
/// whose buffers are full, where the transport cannot write without waiting
/// ([`Transport::writes_now`](crate::split::transport::Transport::writes_now)); elsewhere the
/// attempt does not wait at all.
pub(crate) const ATTEMPT: Duration = Duration::from_millis(1);

/// At most this many queued bytes are handed to the writer at once (always at least one frame).
const CHUNK: usize = 64 * 1024;

/// How long a member dropped for backpressure may take nothing of what was handed over and the
/// close frame before its TCP connection is cut, when its stream has no write timeout: a
/// server's default write timeout.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// The reason sent with the 1008 close of a member over its bound.
pub(crate) const BACKPRESSURE_REASON: &str = "send queue over its limit";

/// One queued frame.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A server's unmasked frame, encoded once and shared by every member.
    Encoded(Arc<[u8]>),
    /// A message encoded by the member's own sender (a client masks each frame; a close goes
    /// through the connection's state).
    Message(Message),
}

impl Frame {
    fn len(&self) -> usize {
        match self {
            Frame::Encoded(frame) => frame.len(),
            // A fixed cost for the message and its slot, so empty messages are bounded too.
            Frame::Message(message) => 64 + message.as_bytes().len(),
        }
    }
}

/// What became of a frame given to [`Writer::enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// Handed to the socket within the call.
    Delivered,
    /// Waits in the member's queue; the fan-out thread writes it.
    Queued,
    /// The member has ended, or its queue would have gone over the bound and it is being
    /// closed with 1008: it should leave the room.
    Dropped,
}

/// The fan-out queue one connection keeps (in its writer's shared state).
#[derive(Debug, Default)]
pub(crate) struct Outbox(Mutex<Queue>);

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Frame>,
    /// Bytes in `frames`.
    queued: usize,
    /// Bytes handed to the writer and not yet known to be on the wire.
    handed: usize,
    /// The fan-out thread has this member on its list.
    draining: bool,
    /// Dropped for backpressure (or ended): nothing more is queued.
    refused: bool,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one [`Writer::pump`] left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pump {
    /// Everything queued is on the wire.
    Done,
    /// The socket took less than was handed over: the peer is slow or stalled.
    Stalled,
    /// Another thread owns the write half (it writes what was handed over), or a streamed
    /// message is unfinished: try again soon.
    Busy,
    /// The connection has ended.
    Gone,
}

impl Writer {
    /// Queues `frame` for this member, under a bound of `max_bytes` queued bytes, and writes
    /// what the socket takes at once if nobody is writing and nothing is queued ahead. Never
    /// waits for the peer (at most one [`ATTEMPT`], none over TCP) nor for another writer.
    ///
    /// A frame that would take the queue over `max_bytes` is not queued: the member is closed
    /// with 1008 (its queued frames discarded) and the answer is [`Enqueued::Dropped`]. A frame
    /// larger than the bound still goes to a member with an empty queue, so the queue holds at
    /// most `max_bytes` or one frame.
    pub(crate) fn enqueue(&self, frame: Frame, max_bytes: usize) -> Enqueued {
        if self.end_cause().is_some() {
            return Enqueued::Dropped;
        }
        let draining = {
            let mut queue = self.shared.outbox.lock();
            if queue.refused {
                return Enqueued::Dropped;
            }
            let backlog = queue.queued + queue.handed;
            if backlog > 0 && backlog.saturating_add(frame.len()) > max_bytes {
                queue.refused = true;
                queue.frames = VecDeque::new();
                queue.queued = 0;
                drop(queue);
                self.close_for_backpressure();
                return Enqueued::Dropped;
            }
            queue.queued += frame.len();
            queue.frames.push_back(frame);
            queue.draining
        };
        if draining {
            // The fan-out thread writes it after what is queued ahead.
            return Enqueued::Queued;
        }
        match self.pump() {
            Pump::Done => Enqueued::Delivered,
            Pump::Gone => Enqueued::Dropped,
            Pump::Stalled | Pump::Busy => {
                drainer::watch(self, None);
                Enqueued::Queued
            }
        }
    }

    /// Bytes queued for this member by rooms and not yet known to be on the wire.
    #[cfg(test)]
    pub(crate) fn fanout_backlog(&self) -> usize {
        let queue = self.shared.outbox.lock();
        queue.queued + queue.handed
    }

    /// Writes what the last chunk left, then hands over queued frames chunk by chunk while the
    /// socket takes them, each write waiting at most [`ATTEMPT`] for the peer (none over TCP).
    pub(super) fn pump(&self) -> Pump {
        loop {
            // What was handed over (and anything else queued, such as a pong) goes first.
            if !self.shared.kick(Some(Instant::now() + ATTEMPT)) {
                if self.end_cause().is_some() {
                    return Pump::Gone;
                }
                return if self.is_stranded() {
                    Pump::Stalled
                } else {
                    Pump::Busy
                };
            }
            let mut queue = self.shared.outbox.lock();
            queue.handed = 0;
            if queue.frames.is_empty() {
                queue.draining = false;
                return Pump::Done;
            }
            match self.hand_over(&mut queue) {
                Ok(()) => {}
                Err(Error::AlreadyClosed) => {
                    queue.refused = true;
                    queue.frames = VecDeque::new();
                    queue.queued = 0;
                    queue.draining = false;
                    return Pump::Gone;
                }
                Err(_) => return Pump::Busy,
            }
        }
    }

    /// Moves up to [`CHUNK`] bytes of whole frames (at least one) from the queue to the
    /// connection's output, in order. A frame the sender refuses for good (a message it may not
    /// send) is skipped; one refused for now (a streamed message is unfinished) stays first.
    fn hand_over(&self, queue: &mut Queue) -> Result<(), Error> {
        let mut sender = self.shared.state();
        sender.note_time_if_compressing(std::time::Instant::now);
        while let Some(frame) = queue.frames.front() {
            if queue.handed > 0 && queue.handed + frame.len() > CHUNK {
                break;
            }
            let result = match frame {
                Frame::Encoded(bytes) => sender.send_encoded(bytes),
                Frame::Message(message) => sender.send(message),
            };
            match result {
                Ok(()) => queue.handed += frame.len(),
                Err(crate::proto::Error::InvalidInput(_)) if matches!(frame, Frame::Message(_)) => {
                }
                Err(e) => return Err(e.into()),
            }
            queue.queued -= frame.len();
            queue.frames.pop_front();
        }
        Ok(())
    }

    /// Closes a member that went over its bound: queues a 1008 close after what was handed over
    /// and lets the fan-out thread write both, cutting TCP once the peer has taken nothing for
    /// the stream's write timeout (or [`CLOSE_GRACE`] without one). Never waits for the peer.
    fn close_for_backpressure(&self) {
        let frame = CloseFrame::new(CloseCode::Policy, BACKPRESSURE_REASON);
        self.record(EndCause::LocalClosed(Some(frame.clone())));
        let _ = self.shared.state().close(Some(frame));
        #[cfg(feature = "log")]
        log::info!(
            target: "syncws::rooms",
            "connection {}: send queue over its limit, closing with 1008",
            self.id()
        );
        let grace = self.shared.write_timeout().unwrap_or(CLOSE_GRACE);
        drainer::watch(self, Some(grace));
    }

    /// For the fan-out thread: a member being closed for backpressure. `true` when there is
    /// nothing more to do (the close is on the wire, or TCP was cut at `deadline`).
    pub(super) fn push_close(&self, deadline: Instant) -> bool {
        if self.shared.kick(Some(Instant::now() + ATTEMPT)) {
            return true;
        }
        if Instant::now() >= deadline {
            self.fail(
                EndCause::WriteTimeout,
                CloseCode::Policy,
                BACKPRESSURE_REASON,
            );
            return true;
        }
        false
    }
}
