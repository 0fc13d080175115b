//! A room server: every text a client sends reaches every member of its room, on every node
//! sharing the same Redis, in one order, each with an offset to resume from.
//!
//! Run: `cargo run --features redis --example room_server -- [ADDR] [--redis URL] [--node NAME]`
//! (ADDR defaults to 127.0.0.1:9002; without `--redis`, rooms live in this process alone).
//!
//! - `ws://ADDR/rooms/NAME` joins room NAME; `?since=OFFSET` first replays every retained
//!   message after OFFSET, then continues live.
//! - Each delivery is a text frame `{"offset":"…","node":"…","text":"…"}` (`node`: the node
//!   the sender is connected to). When the history after OFFSET is incomplete the first frame
//!   is `{"gap":true}`.
//! - `GET http://ADDR/presence/NAME` answers `{"count":N,"members":[["node","identity"],…]}`.
//!
//! Prints `listening on ws://ADDR/` once it accepts connections.

#[path = "common/mod.rs"]
mod common;

use common::{json_string, percent_decode};
use std::time::Duration;
use syncws::rooms::{Delivery, Join, Offset, Rooms, RoomsBuilder};
use syncws::{HttpResponse, Message, Server, Session};

/// What the handshake decided.
struct Member {
    room: String,
    since: Option<Offset>,
}

struct Options {
    addr: String,
    redis: Option<String>,
    node: Option<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        addr: "127.0.0.1:9002".to_owned(),
        redis: None,
        node: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--redis" => options.redis = Some(args.next().ok_or("--redis needs a URL")?),
            "--node" => options.node = Some(args.next().ok_or("--node needs a name")?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => options.addr = arg,
        }
    }
    Ok(options)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = parse_args()
        .map_err(|e| format!("{e}\nusage: room_server [ADDR] [--redis URL] [--node NAME]"))?;
    let node = options.node.clone().unwrap_or_else(|| options.addr.clone());
    let builder = Rooms::builder()
        .node(&node)
        .format(to_json)
        // Deep history: clients of a killed node resume on another one under load
        // (scripts/rooms/cluster.sh), so more than the default is kept.
        .retain(100_000);
    let rooms = match &options.redis {
        None => builder.in_memory(),
        Some(url) => with_redis(builder, url)?,
    };
    let presence_rooms = rooms.clone();
    let server = Server::builder()
        // Shorter than nginx's default proxy_read_timeout (60 s).
        .heartbeat(Duration::from_secs(20), Duration::from_secs(20))
        .http(
            move |request| match request.path().strip_prefix("/presence/") {
                Some(room) => match presence_rooms.presence(&percent_decode(room)) {
                    Ok(presence) => HttpResponse::new(200)
                        .header("Content-Type", "application/json")
                        .body(presence_json(&presence.members)),
                    Err(error) => HttpResponse::new(503).body(format!("{error}\n")),
                },
                None => HttpResponse::new(404).body("rooms are at /rooms/NAME\n"),
            },
        )
        .on_handshake(|request, _accept| {
            let room = request
                .path()
                .strip_prefix("/rooms/")
                .map(percent_decode)
                .filter(|room| !room.is_empty() && room.len() <= 200)
                .ok_or_else(|| HttpResponse::new(404).body("rooms are at /rooms/NAME\n"))?;
            let since = match request.query_param("since") {
                None => None,
                Some(text) => Some(
                    Offset::parse(&percent_decode(text))
                        .ok_or_else(|| HttpResponse::new(400).body("since: not an offset\n"))?,
                ),
            };
            Ok(Member { room, since })
        })
        .bind(&options.addr)?;
    println!("listening on ws://{}/", server.local_addr()?);
    server.serve(move |session| member(&rooms, session))?;
    Ok(())
}

#[cfg(feature = "redis")]
fn with_redis(builder: RoomsBuilder, url: &str) -> Result<Rooms, Box<dyn std::error::Error>> {
    Ok(builder.redis(url)?)
}

#[cfg(not(feature = "redis"))]
fn with_redis(_: RoomsBuilder, _: &str) -> Result<Rooms, Box<dyn std::error::Error>> {
    Err(
        "--redis needs the `redis` feature: cargo run --features redis --example room_server"
            .into(),
    )
}

/// One member's connection.
fn member(rooms: &Rooms, mut session: Session<Member>) {
    let writer = session.writer();
    let Member { room, since } = session.data();
    let (room, since) = (room.clone(), since.clone());
    let identity = session.peer_addr().to_string();
    let join = Join::new().identity(&identity).since(since);
    if let Err(error) = rooms.join_with(&room, writer.clone(), join) {
        eprintln!("{identity}: cannot join {room}: {error}");
        let _ = writer.send(Message::Close(None));
        return;
    }
    while let Ok(message) = session.read() {
        // Every member on every node, the sender included: its own message comes back with its
        // offset, in the room's one order.
        if let Message::Text(_) = message
            && let Err(error) = rooms.broadcast(&room, &message, None)
        {
            eprintln!("{identity}: message to {room} refused: {error}");
        }
    }
    rooms.leave(&room, &writer);
}

fn to_json(delivery: &Delivery) -> Message {
    Message::text(format!(
        "{{\"offset\":{},\"node\":{},\"text\":{}}}",
        json_string(&delivery.offset.to_string()),
        json_string(&delivery.node),
        json_string(&text_of(&delivery.message))
    ))
}

/// A delivery's text (this server broadcasts text only).
fn text_of(message: &Message) -> String {
    String::from_utf8_lossy(message.as_bytes()).into_owned()
}

fn presence_json(members: &[(String, String)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(node, id)| format!("[{},{}]", json_string(node), json_string(id)))
        .collect();
    format!(
        "{{\"count\":{},\"members\":[{}]}}\n",
        members.len(),
        members.join(",")
    )
}
