//! Memory per connection with permessage-deflate, measured on a real server process: the growth of
//! its resident set (VmRSS, Linux) while many browser-like connections are open, idle and after
//! chat-like traffic, and the compressed size of each message both ways. `scripts/deflate_memory.sh`
//! runs it against each server configuration and python-websockets and prints the table.
//!
//! Two modes:
//!
//! - `deflate_memory serve [ADDR] [--server-window N] [--client-window N] [--level N]
//!   [--server-no-context-takeover] [--receive-only] [--off]`: an echo server (one thread per
//!   connection, like `echo_server`) with those `DeflateConfig` settings; prints its address.
//! - `deflate_memory load ADDR PID [--offer OFFER | --no-offer] [--connections N]`: opens N
//!   (default 500) connections offering OFFER (default Chromium's
//!   `permessage-deflate; client_max_window_bits`), lets them go quiet, echoes four distinct
//!   ~740-byte chat messages on each (round by round over all connections, as a busy chat would),
//!   lets them go quiet again, and prints one line:
//!   `idle_bytes_per_conn after_bytes_per_conn bytes_to_server bytes_from_server agreed`,
//!   where the byte counts are mean payload sizes per message and `agreed` is the server's answer.
//!
//! Build with `--release --features deflate`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use syncws::proto::Event;
use syncws::proto::deflate::negotiation::check_server_response;
use syncws::proto::{Connection, Role};
use syncws::{Config, DeflateConfig, Message, Server};

/// How long the load waits for the server to go quiet: its connections release their buffers (and
/// codec state) after about 100 ms without traffic.
const SETTLE: Duration = Duration::from_millis(1500);

/// What Chromium offers.
const BROWSER_OFFER: &str = "permessage-deflate; client_max_window_bits";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("load") => load(&args[1..]),
        _ => Err("usage: deflate_memory serve [ADDR] [options] | load ADDR PID [options]".into()),
    }
}

fn serve(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.deflate.enabled = true;
    let mut addr = "127.0.0.1:0".to_owned();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = || -> Result<u32, Box<dyn std::error::Error>> {
            Ok(args.next().ok_or("a flag needs a number")?.parse()?)
        };
        match arg.as_str() {
            "--server-window" => config.deflate.server_max_window_bits = number()? as u8,
            "--client-window" => config.deflate.client_max_window_bits = number()? as u8,
            "--level" => config.deflate.level = number()?,
            "--server-no-context-takeover" => config.deflate.server_no_context_takeover = true,
            "--receive-only" => config.deflate.receive_only = true,
            "--off" => config.deflate.enabled = false,
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}").into()),
            _ => addr = arg.clone(),
        }
    }
    let server = Server::builder().config(config).bind(&addr)?;
    println!("{}", server.local_addr()?);
    std::io::stdout().flush()?;
    server.serve(|mut session| {
        while let Ok(message) = session.read() {
            if let Message::Text(_) | Message::Binary(_) = message {
                if session.send(message).is_err() {
                    break;
                }
            }
        }
    })?;
    Ok(())
}

