//! The reader thread: one `XREAD BLOCK` over the streams of every room with local members,
//! each entry handed to those members in stream order. After a broken link it resumes from the
//! last entry it delivered; a room whose epoch changed meanwhile (Redis lost its data) gets the
//! gap message and restarts from the new stream's beginning.

use super::keys;
use super::publisher::fail;
use super::{as_list, connect, ensure_epoch, parse_entries, retained, text, trimmed_any};
use crate::rooms::hub::{Shared, deliver};
use crate::rooms::local::{self, SharedRoom};
use crate::rooms::offset::EntryId;
use redis::{Connection, RedisResult, Value};
use std::sync::Weak;
use std::time::Duration;

/// How long one `XREAD` blocks: also how long a newly registered room may wait before its
/// stream is read (nothing is lost meanwhile: reading starts at the id taken at registration).
const BLOCK_MS: u64 = 100;
/// Entries read per stream per round trip.
const COUNT: usize = 1000;

pub(super) fn run(shared: Weak<Shared>) {
    let mut connection: Option<Connection> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(hub) = Shared::live(&shared) else {
            return;
        };
        let crate::rooms::hub::Backend::Redis(broker) = &hub.backend else {
            return;
        };
        let rooms = active_rooms(&hub);
        if rooms.is_empty() {
            drop(hub);
            std::thread::sleep(Duration::from_millis(BLOCK_MS));
            continue;
        }
        if connection.is_none() {
            match connect(&broker.client)
                .and_then(|mut c| check_epochs(&hub, &mut c, &rooms).map(|()| c))
            {
                Ok(c) => connection = Some(c),
                Err(error) => {
                    fail(&broker.health, &hub, &error, &mut backoff);
                    continue;
                }
            }
        }
        let Some(c) = connection.as_mut() else {
            continue;
        };
        match read(c, &rooms) {
            Ok(reply) => {
                backoff = Duration::from_millis(50);
                if let Err(error) = dispatch(&hub, c, &rooms, &reply) {
                    connection = None;
                    fail(&broker.health, &hub, &error, &mut backoff);
                }
            }
            Err(error) => {
                connection = None;
                fail(&broker.health, &hub, &error, &mut backoff);
            }
        }
    }
}

/// The rooms to read, forgetting those nobody here is in any more.
fn active_rooms(hub: &Shared) -> Vec<(String, SharedRoom)> {
    let mut rooms = hub.rooms();
    rooms.retain(|_, room| !local::lock(room).idle());
    rooms.iter().map(|(n, r)| (n.clone(), r.clone())).collect()
}

/// After (re)connecting: a room whose epoch is not the one we know lost its history.
fn check_epochs(
    hub: &Shared,
    c: &mut Connection,
    rooms: &[(String, SharedRoom)],
) -> RedisResult<()> {
    for (name, room) in rooms {
        let epoch = ensure_epoch(c, name)?;
        let mut room = local::lock(room);
        if room.epoch != epoch {
            eprintln!(
                "syncws rooms: room {name:?} has a new epoch (Redis lost its data); members get a gap"
            );
            room.epoch = epoch;
            room.last = EntryId::default();
            // Positions of the old epoch mean nothing now.
            room.admit_before(EntryId {
                ms: u64::MAX,
                seq: u64::MAX,
            });
            room.room.broadcast(&hub.gap, None);
        }
    }
    Ok(())
}

fn read(c: &mut Connection, rooms: &[(String, SharedRoom)]) -> RedisResult<Value> {
    let mut command = redis::cmd("XREAD");
    command
        .arg("COUNT")
        .arg(COUNT)
        .arg("BLOCK")
        .arg(BLOCK_MS)
        .arg("STREAMS");
    for (name, _) in rooms {
        command.arg(keys::stream(name));
    }
    for (_, room) in rooms {
        command.arg(local::lock(room).last.to_string());
    }
    command.query(c)
}

/// Hands each stream's entries to its room, in order.
fn dispatch(
    hub: &Shared,
    c: &mut Connection,
    rooms: &[(String, SharedRoom)],
    reply: &Value,
) -> RedisResult<()> {
    let streams: Vec<(Option<String>, &Value)> = match reply {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), v)).collect(),
        _ => as_list(reply)
            .iter()
            .filter_map(|s| match as_list(s) {
                [key, entries] => Some((text(key), entries)),
                _ => None,
            })
            .collect(),
    };
    for (key, entries) in streams {
        let Some(name) = key.as_deref().and_then(keys::room_of_stream) else {
            continue;
        };
        let Some((_, room)) = rooms.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let entries = parse_entries(entries);
        if entries.is_empty() {
            continue;
        }
        // Trimming can outrun this reader (a small retention, a long outage): if an entry
        // after the last one delivered is gone, members learn of the gap before the rest.
        let last = local::lock(room).last;
        let lost = if last == EntryId::default() {
            trimmed_any(c, &name)
        } else {
            retained(c, &name, last).map(|kept| !kept)
        };
        let mut room = local::lock(room);
        match lost {
            Ok(true) if room.last == last => {
                eprintln!(
                    "syncws rooms: room {name:?} was trimmed past this node's reader; members get a gap"
                );
                room.room.broadcast(&hub.gap, None);
            }
            Ok(_) => {}
            Err(error) => return Err(error),
        }
        for entry in entries {
            deliver(hub, &mut room, &entry);
        }
    }
    Ok(())
}
