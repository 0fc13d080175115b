//! The inspector's second phase: raw bytes relayed both ways, every frame dissected on its way.
//!
//! The bytes are forwarded untouched (never decoded and re-encoded), so the inspector is
//! transparent: masks, fragment boundaries and compressed frames reach the other side exactly
//! as they were sent. The printing is a frame hook, the same kind a `WebSocket` takes; here
//! the pumps' `FrameScanner`s call it.

use super::handshake;
use super::pump::pump;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use syncws::proto::dissect::Dissector;
use syncws::proto::{Direction, FrameObserver};

/// How long each side may take to send its handshake head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the dissections go; each frame is written whole, under the lock.
pub type Output = Arc<Mutex<dyn Write + Send>>;

/// Inspects one client connection: connects to `upstream` (a `ws://` URL), forwards the
/// handshake, then relays until both sides have closed TCP. Blocks until then.
pub fn inspect(id: usize, mut client: TcpStream, upstream: &str, out: Output) -> io::Result<()> {
    let url = syncws::WsUrl::parse(upstream).map_err(io::Error::other)?;
    let mut server = match TcpStream::connect(url.socket_addr()) {
        Ok(server) => server,
        Err(e) => {
            // What a gateway answers when it cannot reach the server behind it. The request is
            // read first: closing a socket with unread data would reset the connection.
            let _ = client.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = client.read(&mut [0u8; 16 << 10]);
            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
            write_out(
                &out,
                &format!("#{id} cannot reach {upstream}: {e}; answered 502\n"),
            );
            return Err(e);
        }
    };
    // A peer that stalls in the handshake must not hold a thread forever.
    for stream in [&client, &server] {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    }
    let peer = client.peer_addr()?;
    let mut log = format!("#{id} opening handshake, {peer} → {upstream}\n");
    let upgrade = handshake::forward(&mut client, &mut server, &url.host_header(), &mut log);
    write_out(&out, &log);
    let upgrade = upgrade?;
    // From here on the peers decide how long to be silent: no timeouts, as without a proxy.
    for stream in [&client, &server] {
        stream.set_read_timeout(None)?;
    }
    if !upgrade.switched {
        write_out(
            &out,
            &format!("#{id} not upgraded; relaying the rest unexamined\n"),
        );
    }
    // Time is counted from the moment the connection opened (the 101 went through).
    let opened = Instant::now();
    // Directions are the client's, as browsers' developer tools show them: ↑ sent, ↓ received.
    let hook = |who: &'static str| -> Option<FrameObserver> {
        let out = Arc::clone(&out);
        // One dissector per direction: it remembers what a continuation frame continues.
        let dissector = Mutex::new(Dissector::new());
        let hook: FrameObserver = Arc::new(move |direction: Direction, header, payload| {
            let text = match dissector.lock() {
                Ok(mut dissector) => dissector.dissect(header, payload),
                Err(_) => syncws::proto::dissect::dissect(header, payload),
            };
            let elapsed = opened.elapsed().as_secs_f64();
            let arrow = direction.arrow();
            write_out(
                &out,
                &format!("#{id} +{elapsed:.3}s {arrow} {who}\n{text}\n"),
            );
        });
        upgrade.switched.then_some(hook)
    };
    let to_server = hook("client → server");
    let to_client = hook("server → client");

    let (client_in, server_in) = (client.try_clone()?, server.try_clone()?);
    let from_client = upgrade.from_client;
    let up = std::thread::Builder::new()
        .name(format!("inspect-{id}-up"))
        .spawn(move || pump(client_in, server, Direction::Sent, to_server, &from_client))?;
    // This thread relays the other way; each pump stops at its source's end of stream or error.
    let down = pump(
        server_in,
        client,
        Direction::Received,
        to_client,
        &upgrade.from_server,
    );
    let up = up.join().unwrap_or(Ok(()));
    write_out(&out, &format!("#{id} both sides closed TCP\n"));
    down.and(up)
}

pub fn write_out(out: &Output, text: &str) {
    if let Ok(mut out) = out.lock() {
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}
