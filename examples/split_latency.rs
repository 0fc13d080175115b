//! Round-trip latency over loopback: a plain `WebSocket` against a split `Reader`/`Writer`, to
//! show that splitting adds no measurable latency on ws:// (the reader waits without the lock;
//! the writer writes straight to the socket).
//!
//! Run: `cargo run --release --example split_latency -- [ROUNDS]` (default 20000). Prints the
//! median and 99th percentile round trip of a 16-byte message for each.

use std::time::{Duration, Instant};
use syncws::{Message, Server};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(20_000), |s| s.parse())?;
    let server = Server::builder()
        .bind("127.0.0.1:0")?
        .spawn(|mut session| {
            while let Ok(message) = session.read() {
                if message.is_data() && session.send(message).is_err() {
                    break;
                }
            }
        })?;
    let url = format!("ws://{}/", server.local_addr());
    let payload = Message::binary(vec![7u8; 16]);

    // Client side as one WebSocket, and split: the writer sends, the reader reads (on one
    // thread here, to compare like with like; the locks taken are the same as across threads).
    let (mut ws, _) = syncws::connect(&url)?;
    ws.get_ref().tcp().set_nodelay(true)?;
    let (split_ws, _) = syncws::connect(&url)?;
    split_ws.get_ref().tcp().set_nodelay(true)?;
    let (mut reader, writer) = split_ws.split()?;
    // Alternate in blocks so that drift in the machine's load hits both alike.
    let (mut plain, mut split) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        plain.extend(measure(rounds / 4, || {
            ws.send(payload.clone())?;
            ws.read().map(drop)
        })?);
        split.extend(measure(rounds / 4, || {
            writer.send(payload.clone())?;
            reader.read().map(drop)
        })?);
    }

    for (name, mut samples) in [("WebSocket", plain), ("Reader/Writer", split)] {
        samples.sort();
        let median = samples[samples.len() / 2];
        let p99 = samples[samples.len() * 99 / 100];
        println!(
            "{name:14} median {:6.1} µs   p99 {:6.1} µs",
            us(median),
            us(p99)
        );
    }
    server.shutdown();
    Ok(())
}

fn measure(
    rounds: usize,
    mut round_trip: impl FnMut() -> Result<(), syncws::Error>,
) -> Result<Vec<Duration>, syncws::Error> {
    for _ in 0..rounds / 10 {
        round_trip()?; // warm up
    }
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        round_trip()?;
        samples.push(start.elapsed());
    }
    Ok(samples)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
