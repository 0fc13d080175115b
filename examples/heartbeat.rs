//! Heartbeats: the server pings a connection that has been quiet for a while and drops it if
//! nothing comes back. This example starts a server with a 1 s heartbeat and two clients in the
//! same process: one that keeps reading (its reads answer the pings) and one that stops
//! answering, like a peer whose network vanished. The output shows when and why each ended.
//!
//! Run: `cargo run --example heartbeat`

use std::io::Read;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use syncws::{Message, Server};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let at = move || format!("{:5.2}s", started.elapsed().as_secs_f64());
    let (ended_tx, ended) = mpsc::channel();
    let ended_tx = std::sync::Mutex::new(ended_tx);
    let server = Server::builder()
        // Ping after 1 s of quiet; give up 1 s after the ping. One thread does this for every
        // connection the server has.
        .heartbeat(Duration::from_secs(1), Duration::from_secs(1))
        .on_end(move |peer, cause| {
            println!("{} server: {peer} ended: {cause}", at());
            let _ = ended_tx.lock().unwrap().send(());
        })
        .bind("127.0.0.1:0")?
        .spawn(|mut session| while session.read().is_ok() {})?;
    let url = format!("ws://{}/", server.local_addr());

    // The healthy client: read() answers each ping with a pong (RFC 6455 §5.5.2).
    let (mut healthy, _) = syncws::connect(&url)?;
    healthy
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))?;
    println!("{} healthy client connected", at());

    // The stalled client: connected, then it never reads again, so no pong ever leaves it.
    let (stalled, _) = syncws::connect(&url)?;
    println!("{} stalled client connected and stops reading", at());

    // Keep the healthy one reading until the stalled one has been dropped.
    while ended.try_recv().is_err() {
        match healthy.read() {
            Ok(Message::Ping(_)) => println!("{} healthy client: ping (answered)", at()),
            Ok(_) => {}
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(e.into()),
        }
    }
    // What the stalled client finds once it looks: the ping, the close frame (1011) and the end
    // of the TCP connection.
    let mut raw = stalled.into_inner();
    let mut bytes = Vec::new();
    raw.read_to_end(&mut bytes)?;
    println!("{} stalled client had unread: {bytes:02x?}", at());
    healthy.close(syncws::CloseCode::Normal, "done")?;
    server.shutdown();
    Ok(())
}
