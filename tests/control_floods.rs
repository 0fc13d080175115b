//! Control frames a peer sends for nothing, against both drivers (a `Server`'s split reader and
//! the unsplit `WebSocket` of `accept`):
//! - RFC 6455 §5.5.3: a batch of pings that arrived together is answered once, for the latest,
//!   not with a pong write per ping;
//! - a flood past `Config::max_control_frames_per_second` fails the connection with 1008.
mod common;

use common::{DEADLINE, echo_session, read_to_close, upgraded};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use syncws::proto::frame::{FrameHeader, OpCode, encode_frame};
use syncws::{Server, ServerHandle};

/// A masked client frame.
fn client_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut header = FrameHeader::new(opcode, payload.len() as u64);
    header.mask = Some([9, 8, 7, 6]);
    let mut out = Vec::new();
    encode_frame(&header, payload, &mut out);
    out
}

/// `count` pings in one buffer, the n-th carrying `n` as its payload.
fn pings(count: u32) -> Vec<u8> {
    (0..count)
        .flat_map(|n| client_frame(OpCode::Ping, &n.to_be_bytes()))
        .collect()
}

/// Reads one unmasked server frame: its opcode and payload.
fn read_frame(raw: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    raw.read_exact(&mut head).expect("a frame header");
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            raw.read_exact(&mut ext).unwrap();
            u16::from_be_bytes(ext) as usize
        }
        127 => {
            let mut ext = [0u8; 8];
            raw.read_exact(&mut ext).unwrap();
            u64::from_be_bytes(ext) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    raw.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload)
}

/// A `Server` echoing data: its connections read through the split reader.
fn split_server() -> (SocketAddr, ServerHandle) {
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(echo_session)
        .unwrap();
    (server.local_addr(), server)
}

/// One connection served by the unsplit driver (`syncws::accept`), echoing data.
fn unsplit_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        let mut ws = syncws::accept(stream).unwrap();
        while let Ok(message) = ws.read() {
            if message.is_data() && ws.send(message).is_err() {
                break;
            }
        }
        // Close as a careful server does: our side first, then drain, so that unread input
        // (the rest of a flood) does not make the kernel reset the connection and discard the
        // close frame before the client has read it.
        let mut stream = ws.into_inner();
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    });
    addr
}

/// 200 pings in one write, then a text message: the pongs that come before its echo.
fn pongs_for_a_batch(addr: SocketAddr) -> Vec<Vec<u8>> {
    let mut raw = upgraded(addr);
    let mut bytes = pings(200);
    bytes.extend(client_frame(OpCode::Text, b"end"));
    raw.write_all(&bytes).unwrap();
    let mut pongs = Vec::new();
    loop {
        match read_frame(&mut raw) {
            (0xA, payload) => pongs.push(payload),
            (0x1, payload) => {
                assert_eq!(payload, b"end");
                return pongs;
            }
            (opcode, payload) => panic!("unexpected frame {opcode:#x}: {payload:?}"),
        }
    }
}

fn assert_answered_once_for_the_latest(pongs: &[Vec<u8>]) {
    // Up to 32 pongs in a row are sent one for one, then the latest replaces the last; the 200
    // pings may straddle a read or two. Never one pong per ping.
    assert!(
        !pongs.is_empty() && pongs.len() <= 3 * 33,
        "{} pongs for 200 pings",
        pongs.len()
    );
    assert_eq!(pongs.last().unwrap(), &199u32.to_be_bytes());
}

#[test]
fn a_batch_of_pings_gets_one_pong_for_the_latest_from_a_server() {
    let (addr, server) = split_server();
    assert_answered_once_for_the_latest(&pongs_for_a_batch(addr));
    server.shutdown();
}

#[test]
fn a_batch_of_pings_gets_one_pong_for_the_latest_from_an_unsplit_connection() {
    assert_answered_once_for_the_latest(&pongs_for_a_batch(unsplit_server()));
}

/// Floods pings past the default bound (1,000 at once) and returns the close code received.
fn close_code_for_a_flood(addr: SocketAddr) -> u16 {
    let mut raw = upgraded(addr);
    // The server may fail the connection before it has read them all: a reset is fine here.
    let _ = raw.write_all(&pings(5_000));
    let rest = read_to_close(&mut raw);
    // Skip the pongs (unmasked, 4-byte payloads: 6 bytes each) to the close frame.
    let mut at = 0;
    while at + 2 <= rest.len() {
        let (opcode, len) = (rest[at] & 0x0f, (rest[at + 1] & 0x7f) as usize);
        if opcode == 0x8 {
            assert!(len >= 2, "a close frame without a code");
            return u16::from_be_bytes([rest[at + 2], rest[at + 3]]);
        }
        at += 2 + len;
    }
    panic!("no close frame in {} bytes", rest.len());
}

#[test]
fn a_ping_flood_fails_a_server_connection_with_1008() {
    let (addr, server) = split_server();
    assert_eq!(close_code_for_a_flood(addr), 1008);
    server.shutdown();
}

#[test]
fn a_ping_flood_fails_an_unsplit_connection_with_1008() {
    assert_eq!(close_code_for_a_flood(unsplit_server()), 1008);
}
