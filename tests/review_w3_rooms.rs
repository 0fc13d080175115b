//! Review 21 (wave 3) findings on rooms. Each test reproduces one finding and is
//! ignored until it is fixed. Loopback only; every wait is bounded. The Redis tests start their
//! own redis-server on a free port (feature `redis`).

#[cfg(feature = "redis")]
#[path = "common/redis.rs"]
mod redis_server;
#[path = "common/room_members.rs"]
mod room_members;

#[cfg(feature = "redis")]
use room_members::member;
use room_members::stalled_member;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};
use syncws::Message;
use syncws::rooms::{Delivery, EntryId, Join, Offset, Rooms};

/// Broadcasts `text` to every member of `room`.
fn say(rooms: &Rooms, room: &str, text: &str) {
    rooms.broadcast(room, &Message::text(text), None).unwrap();
}

/// A join that replays everything from the start of another epoch (a gap first).
fn from_another_epoch() -> Join {
    Join::new().identity("late").since(Offset {
        epoch: "another".into(),
        id: EntryId::default(),
    })
}

/// A gate in the rooms' `format` hook: the first time the text `"h"` is formatted after the
/// gate is armed, the formatting thread (a join replaying history outside the room lock) tells
/// `entered` and waits for `release`.
struct Gate {
    armed: AtomicBool,
    entered: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<Option<mpsc::Receiver<()>>>,
}

fn gate() -> (Arc<Gate>, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let gate = Arc::new(Gate {
        armed: AtomicBool::new(false),
        entered: Mutex::new(Some(entered_tx)),
        release: Mutex::new(Some(release_rx)),
    });
    (gate, entered_rx, release_tx)
}

impl Gate {
    fn pass(&self, delivery: &Delivery) {
        if delivery.message == Message::text("h") && self.armed.swap(false, Ordering::SeqCst) {
            if let Some(tx) = self.entered.lock().unwrap().take() {
                let _ = tx.send(());
            }
            if let Some(rx) = self.release.lock().unwrap().take() {
                let _ = rx.recv_timeout(Duration::from_secs(10));
            }
        }
    }
}

/// Finding 1: a join with `since` sends what was published during its unlocked replay to the
/// joining socket *under the room lock*, with a blocking `Writer::send`. A joiner that stops
/// reading then holds the room lock for up to one write timeout per frame, and
/// `Rooms::broadcast` (in memory: it takes the room lock) blocks its caller meanwhile.
#[test]
fn a_stalled_joiner_does_not_block_publish_in_memory() {
    let (g, entered, release) = gate();
    let g2 = g.clone();
    let hub = Rooms::builder()
        .format(move |d| {
            g2.pass(d);
            d.message.clone()
        })
        .in_memory();
    say(&hub, "r", "h");
    g.armed.store(true, Ordering::SeqCst);
    let (writer, client) = stalled_member();
    let joiner = {
        let hub = hub.clone();
        // Another epoch: a gap, then every retained message from the start.
        thread::spawn(move || hub.join_with("r", writer, from_another_epoch()))
    };
    entered.recv_timeout(Duration::from_secs(5)).unwrap();
    // Published while the joiner replays without the lock: replayed to it under the lock.
    let big = "x".repeat(64 * 1024);
    for _ in 0..64 {
        say(&hub, "r", &big);
    }
    release.send(()).unwrap();
    thread::sleep(Duration::from_millis(300));
    let (done_tx, done_rx) = mpsc::channel();
    {
        let hub = hub.clone();
        thread::spawn(move || {
            let started = Instant::now();
            say(&hub, "r", "live");
            let _ = done_tx.send(started.elapsed());
        });
    }
    let took = done_rx.recv_timeout(Duration::from_secs(3));
    // Unblock the joiner's write before asserting.
    let _ = client.shutdown(std::net::Shutdown::Both);
    drop(client);
    let _ = joiner.join();
    let took = took.expect("Rooms::broadcast blocked > 3 s behind a joiner that stopped reading");
    assert!(took < Duration::from_secs(1), "publish took {took:?}");
}

#[cfg(feature = "redis")]
mod redis_findings {
    use super::redis_server::RedisServer;
    use super::*;
    use room_members::first_text;

    /// Finding 2: on Redis Cluster a single `XREAD … STREAMS` over every room with local
    /// members is refused with CROSSSLOT as soon as two rooms hash to different slots; the
    /// reader now reads by slot group (docs/redis-cluster.md).
    #[test]
    fn two_rooms_on_a_redis_cluster_both_deliver() {
        let redis = RedisServer::cluster();
        // Different slots ("a" 15495, "b" 3300).
        let hub = Rooms::builder()
            .node("n1")
            .redis_cluster(&[&redis.url()])
            .unwrap();
        let (wa, mut ca) = member();
        let (wb, mut cb) = member();
        hub.join("a", wa).unwrap();
        hub.join("b", wb).unwrap();
        thread::sleep(Duration::from_millis(300));
        say(&hub, "a", "to-a");
        say(&hub, "b", "to-b");
        assert_eq!(first_text(&mut ca).as_deref(), Some("to-a"));
        assert_eq!(first_text(&mut cb).as_deref(), Some("to-b"));
    }

