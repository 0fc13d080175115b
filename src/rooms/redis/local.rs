//! What one process knows of a room: its local members, their identities, and the last entry
//! delivered to them (plus, for in-memory rooms, the history itself).

use super::offset::EntryId;
use crate::rooms::Room;
use crate::split::{WeakWriter, Writer};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// One message of a room's history.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: EntryId,
    pub node: String,
    pub text: String,
}

/// A room as seen by this process. Guarded by its own mutex: the reader holds it while it hands
/// one entry to the local members, a join holds it while it closes the gap between its replay
/// and live delivery, so a member sees each entry once and in order.
#[derive(Debug)]
pub(crate) struct LocalRoom {
    pub room: Room,
    /// Local members and the identity each gave at its handshake.
    pub members: Vec<(WeakWriter, String)>,
    /// The room's epoch as this process knows it.
    pub epoch: String,
    /// The last entry handed to local members.
    pub last: EntryId,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    /// Joins in progress (keeps the room registered while they replay).
    pub joining: usize,
    /// In-memory rooms: the retained history, oldest first.
    pub history: VecDeque<Entry>,
    /// In-memory rooms: the newest id trimmed from the history.
    pub max_trimmed: EntryId,
}

pub(crate) type SharedRoom = Arc<Mutex<LocalRoom>>;

impl LocalRoom {
    pub fn new(epoch: String, last: EntryId) -> LocalRoom {
        LocalRoom {
            room: Room::new(),
            members: Vec::new(),
            epoch,
            last,
            joining: 0,
            history: VecDeque::new(),
            max_trimmed: EntryId::default(),
        }
    }

    pub fn add(&mut self, writer: Writer, identity: &str) {
        self.prune();
        if !self.members.iter().any(|(m, _)| m.same_connection(&writer)) {
            self.members.push((writer.downgrade(), identity.to_owned()));
        }
        self.room.join(writer);
    }

    pub fn remove(&mut self, writer: &Writer) -> bool {
        self.members.retain(|(m, _)| !m.same_connection(writer));
        self.room.leave(writer)
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

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    /// Whether nothing keeps this room registered.
    pub fn idle(&mut self) -> bool {
        self.prune();
        self.members.is_empty() && self.joining == 0
    }
}

pub(crate) fn lock(room: &SharedRoom) -> MutexGuard<'_, LocalRoom> {
    room.lock().unwrap_or_else(|e| e.into_inner())
}
