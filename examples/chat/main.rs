//! A browser chat: rooms, nicknames, join/leave notices, over one page served by the same server;
//! with `--redis`, several processes serve the same rooms and a page resumes where it stopped.
//!
//! Run: `cargo run --example chat -- [ADDR]` (default 127.0.0.1:8080) and open
//! http://127.0.0.1:8080/ in two browser windows. Across processes, each with its own ADDR:
//! `cargo run --features redis --example chat -- [ADDR] --redis redis://127.0.0.1:6379/
//! [--node NAME]` (scripts/nginx/cluster.sh starts Redis, three of them and nginx in front).
//! `--trusted-proxy ADDR` (repeatable; an IP or CIDR range) takes the client's address from the
//! forwarding headers of connections from that proxy, for the logs.
//!
//! The page connects to `/ws?room=ROOM&nick=NICK[&since=OFFSET]`. The server sends JSON text
//! frames: first `{"connected":"NODE"}` (the node that serves this page; `--node`, default the
//! address it listens on), then one `{"offset":"…","node":"ORIGIN","text":"LINE"}` per message of
//! the room, in the room's one order, where LINE is tab-separated: `msg NICK TEXT`, `join NICK`,
//! `leave NICK` or `count N`. With `since` (the offset of the last message the page showed), the
//! server first replays every retained message after it, so a page that lost its connection
//! (or its node) misses nothing; `{"gap":true}` says the history after `since` is incomplete.
//! `{"error":"…"}` reports a message the server could not accept. Every line the page sends is
//! a chat message for its room.
//!
//! Ctrl-C (or SIGTERM) stops the server gracefully: every page gets close code 1001 ("going
//! away", RFC 6455 §7.4.1) and reconnects when the server is back, instead of seeing the
//! connection drop (1006).

#[path = "../common/mod.rs"]
mod common;

use common::{json_string, query_decode};
use std::sync::mpsc;
use std::time::Duration;
use syncws::rooms::{Delivery, Join, Offset, Rooms};
use syncws::{CloseCode, HttpResponse, Message, Server, Session};

/// The page, embedded at compile time: no build step, nothing to serve from disk.
const PAGE: &str = include_str!("index.html");

/// Who a connection is, decided during the handshake.
struct Member {
    room: String,
    nick: String,
    /// Where the page stopped: replay what came after it.
    since: Option<Offset>,
}

