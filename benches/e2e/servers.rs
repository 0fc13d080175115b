//! The echo servers, built the same way: one listener on 127.0.0.1, one thread per connection,
//! Nagle off, default thread stacks. Three are measured by default; `syncws-server` (the
//! library's own `Server`) on request.
//!
//! A server prints its port on stdout and then serves until its stdin closes (the runner holds
//! the other end, so a server never outlives the runner) or the runner kills it.

use std::io::{self, BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

/// Which echo server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerKind {
    /// Echoes whole frames without decoding them: the limit for this design.
    RawTcp,
    /// `tungstenite` with its default settings.
    Tungstenite,
    /// `syncws::accept` with its default settings.
    Syncws,
    /// `syncws::Server` with its default settings: a split reader and writer per connection.
    SyncwsServer,
}

impl ServerKind {
    /// The servers measured unless `--server` picks others.
    pub const DEFAULT: [ServerKind; 4] = [
        ServerKind::RawTcp,
        ServerKind::Tungstenite,
        ServerKind::Syncws,
        ServerKind::SyncwsServer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::RawTcp => "raw",
            ServerKind::Tungstenite => "tungstenite",
            ServerKind::Syncws => "syncws",
            ServerKind::SyncwsServer => "syncws-server",
        }
    }

    pub fn parse(name: &str) -> Option<ServerKind> {
        ServerKind::DEFAULT.into_iter().find(|k| k.name() == name)
    }

    /// Whether clients open with the HTTP upgrade and expect unmasked replies.
    pub fn speaks_websocket(self) -> bool {
        self != ServerKind::RawTcp
    }
}

/// Runs the server until stdin closes.
pub fn serve(kind: ServerKind) -> io::Result<()> {
    if kind == ServerKind::SyncwsServer {
        return syncws_server();
    }
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("port {}", listener.local_addr()?.port());
    io::stdout().flush()?;
    exit_when_stdin_closes()?;
    for (n, stream) in listener.incoming().enumerate() {
        let stream = stream?;
        stream.set_nodelay(true)?;
        // Each connection thread ends when its client disconnects.
        thread::Builder::new()
            .name(format!("echo-{n}"))
            .spawn(move || match kind {
                ServerKind::RawTcp => raw_echo(stream),
                ServerKind::Tungstenite => tungstenite_echo(stream),
                ServerKind::Syncws => syncws_echo(stream),
                ServerKind::SyncwsServer => unreachable!("served by syncws_server"),
            })?;
    }
    Ok(())
}

/// Reads each whole frame (the length parsed from its header) and writes it back unchanged in one
/// write: the same reads and writes a message-based server needs, and none of its work.
///
/// The buffer starts at 16 KiB and grows to the largest frame seen, so 1 MiB frames are read with
/// as few calls as the kernel allows.
fn raw_echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; 16 << 10];
    let mut filled = 0;
    loop {
        let frame_len = loop {
            if let Some(len) = raw_frame_len(&buf[..filled]) {
                break len;
            }
            match stream.read(&mut buf[filled..]) {
                Ok(0) | Err(_) => return,
                Ok(n) => filled += n,
            }
        };
        if buf.len() < frame_len {
            buf.resize(frame_len, 0);
        }
        if filled < frame_len && stream.read_exact(&mut buf[filled..frame_len]).is_err() {
            return;
        }
        filled = filled.max(frame_len);
        if stream.write_all(&buf[..frame_len]).is_err() {
            return;
        }
        buf.copy_within(frame_len..filled, 0);
        filled -= frame_len;
    }
}

/// The length of the frame at the start of `bytes`, header included, once its header is there.
fn raw_frame_len(bytes: &[u8]) -> Option<usize> {
    let second = *bytes.get(1)?;
    let masked = if second & 0x80 != 0 { 4 } else { 0 };
    let (extra, len) = match second & 0x7f {
        126 => (
            2,
            u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as usize,
        ),
        127 => (
            8,
            u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?) as usize,
        ),
        n => (0, n as usize),
    };
    Some(2 + extra + masked + len)
}

fn tungstenite_echo(stream: TcpStream) {
    let Ok(mut ws) = tungstenite::accept(stream) else {
        return;
    };
    while let Ok(message) = ws.read() {
        if (message.is_binary() || message.is_text()) && ws.send(message).is_err() {
            return;
        }
    }
}

fn syncws_echo(stream: TcpStream) {
    let Ok(mut ws) = syncws::accept(stream) else {
        return;
    };
    while let Ok(message) = ws.read() {
        if message.is_data() && ws.send(message).is_err() {
            return;
        }
    }
}

/// `syncws::Server`: it owns the listener and the connection threads.
fn syncws_server() -> io::Result<()> {
    let server = syncws::Server::bind("127.0.0.1:0").map_err(io::Error::other)?;
    println!("port {}", server.local_addr()?.port());
    io::stdout().flush()?;
    exit_when_stdin_closes()?;
    server
        .serve(|mut session| {
            while let Ok(message) = session.read() {
                if message.is_data() && session.send(message).is_err() {
                    return;
                }
            }
        })
        .map_err(io::Error::other)
}

/// Stop path: the runner closes our stdin (or dies); the process exits with its threads.
fn exit_when_stdin_closes() -> io::Result<()> {
    thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(|| {
            let mut line = String::new();
            while io::stdin().lock().read_line(&mut line).is_ok_and(|n| n > 0) {
                line.clear();
            }
            std::process::exit(0);
        })?;
    Ok(())
}
