//! Groups of connections to broadcast to, usable from any thread.

use crate::error::Error;
use crate::proto::Role;
use crate::proto::frame::{FrameHeader, encode_frame};
use crate::proto::message::Message;
use crate::split::{WeakWriter, Writer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

// Issue 21: rooms with offsets and presence, across processes through Redis (feature `redis`).
mod redis;
pub use redis::{
    BrokerStatus, Delivery, EntryId, Hub, HubBuilder, HubError, Joined, Offset, PRESENCE_TTL, Presence,
};

/// A set of connections that receive the same messages. Clones share the set.
///
/// A room does not keep its members alive: it holds weak references, so a connection whose
/// handler has returned (or panicked) is gone from every room as soon as the server lets go of
/// it, with its socket, without a `leave` or a broadcast. A member whose connection has ended
/// (closed, failed) but whose writer is still held elsewhere is dropped at the room's next use.
///
/// A broadcast encodes its frame once and writes it to each member in turn. A member whose
/// write fails or times out (the server's `write_timeout`) is failed with 1008 and dropped, so a
/// slow or dead member delays a broadcast by at most one write timeout.
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
#[derive(Clone, Default, Debug)]
pub struct Room {
    members: Arc<Mutex<Vec<WeakWriter>>>,
}

/// What a broadcast did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Broadcast {
    /// Members the message was written to.
    pub sent: usize,
    /// Members dropped because their connection had ended, failed or timed out.
    pub dropped: usize,
}

impl Room {
    /// An empty room.
    pub fn new() -> Room {
        Room::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<WeakWriter>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Sends `message` to every member except `except` (usually the sender). Blocks while it
    /// writes to each member in turn; members that fail are dropped.
    pub fn broadcast(&self, message: &Message, except: Option<&Writer>) -> Broadcast {
        // Write outside the room's lock: joining and leaving never wait for a slow socket.
        let members = self.live();
        let mut encoded: Option<Vec<u8>> = None;
        let mut report = Broadcast::default();
        let mut failed = Vec::new();
        for member in &members {
            if except.is_some_and(|e| e.same_connection(member)) {
                continue;
            }
            let result = match member.role() {
                // A server's frames are unmasked, so every member gets the same bytes. (A close
                // goes through each member's state machine.)
                Role::Server if !matches!(message, Message::Close(_)) => {
                    let frame = encoded.get_or_insert_with(|| encode(message));
                    member.send_encoded(frame)
                }
                _ => member.send(message.clone()),
            };
            match result {
                Ok(()) => report.sent += 1,
                Err(Error::InvalidInput(_)) => {}
                Err(_) => failed.push(member.clone()),
            }
        }
        if !failed.is_empty() {
            let mut members = self.lock();
            members.retain(|m| !failed.iter().any(|f| m.same_connection(f)));
            report.dropped = failed.len();
        }
        report
    }
}

fn encode(message: &Message) -> Vec<u8> {
    let payload = message.as_bytes();
    let header = FrameHeader::new(message.opcode(), payload.len() as u64);
    let mut out = Vec::with_capacity(payload.len() + 10);
    encode_frame(&header, payload, &mut out);
    out
}

/// Named [`Room`]s, created on first join and removed when empty. Clones share the rooms.
#[derive(Clone, Default, Debug)]
pub struct Rooms {
    rooms: Arc<Mutex<HashMap<String, Room>>>,
}

impl Rooms {
    /// No rooms yet.
    pub fn new() -> Rooms {
        Rooms::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Room>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `writer` to room `name`, creating it.
    pub fn join(&self, name: &str, writer: Writer) {
        self.lock().entry(name.to_owned()).or_default().join(writer);
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
