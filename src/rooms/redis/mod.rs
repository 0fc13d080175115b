//! The Redis side of [`Rooms`](super::Rooms): connections, joins with replay, presence queries,
//! and the outage state shared by the publisher, reader and heartbeat threads.

mod keys;
mod link;
mod presence;
mod publisher;
mod reader;

use super::hub::{BrokerStatus, Joined, Presence, RoomsError, Shared, formatted, queue_to};
use super::local::{self, Entry, SharedRoom};
use super::offset::{EntryId, Offset};
use crate::proto::message::Message;
use crate::split::Writer;
use link::{Link, Pool, Target};
use publisher::Queue;
use redis::{RedisResult, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

/// Bound of each call to Redis (connect, read, write): a broker that stops answering fails the
/// call instead of holding a thread.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Entries fetched per `XRANGE` during a replay.
const REPLAY_CHUNK: usize = 1000;
/// How many times a replay that reached the stream's end may find this node's reader already
/// past it and read on, before the member joins live with a gap instead (the stream outruns the
/// replay).
const MAX_CATCH_UPS: usize = 16;

pub(super) fn connect(target: &Target) -> RedisResult<Link> {
    target.connect(CALL_TIMEOUT)
}

/// Whether the broker is reachable, with one log line and one callback per change.
#[derive(Default)]
pub(super) struct Health {
    down: AtomicBool,
}

impl Health {
    pub fn down(&self, shared: &Shared, error: &dyn std::fmt::Display) {
        if !self.down.swap(true, Ordering::SeqCst) {
            eprintln!("syncws rooms: Redis unreachable ({error}); holding publishes");
            (shared.on_outage)(&BrokerStatus::Down(error.to_string()));
        }
    }

    pub fn up(&self, shared: &Shared) {
        if self.down.swap(false, Ordering::SeqCst) {
            eprintln!("syncws rooms: Redis is back; flushing held publishes in order");
            (shared.on_outage)(&BrokerStatus::Up);
        }
    }
}

pub(in crate::rooms) struct Broker {
    pub target: Target,
    control: Pool,
    pub queue: Arc<Queue>,
    pub health: Arc<Health>,
    /// Wakes the heartbeat thread early, so a join shows in other nodes' presence at once.
    pub presence_changed: (Mutex<bool>, Condvar),
}

impl Broker {
    /// A broker on the single Redis server at `url`; fails only on an invalid URL.
    pub(in crate::rooms) fn single(url: &str) -> Result<Broker, String> {
        Target::single(url).map(Broker::new)
    }

    /// A broker on the Redis Cluster reached through any of `urls`. Fails on an invalid URL or
    /// an empty list; unreachable nodes are not an error here (publishes are held meanwhile).
    pub(in crate::rooms) fn cluster(urls: &[&str]) -> Result<Broker, String> {
        Target::cluster(urls, CALL_TIMEOUT).map(Broker::new)
    }

    fn new(target: Target) -> Broker {
        Broker {
            target,
            control: Pool::default(),
            queue: Arc::new(Queue::default()),
            health: Arc::new(Health::default()),
            presence_changed: (Mutex::new(false), Condvar::new()),
        }
    }

    /// Starts the publisher, reader and heartbeat threads. They hold the hub weakly and stop
    /// once every clone of it is gone.
    pub fn start(&self, shared: &Arc<Shared>) {
        let weak = Arc::downgrade(shared);
        spawn("syncws-rooms-publish", weak.clone(), publisher::run);
        spawn("syncws-rooms-read", weak.clone(), reader::run);
        spawn("syncws-rooms-presence", weak, presence::run);
    }

    /// Runs `call` on a control connection of the pool (each call bounded by
    /// [`CALL_TIMEOUT`], no lock held meanwhile, at most [`link::MAX_CONTROL_LINKS`] at once).
    fn control<T>(&self, call: impl FnMut(&mut Link) -> RedisResult<T>) -> Result<T, RoomsError> {
        self.control.call(&self.target, CALL_TIMEOUT, call)
    }

    /// Asks the heartbeat thread to write this node's presence now.
    pub fn presence_changed(&self) {
        let (flag, wake) = &self.presence_changed;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_one();
    }

    /// Waits up to `timeout` for a presence change.
    pub fn wait_presence_change(&self, timeout: Duration) {
        let (flag, wake) = &self.presence_changed;
        let guard = flag.lock().unwrap_or_else(|e| e.into_inner());
        let (mut guard, _) = wake
            .wait_timeout_while(guard, timeout, |changed| !*changed)
            .unwrap_or_else(|e| e.into_inner());
        *guard = false;
    }

    pub fn publish(
        &self,
        shared: &Shared,
        name: &str,
        message: &Message,
        from: Option<(u32, u64)>,
    ) -> Result<(), RoomsError> {
        self.queue.push(shared, name, message, from)
    }

    pub fn backlog(&self) -> usize {
        self.queue.len()
    }

    /// The local room `name`, registered with its epoch and the stream's last id (live delivery
    /// starts after it), with one more join in progress.
    fn register(&self, shared: &Shared, name: &str) -> Result<SharedRoom, RoomsError> {
        // The map is never held while waiting for a room lock (a `format` hook may look the
        // map up under one); a room the reader dropped meanwhile is registered again.
        loop {
            let room = match shared.room(name) {
                Some(room) => room,
                None => {
                    // Read only: a join creates no key (room names come from clients). A room
                    // without an epoch has no history yet: its local epoch is "" until the
                    // reader adopts the first entry's.
                    let (epoch, last) = self.control(|c| {
                        let epoch = current_epoch(c, name)?.unwrap_or_default();
                        Ok((epoch, last_id(c, name)?))
                    })?;
                    shared
                        .rooms()
                        .entry(name.to_owned())
                        .or_insert_with(|| shared.local_room(epoch, last))
                        .clone()
                }
            };
            let mut state = local::lock(&room);
            if state.removed {
                continue;
            }
            state.joining += 1;
            drop(state);
            return Ok(room);
        }
    }

    pub fn join(
        &self,
        shared: &Shared,
        name: &str,
        writer: Writer,
        identity: &str,
        since: Option<&Offset>,
    ) -> Result<Joined, RoomsError> {
        let room = self.register(shared, name)?;
        let result = self.join_registered(shared, name, &room, writer, identity, since);
        local::lock(&room).joining -= 1;
        result
    }

    fn join_registered(
        &self,
        shared: &Shared,
        name: &str,
        room_handle: &SharedRoom,
        writer: Writer,
        identity: &str,
        since: Option<&Offset>,
    ) -> Result<Joined, RoomsError> {
        let mut joined = Joined::default();
        let Some(since) = since else {
            local::lock(room_handle).add(writer, identity);
            self.presence_changed();
            return Ok(joined);
        };
        let known = local::lock(room_handle).epoch.clone();
        // A room this node knows no epoch of yet ("": no history when it was registered) takes
        // Redis's word now: history may have begun since. An offset of an epoch Redis does not
        // have (none at all, or another) is a gap.
        let (epoch, kept, last) = self.control(|c| {
            let epoch = if known.is_empty() {
                current_epoch(c, name)?.unwrap_or_default()
            } else {
                known.clone()
            };
            let kept = since.epoch == epoch && retained(c, name, since.id)?;
            let last = if kept { since.id } else { last_id(c, name)? };
            Ok((epoch, kept, last))
        })?;
        let same_epoch = since.epoch == epoch;
        joined.gap = !kept;
        if joined.gap {
            let _ = writer.send(shared.gap.clone());
        }
        if same_epoch && since.id > last {
            // Past the stream's end (a stale or forged offset): nothing to replay, and no entry
            // at that position for the reader to reach. The member joins live where the reader
            // is, told of the gap above.
            local::lock(room_handle).add(writer, identity);
            self.presence_changed();
            return Ok(joined);
        }
        let mut after = if same_epoch {
            since.id
        } else {
            EntryId::default()
        };
        // The replay reads and formats without the room lock, chunk after chunk. Once a chunk
        // reaches the stream's end, the room lock is taken: if live delivery has not passed
        // that chunk, it goes through the member's bounded room queue (never blocking) and the
        // member joins at its end; else the chunk is sent without the lock and the next one
        // read. So no Redis call and no blocking send runs under the lock: a joiner that stops
        // reading never stalls the reader, which every room of this node shares.
        let mut check_trim = false;
        // Replays that reach the stream's end but find the reader already past it read on;
        // a stream outrunning the replay round after round is given up on at this bound.
        let mut catch_ups = 0;
        loop {
            let (kept, chunk) = self.control(|c| {
                let kept = joined.gap || !check_trim || retained(c, name, after)?;
                Ok((kept, range(c, name, after, REPLAY_CHUNK)?))
            })?;
            check_trim = true;
            if !kept {
                // Trimming passed the replay while it ran.
                let _ = writer.send(shared.gap.clone());
                joined.gap = true;
            }
            let end = chunk.last().map_or(after, |entry| entry.id);
            let frames: Vec<_> = chunk
                .iter()
                .map(|entry| formatted(shared, &epoch, entry))
                .collect();
            if chunk.len() < REPLAY_CHUNK {
                let mut room = local::lock(room_handle);
                let bound = room.room.max_backpressure();
                if !room.epoch.is_empty() && room.epoch != epoch {
                    // The epoch changed while replaying: the reader already told the room.
                    if queue_to(&writer, shared.gap.clone(), bound) {
                        let last = room.last;
                        room.add_at(writer, identity, last);
                    }
                    joined.gap = true;
                    break;
                }
                if room.last <= end {
                    let mut open = true;
                    for frame in frames {
                        open = queue_to(&writer, frame, bound);
                        if !open {
                            break;
                        }
                        joined.replayed += 1;
                    }
                    if open {
                        // Ahead of this node's reader (the member came from a node whose
                        // reader was further), it is let in once the reader passes `end`.
                        room.add_at(writer, identity, end);
                    }
                    break;
                }
                catch_ups += 1;
                if catch_ups > MAX_CATCH_UPS {
                    // The member gets this chunk, then joins live where the reader is, told
                    // that it missed what lies between the two.
                    let mut open = true;
                    for frame in frames {
                        open = open && queue_to(&writer, frame, bound);
                        joined.replayed += usize::from(open);
                    }
                    if open && queue_to(&writer, shared.gap.clone(), bound) {
                        room.add(writer, identity);
                    }
                    joined.gap = true;
                    break;
                }
            }
            joined.replayed += frames.len();
            for frame in frames {
                let _ = writer.send(frame);
            }
            after = end;
        }
        self.presence_changed();
        Ok(joined)
    }

    /// Members of every live process (heartbeat key present) in the room, this one's from its
    /// local room. Fields of processes whose heartbeat expired are removed on the way.
    pub fn presence(&self, shared: &Shared, name: &str) -> Result<Presence, RoomsError> {
        let own = presence::process(shared);
        let mut members = Vec::new();
        let dead = self.control(|c| {
            members.clear();
            let processes: Vec<(String, String)> =
                redis::cmd("HGETALL").arg(keys::presence(name)).query(c)?;
            let mut dead = Vec::new();
            for (process, identities) in processes {
                if process == own {
                    continue;
                }
                let alive: bool = redis::cmd("EXISTS")
                    .arg(keys::alive(name, &process))
                    .query(c)?;
                if alive {
                    let node = presence::node_of(&process);
                    members.extend(
                        identities
                            .lines()
                            .map(|id| (node.to_owned(), id.to_owned())),
                    );
                } else {
                    dead.push(process);
                }
            }
            Ok(dead)
        })?;
        if !dead.is_empty() {
            let _ = self.control(|c| {
                redis::cmd("HDEL")
                    .arg(keys::presence(name))
                    .arg(&dead)
                    .query::<i64>(c)
            });
        }
        if let Some(room) = shared.room(name) {
            let node = &shared.node;
            members.extend(
                local::lock(&room)
                    .identities()
                    .into_iter()
                    .map(|id| (node.clone(), id)),
            );
        }
        members.sort();
        Ok(Presence { members })
    }
}

fn spawn(name: &str, shared: Weak<Shared>, body: fn(Weak<Shared>)) {
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || body(shared));
    if let Err(error) = spawned {
        eprintln!("syncws rooms: cannot start thread {name}: {error}");
    }
}

