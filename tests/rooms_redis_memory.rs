//! Rooms in memory (what `Rooms::new()` and `room_server` without `--redis` run): the scenarios
//! every engine passes (tests/common/room_scenarios.rs, also run through Redis in
//! tests/rooms_redis.rs), and the exact offset, replay and gap rules of an in-process history.

#[path = "common/room_members.rs"]
mod room_members;
#[path = "common/room_scenarios.rs"]
mod room_scenarios;

use room_members::{body, member, texts};
use syncws::Message;
use syncws::rooms::{Join, Offset, Rooms, RoomsBuilder};

fn in_memory(builder: RoomsBuilder) -> Rooms {
    builder.in_memory()
}

#[test]
fn binary_broadcast_with_except_in_memory() {
    room_scenarios::binary_broadcast_skips_the_sender(&in_memory);
}

#[test]
fn control_messages_are_refused_in_memory() {
    room_scenarios::control_messages_are_refused(&in_memory);
}

#[test]
fn join_builder_in_memory() {
    room_scenarios::join_builder_sets_identity_and_replay(&in_memory);
}

#[test]
fn max_backpressure_in_memory() {
    room_scenarios::max_backpressure_bounds_each_member(&in_memory);
}

#[test]
fn format_in_memory() {
    room_scenarios::format_sees_the_message_as_broadcast(&in_memory);
}

/// `Rooms::new()`: node "local", the message as broadcast, the counts of this call's fan-out.
#[test]
fn rooms_new_broadcasts_the_message_itself_and_counts_the_fan_out() {
    let rooms = Rooms::new();
    assert_eq!(rooms.node(), "local");
    let (a, mut client_a) = member();
    let (b, mut client_b) = member();
    rooms.join("r", a.clone()).unwrap();
    rooms.join("r", b.clone()).unwrap();
    rooms.join("r", b.clone()).unwrap();
    assert_eq!(rooms.count("r"), 2, "joining twice has no effect");
    let report = rooms.broadcast("r", &Message::text("hi"), None).unwrap();
    assert_eq!(report.delivered + report.queued, 2);
    assert!(!report.relayed && report.dropped == 0);
    assert_eq!(texts(&mut client_a, 1), ["hi"]);
    assert_eq!(texts(&mut client_b, 1), ["hi"]);
    assert!(rooms.leave("r", &a));
    assert!(!rooms.leave("r", &a));
    assert!(rooms.leave("r", &b));
    assert_eq!(rooms.count("r"), 0);
    assert!(rooms.names().is_empty(), "an emptied room is not listed");
    assert_eq!(rooms.backlog(), 0);
    let nobody = rooms.broadcast("empty", &Message::text("x"), None).unwrap();
    assert_eq!(nobody.delivered + nobody.queued + nobody.dropped, 0);
}

#[test]
fn in_memory_rooms_replay_after_an_offset_and_report_gaps() {
    let rooms = Rooms::builder()
        .node("solo")
        .format(|d| Message::text(format!("{} {} {}", d.offset, d.node, body(d))))
        .retain(5)
        .in_memory();
    let (writer, mut first) = member();
    rooms
        .join_with("r", writer, Join::new().identity("first"))
        .unwrap();
    for k in 0..8 {
        rooms
            .broadcast("r", &Message::text(k.to_string()), None)
            .unwrap();
    }
    let seen = texts(&mut first, 8);
    assert!(seen.iter().all(|t| t.split(' ').nth(1) == Some("solo")));
    let offset = |k: usize| Offset::parse(seen[k].split(' ').next().unwrap()).unwrap();
    let join = |name: &str, since: Offset| {
        let (writer, client) = member();
        let joined = rooms
            .join_with("r", writer, Join::new().identity(name).since(since))
            .unwrap();
        (joined, client)
    };
    // 3..7 are retained: after 4, replay 5..7, no gap, then live once.
    let (joined, mut late) = join("late", offset(4));
    assert_eq!((joined.gap, joined.replayed), (false, 3));
    rooms.broadcast("r", &Message::text("live"), None).unwrap();
    let got = texts(&mut late, 4);
    assert_eq!(got[..3], seen[5..]);
    assert!(got[3].ends_with(" live"));
    // After 1: entries 2 and 3 were trimmed, so a gap first, then the five retained (4..7
    // and "live").
    let (joined, mut early) = join("early", offset(1));
    assert_eq!((joined.gap, joined.replayed), (true, 5));
    assert_eq!(texts(&mut early, 1), ["{\"gap\":true}"]);
    // Another epoch (e.g. a restarted process): a gap too.
    let (joined, mut stranger) = join("stranger", Offset::parse("ffff:0-3").unwrap());
    assert!(joined.gap);
    assert_eq!(texts(&mut stranger, 1), ["{\"gap\":true}"]);
    let presence = rooms.presence("r").unwrap();
    assert_eq!(presence.count(), 4);
    assert!(presence.members.iter().all(|(node, _)| node == "solo"));
}

/// `retain(0)`: no history, as a plain fan-out; a replay request is a gap unless nothing was
/// missed.
#[test]
fn retain_zero_keeps_no_history() {
    let rooms = Rooms::builder()
        .retain(0)
        .format(|d| Message::text(format!("{} {}", d.offset, body(d))))
        .in_memory();
    let (writer, mut client) = member();
    rooms.join("r", writer).unwrap();
    rooms.broadcast("r", &Message::text("a"), None).unwrap();
    rooms.broadcast("r", &Message::text("b"), None).unwrap();
    let seen = texts(&mut client, 2);
    let at = |k: usize| Offset::parse(seen[k].split(' ').next().unwrap()).unwrap();
    let (writer, _c) = member();
    let joined = rooms
        .join_with("r", writer, Join::new().since(at(0)))
        .unwrap();
    assert_eq!((joined.gap, joined.replayed), (true, 0));
    let (writer, _c) = member();
    let joined = rooms
        .join_with("r", writer, Join::new().since(at(1)))
        .unwrap();
    assert_eq!((joined.gap, joined.replayed), (false, 0));
}
