//! RFC 6455 §5.5.2 over a real socket (issue 17, item 13): a ping that arrives after our close
//! frame, before the peer's, is still answered with a pong. Both server APIs close; a raw
//! client pings in between.

mod common;

use common::upgraded;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

/// The server's close frame with code 1000 and no reason (unmasked, RFC 6455 §5.5.1).
const SERVER_CLOSE: [u8; 4] = [0x88, 0x02, 0x03, 0xe8];
/// A masked ping "Hello" from the client (RFC 6455 §5.7).
const PING: [u8; 11] = [
    0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
/// The server's pong with the ping's payload (unmasked).
const PONG: [u8; 7] = [0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// The client's answer to the close: a masked close frame with code 1000.
const CLIENT_CLOSE: [u8; 8] = [0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2];

/// The raw client's side: waits for the server's close, pings, expects the pong, then closes.
fn ping_between_the_closes(addr: SocketAddr) -> TcpStream {
    let mut client = upgraded(addr);
    // A failing server sends nothing more: fail in seconds, not at the common deadline.
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut close = [0u8; 4];
    client.read_exact(&mut close).unwrap();
    assert_eq!(close, SERVER_CLOSE);
    client.write_all(&PING).unwrap();
    let mut pong = [0u8; 7];
    client
        .read_exact(&mut pong)
        .expect("a pong for the ping sent after the server's close");
    assert_eq!(pong, PONG);
    client.write_all(&CLIENT_CLOSE).unwrap();
    client
}

#[test]
fn websocket_close_answers_a_ping_before_the_peers_close() {
    let (addr, server) = common::serve_once(|stream| {
        let mut ws = syncws::accept(stream).unwrap();
        ws.close(1000, "")
    });
    let _client = ping_between_the_closes(addr);
    let peer_close = server.join().unwrap().unwrap();
    assert_eq!(peer_close.map(|f| f.code.as_u16()), Some(1000));
}

#[test]
fn session_close_answers_a_ping_before_the_peers_close() {
    let (done, closed) = mpsc::channel();
    let done = std::sync::Mutex::new(done);
    let handle = syncws::Server::bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |mut session: syncws::Session| {
            let result = session.close(1000, "").map(|f| f.map(|f| f.code.as_u16()));
            let _ = done.lock().unwrap().send(result.map_err(|e| e.to_string()));
        })
        .unwrap();
    let _client = ping_between_the_closes(handle.local_addr());
    let result = closed.recv_timeout(common::DEADLINE).unwrap();
    handle.shutdown();
    assert_eq!(result, Ok(Some(1000)));
}