/// The room's epoch, `None` while the room has no history.
fn current_epoch(c: &mut Link, room: &str) -> RedisResult<Option<String>> {
    redis::cmd("GET").arg(keys::epoch(room)).query(c)
}

/// The stream's newest id, or `0-0` when it is empty or missing.
fn last_id(c: &mut Link, room: &str) -> RedisResult<EntryId> {
    let value: Value = redis::cmd("XREVRANGE")
        .arg(keys::stream(room))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(c)?;
    Ok(parse_entries(&value)
        .last()
        .map(|e| e.id)
        .unwrap_or_default())
}

/// Whether entry `id` is still in the stream. Trimming removes the oldest entries, so while it
/// is, everything after it is too. (An offset whose own entry was just trimmed is reported as a
/// gap although its successor may remain: one entry early, never late.)
pub(super) fn retained(c: &mut Link, room: &str, id: EntryId) -> RedisResult<bool> {
    let value: Value = redis::cmd("XRANGE")
        .arg(keys::stream(room))
        .arg(id.to_string())
        .arg(id.to_string())
        .query(c)?;
    Ok(!parse_entries(&value).is_empty())
}

/// Whether any entry was ever trimmed from the stream (Redis 7's `entries-added` exceeds its
/// length).
pub(super) fn trimmed_any(c: &mut Link, room: &str) -> RedisResult<bool> {
    let exists: bool = redis::cmd("EXISTS").arg(keys::stream(room)).query(c)?;
    if !exists {
        return Ok(false);
    }
    let info: Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(keys::stream(room))
        .query(c)?;
    let (mut length, mut added) = (0i64, 0i64);
    let mut fields = as_list(&info).iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let number = || text(value).and_then(|t| t.parse().ok()).unwrap_or(0);
        match text(name).as_deref() {
            Some("length") => length = number(),
            Some("entries-added") => added = number(),
            _ => {}
        }
    }
    Ok(added > length)
}

