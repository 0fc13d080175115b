//! The broker side of Redis rooms: joins create no key, a join's offset is judged against the
//! epoch Redis has, presence is per process. Loopback only; redis-server started by the test.
#![cfg(feature = "redis")]

#[path = "common/redis.rs"]
mod redis_server;
#[path = "common/room_members.rs"]
mod room_members;

use redis_server::RedisServer;
use room_members::{first_text, member, piped};
use std::thread;
use std::time::{Duration, Instant};
use syncws::Message;
use syncws::rooms::{Join, Offset, Rooms};

fn node(redis: &RedisServer, name: &str) -> Rooms {
    Rooms::builder()
        .node(name)
        .format(piped)
        .redis(&redis.url())
        .unwrap()
}

/// A room with no history has no epoch: an offset of any epoch is out of reach (a gap), the
/// join writes nothing to Redis, and the member then gets the room's first message live, with
/// no second gap notice when that message brings the room's first epoch.
#[test]
fn a_join_with_an_offset_to_a_room_without_history_is_a_gap_and_creates_no_key() {
    let redis = RedisServer::start();
    let rooms = node(&redis, "A");
    let (writer, mut client) = member();
    let since = Offset::parse("0123456789abcdef:5-0").unwrap();
    let joined = rooms
        .join_with("empty", writer, Join::new().since(since))
        .unwrap();
    assert!(joined.gap, "{joined:?}");
    assert_eq!(first_text(&mut client).as_deref(), Some(r#"{"gap":true}"#));
    let epoch_keys = redis.cli(&["--scan", "--pattern", "syncws:*epoch*"]);
    assert_eq!(epoch_keys.trim(), "", "a join created {epoch_keys:?}");

    rooms
        .broadcast("empty", &Message::text("first"), None)
        .unwrap();
    let line = first_text(&mut client).unwrap();
    assert!(line.ends_with("|A|first"), "{line}");
}

/// Two processes under one node name both show in a third's presence, under that name.
#[test]
fn presence_lists_processes_sharing_a_node_name_under_that_name() {
    let redis = RedisServer::start();
    let one = node(&redis, "web");
    let two = node(&redis, "web");
    let observer = node(&redis, "observer");
    let (ann, _ann_client) = member();
    let (bob, _bob_client) = member();
    one.join_with("r", ann, Join::new().identity("ann"))
        .unwrap();
    two.join_with("r", bob, Join::new().identity("bob"))
        .unwrap();
    let expected = vec![
        ("web".to_owned(), "ann".to_owned()),
        ("web".to_owned(), "bob".to_owned()),
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        seen = observer.presence("r").unwrap().members;
        if seen == expected {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seen, expected);
    // Each of the two sees the other as well as its own member.
    assert_eq!(one.presence("r").unwrap().members, expected);
}
