//! Rooms through a real redis-server (feature `redis`): each entry carries its epoch, a room's
//! stream and epoch expire together after its last publish, and a stream lost alone is
//! reported as one gap, with nothing delivered twice. A missing redis-server fails the tests.
#![cfg(feature = "redis")]

#[path = "common/redis.rs"]
mod redis_server;
#[path = "common/room_members.rs"]
mod room_members;

use redis_server::RedisServer;
use room_members::{member, piped, texts};
use std::time::Duration;
use syncws::Message;
use syncws::rooms::Rooms;

const GAP: &str = "{\"gap\":true}";
/// The documented expiry of a room's keys without a longer retention age: seven days.
const WEEK: u64 = 7 * 24 * 3600;

fn instance(redis: &RedisServer, retain_age: Option<Duration>) -> Rooms {
    let mut builder = Rooms::builder().node("A").format(piped);
    if let Some(age) = retain_age {
        builder = builder.retain_age(age);
    }
    builder.redis(&redis.url()).unwrap()
}

fn ttl(redis: &RedisServer, key: &str) -> u64 {
    let answer = redis.cli(&["ttl", key]);
    answer
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("ttl {key}: {answer:?}"))
}

/// A publish writes the room's epoch into its entry and gives the stream and the epoch one
/// expiry: a week, or the retention age when longer.
#[test]
fn a_publish_gives_its_entry_the_epoch_and_the_room_one_expiry() {
    let redis = RedisServer::start();
    let month = Duration::from_secs(30 * 24 * 3600);
    for (room, age, expected) in [
        ("week", None, WEEK),
        ("month", Some(month), month.as_secs()),
    ] {
        let rooms = instance(&redis, age);
        let (writer, mut client) = member();
        rooms.join(room, writer).unwrap();
        rooms.broadcast(room, &Message::text("m"), None).unwrap();
        let line = texts(&mut client, 1).remove(0);
        let epoch = redis.cli(&["get", &format!("syncws:{{{room}}}:epoch")]);
        let epoch = epoch.trim();
        assert!(line.starts_with(&format!("{epoch}:")), "{line} vs {epoch}");
        let entry = redis.cli(&["xrange", &format!("syncws:{{{room}}}:stream"), "-", "+"]);
        let fields: Vec<&str> = entry.lines().map(str::trim).collect();
        let at = fields.iter().position(|f| *f == "e").expect("an `e` field");
        assert_eq!(fields[at + 1], epoch, "{entry}");
        for key in ["stream", "epoch"] {
            let left = ttl(&redis, &format!("syncws:{{{room}}}:{key}"));
            assert!(
                left <= expected && left + 60 > expected,
                "{room} {key}: {left} s left, expected {expected}"
            );
        }
    }
}

/// The stream lost alone (eviction, `DEL`) takes the room's history with it: members get one
/// gap, the next publish starts a new epoch, and nothing delivered comes again.
#[test]
fn a_stream_lost_alone_is_one_gap_and_nothing_twice() {
    let redis = RedisServer::start();
    let rooms = instance(&redis, None);
    let (writer, mut client) = member();
    rooms.join("r", writer).unwrap();
    for text in ["a", "b"] {
        rooms.broadcast("r", &Message::text(text), None).unwrap();
    }
    let before = texts(&mut client, 2);
    assert!(before[1].ends_with("|b"), "{before:?}");
    redis.cli(&["del", "syncws:{r}:stream"]);
    // The reader's periodic check (every second) reports the loss.
    client
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(texts(&mut client, 1), [GAP]);
    rooms.broadcast("r", &Message::text("c"), None).unwrap();
    let after = texts(&mut client, 1).remove(0);
    assert!(after.ends_with("|c"), "{after}");
    let epoch = |line: &str| line.split(':').next().unwrap().to_owned();
    assert_ne!(
        epoch(&after),
        epoch(&before[0]),
        "a new epoch after the loss"
    );
    // Nothing else arrives: no second gap, no message again.
    rooms.broadcast("r", &Message::text("d"), None).unwrap();
    let next = texts(&mut client, 1).remove(0);
    assert!(next.ends_with("|d"), "{next}");
    assert_eq!(epoch(&next), epoch(&after));
}

