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

/// A room as seen by this process. Guarded by its own mutex: the reader holds it while it hands
/// one entry to the local members, a join holds it while it queues the end of its replay
/// (never blocking, no broker call) and joins, so a member sees each entry once and in order.
#[derive(Debug)]
pub(crate) struct LocalRoom {
    pub room: Room,
    /// Local members and the identity each gave at its handshake.
    pub members: Vec<(WeakWriter, String)>,
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
    /// In-memory rooms: taken out of the map (with its history); a publish or join that got
    /// this handle before goes back to the map.
    pub removed: bool,
}

pub(crate) type SharedRoom = Arc<Mutex<LocalRoom>>;

impl LocalRoom {
    /// A room with no member yet, whose members may each have `max_backpressure` bytes queued.
    pub fn new(epoch: String, last: EntryId, max_backpressure: usize) -> LocalRoom {
        LocalRoom {
            room: Room::with_max_backpressure(max_backpressure),
            members: Vec::new(),
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
        if !self.members.iter().any(|(m, _)| m.same_connection(&writer)) {
            self.members.push((writer.downgrade(), identity.to_owned()));
        }
        self.room.join(writer);
    }

    /// Adds a member whose replay reached `position`: live delivery to it starts after it.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub fn add_at(&mut self, writer: Writer, identity: &str, position: EntryId) {
        if position <= self.last {
            return self.add(writer, identity);
        }
        self.prune();
        if !self.members.iter().any(|(m, _)| m.same_connection(&writer)) {
            self.members.push((writer.downgrade(), identity.to_owned()));
        }
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
        self.members.retain(|(m, _)| !m.same_connection(writer));
        let before = self.ahead.len();
        self.ahead.retain(|(m, _)| !m.same_connection(writer));
        self.room.leave(writer) || self.ahead.len() != before
    }

    /// Forgets members whose connections have ended.
    pub fn prune(&mut self) {
        self.members.retain(|(m, _)| {
            m.upgrade()
                .is_some_and(|writer| writer.end_cause().is_none())
        });
    }

    /// Identities of the members still connected.
    pub fn identities(&mut self) -> Vec<String> {
        self.prune();
        self.members.iter().map(|(_, id)| id.clone()).collect()
    }

    /// Whether nothing keeps this room registered.
    pub fn idle(&mut self) -> bool {
        self.prune();
        self.members.is_empty() && self.joining == 0
    }
}

pub(crate) fn lock(room: &SharedRoom) -> MutexGuard<'_, LocalRoom> {
    room.lock().unwrap_or_else(|e| e.into_inner())
}
