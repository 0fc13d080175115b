//! In-process rooms: the history is a bounded queue per room, the order is the room lock's.

use super::local::{self, Entry, LocalRoom, SharedRoom};
use super::offset::{EntryId, Offset, new_epoch};
use super::{Joined, Shared, deliver, formatted, queue_to, replay_one};
use crate::split::Writer;
use std::sync::{Arc, Mutex};

fn room(shared: &Shared, name: &str) -> SharedRoom {
    shared
        .rooms()
        .entry(name.to_owned())
        .or_insert_with(|| Arc::new(Mutex::new(LocalRoom::new(new_epoch(), EntryId::default()))))
        .clone()
}

/// Whether the history after `since` is incomplete: another epoch, or an entry after `since`
/// was trimmed.
pub(super) fn is_gap(room: &LocalRoom, since: &Offset) -> bool {
    since.epoch != room.epoch || since.id < room.max_trimmed
}

pub(super) fn join(
    shared: &Shared,
    name: &str,
    writer: Writer,
    identity: &str,
    since: Option<&Offset>,
) -> Joined {
    let handle = room(shared, name);
    let mut joined = Joined::default();
    let Some(since) = since else {
        local::lock(&handle).add(writer, identity);
        return joined;
    };
    // The retained history is copied under the lock and written without it, so publishes go on
    // while a slow joiner gets its replay; what was published meanwhile is queued under the lock
    // (never blocking), then the member joins, so it sees every entry once.
    let (epoch, backlog) = {
        let room = local::lock(&handle);
        joined.gap = is_gap(&room, since);
        let after = if since.epoch == room.epoch {
            since.id
        } else {
            EntryId::default()
        };
        let backlog: Vec<Entry> = room
            .history
            .iter()
            .filter(|e| e.id > after)
            .cloned()
            .collect();
        (room.epoch.clone(), backlog)
    };
    if joined.gap {
        let _ = writer.send(shared.gap.clone());
    }
    let mut after = if since.epoch == epoch {
        since.id
    } else {
        EntryId::default()
    };
    for entry in &backlog {
        replay_one(shared, &epoch, &writer, entry);
        after = entry.id;
    }
    joined.replayed = backlog.len();
    // What was published during the replay goes through the member's bounded room queue: a
    // joiner that stops reading never holds the room lock, so publishes never wait for it.
    let mut room = local::lock(&handle);
    let bound = room.room.max_backpressure();
    let mut open = true;
    if !joined.gap && room.max_trimmed > after {
        // More was published during the replay than the room retains.
        open = queue_to(&writer, shared.gap.clone(), bound);
        joined.gap = true;
    }
    for entry in room.history.iter().filter(|e| e.id > after) {
        if !open {
            break;
        }
        open = queue_to(&writer, formatted(shared, &epoch, entry), bound);
        joined.replayed += usize::from(open);
    }
    if open {
        room.add(writer, identity);
    }
    joined
}

pub(super) fn publish(shared: &Shared, name: &str, text: &str) {
    let room = room(shared, name);
    let mut room = local::lock(&room);
    let entry = Entry {
        id: EntryId {
            ms: 0,
            seq: room.last.seq + 1,
        },
        node: shared.node.clone(),
        text: text.to_owned(),
    };
    room.history.push_back(entry.clone());
    while room.history.len() > shared.retain_count {
        if let Some(old) = room.history.pop_front() {
            room.max_trimmed = old.id;
        }
    }
    deliver(shared, &mut room, &entry);
}

#[cfg(test)]
mod tests {
    use super::super::HubBuilder;
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry {
            id: EntryId { ms: 0, seq },
            node: "n".into(),
            text: String::new(),
        }
    }

    #[test]
    fn trimming_and_a_new_epoch_are_gaps_and_nothing_else_is() {
        let hub = HubBuilder::new("n").retain_count(2).in_memory();
        for text in ["a", "b", "c"] {
            hub.publish("r", text).unwrap();
        }
        let room = hub.shared.room("r").unwrap();
        let room = local::lock(&room);
        assert_eq!(
            room.history.iter().map(|e| e.id.seq).collect::<Vec<_>>(),
            [2, 3]
        );
        let at = |seq| Offset {
            epoch: room.epoch.clone(),
            id: entry(seq).id,
        };
        assert!(is_gap(&room, &at(0)), "entry 1 was trimmed");
        assert!(!is_gap(&room, &at(1)), "2 and 3 are retained");
        assert!(!is_gap(&room, &at(3)));
        assert!(is_gap(
            &room,
            &Offset {
                epoch: "other".into(),
                id: entry(3).id
            }
        ));
    }
}
