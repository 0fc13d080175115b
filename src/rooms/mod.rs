//! Rooms: groups of connections to broadcast to, usable from any thread.
//!
//! [`Room`] is one local group: every message goes to its members at once, nothing more.
//! [`Rooms`] holds named rooms with one order, offsets, replay and presence, and is the same
//! API whether the rooms live in this process or are shared by many processes through Redis;
//! the choice is made at construction:
//!
//! - [`Rooms::new`] (or [`RoomsBuilder::in_memory`]): rooms in this process alone.
//! - [`RoomsBuilder::redis`] (feature `redis`): one Redis Stream per room, so members
//!   connected to different processes or machines receive the same messages in the same order;
//!   [`RoomsBuilder::redis_cluster`] spreads the rooms over a Redis Cluster (each room's keys in
//!   one hash slot).
//!
//! The calls are the same either way: [`Rooms::join`] / [`Rooms::join_with`] (optionally
//! replaying from an [`Offset`]), [`Rooms::broadcast`], [`Rooms::leave`], [`Rooms::presence`].
//! Guide: `docs/rooms.md`.

mod builder;
mod delivery;
mod error;
mod hub;
mod local;
mod memory;
mod offset;
#[cfg(feature = "redis")]
mod redis;
mod room;

pub use builder::{Join, RoomsBuilder};
pub use delivery::{Delivery, Joined, Presence};
pub use error::{BrokerStatus, RoomsError};
pub use offset::{EntryId, Offset};
pub use room::{Broadcast, Room};

use crate::proto::message::Message;
use crate::split::Writer;
use hub::{Backend, Shared, StopOnDrop};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Default bound of the broadcasts held while the broker is unreachable, in messages.
pub const DEFAULT_BACKLOG_MESSAGES: usize = 100_000;
/// Default bound of the broadcasts held while the broker is unreachable, in bytes of payload.
pub const DEFAULT_BACKLOG_BYTES: usize = 64 * 1024 * 1024;
/// Default number of messages a room's history retains (approximately, for Redis: `MAXLEN ~`).
pub const DEFAULT_RETAIN_COUNT: usize = 1_000;
/// How long a node's presence outlives its last heartbeat (a heartbeat is sent every second):
/// after `kill -9`, its members leave every other node's [`Rooms::presence`] once this has
/// passed and Redis has expired the key.
pub const PRESENCE_TTL: Duration = Duration::from_secs(3);

/// Named rooms whose messages reach every member, on every node, once and in one order, each
/// with an [`Offset`] to resume from. Clones share the rooms.
///
/// A room exists while it has members (and, in memory, for a while after: see
/// [`RoomsBuilder::idle_rooms`]); a member whose connection ends is gone from it without a
/// `leave`. Delivery to this process's members goes through a [`Room`]: one encoded frame per
/// message for all of them, each member behind a queue bounded in bytes
/// ([`RoomsBuilder::max_backpressure`]), so a member that stops reading never delays the others.
///
/// ```no_run
/// use syncws::rooms::{Join, Offset, Rooms};
/// use syncws::Server;
/// let rooms = Rooms::new(); // or Rooms::builder().node("n1").redis("redis://127.0.0.1/")?
/// Server::bind("127.0.0.1:9002")?.serve(move |mut session| {
///     let since: Option<Offset> = None; // e.g. from the request's query
///     let me = session.writer();
///     let _ = rooms.join_with("lobby", me.clone(), Join::new().identity("ann").since(since));
///     while let Ok(message) = session.read() {
///         if message.is_data() {
///             // Everyone in the room but the sender, on every node.
///             let _ = rooms.broadcast("lobby", &message, Some(&me));
///         }
///     }
///     rooms.leave("lobby", &me);
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Rooms {
    pub(in crate::rooms) shared: Arc<Shared>,
    _stop: Arc<StopOnDrop>,
}

impl fmt::Debug for Rooms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let engine = match &self.shared.backend {
            Backend::Memory => "memory",
            #[cfg(feature = "redis")]
            Backend::Redis(_) => "redis",
        };
        f.debug_struct("Rooms")
            .field("node", &self.shared.node)
            .field("engine", &engine)
            .finish_non_exhaustive()
    }
}

// A panic inside a hook (`format`, `on_outage`) leaves no room state half-changed that a later
// call would trust: every lock is taken back from poisoning and each entry is delivered whole
// or not at all. So `Rooms` stays usable across `catch_unwind`, as the map of `Room`s it
// replaces was.
impl std::panic::UnwindSafe for Rooms {}
impl std::panic::RefUnwindSafe for Rooms {}

impl Default for Rooms {
    fn default() -> Rooms {
        Rooms::new()
    }
}

impl Rooms {
    /// Rooms in this process, every setting at its default: the same as
    /// `Rooms::builder().in_memory()`.
    pub fn new() -> Rooms {
        RoomsBuilder::new().in_memory()
    }

    /// Settings, then the engine: see [`RoomsBuilder`].
    pub fn builder() -> RoomsBuilder {
        RoomsBuilder::new()
    }

    /// This node's name ([`RoomsBuilder::node`]).
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    /// Adds `writer` to room `name`, creating it; the same as
    /// `join_with(name, writer, Join::new())`. Joining twice has no effect.
    pub fn join(&self, name: &str, writer: Writer) -> Result<Joined, RoomsError> {
        self.join_with(name, writer, Join::new())
    }

