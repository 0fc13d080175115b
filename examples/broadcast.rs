//! Broadcast: every message a client sends goes to all the other clients; a ticker thread
//! that is not a connection at all sends the time to everyone each second.
//!
//! Run: `cargo run --example broadcast`, then connect several
//! `cargo run --example echo_client -- ws://127.0.0.1:9003/` and type in one of them.
//!
//! A member that stops reading delays nobody: a broadcast queues for it, and once 1 MiB waits
//! for it (the room's default bound), it is closed with code 1008 and leaves the room.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use syncws::{Message, Room, Server};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".to_owned());
    let room = Room::new();

    // Senders need not be connections: any thread can broadcast. The frame is encoded once,
    // then queued for each member. (This thread lives as long as the process: serve() below
    // never returns.)
    let ticker_room = room.clone();
    std::thread::Builder::new()
        .name("ticker".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let sent = ticker_room.broadcast(&Message::text(format!("tick {secs}")), None);
                if sent.dropped > 0 {
                    println!("dropped {} slow member(s)", sent.dropped);
                }
            }
        })?;

    let server = Server::builder()
        .write_timeout(Some(Duration::from_secs(2)))
        .on_end(|peer, cause| println!("{peer} ended: {cause}"))
        .bind(&addr)?;
    println!("broadcast server on ws://{}/", server.local_addr()?);
    server.serve(move |mut session| {
        let me = session.writer();
        room.join(me.clone());
        println!("{} joined; {} in the room", session.peer_addr(), room.len());
        while let Ok(message) = session.read() {
            if message.is_data() {
                // Everyone but the sender.
                room.broadcast(&message, Some(&me));
            }
        }
        room.leave(&me);
    })?;
    Ok(())
}
