//! Checks the client against another implementation's server, case by case: message sizes around
//! every length-encoding boundary, text cut inside characters, fragments both ways, pings both
//! ways, closes from either side, and a peer that sends invalid UTF-8.
//!
//! The server must offer four paths (`scripts/interop_node.sh` sets one up with npm's `ws`):
//! - `/echo` sends every data message back as it came;
//! - `/fragmented` sends every data message back in several fragments;
//! - `/server-closes` sends the text `bye soon`, then closes with 4001 `server closing`;
//! - `/bad-utf8` sends a text message that is not UTF-8;
//!
//! and ping each connection once, right after the handshake, with the payload `ping from the
//! peer`. What only the server can see (our pongs, our close codes) the server checks.
//!
//! Run: `cargo run --features deflate --example interop_checks -- ws://127.0.0.1:PORT
//! [--no-deflate]`. Prints one line per check; exits 0 when all passed, 1 otherwise.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use syncws::proto::frame::OpCode;
use syncws::{ClientBuilder, CloseCode, Config, DataKind, Error, Message, NetStream, WebSocket};

type Outcome = Result<(), Box<dyn std::error::Error>>;

/// A check: the URL of its path on the server, and whether to offer permessage-deflate.
type Check = fn(&str, bool) -> Outcome;

/// The payload the peer pings with.
const PEER_PING: &[u8] = b"ping from the peer";

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(base) = args.next() else {
        eprintln!("usage: interop_checks ws://HOST:PORT [--no-deflate]");
        std::process::exit(2);
    };
    let deflate = match args.next().as_deref() {
        None => true,
        Some("--no-deflate") => false,
        Some(other) => {
            eprintln!("unknown argument {other:?}");
            std::process::exit(2);
        }
    };
    let base = base.trim_end_matches('/');
    let checks: [(&str, Check); 4] = [
        ("echo", echo),
        ("fragmented", fragmented),
        ("server-closes", server_closes),
        ("bad-utf8", bad_utf8),
    ];
    let mut failed = 0;
    for (path, check) in checks {
        match check(&format!("{base}/{path}"), deflate) {
            Ok(()) => println!("interop_checks: /{path}: PASS"),
            Err(e) => {
                println!("interop_checks: /{path}: FAIL: {e}");
                failed += 1;
            }
        }
    }
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// One connection to the peer, with what arrived besides data.
struct Peer {
    ws: WebSocket<NetStream>,
    /// Pings the peer sent (each already answered by `read`).
    pings: Vec<Vec<u8>>,
    /// Data frames received (first fragments and continuations), counted by the frame hook.
    data_frames: Arc<AtomicUsize>,
    /// Their payload bytes as on the wire (compressed, if the peer compressed).
    data_bytes: Arc<AtomicUsize>,
}

impl Peer {
    fn open(url: &str, deflate: bool) -> Result<Peer, Box<dyn std::error::Error>> {
        let mut config = Config::default();
        config.deflate.enabled = deflate;
        // Small fragments for `send_stream`, so that one message goes out as many frames.
        config.write_fragment_size = 1000;
        let bound = Some(Duration::from_secs(10));
        let (mut ws, _) = ClientBuilder::new(url)
            .config(config)
            .without_heartbeat()
            .read_timeout(bound)
            .write_timeout(bound)
            .connect()?;
        let data_frames = Arc::new(AtomicUsize::new(0));
        let data_bytes = Arc::new(AtomicUsize::new(0));
        let (frames, bytes) = (Arc::clone(&data_frames), Arc::clone(&data_bytes));
        // The hook sees each frame's header as on the wire: a compressed frame's length is what
        // the peer's compressor produced.
        ws.set_frame_hook(Some(Arc::new(move |direction, header, _| {
            let data = matches!(
                header.opcode,
                OpCode::Text | OpCode::Binary | OpCode::Continuation
            );
            if data && direction == syncws::proto::Direction::Received {
                frames.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(header.payload_len as usize, Ordering::Relaxed);
            }
        })));
        Ok(Peer {
            ws,
            pings: Vec::new(),
            data_frames,
            data_bytes,
        })
    }

    /// The next message that is not a ping; pings are recorded.
    fn read(&mut self) -> Result<Message, Error> {
        loop {
            match self.ws.read()? {
                Message::Ping(payload) => self.pings.push(payload),
                message => return Ok(message),
            }
        }
    }

    /// Sends `message` and checks that the same message comes back.
    fn round_trip(&mut self, message: Message) -> Outcome {
        let (kind, len) = (kind_name(&message), message.len());
        self.ws.send(message.clone())?;
        let echo = self.read()?;
        if echo != message {
            return Err(format!(
                "a {len}-byte {kind} message came back as {} {} bytes",
                kind_name(&echo),
                echo.len()
            )
            .into());
        }
        Ok(())
    }

    /// Checks that exactly the peer's one ping arrived, before `close` sends our close frame.
    fn check_peer_ping(&self) -> Outcome {
        if self.pings != [PEER_PING] {
            return Err(format!("expected the peer's one ping, saw {:?}", self.pings).into());
        }
        Ok(())
    }
}

