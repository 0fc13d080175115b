//! In-process rooms: the history is a bounded queue per room, the order is the room lock's.

use super::hub::{Joined, Shared, deliver, formatted, queue_to, replay_one};
use super::local::{self, Entry, LocalRoom, SharedRoom};
use super::offset::{EntryId, Offset, new_epoch};
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
    use super::super::hub::{Hub, HubBuilder};
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
    fn gated_hub() -> (Hub, Gate) {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let gate = std::sync::Mutex::new(Some((entered_tx, release_rx)));
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let armed_in_format = armed.clone();
        let hub = HubBuilder::new("n")
            .format(move |d| {
                if d.text == "h" && armed_in_format.load(std::sync::atomic::Ordering::SeqCst) {
                    if let Some((entered, release)) = gate.lock().unwrap().take() {
                        entered.send(()).unwrap();
                        let _ = release.recv_timeout(Duration::from_secs(10));
                    }
                }
                Message::text(d.text.clone())
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
    fn join_during(hub: &Hub, writer: Writer, gate: &Gate, published: impl FnOnce()) -> Joined {
        hub.publish("r", "h").unwrap();
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
            std::thread::spawn(move || hub.join("r", writer, "m", Some(&since)).unwrap())
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
                hub.publish("r", text).unwrap();
            }
        });
        assert_eq!((joined.gap, joined.replayed), (false, 3));
        hub.publish("r", "live").unwrap();
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
                hub.publish("r", &big).unwrap();
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
}
