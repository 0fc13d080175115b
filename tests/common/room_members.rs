//! Room members for the rooms tests: the server side's writer (given to the rooms) and the
//! client side that reads what the room delivers. Loopback, bounded waits.
#![allow(dead_code)]

use socket2::{Domain, SockRef, Socket, Type};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;
use syncws::rooms::Delivery;
use syncws::{Config, Message, Role, WebSocket, Writer};

/// A member that reads (within 20 s per message).
pub fn member() -> (Writer, WebSocket<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (server, _) = listener.accept().unwrap();
    let (mut reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
        .split()
        .unwrap();
    // The server's reader takes the client's control frames.
    thread::spawn(move || while reader.read().is_ok() {});
    (
        writer,
        WebSocket::from_stream(client, Role::Client, Config::default()),
    )
}

/// A member whose client never reads: small receive buffer on the client, small send buffer on
/// the server side, a server's default write timeout (10 s).
pub fn stalled_member() -> (Writer, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let client: TcpStream = socket.into();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (server, _) = listener.accept().unwrap();
    SockRef::from(&server).set_send_buffer_size(8192).unwrap();
    server
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
        .split()
        .unwrap();
    thread::spawn(move || while reader.read().is_ok() {});
    (writer, client)
}

/// The next `count` messages, each a text.
pub fn texts(socket: &mut WebSocket<TcpStream>, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| match socket.read().unwrap() {
            Message::Text(text) => text.to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// The next text, or `None` on anything else (an error, a timeout, a close).
pub fn first_text(socket: &mut WebSocket<TcpStream>) -> Option<String> {
    match socket.read() {
        Ok(Message::Text(text)) => Some(text.to_string()),
        _ => None,
    }
}

/// A delivery's message as text (binary read as UTF-8, lossily).
pub fn body(delivery: &Delivery) -> String {
    match &delivery.message {
        Message::Text(text) => text.clone(),
        other => String::from_utf8_lossy(other.as_bytes()).into_owned(),
    }
}

/// Formats deliveries as `offset|node|text`.
pub fn piped(delivery: &Delivery) -> Message {
    Message::text(format!(
        "{}|{}|{}",
        delivery.offset,
        delivery.node,
        body(delivery)
    ))
}
