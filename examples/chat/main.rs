//! A browser chat: rooms, nicknames, join/leave notices, over one page served by the same server.
//!
//! Run: `cargo run --example chat -- [ADDR]` (default 127.0.0.1:8080) and open
//! http://127.0.0.1:8080/ in two browser windows.
//!
//! The page connects to `/ws?room=ROOM&nick=NICK`. Messages from the server are text lines of
//! tab-separated fields: `msg NICK TEXT`, `join NICK`, `leave NICK`, `count N`. Every line the
//! page sends is a chat message for its room.
//!
//! Ctrl-C (or SIGTERM) stops the server gracefully: every page gets close code 1001 ("going
//! away", RFC 6455 §7.4.1) and reconnects when the server is back, instead of seeing the
//! connection drop (1006).

use std::sync::mpsc;
use std::time::Duration;
use syncws::{HttpResponse, Message, Rooms, Server, Session};

/// The page, embedded at compile time: no build step, nothing to serve from disk.
const PAGE: &str = include_str!("index.html");

/// Who a connection is, decided during the handshake.
struct Member {
    room: String,
    nick: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let rooms = Rooms::new();
    let server = Server::builder()
        // Browsers answer pings by themselves; a closed laptop lid is noticed within 40 s.
        .heartbeat(Duration::from_secs(20), Duration::from_secs(20))
        .http(|request| match request.path() {
            "/" => HttpResponse::new(200)
                .header("Content-Type", "text/html; charset=utf-8")
                .header("Cache-Control", "no-store")
                .body(PAGE),
            _ => HttpResponse::new(404).body("not found\n"),
        })
        // The handshake picks the room and nickname from the query, or refuses with 400.
        .on_handshake(|request, _accept| {
            if request.path() != "/ws" {
                return Err(HttpResponse::new(404).body("the chat is at /ws\n"));
            }
            let field = |name| request.query_param(name).map(percent_decode);
            let nick = field("nick").unwrap_or_default();
            let room = field("room").unwrap_or_else(|| "lobby".to_owned());
            let valid =
                |s: &str| (1..=24).contains(&s.chars().count()) && !s.contains(['\t', '\n']);
            if !valid(&nick) || !valid(&room) {
                return Err(HttpResponse::new(400).body("nick and room: 1 to 24 characters\n"));
            }
            Ok(Member { room, nick })
        })
        .on_end(|peer, cause| println!("{peer} left: {cause}"))
        .bind(&addr)?;
    // The test scripts read this line to find the port.
    println!("chat on http://{}/", server.local_addr()?);
    // The server runs on its own threads; this one waits for Ctrl-C, then shuts it down.
    let handle = server.spawn(move |session| chat(&rooms, session))?;
    let (stop, stop_requested) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })?;
    let _ = stop_requested.recv();
    println!("stopping: closing every connection with 1001");
    // Sends 1001 to each page, waits (up to the shutdown timeout) for the handlers to return.
    handle.shutdown();
    Ok(())
}

/// One member's connection, on its own thread.
fn chat(rooms: &Rooms, mut session: Session<Member>) {
    let writer = session.writer();
    let Member { room, nick } = session.data();
    let (room, nick) = (room.clone(), nick.clone());
    println!("{} joined {room} as {nick}", session.peer_addr());
    rooms.join(&room, writer.clone());
    rooms.broadcast(&room, &Message::text(format!("join\t{nick}")), None);
    rooms.broadcast(&room, &count(rooms, &room), None);
    while let Ok(message) = session.read() {
        if let Message::Text(text) = message {
            let line = text.replace(['\t', '\n'], " ");
            // Everyone in the room, the sender too: its own line comes back as confirmation.
            rooms.broadcast(&room, &Message::text(format!("msg\t{nick}\t{line}")), None);
        }
    }
    rooms.leave(&room, &writer);
    rooms.broadcast(&room, &Message::text(format!("leave\t{nick}")), None);
    rooms.broadcast(&room, &count(rooms, &room), None);
}

fn count(rooms: &Rooms, room: &str) -> Message {
    Message::text(format!("count\t{}", rooms.count(room)))
}

/// Decodes `%XX` escapes and `+` (as the page's `encodeURIComponent` and forms produce).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
