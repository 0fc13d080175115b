//! Rooms through a real redis-server (feature `redis`), the broker's rarer turns: publish
//! markers stay one per room and process, data lost without a restart (`DEL`, `FLUSHALL`) is
//! reported as a gap, a join racing a fast stream ends, a flushed script is sent again. A
//! missing redis-server fails the tests.
#![cfg(feature = "redis")]

#[path = "common/redis.rs"]
mod redis_server;
#[path = "common/room_members.rs"]
mod room_members;

use redis_server::{RedisServer, wait_until};
use room_members::{member, piped, texts};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use syncws::Message;
use syncws::rooms::{Join, Offset, Rooms};

const GAP: &str = "{\"gap\":true}";

/// Deliveries as `offset|node|text`.
fn instance(redis: &RedisServer, node: &str) -> Rooms {
    Rooms::builder()
        .node(node)
        .format(piped)
        .redis(&redis.url())
        .unwrap()
}

fn wait_acknowledged(instance: &Rooms) {
    wait_until(
        Duration::from_secs(20),
        "publishes never reached Redis",
        || instance.backlog() == 0,
    );
}

#[test]
fn publish_markers_stay_one_per_room_and_process() {
    let redis = RedisServer::start();
    let (a, b) = (instance(&redis, "A"), instance(&redis, "B"));
    for k in 0..300 {
        a.broadcast("r", &Message::text(k.to_string()), None)
            .unwrap();
        b.broadcast("r", &Message::text(k.to_string()), None)
            .unwrap();
        a.broadcast("s", &Message::text(k.to_string()), None)
            .unwrap();
    }
    wait_acknowledged(&a);
    wait_acknowledged(&b);
    let count = |pattern: &str| redis.cli(&["--scan", "--pattern", pattern]).lines().count();
    assert_eq!(count("syncws:{r}:pub:*"), 2, "one marker per process");
    assert_eq!(count("syncws:{s}:pub:*"), 1);
    assert_eq!(redis.cli(&["xlen", "syncws:{r}:stream"]).trim(), "600");
}

/// A room's stream deleted (eviction, `DEL`) or every key flushed while the link stays up:
/// members get the gap message within about a second, and delivery goes on.
#[test]
fn data_lost_without_a_restart_is_reported_as_a_gap() {
    let redis = RedisServer::start();
    let a = instance(&redis, "A");
    let (writer, mut client) = member();
    a.join_with("r", writer, Join::new().identity("c")).unwrap();
    a.broadcast("r", &Message::text("one"), None).unwrap();
    let first = texts(&mut client, 1)[0].clone();
    assert!(first.ends_with("|one"));
    redis.cli(&["del", "syncws:{r}:stream"]);
    let started = Instant::now();
    assert_eq!(texts(&mut client, 1), [GAP]);
    assert!(started.elapsed() < Duration::from_secs(5));
    a.broadcast("r", &Message::text("two"), None).unwrap();
    let second = texts(&mut client, 1)[0].clone();
    assert!(second.ends_with("|two"), "{second}");
    let epoch = |d: &str| Offset::parse(d.split('|').next().unwrap()).unwrap().epoch;
    assert_ne!(epoch(&first), epoch(&second), "a new epoch");
    redis.cli(&["flushall"]);
    assert_eq!(texts(&mut client, 1), [GAP]);
    a.broadcast("r", &Message::text("three"), None).unwrap();
    let third = texts(&mut client, 1)[0].clone();
    assert!(third.ends_with("|three"), "{third}");
    assert_ne!(epoch(&second), epoch(&third));
}

/// A join replaying from an old offset while the room's stream grows fast ends, and the
/// member gets offsets in increasing order, none twice (a gap notice if the stream outran it).
#[test]
fn a_join_racing_a_fast_stream_ends_in_order() {
    let redis = RedisServer::start();
    let a = instance(&redis, "A");
    let (writer, mut watcher) = member();
    a.join_with("r", writer, Join::new().identity("w")).unwrap();
    a.broadcast("r", &Message::text("start"), None).unwrap();
    let start = texts(&mut watcher, 1)[0].clone();
    let since = Offset::parse(start.split('|').next().unwrap()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (a, stop) = (a.clone(), stop.clone());
        thread::spawn(move || {
            let mut k = 0u64;
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                if a.broadcast("r", &Message::text(k.to_string()), None)
                    .is_ok()
                {
                    k += 1;
                }
                if k % 16 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    thread::sleep(Duration::from_millis(300));
    let (writer, mut joiner) = member();
    // The joiner reads while its replay is sent.
    let frames = thread::spawn(move || {
        let mut frames = Vec::new();
        loop {
            let frame = texts(&mut joiner, 1).remove(0);
            let end = frame.ends_with("|end");
            frames.push(frame);
            if end {
                return frames;
            }
        }
    });
    let started = Instant::now();
    let joined = a
        .join_with("r", writer, Join::new().identity("j").since(since))
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    publisher.join().unwrap();
    a.broadcast("r", &Message::text("end"), None).unwrap();
    let mut previous: Option<Offset> = None;
    let mut gaps = 0;
    for frame in frames.join().unwrap() {
        if frame == GAP {
            gaps += 1;
            continue;
        }
        let offset = Offset::parse(frame.split('|').next().unwrap()).unwrap();
        if let Some(previous) = &previous {
            assert!(offset.id > previous.id, "{previous} then {offset}");
        }
        previous = Some(offset);
    }
    assert_eq!(gaps > 0, joined.gap, "{joined:?}");
}

/// Publishes send the script's SHA1 (`EVALSHA`), and the script text again once Redis forgot
/// it (`SCRIPT FLUSH`, as after a restart).
#[test]
fn publishes_use_evalsha_and_survive_a_script_flush() {
    let redis = RedisServer::start();
    let a = instance(&redis, "A");
    let (writer, mut client) = member();
    a.join_with("r", writer, Join::new().identity("c")).unwrap();
    // The first batch sends the script; later ones its SHA1.
    for k in 0..20 {
        a.broadcast("r", &Message::text(k.to_string()), None)
            .unwrap();
        assert!(texts(&mut client, 1)[0].ends_with(&format!("|{k}")));
    }
    let calls = |command: &str| -> u64 {
        let stats = redis.cli(&["info", "commandstats"]);
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().unwrap())
    };
    assert!(
        calls("evalsha") >= 19,
        "{}",
        redis.cli(&["info", "commandstats"])
    );
    redis.cli(&["script", "flush"]);
    a.broadcast("r", &Message::text("after the flush"), None)
        .unwrap();
    assert!(texts(&mut client, 1)[0].ends_with("|after the flush"));
    wait_acknowledged(&a);
}
