//! In-process rooms: the history is a bounded queue per room, the order is the room lock's.
//! A room left by every member keeps its history for a while (`RoomsBuilder::idle_rooms`), so
//! a client that reconnects soon resumes; emptied rooms are looked for lazily, without a thread.

use super::hub::{Joined, Shared, deliver, formatted, queue_to, replay_one};
use super::local::{self, Entry, LocalRoom, SharedRoom};
use super::offset::{EntryId, Offset, new_epoch};
use super::room::Broadcast;
use crate::proto::message::Message;
use crate::split::Writer;
use std::time::{Duration, Instant};

/// How often, at most, every room is looked at for members that have gone without a `leave`.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The room `name`, created if needed (with a fresh epoch), with one more join in progress
/// when `joining`, so it is not removed while the join replays.
///
/// The map of rooms is never held while waiting for a room lock (here or in [`sweep`]): a
/// `format` hook runs under a room lock and may look a room up in the map (`Rooms::count`).
fn room(shared: &Shared, name: &str, joining: bool) -> SharedRoom {
    sweep_if_due(shared);
    loop {
        let handle = shared
            .rooms()
            .entry(name.to_owned())
            .or_insert_with(|| shared.local_room(new_epoch(), EntryId::default()))
            .clone();
        if joining {
            let mut room = local::lock(&handle);
            if room.removed {
                // Swept between the lookup and the lock: join the room now in the map.
                continue;
            }
            room.joining += 1;
        }
        return handle;
    }
}

/// Looks for emptied rooms when the last look is [`SWEEP_INTERVAL`] old, or when the map has
/// grown by the idle bound (or by half) since: creating rooms one after another never grows it
/// past about twice what the bound allows.
pub(super) fn sweep_if_due(shared: &Shared) {
    let now = Instant::now();
    // Not holding the sweep state while taking the map: `sweep` takes them the other way.
    let (last, next) = *shared.sweep.lock().unwrap_or_else(|e| e.into_inner());
    let due = now.duration_since(last) >= SWEEP_INTERVAL.min(shared.idle_for)
        || shared.rooms().len() >= next;
    if due {
        sweep(shared, now);
    }
}

/// Removes the rooms emptied more than `idle_for` ago, then the oldest emptied ones beyond
/// `idle_max`. A removed room's history goes with it: a join with an offset of it later finds
/// another epoch and is told of the gap. A room whose lock is held is in use and kept: holding
/// the map, this never waits for a room lock.
pub(super) fn sweep(shared: &Shared, now: Instant) {
    let mut rooms = shared.rooms();
    let mut emptied: Vec<(Instant, String)> = Vec::new();
    rooms.retain(|name, handle| {
        let Some(mut room) = local::try_lock(handle) else {
            return true;
        };
        if !room.idle() || !room.ahead.is_empty() {
            room.emptied_at = None;
            return true;
        }
        let since = *room.emptied_at.get_or_insert(now);
        if now.duration_since(since) >= shared.idle_for {
            room.removed = true;
            return false;
        }
        emptied.push((since, name.clone()));
        true
    });
    if emptied.len() > shared.idle_max {
        emptied.sort();
        for (_, name) in &emptied[..emptied.len() - shared.idle_max] {
            // A join may have taken a room since it was looked at: only one still unused goes.
            let Some(handle) = rooms.get(name).cloned() else {
                continue;
            };
            let Some(mut room) = local::try_lock(&handle) else {
                continue;
            };
            if room.idle() && room.ahead.is_empty() {
                room.removed = true;
                drop(room);
                rooms.remove(name);
            }
        }
    }
    let next = rooms.len() + shared.idle_max.max(rooms.len() / 2).max(16);
    *shared.sweep.lock().unwrap_or_else(|e| e.into_inner()) = (now, next);
}

/// Whether the history after `since` is incomplete: another epoch, or an entry after `since`
/// was trimmed.
pub(super) fn is_gap(room: &LocalRoom, since: &Offset) -> bool {
    // An offset past the newest entry was never handed out by this room: the client's history
    // cannot be trusted (the Redis engine says the same).
    since.epoch != room.epoch || since.id < room.max_trimmed || since.id > room.last
}

/// Where a replay for `since` starts: after it when it is an offset of this room's history,
/// after the newest entry when it is past it (nothing to replay), from the start otherwise.
fn replay_after(room: &LocalRoom, since: &Offset) -> EntryId {
    if since.epoch != room.epoch {
        EntryId::default()
    } else {
        since.id.min(room.last)
    }
}

