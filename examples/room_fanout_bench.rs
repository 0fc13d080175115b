//! Room fan-out with stalled members: publish-to-delivery latency of the healthy members
//! (p50, p99, max) and the slowest broadcast call, over loopback in one process.
//!
//! Run: `cargo run --release --example room_fanout_bench -- [HEALTHY] [STALLED] [MESSAGES]
//! [BYTES] [INTERVAL_US] [BOUND_KIB]` (defaults 20 2 2000 1024 1000 256), or
//! `scripts/room_fanout_bench.sh`. Many stalled members need file descriptors: `ulimit -n 20000`.
//!
//! Stalled members connect with a 4 KiB receive buffer and never read; their server sockets get
//! an 8 KiB send buffer, so they reach the room's bound (BOUND_KIB) early; with a bound above
//! what is published they stay in the room, behind, for the whole run. Each broadcast
//! carries its sequence number and when it was published; each healthy member checks the order.

use socket2::{Domain, SockRef, Socket, Type};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};
use syncws::{Config, Message, Role, Room, WebSocket};

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let healthy = arg(1, 20) as usize;
    let stalled = arg(2, 2) as usize;
    let messages = arg(3, 2000) as u32;
    let size = (arg(4, 1024) as usize).max(12);
    let interval = Duration::from_micros(arg(5, 1000));
    let epoch = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let bound = arg(6, 256) as usize * 1024;
    let room = Room::with_max_backpressure(bound);
    let mut readers = Vec::new();
    let mut stalled_clients = Vec::new();
    for i in 0..healthy + stalled {
        let is_stalled = i < stalled;
        let client: TcpStream = if is_stalled {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            socket.set_recv_buffer_size(4096)?;
            socket.connect(&addr.into())?;
            socket.into()
        } else {
            TcpStream::connect(addr)?
        };
        client.set_read_timeout(Some(Duration::from_secs(30)))?;
        let (server, _) = listener.accept()?;
        if is_stalled {
            SockRef::from(&server).set_send_buffer_size(8192)?;
        }
        server.set_write_timeout(Some(Duration::from_secs(10)))?;
        let (mut reader, writer) =
            WebSocket::from_stream(server, Role::Server, Config::default()).split()?;
        thread::spawn(move || while reader.read().is_ok() {});
        room.join(writer);
        if is_stalled {
            stalled_clients.push(client);
            continue;
        }
        readers.push(thread::spawn(move || -> Result<Vec<Duration>, String> {
            let mut ws = WebSocket::from_stream(client, Role::Client, Config::default());
            let mut latencies = Vec::with_capacity(messages as usize);
            for expected in 0..messages {
                let message = ws.read().map_err(|e| format!("member read: {e}"))?;
                let data = message.as_bytes();
                let seq = u32::from_be_bytes(data[..4].try_into().unwrap_or_default());
                let sent = u64::from_be_bytes(data[4..12].try_into().unwrap_or_default());
                latencies.push(epoch.elapsed().saturating_sub(Duration::from_nanos(sent)));
                if seq != expected {
                    return Err(format!("got message {seq}, expected {expected}"));
                }
            }
            Ok(latencies)
        }));
    }

    let mut slowest_call = Duration::ZERO;
    let mut dropped = 0;
    let mut next = Instant::now();
    for seq in 0..messages {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        next += interval;
        let mut payload = vec![0u8; size];
        payload[..4].copy_from_slice(&seq.to_be_bytes());
        payload[4..12].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
        let started = Instant::now();
        dropped += room.broadcast(&Message::Binary(payload), None).dropped;
        slowest_call = slowest_call.max(started.elapsed());
    }
    let mut latencies = Vec::new();
    for reader in readers {
        latencies.extend(reader.join().map_err(|_| "a member panicked")??);
    }
    latencies.sort();
    if latencies.is_empty() {
        return Err("no healthy members to measure".into());
    }
    let at = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).max(1) - 1];
    println!(
        "{healthy} healthy + {stalled} stalled members, {messages} broadcasts of {size} B every {interval:?}, bound {} KiB",
        bound / 1024
    );
    println!(
        "healthy latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; slowest broadcast call {:.2} ms; members dropped {dropped}",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
        slowest_call.as_secs_f64() * 1e3,
    );
    drop(stalled_clients);
    Ok(())
}
