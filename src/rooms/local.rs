//! What one process knows of a room: its local members, their identities, and the last entry
//! delivered to them (plus, for in-memory rooms, the history itself).

use super::offset::EntryId;
use crate::proto::message::Message;
use crate::rooms::Room;
use crate::split::{WeakWriter, Writer};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// One message of a room's history.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: EntryId,
    /// The node it was published on.
    pub node: String,
    /// Text or binary.
    pub message: Message,
    /// The publishing instance's boot id and the [`Writer::id`] of the member that must not
    /// receive it (`except`); `None` when every member gets it.
    pub from: Option<(u32, u64)>,
}

/// A room's local members and the identity each gave at its join, behind a lock of their own
/// that is held for no other lock and no call out: [`Rooms::count`](super::Rooms::count),
/// `names` and `presence` read them without the room's lock, which is held while a hook
/// (`format`) runs, so a hook may ask them.
#[derive(Debug, Default, Clone)]
pub(crate) struct Members(Arc<Mutex<Vec<(WeakWriter, String)>>>);

impl Members {
    fn lock(&self) -> MutexGuard<'_, Vec<(WeakWriter, String)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, writer: &Writer, identity: &str) {
        let mut members = self.lock();
        if !members.iter().any(|(m, _)| m.same_connection(writer)) {
            members.push((writer.downgrade(), identity.to_owned()));
        }
    }

    fn remove(&self, writer: &Writer) {
        self.lock().retain(|(m, _)| !m.same_connection(writer));
    }

    /// Identities of the members still connected; forgets the others.
    pub fn identities(&self) -> Vec<String> {
        let mut members = self.lock();
        members.retain(|(m, _)| {
            m.upgrade()
                .is_some_and(|writer| writer.end_cause().is_none())
        });
        members.iter().map(|(_, id)| id.clone()).collect()
    }
}

/// A room as seen by this process. Guarded by its own mutex: the reader holds it while it hands
/// one entry to the local members, a join holds it while it queues the end of its replay
/// (never blocking, no broker call) and joins, so a member sees each entry once and in order.
#[derive(Debug)]
pub(crate) struct LocalRoom {
    pub room: Room,
    /// Local members and the identity each gave at its handshake (shared with the room's
    /// [`RoomHandle`], which reads them without this room's lock).
    members: Members,
    /// The room's epoch as this process knows it.
    pub epoch: String,
    /// The last entry handed to local members.
    pub last: EntryId,
    /// Members whose replay went past `last` (they came from a node whose reader was ahead of
    /// this one's), with their replay position: each enters `room` just before the first entry
    /// after that position, so it gets nothing twice.
    pub ahead: Vec<(WeakWriter, EntryId)>,
    /// Joins in progress (keeps the room registered while they replay).
    pub joining: usize,
    /// In-memory rooms: the retained history, oldest first, with when each was published.
    pub history: VecDeque<(Entry, Instant)>,
    /// In-memory rooms: the newest id trimmed from the history.
    pub max_trimmed: EntryId,
    /// In-memory rooms: since when the room has had no member (checked lazily).
    pub emptied_at: Option<Instant>,
    /// Taken out of the map (in memory, with its history); a publish or join that got this
    /// handle before goes back to the map.
    pub removed: bool,
}

/// A room as the map of rooms holds it: its state behind the room lock, and its members
/// readable without it.
#[derive(Debug)]
pub(crate) struct RoomHandle {
    state: Mutex<LocalRoom>,
    members: Members,
}

impl RoomHandle {
    pub fn new(room: LocalRoom) -> RoomHandle {
        RoomHandle {
            members: room.members.clone(),
            state: Mutex::new(room),
        }
    }

    /// Identities of the members still connected, without the room lock.
    pub fn identities(&self) -> Vec<String> {
        self.members.identities()
    }
}

pub(crate) type SharedRoom = Arc<RoomHandle>;

impl LocalRoom {
    /// A room with no member yet, whose members may each have `max_backpressure` bytes queued.
    pub fn new(epoch: String, last: EntryId, max_backpressure: usize) -> LocalRoom {
        LocalRoom {
            room: Room::with_max_backpressure(max_backpressure),
            members: Members::default(),
            epoch,
            last,
            ahead: Vec::new(),
            joining: 0,
            history: VecDeque::new(),
            max_trimmed: EntryId::default(),
            emptied_at: None,
            removed: false,
        }
    }

    pub fn add(&mut self, writer: Writer, identity: &str) {
        self.prune();
        self.members.add(&writer, identity);
        self.room.join(writer);
    }

    /// Adds a member whose replay reached `position`: live delivery to it starts after it.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub fn add_at(&mut self, writer: Writer, identity: &str, position: EntryId) {
        if position <= self.last {
            return self.add(writer, identity);
        }
        self.prune();
        self.members.add(&writer, identity);
        self.ahead.push((writer.downgrade(), position));
    }

    /// Lets into `room` the members ahead whose position is before `id` (they need it).
    pub fn admit_before(&mut self, id: EntryId) {
        if self.ahead.is_empty() {
            return;
        }
        let room = &self.room;
        self.ahead.retain(|(member, position)| {
            if *position >= id {
                return true;
            }
            if let Some(writer) = member.upgrade() {
                room.join(writer);
            }
            false
        });
    }

    pub fn remove(&mut self, writer: &Writer) -> bool {
        self.members.remove(writer);
        let before = self.ahead.len();
        self.ahead.retain(|(m, _)| !m.same_connection(writer));
        self.room.leave(writer) || self.ahead.len() != before
    }

    /// Forgets members whose connections have ended.
    pub fn prune(&mut self) {
        self.members.identities();
    }

    /// Identities of the members still connected.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub fn identities(&mut self) -> Vec<String> {
        self.members.identities()
    }

    /// Whether nothing keeps this room registered.
    pub fn idle(&mut self) -> bool {
        self.joining == 0 && self.members.identities().is_empty()
    }
}

pub(crate) fn lock(room: &SharedRoom) -> MutexGuard<'_, LocalRoom> {
    room.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The room's lock if it is free: `None` while another thread holds it (the room is in use).
/// For a thread holding the map of rooms, which must never wait for a room lock (a hook running
/// under a room lock may look a room up in the map).
pub(crate) fn try_lock(room: &SharedRoom) -> Option<MutexGuard<'_, LocalRoom>> {
    match room.state.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}
