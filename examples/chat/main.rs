//! A browser chat: rooms, nicknames, join/leave notices, over one page served by the same server.
//!
//! Run: `cargo run --example chat -- [ADDR] [--redis URL] [--node NAME]` (default
//! 127.0.0.1:8080) and open http://127.0.0.1:8080/ in two browser windows. With `--redis`
//! (feature `redis`), several chat servers sharing one Redis form one chat: pages on different
//! servers see the same rooms.
//!
//! The page connects to `/ws?room=ROOM&nick=NICK[&since=OFFSET]`. Messages from the server are
//! text lines of tab-separated fields: `node NAME` first (the server the page is on), then
//! `msg NICK TEXT OFFSET`, `join NICK OFFSET`, `leave NICK OFFSET`, `count N OFFSET`, and `gap`
//! when messages after `since` are no longer retained. Every line the page sends is a chat
//! message for its room. A page that reconnects passes its last OFFSET as `since` and so shows
//! what it missed, once.
//!
//! Ctrl-C (or SIGTERM) stops the server gracefully: every page gets close code 1001 ("going
//! away", RFC 6455 §7.4.1) and reconnects when the server is back, instead of seeing the
//! connection drop (1006).

use std::sync::mpsc;
use std::time::Duration;
use syncws::hub::{Hub, HubBuilder, Offset};
use syncws::{HttpResponse, Message, Reject, Server, Session};

/// The page, embedded at compile time: no build step, nothing to serve from disk.
const PAGE: &str = include_str!("index.html");

/// Who a connection is, decided during the handshake.
struct Member {
    room: String,
    nick: String,
    since: Option<Offset>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut addr, mut redis, mut node) = ("127.0.0.1:8080".to_owned(), None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--redis" => redis = Some(args.next().ok_or("--redis needs a URL")?),
            "--node" => node = Some(args.next().ok_or("--node needs a name")?),
            _ => addr = arg,
        }
    }
    let node = node.unwrap_or_else(|| addr.clone());
    // Each delivery is the published line with its offset appended, for the page to resume from.
    let builder = HubBuilder::new(&node)
        .format(|d| Message::text(format!("{}\t{}", d.text, d.offset)))
        .gap_message(Message::text("gap"));
    let rooms = match redis {
        None => builder.in_memory(),
        Some(url) => with_redis(builder, &url)?,
    };
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
                return Err(Reject::new(404).body("the chat is at /ws\n"));
            }
            let field = |name| request.query_param(name).map(percent_decode);
            let nick = field("nick").unwrap_or_default();
            let room = field("room").unwrap_or_else(|| "lobby".to_owned());
            let valid =
                |s: &str| (1..=24).contains(&s.chars().count()) && !s.contains(['\t', '\n']);
            if !valid(&nick) || !valid(&room) {
                return Err(Reject::new(400).body("nick and room: 1 to 24 characters\n"));
            }
            let since = match request.query_param("since") {
                None => None,
                Some(text) => Some(
                    Offset::parse(&percent_decode(text))
                        .ok_or_else(|| Reject::new(400).body("since: not an offset\n"))?,
                ),
            };
            Ok(Member { room, nick, since })
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

#[cfg(feature = "redis")]
fn with_redis(builder: HubBuilder, url: &str) -> Result<Hub, Box<dyn std::error::Error>> {
    Ok(builder.redis(url)?)
}

#[cfg(not(feature = "redis"))]
fn with_redis(_: HubBuilder, _: &str) -> Result<Hub, Box<dyn std::error::Error>> {
    Err("--redis needs the `redis` feature: cargo run --features redis --example chat".into())
}

/// One member's connection, on its own thread.
fn chat(rooms: &Hub, mut session: Session<Member>) {
    let writer = session.writer();
    let Member { room, nick, since } = session.data();
    let (room, nick, since) = (room.clone(), nick.clone(), since.clone());
    println!("{} joined {room} as {nick}", session.peer_addr());
    let _ = writer.send(Message::text(format!("node\t{}", rooms.node())));
    if let Err(error) = rooms.join(&room, writer.clone(), &nick, since.as_ref()) {
        eprintln!("{nick} cannot join {room}: {error}");
        return;
    }
    // A page resuming after a reconnect is not announced again.
    if since.is_none() {
        publish(rooms, &room, format!("join\t{nick}"));
    }
    publish(rooms, &room, count(rooms, &room));
    while let Ok(message) = session.read() {
        if let Message::Text(text) = message {
            let line = text.replace(['\t', '\n'], " ");
            // Everyone in the room, the sender too: its own line comes back as confirmation.
            publish(rooms, &room, format!("msg\t{nick}\t{line}"));
        }
    }
    rooms.leave(&room, &writer);
    publish(rooms, &room, format!("leave\t{nick}"));
    publish(rooms, &room, count(rooms, &room));
}

fn publish(rooms: &Hub, room: &str, line: String) {
    if let Err(error) = rooms.publish(room, &line) {
        eprintln!("{room}: not sent: {error}");
    }
}

/// Members in the room on every server.
fn count(rooms: &Hub, room: &str) -> String {
    format!("count\t{}", rooms.presence(room).map_or(0, |p| p.count()))
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
