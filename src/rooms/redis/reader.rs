//! The reader thread: reads the streams of every room with local members and hands each entry
//! to those members in stream order. After a broken link it resumes from the last entry it
//! delivered; a room whose epoch changed meanwhile (Redis lost its data) gets the gap message
//! and restarts from the new stream's beginning.
//!
//! On a single server one `XREAD BLOCK` covers every room. On a Redis Cluster one command may
//! only name keys of one slot, so rooms are grouped by slot: each pass sends one non-blocking
//! `XREAD` per slot group in one pipeline (one round trip per master), and when none had news,
//! one `XREAD BLOCK` ([`SWEEP_BLOCK_MS`]) on the group that last had some. An entry in another
//! group therefore waits at most one such block window plus one pass; still one thread and one
//! connection per master, whatever the number of rooms. A single-server URL that turns out to
//! be a cluster node holding every slot (it refuses the one read with `CROSSSLOT`) is read the
//! same way.

use super::keys;
use super::link::Link;
use super::publisher::fail;
use super::{as_list, connect, parse_entries, retained, text, trimmed_any};
use crate::proto::message::Message;
use crate::rooms::hub::{Shared, deliver, queue_to};
use crate::rooms::local::{self, LocalRoom, SharedRoom};
use crate::rooms::offset::{EntryId, new_epoch};
use redis::{Cmd, RedisResult, Value};
use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::{Duration, Instant};

/// How long one `XREAD` blocks on a single server: also how long a newly registered room may
/// wait before its stream is read (nothing is lost meanwhile: reading starts at the id taken at
/// registration).
const BLOCK_MS: u64 = 100;
/// How long the blocking `XREAD` of a cluster pass waits when rooms span several slots: the
/// most an entry of another slot group waits for its pass.
const SWEEP_BLOCK_MS: u64 = 50;
/// Entries read per stream per round trip.
const COUNT: usize = 1000;
/// How often every room's epoch and stream are checked while the link stays up, so data lost
/// without a restart (key eviction, `FLUSHALL`) is reported as a gap.
const EPOCH_CHECK: Duration = Duration::from_secs(1);

type Rooms = [(String, SharedRoom)];

