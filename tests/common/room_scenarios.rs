//! Scenarios every rooms engine must pass, each run in memory (tests/rooms_redis_memory.rs)
//! and through a real redis-server (tests/rooms_redis.rs): the same calls, the same answers.
#![allow(dead_code)]

use super::room_members::{body, member, piped, stalled_member, texts};
use std::thread;
use std::time::{Duration, Instant};
use syncws::Message;
use syncws::rooms::{Join, Offset, Rooms, RoomsBuilder, RoomsError};

/// Builds a `Rooms` on the engine under test from the given settings.
pub type Engine<'a> = &'a dyn Fn(RoomsBuilder) -> Rooms;

/// A binary broadcast with `except` reaches every member but the sender, byte for byte; the
/// sender's next message is the next broadcast without `except`.
pub fn binary_broadcast_skips_the_sender(engine: Engine) {
    let rooms = engine(Rooms::builder());
    let (sender, mut sender_client) = member();
    let (other, mut other_client) = member();
    rooms.join("r", sender.clone()).unwrap();
    rooms.join("r", other).unwrap();
    let payload: Vec<u8> = (0..=255u8).chain([0, 0xff, 0x80]).collect();
    let report = rooms
        .broadcast("r", &Message::binary(payload.clone()), Some(&sender))
        .unwrap();
    if report.relayed {
        assert_eq!((report.delivered, report.queued, report.dropped), (0, 0, 0));
    } else {
        assert_eq!(report.delivered + report.queued, 1, "{report:?}");
    }
    rooms
        .broadcast("r", &Message::text("to all"), None)
        .unwrap();
    assert_eq!(other_client.read().unwrap(), Message::Binary(payload));
    assert_eq!(texts(&mut other_client, 1), ["to all"]);
    assert_eq!(
        texts(&mut sender_client, 1),
        ["to all"],
        "the sender got its own"
    );
}

/// Pings, pongs and closes are not broadcast: `NotData`, and nobody receives anything.
pub fn control_messages_are_refused(engine: Engine) {
    let rooms = engine(Rooms::builder());
    let (writer, mut client) = member();
    rooms.join("r", writer).unwrap();
    for control in [
        Message::Ping(b"p".to_vec()),
        Message::Pong(Vec::new()),
        Message::Close(None),
    ] {
        assert_eq!(
            rooms.broadcast("r", &control, None),
            Err(RoomsError::NotData)
        );
    }
    rooms.broadcast("r", &Message::text("data"), None).unwrap();
    assert_eq!(texts(&mut client, 1), ["data"]);
}

/// `Join` carries the identity presence shows and the offset a replay starts after.
pub fn join_builder_sets_identity_and_replay(engine: Engine) {
    let rooms = engine(Rooms::builder().node("n1").format(piped));
    let (writer, mut first) = member();
    let joined = rooms
        .join_with("r", writer, Join::new().identity("ann"))
        .unwrap();
    assert_eq!((joined.gap, joined.replayed), (false, 0));
    for text in ["a", "b", "c"] {
        rooms.broadcast("r", &Message::text(text), None).unwrap();
    }
    let seen = texts(&mut first, 3);
    assert!(seen[0].ends_with("|n1|a"), "{seen:?}");
    let offset = Offset::parse(seen[0].split('|').next().unwrap()).unwrap();
    let (writer, mut late) = member();
    let joined = rooms
        .join_with("r", writer, Join::new().identity("bob").since(offset))
        .unwrap();
    assert_eq!((joined.gap, joined.replayed), (false, 2));
    assert_eq!(texts(&mut late, 2), seen[1..]);
    let presence = rooms.presence("r").unwrap();
    assert_eq!(
        presence.members,
        [
            ("n1".to_owned(), "ann".to_owned()),
            ("n1".to_owned(), "bob".to_owned())
        ]
    );
    assert_eq!(rooms.count("r"), 2);
    assert_eq!(rooms.names(), ["r"]);
    // A join without an identity shows with an empty one; `Join::since(None)` replays nothing.
    let (writer, _anonymous) = member();
    let joined = rooms
        .join_with("r", writer, Join::new().since(None))
        .unwrap();
    assert_eq!(joined.replayed, 0);
    assert_eq!(rooms.presence("r").unwrap().count(), 3);
}

/// `RoomsBuilder::max_backpressure` bounds each member's queue: a member that never reads is
/// closed and leaves the room, the others get every message.
pub fn max_backpressure_bounds_each_member(engine: Engine) {
    let rooms = engine(Rooms::builder().max_backpressure(8 * 1024));
    let (stalled, _stalled_client) = stalled_member();
    let (reader, mut reader_client) = member();
    rooms.join("r", stalled).unwrap();
    rooms.join("r", reader).unwrap();
    let chunk = "x".repeat(4096);
    for _ in 0..100 {
        rooms
            .broadcast("r", &Message::text(chunk.clone()), None)
            .unwrap();
    }
    assert_eq!(texts(&mut reader_client, 100).len(), 100);
    let deadline = Instant::now() + Duration::from_secs(10);
    while rooms.count("r") != 1 {
        assert!(Instant::now() < deadline, "the stalled member stayed");
        thread::sleep(Duration::from_millis(20));
    }
}

/// What `format` gets: the message as broadcast, text or binary, with its node.
pub fn format_sees_the_message_as_broadcast(engine: Engine) {
    let rooms = engine(Rooms::builder().node("n1").format(|d| {
        let kind = if matches!(d.message, Message::Binary(_)) {
            "b"
        } else {
            "t"
        };
        Message::text(format!("{kind}:{}:{}", d.node, body(d)))
    }));
    let (writer, mut client) = member();
    rooms.join("r", writer).unwrap();
    rooms
        .broadcast("r", &Message::binary(*b"bin"), None)
        .unwrap();
    rooms.broadcast("r", &Message::text("txt"), None).unwrap();
    assert_eq!(texts(&mut client, 2), ["b:n1:bin", "t:n1:txt"]);
}