    /// Finding 3: a room whose name starts with `}` (or is empty) has an empty hash tag, so
    /// Redis Cluster hashes each whole key and the publish script's three keys land in
    /// different slots: every publish is refused (CROSSSLOT) and dropped with one log line,
    /// lost without an error to the caller. docs/deploy.md says names with `}` "still work".
    #[test]
    fn a_room_named_with_a_leading_brace_delivers_on_a_cluster() {
        let redis = RedisServer::cluster();
        let hub = Rooms::builder().node("n1").redis(&redis.url()).unwrap();
        let (w, mut c) = member();
        hub.join("}x", w).unwrap();
        thread::sleep(Duration::from_millis(300));
        say(&hub, "}x", "hello");
        assert_eq!(first_text(&mut c).as_deref(), Some("hello"));
    }

    /// Finding 4: in a Redis hub, a join with `since` finishes its replay under the room lock,
    /// with Redis calls (`XRANGE`) and blocking sends to the joining socket. The node's single
    /// reader thread needs that lock to deliver, so one joiner that stops reading stalls live
    /// delivery of *every* room on the node for up to one write timeout per frame.
    #[test]
    fn a_stalled_joiner_does_not_stall_other_rooms_on_its_node() {
        let redis = RedisServer::start();
        let (g, entered, release) = gate();
        let g2 = g.clone();
        let hub = Rooms::builder()
            .node("n1")
            .format(move |d| {
                g2.pass(d);
                d.message.clone()
            })
            .redis(&redis.url())
            .unwrap();
        // A healthy member of another room on the same node.
        let (wo, mut co) = member();
        hub.join("other", wo).unwrap();
        say(&hub, "r", "h");
        let deadline = Instant::now() + Duration::from_secs(5);
        while hub.backlog() > 0 {
            assert!(Instant::now() < deadline);
            thread::sleep(Duration::from_millis(10));
        }
        g.armed.store(true, Ordering::SeqCst);
        let (writer, client) = stalled_member();
        let joiner = {
            let hub = hub.clone();
            thread::spawn(move || hub.join_with("r", writer, from_another_epoch()))
        };
        entered.recv_timeout(Duration::from_secs(5)).unwrap();
        let big = "x".repeat(64 * 1024);
        for _ in 0..64 {
            say(&hub, "r", &big);
        }
        // Let the reader deliver them to room r (it has no member yet), then let the join go on.
        thread::sleep(Duration::from_millis(700));
        release.send(()).unwrap();
        thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        say(&hub, "other", "live");
        let got = first_text(&mut co);
        let took = started.elapsed();
        let _ = client.shutdown(std::net::Shutdown::Both);
        drop(client);
        let _ = joiner.join();
        assert_eq!(got.as_deref(), Some("live"));
        assert!(
            took < Duration::from_secs(1),
            "delivery in another room took {took:?}"
        );
    }
    /// Finding 5: a member that reconnects with `since` to a node whose reader is behind that
    /// offset waits at most `CATCH_UP` (5 s) for it, then joins anyway with its replay position
    /// ahead of the room's: when the reader catches up, the entries between are delivered live
    /// to the member a second time. Here node B's reader is held 6 s by a slow frame hook in
    /// another room (any stall of the single reader does it: a slow broker, finding 4).
    #[test]
    fn a_reconnect_to_a_lagging_node_gets_nothing_twice() {
        let redis = RedisServer::start();
        let a = Rooms::builder()
            .node("A")
            .format(|d| Message::text(format!("{}|{}", d.offset, room_members::body(d))))
            .redis(&redis.url())
            .unwrap();
        let (held_tx, held_rx) = mpsc::channel();
        let held_tx = Mutex::new(Some(held_tx));
        let b = Rooms::builder()
            .node("B")
            .format(move |d| {
                if d.message == Message::text("slow") {
                    if let Some(tx) = held_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                        thread::sleep(Duration::from_secs(6));
                    }
                }
                Message::text(format!("{}|{}", d.offset, room_members::body(d)))
            })
            .redis(&redis.url())
            .unwrap();
        let (wa, mut ca) = member();
        a.join("r", wa).unwrap();
        let (wr, _cr) = member();
        b.join("r", wr).unwrap();
        let (ws, _cs) = member();
        b.join("s", ws).unwrap();
        thread::sleep(Duration::from_millis(300));
        say(&a, "s", "slow");
        held_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        for text in ["m1", "m2", "m3"] {
            say(&a, "r", text);
        }
        let mut last = None;
        for _ in 0..3 {
            last = first_text(&mut ca);
        }
        let last = last.expect("A's member got m1..m3");
        let (offset, text) = last.split_once('|').unwrap();
        assert_eq!(text, "m3");
        let since = Offset::parse(offset).unwrap();
        // The client had m1..m3 through A; it reconnects to B.
        let (wx, mut cx) = member();
        b.join_with("r", wx, Join::new().since(since)).unwrap();
        say(&a, "r", "m4");
        cx.get_ref()
            .set_read_timeout(Some(Duration::from_secs(8)))
            .unwrap();
        let next = first_text(&mut cx).map(|t| t.split_once('|').unwrap().1.to_owned());
        assert_eq!(
            next.as_deref(),
            Some("m4"),
            "the next delivery after m3 must be m4"
        );
    }
}