/// The epoch key lost alone (eviction, `DEL`) while the stream holds the room's entries: the
/// next publish restores the epoch from the stream's newest entry, so members get no gap and
/// offsets stay valid.
#[test]
fn a_publish_restores_an_epoch_lost_alone() {
    let redis = RedisServer::start();
    let rooms = instance(&redis, None);
    let (writer, mut client) = member();
    rooms.join("r", writer).unwrap();
    rooms.broadcast("r", &Message::text("a"), None).unwrap();
    let before = texts(&mut client, 1).remove(0);
    let epoch = redis.cli(&["get", "syncws:{r}:epoch"]);
    redis.cli(&["del", "syncws:{r}:epoch"]);
    rooms.broadcast("r", &Message::text("b"), None).unwrap();
    let after = texts(&mut client, 1).remove(0);
    assert!(after.ends_with("|b"), "{after}");
    let epoch_of = |line: &str| line.split(':').next().unwrap().to_owned();
    assert_eq!(epoch_of(&after), epoch_of(&before));
    assert_eq!(redis.cli(&["get", "syncws:{r}:epoch"]), epoch);
    assert!(ttl(&redis, "syncws:{r}:epoch") > WEEK - 60);
}

/// A message Redis refuses (the stream key holds a string) leaves no epoch key behind: the
/// append is the script's first write.
#[test]
fn a_refused_append_leaves_no_epoch_behind() {
    let redis = RedisServer::start();
    redis.cli(&["set", "syncws:{bad}:stream", "not a stream"]);
    let (statuses_tx, statuses) = std::sync::mpsc::channel();
    let statuses_tx = std::sync::Mutex::new(statuses_tx);
    let rooms = Rooms::builder()
        .node("A")
        .format(piped)
        .on_outage(move |status| {
            let _ = statuses_tx.lock().unwrap().send(status.clone());
        })
        .redis(&redis.url())
        .unwrap();
    let (writer, mut client) = member();
    rooms.join("good", writer).unwrap();
    // Several refused messages of one room in one batch: the later ones are held behind the
    // first (`HELD`), then refused in their turn, each reported once.
    for text in ["x", "y", "z"] {
        rooms.broadcast("bad", &Message::text(text), None).unwrap();
    }
    rooms.broadcast("good", &Message::text("ok"), None).unwrap();
    for _ in 0..3 {
        let status = statuses.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            matches!(&status, syncws::rooms::BrokerStatus::Refused { room, error }
                if room == "bad" && error.contains("WRONGTYPE")),
            "{status:?}"
        );
    }
    assert!(texts(&mut client, 1)[0].ends_with("ok"));
    assert_eq!(rooms.backlog(), 0);
    assert_eq!(redis.cli(&["exists", "syncws:{bad}:epoch"]).trim(), "0");
}

/// The periodic epoch check runs its script by SHA1; after Redis forgot it (`SCRIPT FLUSH`) it
/// sends it again, without reporting an outage. (The check restoring a lost epoch key shows
/// that it ran.)
#[test]
fn the_epoch_check_sends_its_script_again_after_a_script_flush() {
    let redis = RedisServer::start();
    let (statuses_tx, statuses) = std::sync::mpsc::channel();
    let statuses_tx = std::sync::Mutex::new(statuses_tx);
    let rooms = Rooms::builder()
        .node("A")
        .format(piped)
        .on_outage(move |status| {
            let _ = statuses_tx.lock().unwrap().send(status.clone());
        })
        .redis(&redis.url())
        .unwrap();
    let (writer, mut client) = member();
    rooms.join("r", writer).unwrap();
    rooms.broadcast("r", &Message::text("a"), None).unwrap();
    texts(&mut client, 1);
    let epoch = redis.cli(&["get", "syncws:{r}:epoch"]);
    // Twice: the first check after the flush may have run before it.
    for _ in 0..2 {
        redis.cli(&["script", "flush"]);
        redis.cli(&["del", "syncws:{r}:epoch"]);
        redis_server::wait_until(
            Duration::from_secs(10),
            "the check restores the epoch",
            || redis.cli(&["get", "syncws:{r}:epoch"]) == epoch,
        );
    }
    let outages: Vec<_> = statuses.try_iter().collect();
    assert!(outages.is_empty(), "{outages:?}");
}