    /// Adds `writer` to room `name` under `join`'s identity (shown by [`Rooms::presence`]).
    /// With [`Join::since`], first sends it every retained message after that offset, in
    /// order (preceded by the gap message when that history is incomplete), then live
    /// messages, none twice. With Redis, fails when the broker cannot be reached.
    pub fn join_with(&self, name: &str, writer: Writer, join: Join) -> Result<Joined, RoomsError> {
        let since = join.since.as_ref();
        match &self.shared.backend {
            Backend::Memory => Ok(memory::join(
                &self.shared,
                name,
                writer,
                &join.identity,
                since,
            )),
            #[cfg(feature = "redis")]
            Backend::Redis(broker) => {
                broker.join(&self.shared, name, writer, &join.identity, since)
            }
        }
    }

    /// Removes `writer` from room `name`; returns whether it was a member here.
    pub fn leave(&self, name: &str, writer: &Writer) -> bool {
        let left = self
            .shared
            .room(name)
            .is_some_and(|room| local::lock(&room).remove(writer));
        match &self.shared.backend {
            Backend::Memory => memory::sweep_if_due(&self.shared),
            #[cfg(feature = "redis")]
            Backend::Redis(broker) => broker.presence_changed(),
        }
        left
    }

    /// Sends `message` (text or binary) to every member of room `name` on every node, but
    /// `except` (a member on this node, usually the sender), and appends it to the room's
    /// history. Never waits for a member's socket, nor (with Redis) for the broker.
    ///
    /// In memory the members get it within the call and the answer counts them. With Redis it
    /// is queued for the broker and the answer says [`relayed`](Broadcast::relayed): every
    /// node's members, this node's included, get it when it comes back in the room's one
    /// order; while Redis is unreachable up to the backlog bound is held, beyond it this
    /// returns [`RoomsError::Backlog`] (a retry may succeed once the broker is back). A message
    /// larger than the backlog's byte bound on its own could never be held: it returns
    /// [`RoomsError::TooLarge`] whatever the broker's state (in memory there is no such bound).
    /// Pings, pongs and closes are refused
    /// ([`RoomsError::NotData`]). `except` applies to live delivery; a later join replaying
    /// from an offset (a new connection) gets every retained message.
    pub fn broadcast(
        &self,
        name: &str,
        message: &Message,
        except: Option<&Writer>,
    ) -> Result<Broadcast, RoomsError> {
        if !message.is_data() {
            return Err(RoomsError::NotData);
        }
        let from = self.shared.from(except);
        match &self.shared.backend {
            Backend::Memory => Ok(memory::publish(&self.shared, name, message, from)),
            #[cfg(feature = "redis")]
            Backend::Redis(broker) => {
                broker.publish(&self.shared, name, message, from)?;
                Ok(Broadcast {
                    relayed: true,
                    ..Broadcast::default()
                })
            }
        }
    }

    /// Who is in room `name` on every node. In memory it never waits for a delivery, so a
    /// [`format`](RoomsBuilder::format) hook may call it; with Redis it asks the broker, which
    /// a hook must not wait for. With Redis, a node that died without leaving drops
    /// out when its heartbeat key expires: [`PRESENCE_TTL`] after its last refresh, plus Redis's
    /// expiry lag (within 5 s in `scripts/rooms/cluster.sh`).
    pub fn presence(&self, name: &str) -> Result<Presence, RoomsError> {
        match &self.shared.backend {
            Backend::Memory => Ok(Presence {
                members: self.local_members(name),
            }),
            #[cfg(feature = "redis")]
            Backend::Redis(broker) => broker.presence(&self.shared, name),
        }
    }

    /// `(node, identity)` of this node's live members of room `name`, sorted.
    fn local_members(&self, name: &str) -> Vec<(String, String)> {
        let mut members: Vec<(String, String)> = match self.shared.room(name) {
            Some(room) => room
                .identities()
                .into_iter()
                .map(|id| (self.shared.node.clone(), id))
                .collect(),
            None => Vec::new(),
        };
        members.sort();
        members
    }

    /// This node's members of room `name` whose connections are open. Never waits for a
    /// delivery, so a [`format`](RoomsBuilder::format) hook may call it.
    pub fn count(&self, name: &str) -> usize {
        self.shared
            .room(name)
            .map_or(0, |room| room.identities().len())
    }

    /// Names of the rooms with members on this node whose connections are open. Never waits
    /// for a delivery, so a [`format`](RoomsBuilder::format) hook may call it.
    pub fn names(&self) -> Vec<String> {
        let rooms: Vec<(String, local::SharedRoom)> = self
            .shared
            .rooms()
            .iter()
            .map(|(name, room)| (name.clone(), room.clone()))
            .collect();
        rooms
            .into_iter()
            .filter(|(_, room)| !room.identities().is_empty())
            .map(|(name, _)| name)
            .collect()
    }

    /// Broadcasts not yet acknowledged by the broker (always 0 in memory).
    pub fn backlog(&self) -> usize {
        match &self.shared.backend {
            Backend::Memory => 0,
            #[cfg(feature = "redis")]
            Backend::Redis(broker) => broker.backlog(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Role;
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
        rooms.join("lobby", writer.clone()).unwrap();
        assert_eq!(rooms.count("lobby"), 1);
        writer.abort();
        assert_eq!(rooms.count("lobby"), 0);
        assert!(rooms.names().is_empty());
    }
}