/// The command line: `[ADDR] [--redis URL] [--node NAME] [--trusted-proxy ADDR]…`.
struct Options {
    addr: String,
    redis: Option<String>,
    node: Option<String>,
    /// Proxies (IP or CIDR) whose `Forwarded` / `X-Forwarded-For` give the client's address.
    trusted_proxies: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        addr: "127.0.0.1:8080".to_owned(),
        redis: None,
        node: None,
        trusted_proxies: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    let mut addr_seen = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--redis" => options.redis = Some(args.next().ok_or("--redis needs a URL")?),
            "--node" => options.node = Some(args.next().ok_or("--node needs a name")?),
            "--trusted-proxy" => options
                .trusted_proxies
                .push(args.next().ok_or("--trusted-proxy needs an address")?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if !addr_seen => {
                options.addr = arg;
                addr_seen = true;
            }
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    if cfg!(not(feature = "redis")) && options.redis.is_some() {
        return Err(
            "--redis needs the redis feature: cargo run --features redis --example chat -- …"
                .to_owned(),
        );
    }
    if options.node.as_deref().is_some_and(|n| !valid_name(n)) {
        return Err("--node: 1 to 24 characters, no tab or newline".to_owned());
    }
    Ok(options)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options().unwrap_or_else(|error| {
        eprintln!(
            "{error}\nusage: chat [ADDR] [--redis URL] [--node NAME] [--trusted-proxy ADDR]…"
        );
        std::process::exit(2);
    });
    let server = Server::builder()
        // Browsers answer pings by themselves; a closed laptop lid is noticed within 40 s.
        // (A proxy in front must allow more than 20 s of silence: scripts/nginx/.)
        .heartbeat(Duration::from_secs(20), Duration::from_secs(20))
        // Behind nginx (scripts/nginx/): logs show the browser's address, not the proxy's.
        .trusted_proxies(options.trusted_proxies.clone())
        .http(|request| match request.path() {
            "/" => HttpResponse::new(200)
                .header("Content-Type", "text/html; charset=utf-8")
                .header("Cache-Control", "no-store")
                .body(PAGE),
            _ => HttpResponse::new(404).body("not found\n"),
        })
        // The handshake picks the room, nickname and resume point from the query, or refuses
        // with 400.
        .on_handshake(|request, _accept| {
            if request.path() != "/ws" {
                return Err(HttpResponse::new(404).body("the chat is at /ws\n"));
            }
            let field = |name| request.query_param(name).map(query_decode);
            let nick = field("nick").unwrap_or_default();
            let room = field("room").unwrap_or_else(|| "lobby".to_owned());
            if !valid_name(&nick) || !valid_name(&room) {
                return Err(HttpResponse::new(400).body("nick and room: 1 to 24 characters\n"));
            }
            let since = match field("since") {
                None => None,
                Some(text) => match Offset::parse(&text) {
                    Some(offset) => Some(offset),
                    None => {
                        return Err(
                            HttpResponse::new(400).body("since: an offset the server sent\n")
                        );
                    }
                },
            };
            Ok(Member { room, nick, since })
        })
        .on_end(|peer, cause| println!("{peer} left: {cause}"))
        .bind(&options.addr)?;
    let addr = server.local_addr()?;
    let node = options.node.unwrap_or_else(|| addr.to_string());
    let rooms = rooms(&node, options.redis.as_deref()).unwrap_or_else(|error| {
        eprintln!("--redis: {error}");
        std::process::exit(2);
    });
    // The test scripts read this line to find the port.
    println!("chat on http://{addr}/ (node {node})");
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

/// The rooms: in this process only, or shared through Redis with every node using `url`.
fn rooms(node: &str, redis: Option<&str>) -> Result<Rooms, Box<dyn std::error::Error>> {
    let builder = Rooms::builder()
        .node(node)
        .format(|delivery| Message::text(delivery_json(delivery)));
    match redis {
        None => Ok(builder.in_memory()),
        #[cfg(feature = "redis")]
        Some(url) => Ok(builder.redis(url)?),
        #[cfg(not(feature = "redis"))]
        Some(_) => unreachable!("options() refuses --redis without the feature"),
    }
}

/// One member's connection, on its own thread.
fn chat(rooms: &Rooms, mut session: Session<Member>) {
    let writer = session.writer();
    let Member { room, nick, since } = session.data();
    let (room, nick, since) = (room.clone(), nick.clone(), since.clone());
    let resume = since
        .as_ref()
        .map_or("new".to_owned(), |s| format!("resuming after {s}"));
    println!(
        "{} joined {room} as {nick} ({resume})",
        session.client_addr()
    );
    // Before joining: from the join on, deliveries may arrive on other threads.
    let hello = format!("{{\"connected\":{}}}", json_string(rooms.node()));
    if writer.send(Message::text(hello)).is_err() {
        return;
    }
    if let Err(error) = rooms.join_with(
        &room,
        writer.clone(),
        Join::new().identity(&nick).since(since),
    ) {
        eprintln!("{nick} could not join {room}: {error}");
        let _ = session.close(CloseCode::TryAgainLater, "rooms unavailable");
        return;
    }
    let publish = |line: String| {
        if let Err(error) = rooms.broadcast(&room, &Message::text(line), None) {
            // Redis unreachable and the held backlog full: the sender hears of it.
            let report = format!("{{\"error\":{}}}", json_string(&error.to_string()));
            let _ = writer.send(Message::text(report));
        }
    };
    publish(format!("join\t{nick}"));
    publish(count(rooms, &room));
    while let Ok(message) = session.read() {
        if let Message::Text(text) = message {
            let line = text.replace(['\t', '\n'], " ");
            // Everyone in the room on every node, the sender too: its own line comes back with
            // its offset, as confirmation.
            publish(format!("msg\t{nick}\t{line}"));
        }
    }
    rooms.leave(&room, &writer);
    publish(format!("leave\t{nick}"));
    publish(count(rooms, &room));
}

/// The room's member count on every node, as a line for the room.
fn count(rooms: &Rooms, room: &str) -> String {
    let members = rooms.presence(room).map_or(0, |presence| presence.count());
    format!("count\t{members}")
}

/// A nickname, room or node name: 1 to 24 characters, none that would split a line.
fn valid_name(s: &str) -> bool {
    (1..=24).contains(&s.chars().count()) && !s.contains(['\t', '\n'])
}

/// The frame a member receives for one message of its room.
fn delivery_json(delivery: &Delivery) -> String {
    format!(
        "{{\"offset\":{},\"node\":{},\"text\":{}}}",
        json_string(&delivery.offset.to_string()),
        json_string(&delivery.node),
        json_string(&String::from_utf8_lossy(delivery.message.as_bytes()))
    )
}
