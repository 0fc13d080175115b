//! A client that survives server restarts: it sends a numbered message every second and prints
//! the echoes; kill the echo server and start it again, and it carries on.
//!
//! Run: `cargo run --example echo_server` in one terminal, then
//! `cargo run --example reconnect -- [URL] [COUNT]` (default ws://127.0.0.1:9001/, 30 messages).
//!
//! Messages sent while the server is down wait in the outbox and go out after reconnecting.

use std::time::Duration;
use syncws::Backoff;
use syncws::{ClientBuilder, Message, Reconnecting};

fn main() -> Result<(), syncws::Error> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001/".into());
    let count: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(30);

    let mut ws = Reconnecting::builder(ClientBuilder::new(&url))
        // Waits drawn between 0 and 0.25 s, 0.5 s, 1 s, ... up to 5 s: clients cut off together
        // do not all come back in the same instant.
        .backoff(Backoff::new(
            Duration::from_millis(250),
            Duration::from_secs(5),
        ))
        // Pings after 2 s of quiet; no answer within 2 s means the server is gone.
        .heartbeat(Duration::from_secs(2), Duration::from_secs(2))
        .on_connect(|_writer| {
            eprintln!("[connected]");
            Ok(())
        })
        .on_disconnect(|d| eprintln!("[disconnected: {}; retry in {:?}]", d.cause, d.retry_in))
        .connect()?;

    // A second thread sends; the main thread reads (and reconnects when needed).
    let sender = ws.writer();
    let ticker = std::thread::spawn(move || {
        for n in 1..=count {
            if let Err(e) = sender.send(Message::text(format!("message {n}"))) {
                eprintln!("[not sent: {e}]");
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let _ = sender.start_close(syncws::CloseCode::Normal, "done");
    });
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => println!("{text}"),
            Ok(Message::Close(_)) | Err(syncws::Error::ConnectionClosed) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("[gave up: {e}]");
                break;
            }
        }
    }
    let _ = ticker.join();
    Ok(())
}
