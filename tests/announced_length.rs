//! A frame header announcing a large payload costs a server little until the payload comes
//! (issue 18, item 1): room for a payload follows the bytes that arrived, not the announced
//! length. Measured as the growth of this process's resident memory while 50 connections to a
//! real `Server` have each sent only a 14-byte header announcing 16 MiB − 1 bytes.
#![cfg(target_os = "linux")]

mod common;

use common::{DEADLINE, upgraded};
use std::io::Write;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 50;

/// A masked binary frame header announcing 16 MiB − 1 payload bytes (RFC 6455 §5.2), and no
/// payload.
const HEADER: [u8; 14] = [
    0x82, 0xff, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x11, 0x22, 0x33, 0x44,
];

/// More than an idle connection's input buffer (2 KiB): the header has been decoded and the
/// room for its payload set up.
const HEADER_SEEN: usize = 4096;

/// This process's resident memory in bytes (Linux: `VmRSS` in /proc/self/status).
fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

/// Waits for `count` reports on `rx`, failing after the test's deadline.
fn wait_for(rx: &mpsc::Receiver<()>, count: usize, what: &str) {
    let end = Instant::now() + DEADLINE;
    for i in 0..count {
        let left = end.saturating_duration_since(Instant::now());
        rx.recv_timeout(left)
            .unwrap_or_else(|_| panic!("{what}: {i} of {count} within {DEADLINE:?}"));
    }
}

#[test]
fn headers_announcing_16_mib_without_payload_cost_little_memory() {
    let (started_tx, started) = mpsc::channel();
    let (seen_tx, seen) = mpsc::channel();
    let reports = Mutex::new((started_tx, seen_tx));
    // Each handler reads with short timeouts: between them it can say when its connection has
    // started, and when the header has been decoded (the reader then holds more than its input
    // buffer: the room for the payload is in place). It ends when the client goes away, or at
    // the test's deadline.
    let handle = syncws::Server::bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |mut session: syncws::Session| {
            let (started, seen) = reports.lock().unwrap().clone();
            session
                .reader()
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let _ = started.send(());
            let end = Instant::now() + DEADLINE;
            let mut reported = false;
            while Instant::now() < end {
                match session.read() {
                    Err(e) if e.is_timeout() => {
                        if !reported && session.reader().buffered_capacity() > HEADER_SEEN {
                            reported = true;
                            let _ = seen.send(());
                        }
                    }
                    _ => return,
                }
            }
        })
        .unwrap();

    let mut clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| upgraded(handle.local_addr()))
        .collect();
    wait_for(&started, CONNECTIONS, "connections started");
    let before = resident_bytes();
    for client in &mut clients {
        client.write_all(&HEADER).unwrap();
    }
    wait_for(&seen, CONNECTIONS, "headers decoded");
    let after = resident_bytes();
    let per_connection = after.saturating_sub(before) / CONNECTIONS;
    eprintln!("resident memory per connection after a header alone: {per_connection} bytes");
    drop(clients);
    handle.shutdown();
    assert!(
        per_connection < 48 << 10,
        "{per_connection} bytes of resident memory per connection for a header alone"
    );
}
