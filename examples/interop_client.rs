//! Checks permessage-deflate against another implementation's echo server: negotiates the
//! extension, sends compressible text and binary messages, checks each echo, and counts the bytes
//! on the wire in both directions to prove that both sides really compressed.
//!
//! Run (built with the `deflate` feature): `cargo run --features deflate --example interop_client
//! -- ws://127.0.0.1:8765/`. `scripts/interop_python.sh` runs it against python's `websockets`.
//! Exits 0 when every check passed, 1 otherwise, printing what it saw.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use syncws::{ClientBuilder, CloseCode, Config, Message};

/// A stream that counts the bytes it moves.
struct Counting {
    inner: TcpStream,
    read: usize,
    written: usize,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A JSON-like record: compressible, like most real WebSocket traffic.
fn record(i: usize) -> String {
    format!(
        "{{\"id\":{i},\"user\":\"user-{}\",\"event\":\"position\",\"x\":{},\"y\":{},\"tags\":[\"alpha\",\"beta\"]}}",
        i % 17,
        i * 3 % 1000,
        i * 7 % 1000
    )
}

fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: interop_client ws://HOST:PORT/PATH");
        std::process::exit(2);
    };
    match run(&url) {
        Ok(()) => println!("interop_client: all checks passed"),
        Err(e) => {
            eprintln!("interop_client: FAILED: {e}");
            std::process::exit(1);
        }
    }
}

fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let host = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default();
    let tcp = TcpStream::connect(host)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    let stream = Counting {
        inner: tcp,
        read: 0,
        written: 0,
    };
    // Every message compressed, even empty ones (RFC 7692 §7.2.3.6), to exercise the edge cases.
    let mut config = Config::default();
    config.deflate.threshold = 0;
    let (mut ws, response) = ClientBuilder::new(url).config(config).connect_on(stream)?;
    let header = response.header("sec-websocket-extensions").unwrap_or("");
    println!("server answered Sec-WebSocket-Extensions: {header:?}");
    let params = *ws.deflate().ok_or("permessage-deflate was not agreed")?;
    println!("agreed: {params:?}");
    let handshake = (ws.get_ref().read, ws.get_ref().written);

    let mut payload = 0;
    for i in 0..50 {
        let text: String = (0..40).map(|j| record(i * 40 + j)).collect();
        let message = if i % 5 == 4 {
            Message::Binary(text.into_bytes())
        } else {
            Message::Text(text)
        };
        payload += message.as_bytes().len();
        ws.send(message.clone())?;
        let echo = ws.read()?;
        if echo != message {
            return Err(format!("echo {i} differs from what was sent").into());
        }
    }
    // Two empty messages in a row: with context takeover, nothing new since the last flush.
    for _ in 0..2 {
        ws.send(Message::text(""))?;
        if ws.read()? != Message::text("") {
            return Err("an empty message did not come back empty".into());
        }
    }
    let sent = ws.get_ref().written - handshake.1;
    let received = ws.get_ref().read - handshake.0;
    println!(
        "50 messages and 2 empty ones, {payload} payload bytes; on the wire: {sent} sent, {received} received"
    );
    // JSON like this deflates to well under a third; uncompressed frames would be larger than
    // the payload. So less than half proves each side compressed.
    if sent * 2 > payload {
        return Err("our messages were not compressed".into());
    }
    if received * 2 > payload {
        return Err("the server's messages were not compressed".into());
    }
    let peer_close = ws.close(CloseCode::Normal, "done")?;
    println!("closed; the server answered {peer_close:?}");
    Ok(())
}
