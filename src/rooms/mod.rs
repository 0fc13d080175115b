//! Groups of connections to broadcast to, usable from any thread.

use crate::proto::Role;
use crate::proto::frame::{FrameHeader, encode_frame};
use crate::proto::message::Message;
use crate::split::{Enqueued, Frame, WeakWriter, Writer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

// Issue 21: rooms with offsets and presence, across processes through Redis (feature `redis`).
mod redis;
pub use redis::{
    BrokerStatus, DEFAULT_BACKLOG_BYTES, DEFAULT_BACKLOG_MESSAGES, DEFAULT_RETAIN_COUNT, Delivery,
    EntryId, Hub, HubBuilder, HubError, Joined, Offset, PRESENCE_TTL, Presence,
};

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
}

impl Default for Room {
    fn default() -> Room {
        Room::with_max_backpressure(Room::DEFAULT_MAX_BACKPRESSURE)
    }
}

impl Room {
    /// How many bytes a member may have queued by rooms and not yet taken by its peer, unless
    /// [`Room::with_max_backpressure`] or [`Rooms::with_max_backpressure`] says otherwise: 1 MiB,
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
        self.deliver(message, except)
    }

    /// The fan-out behind [`broadcast`](Self::broadcast), for engines that deliver messages
    /// from elsewhere (a broker) to this process's members: never blocks on a member's socket.
    pub(crate) fn deliver(&self, message: &Message, except: Option<&Writer>) -> Broadcast {
        // Queue outside the room's lock: joining and leaving never wait for a member.
        let members = self.live();
        let mut encoded: Option<Arc<[u8]>> = None;
        let mut report = Broadcast::default();
        let mut dropped = Vec::new();
        for member in &members {
            if except.is_some_and(|e| e.same_connection(member)) {
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

/// Named [`Room`]s, created on first join and removed when empty. Clones share the rooms.
#[derive(Clone, Debug)]
pub struct Rooms {
    rooms: Arc<Mutex<HashMap<String, Room>>>,
    max_backpressure: usize,
}

impl Default for Rooms {
    fn default() -> Rooms {
        Rooms::with_max_backpressure(Room::DEFAULT_MAX_BACKPRESSURE)
    }
}

impl Rooms {
    /// No rooms yet; members may each have [`Room::DEFAULT_MAX_BACKPRESSURE`] bytes queued.
    pub fn new() -> Rooms {
        Rooms::default()
    }

    /// No rooms yet; each room created bounds its members' queues to `bytes`
    /// (see [`Room::with_max_backpressure`]).
    pub fn with_max_backpressure(bytes: usize) -> Rooms {
        Rooms {
            rooms: Arc::default(),
            max_backpressure: bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `writer` to room `name`, creating it.
    pub fn join(&self, name: &str, writer: Writer) {
        self.lock()
            .entry(name.to_owned())
            .or_insert_with(|| Room::with_max_backpressure(self.max_backpressure))
            .join(writer);
    }

    /// Removes `writer` from room `name`; an emptied room is removed.
    pub fn leave(&self, name: &str, writer: &Writer) -> bool {
        let mut rooms = self.lock();
        let Some(room) = rooms.get(name) else {
            return false;
        };
        let was_member = room.leave(writer);
        if room.is_empty() {
            rooms.remove(name);
        }
        was_member
    }

    /// The room `name`, if it has members.
    pub fn get(&self, name: &str) -> Option<Room> {
        self.lock()
            .get(name)
            .filter(|room| !room.is_empty())
            .cloned()
    }

    /// Members of room `name`.
    pub fn count(&self, name: &str) -> usize {
        self.get(name).map_or(0, |room| room.len())
    }

    /// Names of the rooms that have members (rooms whose members have all ended are removed).
    pub fn names(&self) -> Vec<String> {
        let mut rooms = self.lock();
        rooms.retain(|_, room| !room.is_empty());
        rooms.keys().cloned().collect()
    }

    /// Broadcasts to room `name`; see [`Room::broadcast`].
    pub fn broadcast(&self, name: &str, message: &Message, except: Option<&Writer>) -> Broadcast {
        match self.get(name) {
            Some(room) => room.broadcast(message, except),
            None => Broadcast::default(),
        }
    }
}

#[cfg(test)]
mod fanout_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::config::Config;
    use crate::websocket::WebSocket;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// A room holds no connection open: once the connection's own halves are gone, the member
    /// is gone and its socket closed (the peer sees EOF), with no broadcast or leave.
    #[test]
    fn a_room_does_not_keep_a_connection_or_its_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let (server, _) = listener.accept().unwrap();
        let (reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
            .split()
            .unwrap();
        let room = Room::new();
        room.join(writer.clone());
        room.join(writer.clone());
        assert_eq!(room.len(), 1);
        drop(reader);
        drop(writer);
        assert!(room.is_empty());
        let mut byte = [0u8];
        assert_eq!(peer.read(&mut byte).unwrap(), 0, "the socket is still open");
    }

    /// A member whose connection has ended is dropped even while its writer is still held.
    #[test]
    fn an_ended_member_is_dropped_though_its_writer_lives() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (_reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
            .split()
            .unwrap();
        let rooms = Rooms::new();
        rooms.join("lobby", writer.clone());
        assert_eq!(rooms.count("lobby"), 1);
        writer.abort();
        assert_eq!(rooms.count("lobby"), 0);
        assert!(rooms.names().is_empty());
    }
}
