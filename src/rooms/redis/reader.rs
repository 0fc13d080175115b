//! The reader thread: reads the streams of every room with local members and hands each entry
//! to those members in stream order. After a broken link it resumes from the last entry it
//! delivered. Each entry carries the epoch it was appended under (`e`): an entry of another
//! epoch than the room's (Redis lost its data and a publish started a new one) first gives the
//! members the gap message, then is delivered under its epoch; nothing delivered is read again.
//! A periodic check also reports a loss while nobody publishes.
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
use super::{as_list, connect, parse_entries_with_epochs, retained, text, trimmed_any};
use crate::proto::message::Message;
use crate::rooms::hub::{Shared, deliver, queue_to};
use crate::rooms::local::{self, LocalRoom, SharedRoom};
use crate::rooms::offset::EntryId;
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
    // Whether to send the epoch check script itself rather than its SHA1: at first, and after
    // Redis forgot it.
    let mut send_check_script = true;
    let mut check_again = false;
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
        let due = connection.is_none() || check_again || checked.elapsed() >= EPOCH_CHECK;
        check_again = false;
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
            check_epochs(&hub, c, &rooms, send_check_script).inspect(|()| send_check_script = false)
        } else if by_slot || broker.target.is_cluster() {
            read_by_slot(&hub, c, &rooms, &mut busiest)
        } else {
            read(c, &rooms, BLOCK_MS).and_then(|reply| dispatch(&hub, c, &rooms, &reply).map(drop))
        };
        match result {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(error) if error.code() == Some("CROSSSLOT") && !by_slot => by_slot = true,
            Err(error) if error.code() == Some("NOSCRIPT") => {
                send_check_script = true;
                check_again = true;
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

/// The room's epoch as Redis has it, or nil when the room has no history there. An epoch key
/// lost alone (eviction, `DEL`) is restored from the stream's newest entry (its `e`), with the
/// stream's expiry: no history was lost, so the epoch stays. A stream lost alone although this
/// node read entries from it (`ARGV[2]` is 1) takes its epoch with it: the history is gone,
/// and the next publish starts a new epoch. Never invents an epoch: only a publish does.
/// KEYS: stream, epoch. ARGV: the epoch this node knows, whether it read entries.
const CHECK_EPOCH: &str = r"
local epoch = redis.call('GET', KEYS[2])
if epoch then
  if ARGV[2] == '1' and epoch == ARGV[1] and redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('DEL', KEYS[2])
    return false
  end
  return epoch
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if not newest then return false end
local fields = newest[2]
for i = 1, #fields - 1, 2 do
  if fields[i] == 'e' then
    redis.call('SET', KEYS[2], fields[i + 1])
    local ttl = redis.call('PTTL', KEYS[1])
    if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
    return fields[i + 1]
  end
end
return false
";

/// After (re)connecting, and every [`EPOCH_CHECK`]: a room whose epoch is not the one we know
/// lost its history (a restart without persistence, `FLUSHALL`, eviction, expiry) while no
/// entry of a new epoch has reached this node yet (an entry of it would have switched the
/// room, see [`switch_epoch`]). Its members get the gap message; reading restarts at the
/// stream's beginning, which holds only entries of the new epoch, none delivered yet. `script`:
/// send [`CHECK_EPOCH`] itself rather than its SHA1.
fn check_epochs(hub: &Shared, c: &mut Link, rooms: &Rooms, script: bool) -> RedisResult<()> {
    let sha = redis::Script::new(CHECK_EPOCH).get_hash().to_owned();
    let mut pipeline = redis::pipe();
    for (name, room) in rooms {
        let (known, read) = {
            let room = local::lock(room);
            (room.epoch.clone(), room.last != EntryId::default())
        };
        if script {
            pipeline.cmd("EVAL").arg(CHECK_EPOCH);
        } else {
            pipeline.cmd("EVALSHA").arg(&sha);
        }
        pipeline
            .arg(2)
            .arg(keys::stream(name))
            .arg(keys::epoch(name))
            .arg(known)
            .arg(u8::from(read));
    }
    let answers = c.pipeline(&pipeline)?;
    for ((name, room), epoch) in rooms.iter().zip(&answers) {
        let epoch = text(epoch).unwrap_or_default();
        let mut room = local::lock(room);
        if room.epoch == epoch {
            continue;
        }
        if room.epoch.is_empty() {
            // No history known here yet: the room's first epoch, nothing missed.
            room.epoch = epoch;
            continue;
        }
        let delivered = room.last != EntryId::default();
        room.epoch = epoch;
        restart(&mut room);
        if delivered {
            eprintln!("syncws rooms: room {name:?} lost its history in Redis; members get a gap");
            room.room.broadcast(&hub.gap, None);
        }
    }
    Ok(())
}

/// Reads the room from its stream's beginning: positions of another epoch mean nothing.
fn restart(room: &mut LocalRoom) {
    room.last = EntryId::default();
    room.admit_before(EntryId {
        ms: u64::MAX,
        seq: u64::MAX,
    });
}

/// Before an entry appended under `epoch` is delivered: an epoch other than the room's means
/// Redis lost the room's history since the last entry (the first append after the loss started
/// a new epoch), so members get the gap message first, and members ahead of the reader (their
/// positions are of the old epoch) join live. A room that knows no epoch yet adopts it
/// silently: no history was known to lose. Entries written before entries carried their epoch
/// (`None`) change nothing.
fn switch_epoch(gap: &Message, name: &str, room: &mut LocalRoom, epoch: Option<String>) {
    let Some(epoch) = epoch else {
        return;
    };
    if room.epoch == epoch {
        return;
    }
    if !room.epoch.is_empty() {
        eprintln!(
            "syncws rooms: room {name:?} has a new epoch (Redis lost its data); members get a gap"
        );
        room.admit_before(EntryId {
            ms: u64::MAX,
            seq: u64::MAX,
        });
        room.room.broadcast(gap, None);
    }
    room.epoch = epoch;
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
        let entries = parse_entries_with_epochs(entries);
        let Some((first, first_epoch)) = entries.first().map(|(e, epoch)| (e.id, epoch.clone()))
        else {
            continue;
        };
        read += entries.len();
        // Trimming can outrun this reader (a small retention, a long outage): if an entry
        // after the last one delivered is gone, members learn of the gap before the rest. (A
        // first entry of a new epoch brings its own gap.)
        let (last, known) = {
            let room = local::lock(room);
            (room.last, room.epoch.clone())
        };
        let new_epoch = first_epoch.is_some_and(|e| !known.is_empty() && e != known);
        let lost = if !new_epoch && may_have_trimmed_past(hub, entries.len()) {
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
        for (entry, epoch) in entries {
            switch_epoch(&hub.gap, &name, &mut room, epoch);
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

    /// An entry of another epoch gives the members (and those ahead) the gap before it; the
    /// first epoch of a room that knew none, and entries without an epoch, give none.
    #[test]
    fn an_entry_of_a_new_epoch_brings_the_gap_once() {
        let gap = Message::text("gap");
        let mut room = LocalRoom::new("E".to_owned(), id(10), 1 << 20);
        let (joined, mut joined_client) = pair();
        let (ahead, mut ahead_client) = pair();
        room.add(joined.clone(), "joined");
        room.add_at(ahead, "ahead", id(50));
        switch_epoch(&gap, "r", &mut room, None);
        switch_epoch(&gap, "r", &mut room, Some("E".to_owned()));
        assert_eq!(room.epoch, "E");
        switch_epoch(&gap, "r", &mut room, Some("F".to_owned()));
        switch_epoch(&gap, "r", &mut room, Some("F".to_owned()));
        assert_eq!(room.epoch, "F");
        assert!(
            room.ahead.is_empty(),
            "positions of the old epoch mean nothing"
        );
        // Nothing is read again: the position stays.
        assert_eq!(room.last, id(10));
        room.room.broadcast(&Message::text("marker"), None);
        assert_eq!(next_text(&mut joined_client), "gap");
        assert_eq!(next_text(&mut joined_client), "marker");
        assert_eq!(next_text(&mut ahead_client), "gap");
        assert_eq!(next_text(&mut ahead_client), "marker");

        let mut fresh = LocalRoom::new(String::new(), EntryId::default(), 1 << 20);
        let (member, mut member_client) = pair();
        fresh.add(member, "m");
        switch_epoch(&gap, "r", &mut fresh, Some("G".to_owned()));
        assert_eq!(fresh.epoch, "G");
        fresh.room.broadcast(&Message::text("marker"), None);
        assert_eq!(next_text(&mut member_client), "marker");
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
