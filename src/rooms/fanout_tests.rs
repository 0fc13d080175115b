//! The fan-out queue seen from inside: its bound in bytes, and what a member over it sees.

use super::*;
use crate::proto::close::CloseCode;
use crate::proto::config::Config;
use crate::rooms::Rooms;
use crate::websocket::WebSocket;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

/// A server-side member whose peer has a small receive buffer and does not read until told;
/// the server's send buffer is small too, so the kernel holds little for it.
fn stalled_pair(listener: &TcpListener) -> (Writer, crate::split::Reader, TcpStream) {
    let addr: SocketAddr = listener.local_addr().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let peer: TcpStream = socket.into();
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    let (server, _) = listener.accept().unwrap();
    socket2::SockRef::from(&server)
        .set_send_buffer_size(8192)
        .unwrap();
    server
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
        .split()
        .unwrap();
    (writer, reader, peer)
}

/// The queue never holds more than its bound plus one message; the broadcast that would take it
/// over drops the member from the room, later broadcasts skip it, and its peer, once it reads,
/// gets whole messages in order and then a 1008 close.
#[test]
fn a_stalled_member_queue_stays_within_its_bound_then_it_is_closed_with_1008() {
    const BOUND: usize = 64 * 1024;
    const PAYLOAD: usize = 1000;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (writer, mut reader, peer) = stalled_pair(&listener);
    // The server's reader takes the peer's close reply.
    let server_reads = std::thread::spawn(move || while reader.read().is_ok() {});
    let room = Room::with_max_backpressure(BOUND);
    room.join(writer.clone());
    let mut most = 0;
    let mut dropped_at = None;
    for i in 0..2_000u32 {
        let mut payload = vec![0u8; PAYLOAD];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        let started = Instant::now();
        let report = room.broadcast(&Message::Binary(payload), None);
        assert!(started.elapsed() < Duration::from_millis(200));
        most = most.max(writer.fanout_backlog());
        assert!(most <= BOUND + PAYLOAD + 16, "queued {most} bytes");
        if report.dropped == 1 {
            dropped_at = Some(i);
            break;
        }
        assert_eq!(report.delivered + report.queued, 1, "{report:?}");
    }
    let dropped_at = dropped_at.expect("the stalled member was never dropped");
    assert!(room.is_empty());
    // What is left is at most the one chunk already handed to the writer.
    assert!(
        writer.fanout_backlog() <= 64 * 1024,
        "the queue is discarded"
    );
    assert_eq!(
        room.broadcast(&Message::text("late"), None),
        Broadcast::default()
    );
    // Now the peer reads: whole messages in order, then the close.
    let mut client = WebSocket::from_stream(peer, Role::Client, Config::default());
    let mut next = 0u32;
    let close = loop {
        match client
            .read()
            .expect("the peer sees a close frame, not an error")
        {
            Message::Binary(data) => {
                assert_eq!(data.len(), PAYLOAD);
                assert_eq!(u32::from_be_bytes(data[..4].try_into().unwrap()), next);
                next += 1;
                assert!(next <= dropped_at, "got a message after the drop");
            }
            Message::Close(frame) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    let close = close.expect("a close code");
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason, crate::split::BACKPRESSURE_REASON);
    drop(client);
    server_reads.join().unwrap();
}

/// A message larger than the bound still reaches a member with nothing queued.
#[test]
fn a_message_over_the_bound_reaches_an_idle_member() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    let (server, _) = listener.accept().unwrap();
    let (_reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
        .split()
        .unwrap();
    let room = Room::with_max_backpressure(10);
    room.join(writer);
    let report = room.broadcast(&Message::text("more than ten bytes"), None);
    assert_eq!(report.dropped, 0, "{report:?}");
    let mut client = WebSocket::from_stream(peer, Role::Client, Config::default());
    assert_eq!(client.read().unwrap(), Message::text("more than ten bytes"));
}

/// Client-side members (masked frames, encoded by each) are queued the same way.
#[test]
fn client_members_get_their_own_masked_frames_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_read_timeout(Some(DEADLINE)).unwrap();
    let (_reader, writer) = WebSocket::from_stream(client, Role::Client, Config::default())
        .split()
        .unwrap();
    let rooms = Rooms::builder().max_backpressure(1 << 20).in_memory();
    rooms.join("r", writer).unwrap();
    for i in 0..100 {
        let report = rooms
            .broadcast("r", &Message::text(format!("{i}")), None)
            .unwrap();
        assert_eq!(report.dropped, 0);
    }
    let mut server = WebSocket::from_stream(server, Role::Server, Config::default());
    for i in 0..100 {
        assert_eq!(server.read().unwrap(), Message::text(format!("{i}")));
    }
}

/// Rooms created by a `Rooms` take its bound (in memory and, in `tests/rooms_redis.rs`,
/// with Redis).
#[test]
fn rooms_pass_their_bound_to_each_room() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let (_reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
        .split()
        .unwrap();
    let rooms = Rooms::builder().max_backpressure(12_345).in_memory();
    rooms.join("a", writer).unwrap();
    let room = rooms.shared.room("a").unwrap();
    assert_eq!(
        crate::rooms::local::lock(&room).room.max_backpressure(),
        12_345
    );
    assert_eq!(
        Room::new().max_backpressure(),
        Room::DEFAULT_MAX_BACKPRESSURE
    );
}
