//! Load for `examples/room_server.rs` (scripts/rooms_bench.sh): ROOMS rooms of MEMBERS members
//! each, the members spread round-robin over the given nodes; the first member of each room
//! publishes and every member (the publisher too) records each delivery's publish-to-delivery
//! latency (all clients share this process's clock).
//!
//! `room_bench NODES ROOMS MEMBERS window MESSAGES W`: each publisher sends MESSAGES messages,
//! keeping at most W of its own in flight (sent, not yet delivered back to it): the rooms'
//! throughput. `room_bench NODES ROOMS MEMBERS rate PER_SECOND SECONDS`: the publishers
//! together send PER_SECOND messages a second for SECONDS, whatever the delivery does (the
//! outage measurement). NODES: comma-separated `ws://HOST:PORT` of the nodes.
//!
//! Before measuring, each room's publisher sends warm-up messages until every member has seen
//! one (so every member has joined). Prints `key value` lines; exits 1 when a delivery is
//! missing or duplicated, or on a connection error.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use syncws::{Message, Reader, Writer};

/// How long the members wait for the last deliveries after the publishers stop.
const DRAIN: Duration = Duration::from_secs(30);
/// How long the warm-up may take before the run is given up.
const WARM_UP: Duration = Duration::from_secs(20);

enum Load {
    /// MESSAGES per room, at most W in flight per publisher.
    Window { messages: u64, window: u64 },
    /// PER_SECOND messages a second over all rooms, for SECONDS.
    Rate { per_second: u64, seconds: u64 },
}

/// What one room's members share.
#[derive(Default)]
struct RoomState {
    /// Members that have seen a warm-up message.
    warm: AtomicUsize,
    /// Measured messages delivered back to the publisher.
    echoed: AtomicU64,
    /// Measured messages sent.
    sent: AtomicU64,
}

/// What one member saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u32>,
    /// Gaps in the sequence of measured messages seen.
    missing: u64,
    duplicates: u64,
    /// One past the last sequence number seen.
    next: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: room_bench NODES ROOMS MEMBERS window MESSAGES W | NODES ROOMS MEMBERS rate PER_SECOND SECONDS"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 6 {
        usage();
    }
    let number = |i: usize| args[i].parse::<u64>().unwrap_or_else(|_| usage());
    let nodes: Vec<String> = args[0].split(',').map(str::to_owned).collect();
    let (rooms, members) = (number(1) as usize, number(2) as usize);
    let load = match args[3].as_str() {
        "window" => Load::Window {
            messages: number(4),
            window: number(5).max(1),
        },
        "rate" => Load::Rate {
            per_second: number(4).max(1),
            seconds: number(5),
        },
        _ => usage(),
    };
    if rooms == 0 || members == 0 {
        usage();
    }
    let start = Instant::now();
    let states: Vec<Arc<RoomState>> = (0..rooms).map(|_| Arc::default()).collect();
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let expected = Arc::new(AtomicU64::new(u64::MAX));
    let mut publishers = Vec::new();
    let mut readers = Vec::new();
    for member in 0..rooms * members {
        let (room, index) = (member / members, member % members);
        let url = format!("{}/rooms/bench{room}", nodes[member % nodes.len()]);
        let (socket, _) = syncws::connect(&url).unwrap_or_else(|e| {
            eprintln!("connect {url}: {e}");
            std::process::exit(1)
        });
        let (reader, writer) = socket.split().expect("split a fresh connection");
        let state = states[room].clone();
        if index == 0 {
            publishers.push((room, writer));
        }
        let (seen, expected) = (seen.clone(), expected.clone());
        readers.push(thread::spawn(move || {
            let result = receive(reader, &state, index == 0, start, &expected);
            seen.lock().unwrap_or_else(|e| e.into_inner()).push(result);
        }));
    }
    println!(
        "connected {} in {:.1} s",
        rooms * members,
        start.elapsed().as_secs_f64()
    );

    // Warm-up: until every member of every room has seen one message.
    let warm_until = Instant::now() + WARM_UP;
    while states
        .iter()
        .any(|s| s.warm.load(Ordering::SeqCst) < members)
    {
        if Instant::now() > warm_until {
            eprintln!("warm-up: not every member saw a message within {WARM_UP:?}");
            std::process::exit(1);
        }
        for (room, writer) in &publishers {
            if states[*room].warm.load(Ordering::SeqCst) < members {
                let _ = writer.send(Message::text("w"));
            }
        }
        thread::sleep(Duration::from_millis(50));
    }

    let began = Instant::now();
    let per_room = match load {
        Load::Window { messages, window } => {
            publish_windowed(&publishers, &states, start, messages, window);
            messages
        }
        Load::Rate {
            per_second,
            seconds,
        } => publish_at_rate(&publishers, &states, start, per_second, seconds),
    };
    let published = began.elapsed();
    expected.store(per_room, Ordering::SeqCst);
    for reader in readers {
        let _ = reader.join();
    }
    let elapsed = began.elapsed();
    report(
        &seen.lock().unwrap_or_else(|e| e.into_inner()),
        rooms,
        members,
        per_room,
        published,
        elapsed,
    );
}