fn kind_name(message: &Message) -> &'static str {
    match message {
        Message::Text(_) => "text",
        Message::Binary(_) => "binary",
        Message::Ping(_) => "ping",
        Message::Pong(_) => "pong",
        Message::Close(_) => "close",
        _ => "other",
    }
}

/// Text of about `len` bytes mixing 1- to 4-byte characters, so that any cut into pieces
/// falls inside characters too.
fn mixed_text(len: usize) -> String {
    const SAMPLE: &str = "syncws ĥéłłø wörld — κόσμε, мир, 世界 🌍🚀 ";
    let mut text = String::with_capacity(len + 4);
    for c in SAMPLE.chars().cycle() {
        if text.len() + c.len_utf8() > len {
            break;
        }
        text.push(c);
    }
    text
}

/// Incompressible bytes (xorshift), so deflate cannot hide a length bug.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ len as u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Every length encoding (RFC 6455 §5.2: 7-bit up to 125, 16-bit up to 65535, then 64-bit) at
/// and around its edges, as text and as binary; a streamed message; pings both ways; our close.
fn echo(url: &str, deflate: bool) -> Outcome {
    let mut peer = Peer::open(url, deflate)?;
    // Whether the server should have accepted the offer is for the server's side to judge.
    let agreed = peer.ws.deflate().copied();
    if !deflate && agreed.is_some() {
        return Err(format!("permessage-deflate agreed without an offer: {agreed:?}").into());
    }
    println!("interop_checks: /echo: permessage-deflate agreed: {agreed:?}");
    for len in [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20] {
        peer.round_trip(Message::Text(mixed_text(len)))?;
        peer.round_trip(Message::Binary(noise(len)))?;
    }
    // A compressible megabyte: with permessage-deflate the echo must arrive much smaller.
    let before = peer.data_bytes.load(Ordering::Relaxed);
    peer.round_trip(Message::Text(
        "{\"event\":\"position\",\"x\":1} ".repeat(40_000),
    ))?;
    let received = peer.data_bytes.load(Ordering::Relaxed) - before;
    if agreed.is_some() && received > 1 << 18 {
        return Err(format!("a 1 MiB compressible echo took {received} bytes").into());
    }
    // A streamed message in 1000-byte fragments, written in 777-byte pieces: our fragments cut
    // characters, and the peer sees one message.
    let text = mixed_text(100_000);
    let mut writer = peer.ws.send_stream(DataKind::Text)?;
    for piece in text.as_bytes().chunks(777) {
        writer.write_all(piece)?;
    }
    writer.finish()?;
    if peer.read()? != Message::Text(text) {
        return Err("the streamed text came back different".into());
    }
    peer.ws.send(Message::Ping(b"ping from syncws".to_vec()))?;
    match peer.read()? {
        Message::Pong(payload) if payload == b"ping from syncws" => {}
        other => return Err(format!("expected our pong, got {other:?}").into()),
    }
    peer.check_peer_ping()?;
    // RFC 6455 §5.5.1: the peer echoes the status code.
    let answer = peer.ws.close(CloseCode::Other(4000), "bye from syncws")?;
    match answer {
        Some(frame) if frame.code == CloseCode::Other(4000) => Ok(()),
        other => Err(format!("the peer answered our 4000 with {other:?}").into()),
    }
}

/// The peer sends each message back in fragments; we see one message, built from several frames.
fn fragmented(url: &str, deflate: bool) -> Outcome {
    let mut peer = Peer::open(url, deflate)?;
    for message in [
        Message::Text(mixed_text(10_000)),
        Message::Binary(noise(100_000)),
        Message::Text("{\"event\":\"position\",\"x\":1} ".repeat(1000)),
    ] {
        let before = peer.data_frames.load(Ordering::Relaxed);
        peer.round_trip(message)?;
        let frames = peer.data_frames.load(Ordering::Relaxed) - before;
        if frames < 2 {
            return Err(format!("expected a fragmented echo, got {frames} frame(s)").into());
        }
    }
    peer.check_peer_ping()?;
    peer.ws.close(CloseCode::Normal, "")?;
    Ok(())
}

/// The peer closes first: we see its message, its close frame, then the end of the connection.
fn server_closes(url: &str, deflate: bool) -> Outcome {
    let mut peer = Peer::open(url, deflate)?;
    let first = peer.read()?;
    if first != Message::text("bye soon") {
        return Err(format!("expected \"bye soon\", got {first:?}").into());
    }
    match peer.read()? {
        Message::Close(Some(frame))
            if frame.code == CloseCode::Other(4001) && frame.reason == "server closing" => {}
        other => return Err(format!("expected the peer's close 4001, got {other:?}").into()),
    }
    match peer.ws.read() {
        Err(Error::ConnectionClosed) => {}
        other => return Err(format!("expected the end, got {other:?}").into()),
    }
    peer.check_peer_ping()
}

/// RFC 6455 §8.1: invalid UTF-8 in a text message fails the connection, with 1007 (§7.4.1).
fn bad_utf8(url: &str, deflate: bool) -> Outcome {
    let mut peer = Peer::open(url, deflate)?;
    match peer.read() {
        Err(Error::Protocol(e)) if e.close_code() == CloseCode::InvalidPayload => Ok(()),
        other => Err(format!("expected a 1007 failure, got {other:?}").into()),
    }
}