/// Drops entries beyond the retention count, and older than the retention age if one is set.
fn trim(shared: &Shared, room: &mut LocalRoom, now: Instant) {
    while room.history.len() > shared.retain_count
        || room.history.front().is_some_and(|(_, at)| {
            shared
                .retain_age
                .is_some_and(|age| now.duration_since(*at) > age)
        })
    {
        if let Some((old, _)) = room.history.pop_front() {
            room.max_trimmed = old.id;
        }
    }
}

pub(super) fn join(
    shared: &Shared,
    name: &str,
    writer: Writer,
    identity: &str,
    since: Option<&Offset>,
) -> Joined {
    let handle = room(shared, name, true);
    let joined = join_registered(shared, &handle, writer, identity, since);
    local::lock(&handle).joining -= 1;
    joined
}

fn join_registered(
    shared: &Shared,
    handle: &SharedRoom,
    writer: Writer,
    identity: &str,
    since: Option<&Offset>,
) -> Joined {
    let mut joined = Joined::default();
    let Some(since) = since else {
        local::lock(handle).add(writer, identity);
        return joined;
    };
    // The retained history is copied under the lock and written without it, so publishes go on
    // while a slow joiner gets its replay; what was published meanwhile is queued under the lock
    // (never blocking), then the member joins, so it sees every entry once.
    let (epoch, backlog, start) = {
        let mut room = local::lock(handle);
        trim(shared, &mut room, Instant::now());
        joined.gap = is_gap(&room, since);
        let after = replay_after(&room, since);
        let backlog: Vec<Entry> = room
            .history
            .iter()
            .filter(|(e, _)| e.id > after)
            .map(|(e, _)| e.clone())
            .collect();
        (room.epoch.clone(), backlog, after)
    };
    if joined.gap {
        let _ = writer.send(shared.gap.clone());
    }
    let mut after = start;
    for entry in &backlog {
        replay_one(shared, &epoch, &writer, entry);
        after = entry.id;
    }
    joined.replayed = backlog.len();
    // What was published during the replay goes through the member's bounded room queue: a
    // joiner that stops reading never holds the room lock, so publishes never wait for it.
    let mut room = local::lock(handle);
    let bound = room.room.max_backpressure();
    let mut open = true;
    if !joined.gap && room.max_trimmed > after {
        // More was published during the replay than the room retains.
        open = queue_to(&writer, shared.gap.clone(), bound);
        joined.gap = true;
    }
    for (entry, _) in room.history.iter().filter(|(e, _)| e.id > after) {
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

/// Appends `message` to the room's history and hands it to the room's members but `from`'s.
pub(super) fn publish(
    shared: &Shared,
    name: &str,
    message: &Message,
    from: Option<(u32, u64)>,
) -> Broadcast {
    loop {
        let handle = room(shared, name, false);
        let mut room = local::lock(&handle);
        if room.removed {
            // Swept between the lookup and the lock: publish into the room now in the map.
            continue;
        }
        let entry = Entry {
            id: EntryId {
                ms: 0,
                seq: room.last.seq + 1,
            },
            node: shared.node.clone(),
            message: message.clone(),
            from,
        };
        let now = Instant::now();
        room.history.push_back((entry.clone(), now));
        trim(shared, &mut room, now);
        return deliver(shared, &mut room, &entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::{Join, Rooms};
    use std::sync::Arc;

    fn id(seq: u64) -> EntryId {
        EntryId { ms: 0, seq }
    }

    /// Broadcasts `text` to room "r".
    fn publish(rooms: &Rooms, text: &str) {
        rooms.broadcast("r", &Message::text(text), None).unwrap();
    }

    #[test]
    fn trimming_and_a_new_epoch_are_gaps_and_nothing_else_is() {
        let rooms = Rooms::builder().retain(2).in_memory();
        for text in ["a", "b", "c"] {
            publish(&rooms, text);
        }
        let room = rooms.shared.room("r").unwrap();
        let room = local::lock(&room);
        assert_eq!(
            room.history
                .iter()
                .map(|(e, _)| e.id.seq)
                .collect::<Vec<_>>(),
            [2, 3]
        );
        let at = |seq| Offset {
            epoch: room.epoch.clone(),
            id: id(seq),
        };
        assert!(is_gap(&room, &at(0)), "entry 1 was trimmed");
        assert!(!is_gap(&room, &at(1)), "2 and 3 are retained");
        assert!(!is_gap(&room, &at(3)));
        assert!(is_gap(&room, &at(4)), "4 was never handed out");
        assert_eq!(
            replay_after(&room, &at(9)),
            id(3),
            "nothing to replay past the end"
        );
        assert!(is_gap(
            &room,
            &Offset {
                epoch: "other".into(),
                id: id(3)
            }
        ));
    }

    use crate::proto::Role;
    use crate::proto::close::CloseCode;
    use crate::proto::config::Config;
    use crate::proto::message::Message;
    use crate::websocket::WebSocket;
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;
    use std::time::Duration;

    /// A member whose peer has a small receive buffer and reads only when the test does.
    fn pair(small: bool) -> (Writer, WebSocket<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if small {
            socket.set_recv_buffer_size(4096).unwrap();
        }
        socket
            .connect(&listener.local_addr().unwrap().into())
            .unwrap();
        let peer: TcpStream = socket.into();
        peer.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let (server, _) = listener.accept().unwrap();
        if small {
            socket2::SockRef::from(&server)
                .set_send_buffer_size(8192)
                .unwrap();
        }
        let (mut reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
            .split()
            .unwrap();
        std::thread::spawn(move || while reader.read().is_ok() {});
        (
            writer,
            WebSocket::from_stream(peer, Role::Client, Config::default()),
        )
    }

    /// A hub whose `format` stops on the text "h" once armed (a join's unlocked replay) until
    /// released.
    fn gated_hub() -> (Rooms, Gate) {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let gate = std::sync::Mutex::new(Some((entered_tx, release_rx)));
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let armed_in_format = armed.clone();
        let hub = Rooms::builder()
            .format(move |d| {
                if d.message == Message::text("h")
                    && armed_in_format.load(std::sync::atomic::Ordering::SeqCst)
                {
                    if let Some((entered, release)) = gate.lock().unwrap().take() {
                        entered.send(()).unwrap();
                        let _ = release.recv_timeout(Duration::from_secs(10));
                    }
                }
                d.message.clone()
            })
            .in_memory();
        (
            hub,
            Gate {
                armed,
                entered,
                release,
            },
        )
    }

    struct Gate {
        armed: Arc<std::sync::atomic::AtomicBool>,
        entered: mpsc::Receiver<()>,
        release: mpsc::Sender<()>,
    }

    /// Joins with a replay of "h", calling `published` while that replay is held.
    fn join_during(hub: &Rooms, writer: Writer, gate: &Gate, published: impl FnOnce()) -> Joined {
        publish(hub, "h");
        gate.armed.store(true, std::sync::atomic::Ordering::SeqCst);
        let since = Offset {
            epoch: hub
                .shared
                .room("r")
                .map(|r| local::lock(&r).epoch.clone())
                .unwrap(),
            id: EntryId::default(),
        };
        let joiner = {
            let hub = hub.clone();
            std::thread::spawn(move || {
                hub.join_with("r", writer, Join::new().identity("m").since(since))
                    .unwrap()
            })
        };
        gate.entered.recv_timeout(Duration::from_secs(10)).unwrap();
        published();
        gate.release.send(()).unwrap();
        joiner.join().unwrap()
    }

    /// What is published while a join replays without the lock is queued after the replay
    /// and before live messages: each once, in order.
    #[test]
    fn a_join_gets_what_was_published_during_its_replay_once_and_in_order() {
        let (hub, gate) = gated_hub();
        let (writer, mut client) = pair(false);
        let joined = join_during(&hub, writer, &gate, || {
            for text in ["a", "b"] {
                publish(&hub, text);
            }
        });
        assert_eq!((joined.gap, joined.replayed), (false, 3));
        publish(&hub, "live");
        for want in ["h", "a", "b", "live"] {
            assert_eq!(client.read().unwrap(), Message::text(want));
        }
    }

    /// A joiner that stops reading while more than its bound was published during its replay
    /// is closed with 1008, as live fan-out closes a member over its bound.
    #[test]
    fn a_stalled_joiner_over_its_bound_is_closed_with_1008() {
        let (hub, gate) = gated_hub();
        let (writer, mut client) = pair(true);
        let big = "x".repeat(64 * 1024);
        join_during(&hub, writer, &gate, || {
            for _ in 0..32 {
                publish(&hub, &big);
            }
        });
        assert_eq!(hub.presence("r").unwrap().count(), 0);
        let close = loop {
            match client.read().expect("a close frame, not an error") {
                Message::Close(frame) => break frame.expect("a close code"),
                Message::Text(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(close.code, CloseCode::Policy);
    }

    /// Rooms created and left one after another: the map keeps at most the idle bound (plus
    /// what the lazy check lets through between two looks), never all of them.
    #[test]
    fn emptied_rooms_are_bounded_and_a_recreated_room_reports_a_gap() {
        let rooms = Rooms::builder()
            .idle_rooms(10, Duration::from_secs(600))
            .in_memory();
        let (writer, mut client) = pair(false);
        rooms.join("first", writer.clone()).unwrap();
        rooms
            .broadcast("first", &Message::text("kept"), None)
            .unwrap();
        assert_eq!(client.read().unwrap(), Message::text("kept"));
        let epoch = local::lock(&rooms.shared.room("first").unwrap())
            .epoch
            .clone();
        assert!(rooms.leave("first", &writer));
        let mut most = 0;
        for k in 0..500 {
            let name = format!("room{k}");
            rooms.join(&name, writer.clone()).unwrap();
            rooms.broadcast(&name, &Message::text("x"), None).unwrap();
            assert!(rooms.leave(&name, &writer));
            most = most.max(rooms.shared.rooms().len());
        }
        assert!(most <= 10 + 16 + 1, "{most} rooms kept");
        assert!(rooms.names().is_empty());
        // "first" was removed with its history: an offset of it is from another epoch now.
        let since = Offset { epoch, id: id(1) };
        let joined = rooms
            .join_with("first", writer, Join::new().since(since))
            .unwrap();
        assert!(joined.gap, "{joined:?}");
    }

    /// An emptied room keeps its history for its idle time: a member that comes back resumes
    /// without a gap and gets what was broadcast while nobody was in.
    #[test]
    fn an_emptied_room_keeps_its_history_for_a_reconnect() {
        let rooms = Rooms::new();
        let (writer, mut client) = pair(false);
        rooms.join("r", writer.clone()).unwrap();
        publish(&rooms, "a");
        assert_eq!(client.read().unwrap(), Message::text("a"));
        let epoch = local::lock(&rooms.shared.room("r").unwrap()).epoch.clone();
        rooms.leave("r", &writer);
        assert_eq!(rooms.count("r"), 0);
        publish(&rooms, "while away");
        let since = Offset { epoch, id: id(1) };
        let joined = rooms
            .join_with("r", writer, Join::new().since(since))
            .unwrap();
        assert_eq!((joined.gap, joined.replayed), (false, 1));
        assert_eq!(client.read().unwrap(), Message::text("while away"));
    }

    /// Rooms past their idle time are removed on the next look, without a thread.
    #[test]
    fn an_emptied_room_past_its_idle_time_is_removed_lazily() {
        let rooms = Rooms::builder()
            .idle_rooms(1_000, Duration::ZERO)
            .in_memory();
        publish(&rooms, "nobody here");
        sweep(&rooms.shared, Instant::now());
        assert!(rooms.shared.room("r").is_none());
    }

    /// `format` runs under the room's lock and may ask the rooms what they know (count, names,
    /// presence), and a sweep meanwhile (here: from inside the hook, the worst case) never
    /// waits for that lock while it holds the map: the room in use is kept, not removed.
    #[test]
    fn a_format_may_read_the_rooms_and_a_sweep_skips_the_room_it_runs_for() {
        let handle: Arc<std::sync::OnceLock<Rooms>> = Arc::default();
        let seen = handle.clone();
        let rooms = Rooms::builder()
            .idle_rooms(1_000, Duration::ZERO)
            .format(move |d| {
                let Some(rooms) = seen.get() else {
                    return d.message.clone();
                };
                sweep(&rooms.shared, Instant::now() + Duration::from_secs(3600));
                let presence = rooms.presence("r").unwrap().count();
                Message::text(format!(
                    "{} {} {presence} {}",
                    rooms.count("r"),
                    rooms.names().len(),
                    rooms.node()
                ))
            })
            .in_memory();
        let _ = handle.set(rooms.clone());
        let (done_tx, done) = mpsc::channel();
        let publisher = rooms.clone();
        std::thread::spawn(move || {
            // Nobody in "r": idle, so only its held lock keeps the sweep off it.
            publish(&publisher, "to nobody");
            let kept = publisher
                .shared
                .room("r")
                .is_some_and(|room| !local::lock(&room).removed);
            let (writer, client) = pair(false);
            publisher.join("r", writer).unwrap();
            publish(&publisher, "to one");
            let _ = done_tx.send((kept, client));
        });
        let (kept, mut client) = done
            .recv_timeout(Duration::from_secs(20))
            .expect("a format reading the rooms deadlocked");
        assert!(kept, "the sweep removed the room its publish was in");
        assert_eq!(client.read().unwrap(), Message::text("1 1 1 local"));
    }
}
