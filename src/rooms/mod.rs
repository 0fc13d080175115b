//! Groups of connections to broadcast to, usable from any thread: one local [`Room`], or named
//! rooms in one process or across many through Redis.

mod hub;
mod local;
mod memory;
mod offset;
#[cfg(feature = "redis")]
mod redis;
mod room;

pub use hub::{
    BrokerStatus, DEFAULT_BACKLOG_BYTES, DEFAULT_BACKLOG_MESSAGES, DEFAULT_RETAIN_COUNT, Delivery,
    Hub, HubBuilder, HubError, Joined, PRESENCE_TTL, Presence,
};
pub use offset::{EntryId, Offset};
pub use room::{Broadcast, Room};

use crate::proto::message::Message;
use crate::split::Writer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

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
        rooms.join("lobby", writer.clone());
        assert_eq!(rooms.count("lobby"), 1);
        writer.abort();
        assert_eq!(rooms.count("lobby"), 0);
        assert!(rooms.names().is_empty());
    }
}