/// The first `count` entries after `after`.
fn range(c: &mut Link, room: &str, after: EntryId, count: usize) -> RedisResult<Vec<Entry>> {
    let value: Value = redis::cmd("XRANGE")
        .arg(keys::stream(room))
        .arg(format!("({after}"))
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query(c)?;
    Ok(parse_entries(&value))
}

pub(super) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn as_list(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => &[],
    }
}

/// Parses `[[id, [field, value, …]], …]` (XRANGE, and each stream of XREAD).
pub(super) fn parse_entries(value: &Value) -> Vec<Entry> {
    parse_entries_with_epochs(value)
        .into_iter()
        .map(|(entry, _)| entry)
        .collect()
}

/// [`parse_entries`], each entry with the epoch it was appended under (its `e` field; `None`
/// for an entry written before entries carried it).
pub(super) fn parse_entries_with_epochs(value: &Value) -> Vec<(Entry, Option<String>)> {
    let mut entries = Vec::new();
    for item in as_list(value) {
        let [id, fields] = as_list(item) else {
            continue;
        };
        let Some(id) = text(id).and_then(|t| EntryId::parse(&t)) else {
            continue;
        };
        let (mut node, mut data, mut binary, mut from) = (String::new(), Vec::new(), false, None);
        let mut epoch = None;
        let mut fields = as_list(fields).iter();
        while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
            match text(name).as_deref() {
                Some("n") => node = text(value).unwrap_or_default(),
                Some("d") => data = bytes(value),
                Some("k") => binary = text(value).as_deref() == Some("b"),
                Some("f") => from = text(value).as_deref().and_then(parse_from),
                Some("e") => epoch = text(value),
                _ => {}
            }
        }
        // A missing `k` (an entry written before binary messages) reads as text.
        let message = if binary {
            Message::Binary(data)
        } else {
            Message::Text(String::from_utf8_lossy(&data).into_owned())
        };
        let entry = Entry {
            id,
            node,
            message,
            from,
        };
        entries.push((entry, epoch));
    }
    entries
}

fn bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::BulkString(bytes) => bytes.clone(),
        other => text(other).unwrap_or_default().into_bytes(),
    }
}

/// The `f` field: `<boot hex>:<writer id>`.
fn parse_from(field: &str) -> Option<(u32, u64)> {
    let (boot, writer) = field.split_once(':')?;
    Some((u32::from_str_radix(boot, 16).ok()?, writer.parse().ok()?))
}
