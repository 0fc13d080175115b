//! Loopback helpers shared by the integration tests: port 0, one connection, bounded waits.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

/// The longest any test waits on a socket before failing instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Listens on 127.0.0.1:0 and runs `handler` on the first accepted connection, on a thread.
pub fn serve_once<T: Send + 'static>(
    handler: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        handler(stream)
    });
    (addr, handle)
}

/// A raw TCP connection with deadlines.
pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.set_write_timeout(Some(DEADLINE)).unwrap();
    stream
}

/// Reads until the peer closes (or the deadline), returning everything.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// A valid upgrade request with `extra` header lines (each ending in \r\n) added.
pub fn upgrade_request(extra: &str) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Sends `request` raw and returns the status code of the answer and the whole answer.
pub fn status_of(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = raw_connect(addr);
    stream.write_all(request).unwrap();
    let answer = String::from_utf8_lossy(&read_to_close(&mut stream)).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// A server handler that echoes every text and binary message until the connection ends.
pub fn echo_session(mut session: syncws::Session) {
    while let Ok(msg) = session.read() {
        if msg.is_data() && session.send(msg).is_err() {
            break;
        }
    }
}

/// A raw TCP connection upgraded by hand: the request sent, the 101 head read byte by byte (so
/// nothing after it is consumed) and checked.
pub fn upgraded(addr: SocketAddr) -> TcpStream {
    let mut raw = raw_connect(addr);
    raw.write_all(upgrade_request("").as_bytes()).unwrap();
    read_switching_head(&mut raw);
    raw
}

/// Reads an HTTP head byte by byte up to its blank line, so nothing after it is consumed.
pub fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(
            stream.read(&mut byte).unwrap() == 1,
            "closed during the head"
        );
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Reads the server's answer head (see [`read_head`]) and checks that it is a 101.
pub fn read_switching_head(stream: &mut TcpStream) {
    let head = read_head(stream);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

/// Reads an upgrade request's head (see [`read_head`]); returns the accept key for its
/// `Sec-WebSocket-Key` (RFC 6455 §4.2.2), the field name matched in any case.
pub fn read_upgrade_request(stream: &mut TcpStream) -> String {
    let head = read_head(stream);
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("a Sec-WebSocket-Key field");
    syncws::proto::handshake::accept_key(&key)
}

/// A 101 answer head with `accept` and `extra` header lines (each ending in \r\n).
pub fn switching_protocols(accept: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
}

/// The server's side of a handshake done by hand: reads the request head (nothing after it) and
/// answers 101.
pub fn answer_upgrade(stream: &mut TcpStream) {
    let accept = read_upgrade_request(stream);
    stream
        .write_all(switching_protocols(&accept, "").as_bytes())
        .unwrap();
}

/// Accepts one connection on `listener`, with deadlines, and upgrades it by hand
/// ([`answer_upgrade`]): a server that speaks WebSocket frames raw from here on.
pub fn raw_accept(listener: &TcpListener) -> TcpStream {
    let (mut stream, _) = listener.accept().expect("accept");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.set_write_timeout(Some(DEADLINE)).unwrap();
    answer_upgrade(&mut stream);
    stream
}
