//! The load client: hand-framed, so it does as little work as a client can.
//!
//! Each connection has its own thread. The masked frame is encoded once; every message is one
//! `write_all` of it and one `read_exact` of the known reply length (the reply's header is checked
//! every time, its payload in full on the warm-up message). Protocol:
//!
//! 1. connect (and upgrade, for WebSocket servers) every connection, one after the other;
//! 2. echo one warm-up message on each, checking the reply byte for byte;
//! 3. print `ready` and wait for a line on stdin (the runner reads the server's idle memory);
//! 4. echo until the deadline, then print `result <messages> <seconds> <cpu seconds>`.

use crate::servers::ServerKind;
use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// What one load run does.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub port: u16,
    pub server: ServerKind,
    pub size: usize,
    pub conns: usize,
    pub text: bool,
    pub duration: Duration,
}

/// No single read or write may block longer than this; a stuck server fails the run.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// The same fixed key on every frame: masking cost is the server's, not ours.
const MASK: [u8; 4] = [0x5a, 0xc3, 0x0f, 0x96];

pub fn run(spec: &LoadSpec) -> io::Result<()> {
    let payload = payload(spec.size, spec.text);
    let opcode = if spec.text { 0x1 } else { 0x2 };
    let request = Arc::new(frame(opcode, &payload, Some(MASK)));
    let reply = Arc::new(if spec.server.speaks_websocket() {
        frame(opcode, &payload, None)
    } else {
        request.to_vec()
    });
    let mut streams = Vec::with_capacity(spec.conns);
    for _ in 0..spec.conns {
        let mut stream = TcpStream::connect(("127.0.0.1", spec.port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        if spec.server.speaks_websocket() {
            upgrade(&mut stream)?;
        }
        streams.push(stream);
    }
    let mut scratch = vec![0u8; reply.len()];
    for stream in &mut streams {
        stream.write_all(&request)?;
        stream.read_exact(&mut scratch)?;
        if scratch != *reply {
            return Err(io::Error::other("the echo differs from what was sent"));
        }
    }
    println!("ready");
    io::stdout().flush()?;
    let mut go = String::new();
    io::stdin().lock().read_line(&mut go)?;

    // The clock starts before the start line is crossed: on one CPU the workers may run to their
    // deadline before this thread is scheduled again.
    let start_line = Arc::new(Barrier::new(spec.conns + 1));
    // Workers stay alive (and their connections open) until their CPU time has been read.
    let exit_line = Arc::new(Barrier::new(spec.conns + 1));
    let start = Arc::new(OnceLock::new());
    let (report, results) = mpsc::channel();
    let mut workers = Vec::with_capacity(spec.conns);
    for (n, stream) in streams.into_iter().enumerate() {
        let (request, reply) = (request.clone(), reply.clone());
        let (start_line, exit_line, start) = (start_line.clone(), exit_line.clone(), start.clone());
        let report = report.clone();
        let duration = spec.duration;
        // Stop path: the deadline, or an I/O error (each call is bounded by IO_TIMEOUT); then the
        // exit line, which the main thread always reaches.
        let worker = thread::Builder::new()
            .name(format!("load-{n}"))
            .stack_size(64 << 10)
            .spawn(move || {
                start_line.wait();
                let deadline = *start.get().expect("set before the start line") + duration;
                let result = echo_until(&stream, &request, &reply, deadline);
                let _ = report.send(result);
                exit_line.wait();
                stream
            })?;
        workers.push(worker);
    }
    drop(report);
    let cpu_before = own_cpu_seconds();
    let started = *start.get_or_init(Instant::now);
    start_line.wait();
    let mut messages = 0u64;
    let mut last_end = started;
    let mut failure = None;
    for result in results.iter().take(spec.conns) {
        match result {
            Ok((count, end)) => {
                messages += count;
                last_end = last_end.max(end);
            }
            Err(e) => failure = Some(e),
        }
    }
    let cpu = own_cpu_seconds() - cpu_before;
    exit_line.wait();
    let _open: Vec<TcpStream> = workers
        .into_iter()
        .map(|w| w.join().expect("load thread panicked"))
        .collect();
    if let Some(e) = failure {
        return Err(e);
    }
    let elapsed = (last_end - started).as_secs_f64();
    println!("result {messages} {elapsed:.6} {cpu:.6}");
    io::stdout().flush()?;
    // Keep the connections open until the runner has read the server's CPU time: it closes our
    // stdin when done.
    let mut rest = String::new();
    while io::stdin().lock().read_line(&mut rest)? > 0 {
        rest.clear();
    }
    Ok(())
}

fn echo_until(
    mut stream: &TcpStream,
    request: &[u8],
    reply: &[u8],
    deadline: Instant,
) -> io::Result<(u64, Instant)> {
    let mut buf = vec![0u8; reply.len()];
    let head = reply.len().min(4);
    let mut count = 0;
    loop {
        stream.write_all(request)?;
        stream.read_exact(&mut buf)?;
        if buf[..head] != reply[..head] {
            return Err(io::Error::other("unexpected reply header"));
        }
        count += 1;
        let now = Instant::now();
        if now >= deadline {
            return Ok((count, now));
        }
    }
}

/// `size` bytes: printable ASCII for text (the common case), every byte value for binary.
fn payload(size: usize, text: bool) -> Vec<u8> {
    const TEXT: &[u8] = b"The quick brown fox jumps over the lazy dog 0123456789. ";
    (0..size)
        .map(|i| {
            if text {
                TEXT[i % TEXT.len()]
            } else {
                (i * 131 % 256) as u8
            }
        })
        .collect()
}

/// A final frame, encoded by hand (RFC 6455 §5.2).
fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A minimal HTTP upgrade (RFC 6455 §4.1); the key is the RFC's own example.
fn upgrade(stream: &mut TcpStream) -> io::Result<()> {
    stream.write_all(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )?;
    // The server sends nothing after its 101 until we send a frame, so reading up to the blank
    // line cannot swallow frame bytes.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 4096 {
            return Err(io::Error::other("handshake response too long"));
        }
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(io::Error::other("the server refused the upgrade"));
    }
    Ok(())
}

/// CPU time of this process's live threads.
fn own_cpu_seconds() -> f64 {
    crate::procfs::cpu_seconds(std::process::id()).unwrap_or(0.0)
}
