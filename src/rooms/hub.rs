//! The state every clone of a [`Rooms`](super::Rooms) shares, and the steps both engines take to
//! hand an entry of a room's history to this process's members.

#[cfg(feature = "redis")]
use super::redis as broker;

use super::local::{self, LocalRoom, RoomHandle, SharedRoom};
use super::offset::Offset;
use crate::proto::message::Message;
use crate::rooms::room::Broadcast;
use crate::split::{Enqueued, Frame, Writer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub(super) use super::delivery::{Delivery, Joined};
pub(super) use super::error::BrokerStatus;
// The broker's modules import these from here too.
#[cfg(feature = "redis")]
pub(super) use super::{PRESENCE_TTL, delivery::Presence, error::RoomsError};

pub(super) type Format = dyn Fn(&Delivery) -> Message + Send + Sync;
pub(super) type OnOutage = dyn Fn(&BrokerStatus) + Send + Sync;

pub(super) struct Shared {
    /// Set when the last [`Rooms`](super::Rooms) clone is dropped.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) stopped: Arc<AtomicBool>,
    pub(super) node: String,
    /// Tells this instance's publishes from other processes' (and other instances') when an
    /// entry comes back: `except` is applied only to entries carrying it.
    pub(super) boot: u32,
    pub(super) rooms: Mutex<HashMap<String, SharedRoom>>,
    pub(super) format: Arc<Format>,
    pub(super) gap: Message,
    pub(super) retain_count: usize,
    pub(super) retain_age: Option<Duration>,
    /// The bound of each member's queue in every local room.
    pub(super) max_backpressure: usize,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) backlog: (usize, usize),
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) on_outage: Arc<OnOutage>,
    /// In-memory rooms: at most this many emptied rooms are kept, each for at most `idle_for`.
    pub(super) idle_max: usize,
    pub(super) idle_for: Duration,
    /// In-memory rooms: when the emptied rooms were last looked for, and the map's size that
    /// triggers the next look.
    pub(super) sweep: Mutex<(Instant, usize)>,
    pub(super) backend: Backend,
}

pub(super) enum Backend {
    Memory,
    #[cfg(feature = "redis")]
    Redis(Box<broker::Broker>),
}

impl Shared {
    pub(super) fn rooms(&self) -> MutexGuard<'_, HashMap<String, SharedRoom>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn room(&self, name: &str) -> Option<SharedRoom> {
        self.rooms().get(name).cloned()
    }

    /// A new local room with this instance's member bound.
    pub(super) fn local_room(&self, epoch: String, last: super::offset::EntryId) -> SharedRoom {
        Arc::new(RoomHandle::new(LocalRoom::new(
            epoch,
            last,
            self.max_backpressure,
        )))
    }

    /// The `from` an entry published with `except` carries.
    pub(super) fn from(&self, except: Option<&Writer>) -> Option<(u32, u64)> {
        except.map(|writer| (self.boot, writer.id()))
    }

    /// This instance's threads' view of it: `None` once every clone is gone.
    #[cfg(feature = "redis")]
    pub(super) fn live(weak: &std::sync::Weak<Shared>) -> Option<Arc<Shared>> {
        weak.upgrade()
            .filter(|hub| !hub.stopped.load(Ordering::SeqCst))
    }
}

/// Held by every clone of a [`Rooms`](super::Rooms): when the last one goes, the broker's
/// threads stop (they hold the state only weakly, but several of them could otherwise keep
/// upgrading it in turn).
pub(super) struct StopOnDrop(pub(super) Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Hands `entry` to the room's local members, once: entries at or before the last one delivered
/// are skipped, and so is a member whose own replay already reached `entry`. The member the
/// entry names as its sender (`except`, when published by this instance) is skipped too.
pub(super) fn deliver(shared: &Shared, room: &mut LocalRoom, entry: &local::Entry) -> Broadcast {
    if entry.id <= room.last {
        return Broadcast::default();
    }
    room.last = entry.id;
    room.admit_before(entry.id);
    let message = formatted(shared, &room.epoch, entry);
    let except = entry
        .from
        .filter(|(boot, _)| *boot == shared.boot)
        .map(|(_, writer)| writer);
    room.room.deliver(&message, except)
}

/// The frame members receive for `entry`.
pub(super) fn formatted(shared: &Shared, epoch: &str, entry: &local::Entry) -> Message {
    let delivery = Delivery {
        offset: Offset {
            epoch: epoch.to_owned(),
            id: entry.id,
        },
        node: entry.node.clone(),
        message: entry.message.clone(),
    };
    (shared.format)(&delivery)
}

/// Sends one replayed entry to a joining member (blocking: only without a room lock).
pub(super) fn replay_one(shared: &Shared, epoch: &str, writer: &Writer, entry: &local::Entry) {
    let _ = writer.send(formatted(shared, epoch, entry));
}

/// Hands `message` to a joining member through its bounded room queue, as live fan-out does,
/// never waiting for its socket (safe under a room lock); `false` when the member went over
/// `bound` and is being closed with 1008 (policy violation, RFC 6455 §7.4.1).
pub(super) fn queue_to(writer: &Writer, message: Message, bound: usize) -> bool {
    !matches!(
        writer.enqueue(Frame::Message(message), bound),
        Enqueued::Dropped
    )
}
