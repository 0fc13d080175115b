//! One group of this process's connections that receive the same frames: the fan-out under every room.

use crate::proto::Role;
use crate::proto::frame::{FrameHeader, encode_frame};
use crate::proto::message::Message;
use crate::split::{Enqueued, Frame, WeakWriter, Writer};
use std::sync::{Arc, Mutex, MutexGuard};

/// A set of connections that receive the same messages. Clones share the set.
///
/// A room does not keep its members alive: it holds weak references, so a connection whose
/// handler has returned (or panicked) is gone from every room as soon as the server lets go of
/// it, with its socket, without a `leave` or a broadcast. A member whose connection has ended
/// (closed, failed) but whose writer is still held elsewhere is dropped at the room's next use.
///
/// # A broadcast never waits for a member
///
/// A broadcast encodes its frame once (a server's frames are not masked, so every member gets
/// the same bytes) and appends it to each member's queue; what a member's socket takes at once is
/// written within the call, and the rest by one fan-out thread shared by the process, so a
/// member that stops reading costs the others nothing. Each member's queue is bounded in bytes
/// ([`Room::DEFAULT_MAX_BACKPRESSURE`], or
/// [`with_max_backpressure`](Room::with_max_backpressure)): a broadcast that would take it over
/// the bound closes that member with 1008 (policy violation,
/// RFC 6455 §7.4.1) after the last whole frame it was given, discards the rest and drops it from
/// the room. A message larger than the bound still goes to a member whose queue is empty.
/// Frames reach each member in the order of the broadcasts, whole, between the member's own
/// messages. (A member in several rooms has one queue; each room checks it against its own
/// bound.)
///
/// ```no_run
/// use syncws::{Message, Room, Server};
/// let room = Room::new();
/// Server::bind("127.0.0.1:9001")?.serve(move |mut session| {
///     room.join(session.writer());
///     while let Ok(message) = session.read() {
///         if message.is_data() {
///             room.broadcast(&message, Some(&session.writer()));
///         }
///     }
///     room.leave(&session.writer());
/// })?;
/// # Ok::<(), syncws::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Room {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    members: Mutex<Vec<WeakWriter>>,
    max_backpressure: usize,
}

/// What a broadcast did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Broadcast {
    /// Members whose socket took the message within the call.
    pub delivered: usize,
    /// Members for whom it waits in their queue (behind earlier messages, or because their
    /// socket was full); the fan-out thread writes it.
    pub queued: usize,
    /// Members dropped: their connection had ended, or their queue would have gone over the
    /// bound and they are being closed with 1008.
    pub dropped: usize,
    /// The message went to a broker rather than straight to the members (a
    /// [`Rooms`](crate::rooms::Rooms) on Redis): every node's members, this node's included,
    /// get it when it comes back in the room's one order, and the counts above are 0.
    pub relayed: bool,
}

impl Default for Room {
    fn default() -> Room {
        Room::with_max_backpressure(Room::DEFAULT_MAX_BACKPRESSURE)
    }
}

impl Room {
    /// How many bytes a member may have queued by rooms and not yet taken by its peer, unless
    /// [`Room::with_max_backpressure`] or
    /// [`RoomsBuilder::max_backpressure`](crate::rooms::RoomsBuilder::max_backpressure) says
    /// otherwise: 1 MiB,
    /// seconds of a busy room for a slow mobile link, while a thousand stalled members hold at
    /// most about 1 GiB (less in fact: a frame shared by every member counts once per member
    /// here).
    pub const DEFAULT_MAX_BACKPRESSURE: usize = 1 << 20;

    /// An empty room whose members may each have [`Room::DEFAULT_MAX_BACKPRESSURE`] bytes queued.
    pub fn new() -> Room {
        Room::default()
    }

    /// An empty room whose members may each have `bytes` queued and not yet taken by their
    /// peer; see [the type's documentation](Room#a-broadcast-never-waits-for-a-member).
    pub fn with_max_backpressure(bytes: usize) -> Room {
        Room {
            shared: Arc::new(Shared {
                members: Mutex::new(Vec::new()),
                max_backpressure: bytes,
            }),
        }
    }

    /// The bound on each member's queue, in bytes.
    pub fn max_backpressure(&self) -> usize {
        self.shared.max_backpressure
    }

    fn lock(&self) -> MutexGuard<'_, Vec<WeakWriter>> {
        self.shared
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The members whose connections are still open; forgets the others.
    fn live(&self) -> Vec<Writer> {
        let mut members = self.lock();
        let mut live = Vec::with_capacity(members.len());
        members.retain(|member| match member.upgrade() {
            Some(writer) if writer.end_cause().is_none() => {
                live.push(writer);
                true
            }
            _ => false,
        });
        live
    }

    /// Adds a connection; joining twice has no effect. Forgets members that have ended.
    pub fn join(&self, writer: Writer) {
        let live = self.live();
        if !live.iter().any(|m| m.same_connection(&writer)) {
            self.lock().push(writer.downgrade());
        }
    }

    /// Removes a connection; returns whether it was a member.
    pub fn leave(&self, writer: &Writer) -> bool {
        let mut members = self.lock();
        let before = members.len();
        members.retain(|m| !m.same_connection(writer));
        members.len() != before
    }

    /// How many members the room has whose connections are still open.
    pub fn len(&self) -> usize {
        self.live().len()
    }

    /// Whether the room has no open members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends `message` to every member except `except` (usually the sender). Never waits for a
    /// member's peer: each write attempt within the call waits at most a millisecond, and only
    /// for a member with nothing queued ahead; members over their bound are closed with 1008
    /// and dropped (see [the type's documentation](Room#a-broadcast-never-waits-for-a-member)).
    pub fn broadcast(&self, message: &Message, except: Option<&Writer>) -> Broadcast {
        self.deliver(message, except.map(Writer::id))
    }

    /// The fan-out behind [`broadcast`](Self::broadcast), for engines that deliver messages
    /// from elsewhere (a broker) to this process's members: never blocks on a member's socket.
    /// `except` is the [`Writer::id`] of the member to skip.
    pub(crate) fn deliver(&self, message: &Message, except: Option<u64>) -> Broadcast {
        // Queue outside the room's lock: joining and leaving never wait for a member.
        let members = self.live();
        let mut encoded: Option<Arc<[u8]>> = None;
        let mut report = Broadcast::default();
        let mut dropped = Vec::new();
        for member in &members {
            if except == Some(member.id()) {
                continue;
            }
            let frame = match member.role() {
                // A close goes through each member's state machine.
                Role::Server if !matches!(message, Message::Close(_)) => {
                    Frame::Encoded(Arc::clone(encoded.get_or_insert_with(|| encode(message))))
                }
                _ => Frame::Message(message.clone()),
            };
            match member.enqueue(frame, self.shared.max_backpressure) {
                Enqueued::Delivered => report.delivered += 1,
                Enqueued::Queued => report.queued += 1,
                Enqueued::Dropped => dropped.push(member.clone()),
            }
        }
        if !dropped.is_empty() {
            let mut members = self.lock();
            members.retain(|m| !dropped.iter().any(|f| m.same_connection(f)));
            report.dropped = dropped.len();
        }
        report
    }
}

fn encode(message: &Message) -> Arc<[u8]> {
    let payload = message.as_bytes();
    let header = FrameHeader::new(message.opcode(), payload.len() as u64);
    let mut out = Vec::with_capacity(payload.len() + 10);
    encode_frame(&header, payload, &mut out);
    out.into()
}

#[cfg(test)]
#[path = "fanout_tests.rs"]
mod fanout_tests;