fn rss_bytes(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A chat message of about 740 bytes, like a chat app's JSON: shape repeats, content varies.
pub fn chat_message(n: usize) -> String {
    const WORDS: [&str; 24] = [
        "meeting", "tomorrow", "deploy", "review", "the", "branch", "lunch", "coffee", "works",
        "broken", "again", "thanks", "please", "check", "ticket", "customer", "release", "notes",
        "tests", "green", "flaky", "server", "memory", "today",
    ];
    let mut x = (n as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut text = String::new();
    while text.len() < 350 {
        text.push_str(WORDS[next(24) as usize]);
        text.push(' ');
    }
    let user = next(900) + 100;
    let reactions: Vec<String> = (0..3)
        .map(|_| {
            format!(
                "{{\"emoji\":\"{}\",\"count\":{}}}",
                ["👍", "🎉", "😂", "👀"][next(4) as usize],
                next(9) + 1
            )
        })
        .collect();
    format!(
        "{{\"type\":\"message\",\"id\":\"msg_{:016x}\",\"channel\":\"C0{}GENERAL\",\
         \"user\":{{\"id\":\"U{user}\",\"name\":\"user{user}\",\"display_name\":\"User {user}\",\
         \"avatar\":\"https://cdn.example.com/avatars/{user}/{:08x}_72.png\"}},\
         \"text\":\"{}\",\"ts\":\"2026-12-04T13:{:02}:{:02}.{:03}Z\",\"thread_ts\":null,\
         \"edited\":false,\"reactions\":[{}],\"mentions\":[\"U{}\"]}}",
        next(u64::MAX),
        next(90) + 10,
        next(u64::MAX) as u32,
        text.trim_end(),
        next(60),
        next(60),
        next(1000),
        reactions.join(","),
        next(900) + 100,
    )
}

/// The payload length of the one whole frame in `frame`.
fn payload_len(frame: &[u8]) -> usize {
    let header =
        2 + match frame[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        } + if frame[1] & 0x80 != 0 { 4 } else { 0 };
    frame.len() - header
}

struct Client {
    stream: TcpStream,
    conn: Connection,
}

fn connect(
    addr: &str,
    offer: Option<&str>,
) -> Result<(Client, String), Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_nodelay(true)?;
    let extensions = offer.map_or(String::new(), |o| {
        format!("Sec-WebSocket-Extensions: {o}\r\n")
    });
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n"
    )?;
    // The server sends nothing after its response until we send, so the head ends the bytes read.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 || head.len() > 8192 {
            return Err("handshake: connection closed".into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    if !head.starts_with("HTTP/1.1 101") {
        return Err(format!("handshake refused: {head}").into());
    }
    let answer = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    // The client's side as a browser compresses: window 15, zlib's default level.
    let mut deflate = DeflateConfig::default();
    deflate.enabled = true;
    deflate.server_max_window_bits = 15;
    deflate.client_max_window_bits = 15;
    deflate.level = 6;
    deflate.threshold = 0;
    let mut conn = Connection::new(Role::Client, &Config::default());
    let values: Vec<&str> = if answer.is_empty() {
        vec![]
    } else {
        vec![answer.as_str()]
    };
    if let Some(params) = check_server_response(values, offer.is_some(), &deflate)? {
        conn.set_deflate(&params, &deflate);
    }
    Ok((Client { stream, conn }, answer))
}

/// Sends `text` and waits for its echo; returns the payload sizes sent and received.
fn echo(client: &mut Client, text: &str) -> Result<(usize, usize), Box<dyn std::error::Error>> {
    let message = Message::text(text);
    client.conn.send(&message)?;
    let sent = payload_len(client.conn.data_to_send());
    client.stream.write_all(client.conn.data_to_send())?;
    let n = client.conn.data_to_send().len();
    client.conn.advance(n);
    let mut frame = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(event) = client.conn.next_event()? {
            match event {
                Event::Message(m) if m == message => return Ok((sent, payload_len(&frame))),
                other => return Err(format!("unexpected {other:?}").into()),
            }
        }
        if Instant::now() > deadline {
            return Err("no echo within 20 s".into());
        }
        let n = client.stream.read(&mut buf)?;
        if n == 0 {
            return Err("closed".into());
        }
        frame.extend_from_slice(&buf[..n]);
        client.conn.receive_data(&buf[..n]);
    }
}

fn load(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let addr = args.first().ok_or("load needs ADDR PID")?.clone();
    let pid: u32 = args.get(1).ok_or("load needs ADDR PID")?.parse()?;
    let mut offer = Some(BROWSER_OFFER.to_owned());
    let mut connections = 500;
    let mut rest = args[2..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--offer" => offer = Some(rest.next().ok_or("--offer needs a value")?.clone()),
            "--no-offer" => offer = None,
            "--connections" => connections = rest.next().ok_or("needs N")?.parse()?,
            flag => return Err(format!("unknown flag {flag}").into()),
        }
    }
    std::thread::sleep(SETTLE);
    let before = rss_bytes(pid);
    let mut clients = Vec::with_capacity(connections);
    let mut agreed = String::new();
    for _ in 0..connections {
        let (client, answer) = connect(&addr, offer.as_deref())?;
        agreed = answer;
        clients.push(client);
    }
    std::thread::sleep(SETTLE);
    let idle = rss_bytes(pid).saturating_sub(before) / connections;
    let (mut to_server, mut from_server, mut messages) = (0, 0, 0);
    let traffic = Instant::now();
    for round in 0..4 {
        let text = chat_message(round);
        for client in &mut clients {
            let (sent, received) = echo(client, &text)?;
            to_server += sent;
            from_server += received;
            messages += 1;
        }
    }
    let round = traffic.elapsed() / 4;
    std::thread::sleep(SETTLE);
    let after = rss_bytes(pid).saturating_sub(before) / connections;
    if std::env::var_os("DEFLATE_MEMORY_SMAPS").is_some() {
        // Resident memory by mapping size: thread stacks, malloc arenas, the heap.
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
        let mut by_size = std::collections::BTreeMap::<usize, (usize, usize)>::new();
        let mut size = 0;
        for line in smaps.lines() {
            let kb = |v: &str| {
                v.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<usize>()
                    .unwrap_or(0)
            };
            if let Some(v) = line.strip_prefix("Size:") {
                size = kb(v);
            } else if let Some(v) = line.strip_prefix("Rss:") {
                let entry = by_size.entry(size).or_default();
                entry.0 += 1;
                entry.1 += kb(v);
            }
        }
        for (size, (count, rss)) in by_size.iter().filter(|(_, (_, rss))| *rss > 1000) {
            eprintln!("{count} mappings of {size} kB: {rss} kB resident");
        }
    }
    if agreed.is_empty() {
        agreed = "-".to_owned();
    }
    println!(
        "{idle} {after} {} {} {} {agreed}",
        to_server / messages,
        from_server / messages,
        round.as_millis()
    );
    Ok(())
}
