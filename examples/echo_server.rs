//! An echo server: one thread per connection, every text and binary message sent back.
//!
//! Run: `cargo run --example echo_server -- [ADDR]` (default 127.0.0.1:9001), then
//! `cargo run --example echo_client -- ws://127.0.0.1:9001/` in another terminal.

use std::net::{TcpListener, TcpStream};
use syncws::{Error, Message};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("echo server listening on ws://{}/", listener.local_addr()?);
    for (id, stream) in listener.incoming().enumerate() {
        let stream = stream?;
        std::thread::Builder::new()
            .name(format!("ws-conn-{id}"))
            .spawn(move || serve(id, stream))?;
    }
    Ok(())
}

fn serve(id: usize, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let _ = stream.set_nodelay(true);
    // The opening handshake: read the HTTP upgrade request, answer 101 Switching Protocols.
    let mut ws = match syncws::accept(stream) {
        Ok(ws) => ws,
        Err(e) => return println!("#{id} {peer} handshake refused: {e}"),
    };
    println!("#{id} {peer} opened");
    let ending = loop {
        match ws.read() {
            // Pings are answered inside read(); only data is echoed.
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                if let Err(e) = ws.send(msg) {
                    break format!("send failed: {e}");
                }
            }
            // The peer's close: read() has already sent our reply, so the handshake is done.
            Ok(Message::Close(frame)) => {
                break match frame {
                    Some(f) => format!("closed by peer: {f}"),
                    None => "closed by peer without a code".to_owned(),
                };
            }
            Ok(_) => {}
            Err(Error::Protocol(e)) => break format!("failed: {e}"),
            Err(e) => break format!("ended: {e}"),
        }
    };
    // Dropping `ws` closes TCP: the server closes first, as RFC 6455 §7.1.1 asks.
    println!("#{id} {peer} {ending}");
}
