//! Step 2: the protocol by hand. A client written with nothing but a `TcpStream` and the frame
//! functions: the HTTP upgrade, the accept-key check, one masked message, and the close
//! handshake — what `syncws::connect` and `WebSocket` do for you.
//!
//! Run: `cargo run --example echo_server` in one terminal, then
//! `cargo run --example raw_client -- ws://127.0.0.1:9001/ "some text"` in another.

use std::io::{Read, Write};
use std::net::TcpStream;
use syncws::proto::frame::{Decoded, Frame, OpCode};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:9001/".to_owned());
    let text = args.next().unwrap_or_else(|| "Hello".to_owned());
    let url = syncws::WsUrl::parse(&url)?;
    let mut stream = TcpStream::connect(url.socket_addr())?;

    // The upgrade request (RFC 6455 §4.1). The key is 16 random bytes in base64.
    let key = syncws::proto::handshake::generate_key();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        url.target,
        url.host_header()
    );
    print!("{request}");
    stream.write_all(request.as_bytes())?;

    // The response head ends with an empty line. (Reading byte by byte keeps the example
    // short; anything after the head would already be a frame.)
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        if stream.read(&mut byte)? == 0 {
            return Err("the server closed the connection during the handshake".into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head)?;
    print!("{head}");
    if !head.starts_with("HTTP/1.1 101") {
        return Err("the server did not switch protocols".into());
    }
    // The server proves it read our request: SHA-1 of our key and a fixed GUID, in base64.
    let expected = syncws::proto::handshake::accept_key(&key);
    let accept = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|(_, value)| value.trim())
        .ok_or("no Sec-WebSocket-Accept")?;
    println!("accept key: got {accept}, expected {expected}");
    if accept != expected {
        return Err("wrong accept key".into());
    }

    // A client must mask every frame, with a new random key each time (RFC 6455 §5.3).
    let frame = Frame::new(OpCode::Text, text).masked(rand::random());
    stream.write_all(&frame.to_bytes())?;
    let reply = read_frame(&mut stream)?;
    println!(
        "server replied: {}",
        String::from_utf8_lossy(&reply.payload)
    );

    // Closing: send a close frame with code 1000, then wait for the server's close frame,
    // then for the server to close TCP (the server closes first, RFC 6455 §7.1.1).
    let close = Frame::new(OpCode::Close, 1000u16.to_be_bytes()).masked(rand::random());
    stream.write_all(&close.to_bytes())?;
    loop {
        let frame = read_frame(&mut stream)?;
        if frame.header.opcode == OpCode::Close {
            let code = frame
                .payload
                .get(..2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            println!("server closed with {code:?}");
            break;
        }
    }
    let end = stream.read(&mut [0u8; 16])?;
    println!("TCP closed by the server: {}", end == 0);
    Ok(())
}

/// Reads until one whole frame is buffered. (A real client keeps the bytes after it.)
fn read_frame(stream: &mut TcpStream) -> Result<Frame> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Decoded::Complete(frame, _) = Frame::decode(&buf, 1 << 20)? {
            return Ok(frame);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err("connection closed mid-frame".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
