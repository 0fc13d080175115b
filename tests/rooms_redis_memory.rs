//! The rooms hub without Redis: the same calls and the same offset, replay and gap semantics on
//! an in-process history (what `room_server` runs without `--redis`).

use std::net::{TcpListener, TcpStream};
use std::time::Duration;
use syncws::hub::{Hub, Offset};
use syncws::{Config, Message, Role, WebSocket, Writer};

fn member() -> (Writer, WebSocket<TcpStream>) {
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
    (
        writer,
        WebSocket::from_stream(client, Role::Client, Config::default()),
    )
}

fn texts(socket: &mut WebSocket<TcpStream>, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| match socket.read().unwrap() {
            Message::Text(text) => text.to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn in_memory_rooms_replay_after_an_offset_and_report_gaps() {
    let hub = Hub::builder("solo")
        .format(|d| Message::text(format!("{} {} {}", d.offset, d.node, d.text)))
        .retain_count(5)
        .in_memory();
    let (writer, mut first) = member();
    hub.join("r", writer, "first", None).unwrap();
    for k in 0..8 {
        hub.publish("r", &k.to_string()).unwrap();
    }
    let seen = texts(&mut first, 8);
    assert!(seen.iter().all(|t| t.split(' ').nth(1) == Some("solo")));
    let offset = |k: usize| Offset::parse(seen[k].split(' ').next().unwrap()).unwrap();
    // 3..7 are retained: after 4, replay 5..7, no gap, then live once.
    let (writer, mut late) = member();
    let joined = hub.join("r", writer, "late", Some(&offset(4))).unwrap();
    assert_eq!((joined.gap, joined.replayed), (false, 3));
    hub.publish("r", "live").unwrap();
    let got = texts(&mut late, 4);
    assert_eq!(got[..3], seen[5..]);
    assert!(got[3].ends_with(" live"));
    // After 1: entry 2 was trimmed, so a gap first, then 3..7 and "live".
    let (writer, mut early) = member();
    let joined = hub.join("r", writer, "early", Some(&offset(1))).unwrap();
    assert_eq!((joined.gap, joined.replayed), (true, 5));
    assert_eq!(texts(&mut early, 1), ["{\"gap\":true}"]);
    // Another epoch (e.g. a restarted process): a gap too.
    let (writer, mut stranger) = member();
    let other = Offset::parse("ffff:0-3").unwrap();
    assert!(hub.join("r", writer, "stranger", Some(&other)).unwrap().gap);
    assert_eq!(texts(&mut stranger, 1), ["{\"gap\":true}"]);
    let presence = hub.presence("r").unwrap();
    assert_eq!(presence.count(), 4);
    assert!(presence.members.iter().all(|(node, _)| node == "solo"));
}