pub(super) fn run(shared: Weak<Shared>) {
    let mut connection: Option<Link> = None;
    let mut backoff = Duration::from_millis(50);
    let mut checked = Instant::now();
    // Cluster: the slot group whose stream last had news, blocked on when none has.
    let mut busiest: Option<u16> = None;
    // Read by slot group: on a cluster, and on a server that refused one read over several
    // slots (a cluster node reached through a single-server URL).
    let mut by_slot = false;
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
        let due = connection.is_none() || checked.elapsed() >= EPOCH_CHECK;
        let c = match connection.as_mut() {
            Some(c) => c,
            None => match connect(&broker.target) {
                Ok(c) => connection.insert(c),
                Err(error) => {
                    fail(&broker.health, &hub, &error, &mut backoff);
                    continue;
                }
            },
        };
        let result = if due {
            checked = Instant::now();
            check_epochs(&hub, c, &rooms)
        } else if by_slot || broker.target.is_cluster() {
            read_by_slot(&hub, c, &rooms, &mut busiest)
        } else {
            read(c, &rooms, BLOCK_MS).and_then(|reply| dispatch(&hub, c, &rooms, &reply).map(drop))
        };
        match result {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(error) if error.code() == Some("CROSSSLOT") && !by_slot => by_slot = true,
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
    // Holding the map, never wait for a room lock (a `format` hook may look the map up under
    // one): a room whose lock is held is in use and kept.
    rooms.retain(|_, room| {
        let Some(mut room) = local::try_lock(room) else {
            return true;
        };
        room.removed = room.idle();
        !room.removed
    });
    rooms.iter().map(|(n, r)| (n.clone(), r.clone())).collect()
}

/// Replaces the room's epoch when its stream vanished although entries were read from it (key
/// eviction, `DEL`): once, whichever node notices first. Returns the epoch now in force.
/// KEYS: stream, epoch. ARGV: the epoch this node knows, a new epoch.
const RENEW_EPOCH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
end
return redis.call('GET', KEYS[2])
";

/// After (re)connecting, and every [`EPOCH_CHECK`]: a room whose epoch is not the one we know
/// lost its history (a restart without persistence, `FLUSHALL`, eviction). Its members get the
/// gap message and reading restarts at the new stream's beginning.
fn check_epochs(hub: &Shared, c: &mut Link, rooms: &Rooms) -> RedisResult<()> {
    let mut pipeline = redis::pipe();
    for (name, room) in rooms {
        let known = local::lock(room).epoch.clone();
        // Creates the epoch if it vanished, then renews it if the stream did.
        pipeline
            .cmd("SET")
            .arg(keys::epoch(name))
            .arg(new_epoch())
            .arg("NX");
        pipeline
            .cmd("EVAL")
            .arg(RENEW_EPOCH)
            .arg(2)
            .arg(keys::stream(name))
            .arg(keys::epoch(name))
            .arg(if local::lock(room).last == EntryId::default() {
                // Nothing read yet: a missing stream is an empty room, not a loss.
                String::new()
            } else {
                known
            })
            .arg(new_epoch());
    }
    let answers = c.pipeline(&pipeline)?;
    // Two answers per room: the `SET NX`'s, then the epoch.
    for ((name, room), epoch) in rooms.iter().zip(answers.iter().skip(1).step_by(2)) {
        let Some(epoch) = text(epoch) else {
            continue;
        };
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

/// `XREAD` of the rooms' streams after each one's last delivered entry.
fn xread(rooms: &Rooms, block_ms: Option<u64>) -> Cmd {
    let mut command = redis::cmd("XREAD");
    command.arg("COUNT").arg(COUNT);
    if let Some(block_ms) = block_ms {
        command.arg("BLOCK").arg(block_ms);
    }
    command.arg("STREAMS");
    for (name, _) in rooms {
        command.arg(keys::stream(name));
    }
    for (_, room) in rooms {
        command.arg(local::lock(room).last.to_string());
    }
    command
}

fn read(c: &mut Link, rooms: &Rooms, block_ms: u64) -> RedisResult<Value> {
    xread(rooms, Some(block_ms)).query(c)
}

/// One cluster pass: a non-blocking read of every slot group, then, if none had news, one
/// blocking read of the busiest group.
fn read_by_slot(
    hub: &Shared,
    c: &mut Link,
    rooms: &Rooms,
    busiest: &mut Option<u16>,
) -> RedisResult<()> {
    let mut groups: BTreeMap<u16, Vec<(String, SharedRoom)>> = BTreeMap::new();
    for (name, room) in rooms {
        groups
            .entry(keys::room_slot(name))
            .or_default()
            .push((name.clone(), room.clone()));
    }
    if groups.len() == 1 {
        let group = groups.values().next().map_or(&[][..], Vec::as_slice);
        let reply = read(c, group, BLOCK_MS)?;
        return dispatch(hub, c, group, &reply).map(drop);
    }
    let mut pipeline = redis::pipe();
    for group in groups.values() {
        pipeline.add_command(xread(group, None));
    }
    let replies = c.pipeline(&pipeline)?;
    let mut news = false;
    for ((slot, group), reply) in groups.iter().zip(&replies) {
        if dispatch(hub, c, group, reply)? > 0 {
            news = true;
            *busiest = Some(*slot);
        }
    }
    if news {
        return Ok(());
    }
    let slot = busiest
        .filter(|slot| groups.contains_key(slot))
        .or_else(|| groups.keys().next().copied());
    let Some(group) = slot.and_then(|slot| groups.get(&slot)) else {
        return Ok(());
    };
    let reply = read(c, group, SWEEP_BLOCK_MS)?;
    dispatch(hub, c, group, &reply).map(drop)
}

/// Hands each stream's entries to its room, in order; returns how many entries were read.
fn dispatch(hub: &Shared, c: &mut Link, rooms: &Rooms, reply: &Value) -> RedisResult<usize> {
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
    let mut read = 0;
    for (key, entries) in streams {
        let Some(name) = key.as_deref().and_then(keys::room_of_stream) else {
            continue;
        };
        let Some((_, room)) = rooms.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let entries = parse_entries(entries);
        let Some(first) = entries.first().map(|e| e.id) else {
            continue;
        };
        read += entries.len();
        // Trimming can outrun this reader (a small retention, a long outage): if an entry
        // after the last one delivered is gone, members learn of the gap before the rest.
        let last = local::lock(room).last;
        let lost = if may_have_trimmed_past(hub, entries.len()) {
            if last == EntryId::default() {
                trimmed_any(c, &name)?
            } else {
                !retained(c, &name, last)?
            }
        } else {
            false
        };
        let mut room = local::lock(room);
        if lost && room.last == last {
            eprintln!(
                "syncws rooms: room {name:?} was trimmed past this node's reader; members get a gap"
            );
            announce_trim_gap(&room, &hub.gap, first);
        }
        for entry in entries {
            deliver(hub, &mut room, &entry);
        }
    }
    Ok(read)
}

/// Whether entries after the reader's position may have been trimmed before this read of
/// `read` entries. Count trimming (`MAXLEN ~ N`) leaves at least N entries: a read that reached
/// the stream's end (fewer than [`COUNT`]) with fewer than N entries saw the whole stream after
/// an entry that is still there, so nothing between was trimmed. Age trimming gives no such
/// bound.
fn may_have_trimmed_past(hub: &Shared, read: usize) -> bool {
    could_have_trimmed(hub.retain_age, hub.retain_count, read)
}

fn could_have_trimmed(retain_age: Option<Duration>, retain_count: usize, read: usize) -> bool {
    retain_age.is_some() || read >= COUNT || read >= retain_count
}

/// Tells the room that entries before `first` (the first one read) were trimmed unseen: its
/// members, and those admitted ahead of the reader at a position before `first` (they miss the
/// lost entries too; those further ahead replayed past them).
fn announce_trim_gap(room: &LocalRoom, gap: &Message, first: EntryId) {
    room.room.broadcast(gap, None);
    let bound = room.room.max_backpressure();
    for (member, position) in &room.ahead {
        if *position < first {
            if let Some(writer) = member.upgrade() {
                queue_to(&writer, gap.clone(), bound);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Role, WebSocket, Writer};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (Writer, WebSocket<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let (server, _) = listener.accept().unwrap();
        let (reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
            .split()
            .unwrap();
        std::mem::forget(reader);
        let client = WebSocket::from_stream(client, Role::Client, Config::default());
        (writer, client)
    }

    fn id(ms: u64) -> EntryId {
        EntryId { ms, seq: 0 }
    }

    fn next_text(client: &mut WebSocket<TcpStream>) -> String {
        match client.read().unwrap() {
            Message::Text(text) => text.to_string(),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Members admitted ahead of the reader, at a position before the lost entries, get the
    /// trim gap too; those past them do not.
    #[test]
    fn a_trim_gap_reaches_members_ahead_that_missed_the_lost_entries() {
        let mut room = LocalRoom::new("e".to_owned(), id(10), 1 << 20);
        let (joined, mut joined_client) = pair();
        let (behind, mut behind_client) = pair();
        let (past, mut past_client) = pair();
        room.add(joined, "joined");
        room.add_at(behind, "behind", id(15));
        room.add_at(past.clone(), "past", id(25));
        let gap = Message::text("gap");
        announce_trim_gap(&room, &gap, id(20));
        past.send(Message::text("marker")).unwrap();
        assert_eq!(next_text(&mut joined_client), "gap");
        assert_eq!(next_text(&mut behind_client), "gap");
        assert_eq!(next_text(&mut past_client), "marker");
    }

    /// Count trimming cannot have passed a read that reached the stream's end with fewer
    /// entries than the retention count; age trimming always may have.
    #[test]
    fn the_trim_check_is_skipped_only_when_trimming_cannot_have_passed_the_reader() {
        let (read_all, retained) = (10, 100);
        assert!(!could_have_trimmed(None, retained, read_all));
        assert!(could_have_trimmed(None, retained, retained));
        assert!(could_have_trimmed(None, 5_000, COUNT));
        assert!(could_have_trimmed(
            Some(Duration::from_secs(60)),
            retained,
            read_all
        ));
    }
}