fn publish_windowed(
    publishers: &[(usize, Writer)],
    states: &[Arc<RoomState>],
    start: Instant,
    messages: u64,
    window: u64,
) {
    thread::scope(|scope| {
        for (room, writer) in publishers {
            let state = &states[*room];
            scope.spawn(move || {
                for seq in 0..messages {
                    while seq >= state.echoed.load(Ordering::SeqCst) + window {
                        thread::sleep(Duration::from_micros(200));
                    }
                    state.sent.store(seq + 1, Ordering::SeqCst);
                    if writer.send(measured(seq, start)).is_err() {
                        eprintln!("publisher of room {room}: connection lost");
                        std::process::exit(1);
                    }
                }
            });
        }
    });
}

/// Sends in ticks of 10 ms, round-robin over the rooms; returns the messages sent per room.
fn publish_at_rate(
    publishers: &[(usize, Writer)],
    states: &[Arc<RoomState>],
    start: Instant,
    per_second: u64,
    seconds: u64,
) -> u64 {
    let rounds = per_second * seconds / publishers.len() as u64;
    let began = Instant::now();
    let rounds_per_second = per_second as f64 / publishers.len() as f64;
    for seq in 0..rounds {
        let due = began + Duration::from_secs_f64(seq as f64 / rounds_per_second);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        for (room, writer) in publishers {
            states[*room].sent.store(seq + 1, Ordering::SeqCst);
            if writer.send(measured(seq, start)).is_err() {
                eprintln!("publisher of room {room}: connection lost");
                std::process::exit(1);
            }
        }
    }
    rounds
}

/// A measured message: `m SEQ MICROS` (microseconds since the run started).
fn measured(seq: u64, start: Instant) -> Message {
    Message::text(format!("m {seq} {}", start.elapsed().as_micros()))
}

/// One member's reading: warm-ups, then measured messages until it has `expected` of them or
/// nothing came for the drain time.
fn receive(
    mut reader: Reader,
    state: &RoomState,
    publisher: bool,
    start: Instant,
    expected: &AtomicU64,
) -> Seen {
    let mut seen = Seen::default();
    let mut warm = false;
    let mut next = 0u64;
    let _ = reader.set_read_timeout(Some(Duration::from_secs(1)));
    let mut quiet_since = Instant::now();
    loop {
        if next >= expected.load(Ordering::SeqCst) {
            break;
        }
        let text = match reader.read() {
            Ok(Message::Text(text)) => text,
            Ok(_) => continue,
            Err(error) if error.is_timeout() && quiet_since.elapsed() < DRAIN => continue,
            Err(_) => break,
        };
        quiet_since = Instant::now();
        let Some(body) = text_field(&text) else {
            continue;
        };
        if body == "w" {
            if !warm {
                warm = true;
                state.warm.fetch_add(1, Ordering::SeqCst);
            }
            continue;
        }
        let mut fields = body
            .split(' ')
            .skip(1)
            .map(|f| f.parse::<u64>().unwrap_or(0));
        let (seq, sent_us) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
        let now_us = start.elapsed().as_micros() as u64;
        seen.latencies_us
            .push(now_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32);
        if seq < next {
            seen.duplicates += 1;
        } else {
            seen.missing += seq - next;
            next = seq + 1;
        }
        if publisher {
            state.echoed.store(next, Ordering::SeqCst);
        }
    }
    seen.next = next;
    seen
}

/// The `text` of a delivery `{"offset":…,"node":…,"text":"…"}` (the bench's texts need no
/// escaping).
fn text_field(frame: &str) -> Option<&str> {
    let start = frame.find("\"text\":\"")? + "\"text\":\"".len();
    let end = frame[start..].find('"')? + start;
    Some(&frame[start..end])
}

fn report(
    seen: &[Seen],
    rooms: usize,
    members: usize,
    per_room: u64,
    published: Duration,
    elapsed: Duration,
) {
    let mut latencies: Vec<u32> = seen
        .iter()
        .flat_map(|s| s.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |&us| f64::from(us) / 1000.0)
    };
    let missing: u64 = seen
        .iter()
        .map(|s| s.missing + per_room.saturating_sub(s.next))
        .sum();
    let duplicates: u64 = seen.iter().map(|s| s.duplicates).sum();
    let delivered = latencies.len();
    println!("rooms {rooms}");
    println!("members_per_room {members}");
    println!("messages_per_room {per_room}");
    println!("deliveries {delivered}");
    println!("publish_seconds {:.2}", published.as_secs_f64());
    println!("seconds {:.2}", elapsed.as_secs_f64());
    println!(
        "deliveries_per_second {:.0}",
        delivered as f64 / elapsed.as_secs_f64()
    );
    println!("latency_p50_ms {:.1}", percentile(0.50));
    println!("latency_p99_ms {:.1}", percentile(0.99));
    println!("latency_max_ms {:.1}", percentile(1.0));
    println!("missing {missing}");
    println!("duplicates {duplicates}");
    if missing > 0 || duplicates > 0 || seen.len() != rooms * members {
        std::process::exit(1);
    }
}
