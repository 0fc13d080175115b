//! Echoing messages in steady state allocates at most the message payload itself, and nothing at
//! all through a `WebSocket` that is handed each message back to send.
//!
//! A counting global allocator counts, on the measuring thread only (other tests run in parallel
//! in this process), every allocation and reallocation with its size. After a warm-up, a message
//! echoed through a sans-I/O `Connection` may cost one allocation of at most its payload length:
//! the `Vec`/`String` the application receives. Buffers (input, output, control) must be reused.
//! `WebSocket::send` takes the message by value, so its buffer takes the next message received.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use syncws::proto::Event;
use syncws::proto::{Connection, Role};
use syncws::{Config, Message};

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

fn note(bytes: usize) {
    // `try_with`: the allocator also runs while thread-locals are being torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed straight to the system allocator; only counters are added.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations and bytes made by `f` on this thread. Only one measurement runs at a time per
/// thread, and the counters are global, so measurements are serialised by a lock.
fn count<T>(f: impl FnOnce() -> T) -> (T, u64, u64) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let (a0, b0) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    (
        out,
        ALLOCATIONS.load(Ordering::Relaxed) - a0,
        BYTES.load(Ordering::Relaxed) - b0,
    )
}

const WARM_UP: usize = 100;
const MEASURED: usize = 1000;

fn small_message(i: usize, text: bool, len: usize) -> Message {
    let bytes: Vec<u8> = (0..len).map(|j| b'a' + ((i + j) % 26) as u8).collect();
    if text {
        Message::Text(String::from_utf8(bytes).unwrap())
    } else {
        Message::Binary(bytes)
    }
}

/// Echoes `message` through a client/server pair of sans-I/O connections, counting the server's
/// and the client's allocations separately.
fn echo_once(
    client: &mut Connection,
    server: &mut Connection,
    wire: &mut Vec<u8>,
    message: &Message,
) -> ((u64, u64), (u64, u64)) {
    client.send(message).unwrap();
    wire.clear();
    wire.extend_from_slice(client.data_to_send());
    let n = wire.len();
    client.advance(n);

    let ((), server_allocs, server_bytes) = count(|| {
        server.receive_data(wire);
        let Some(Event::Message(received)) = server.next_event().unwrap() else {
            panic!("the server decoded no message");
        };
        assert_eq!(&received, message);
        server.send(&received).unwrap();
    });
    wire.clear();
    wire.extend_from_slice(server.data_to_send());
    let n = wire.len();
    server.advance(n);

    let ((), client_allocs, client_bytes) = count(|| {
        client.receive_data(wire);
        let Some(Event::Message(echoed)) = client.next_event().unwrap() else {
            panic!("the client decoded no message");
        };
        assert_eq!(&echoed, message);
    });
    ((server_allocs, server_bytes), (client_allocs, client_bytes))
}

fn sans_io_echo(text: bool, len: usize) {
    let config = Config::default();
    let mut client = Connection::new(Role::Client, &config);
    let mut server = Connection::new(Role::Server, &config);
    let mut wire = Vec::with_capacity(1024);
    let messages: Vec<Message> = (0..WARM_UP + MEASURED)
        .map(|i| small_message(i, text, len))
        .collect();
    let mut totals = [(0u64, 0u64); 2];
    for (i, message) in messages.iter().enumerate() {
        let (server, client) = echo_once(&mut client, &mut server, &mut wire, message);
        if i >= WARM_UP {
            for (total, side) in totals.iter_mut().zip([server, client]) {
                total.0 += side.0;
                total.1 += side.1;
            }
        }
    }
    for (side, (allocs, bytes)) in ["server", "client"].iter().zip(totals) {
        assert!(
            allocs <= MEASURED as u64 && bytes <= (MEASURED * len) as u64,
            "{side}, {len}-byte {} messages: {allocs} allocations, {bytes} bytes for {MEASURED} \
             messages (at most one allocation of the payload each)",
            if text { "text" } else { "binary" },
        );
    }
}

#[test]
fn sans_io_echo_allocates_only_the_payload() {
    for len in [0, 1, 16, 125, 126, 1000] {
        sans_io_echo(false, len);
        sans_io_echo(true, len);
    }
}

/// Which server echoes: `syncws::accept` on a thread of the test's, or a `syncws::Server` session.
#[derive(Clone, Copy, Debug)]
enum Via {
    Accept,
    Server,
}

/// The server side of [`server_echo`]: echoes `rounds` × `MEASURED` messages after a warm-up,
/// counting each round on its own thread, and reports the fewest allocations (and their bytes)
/// of any round.
fn echo_and_count(
    rounds: usize,
    mut read: impl FnMut() -> Message,
    mut send: impl FnMut(Message),
) -> (u64, u64) {
    for _ in 0..WARM_UP {
        send(read());
    }
    (0..rounds)
        .map(|_| {
            let ((), allocs, bytes) = count(|| {
                for _ in 0..MEASURED {
                    send(read());
                }
            });
            (allocs, bytes)
        })
        .min()
        .unwrap()
}

/// A real server over loopback (see [`Via`]): `read` and `send` of `len`-byte binary messages in
/// a loop, counted on the connection's thread after a warm-up. The client is an unmeasured
/// hand-framed peer on this thread. Returns the allocations and bytes of the measured messages.
///
/// A `Server` session keeps buffers for large messages only while the connection is busy (a
/// 100 ms window): a round in which the client thread was descheduled that long may allocate
/// again, so the best of three rounds counts.
fn server_echo(via: Via, len: usize) -> (u64, u64) {
    let rounds = match via {
        Via::Accept => 1,
        Via::Server => 3,
    };
    let (report, counted) = mpsc::channel();
    // Stop path: it echoes exactly WARM_UP + rounds × MEASURED messages, each read bounded.
    let (addr, server) = match via {
        Via::Accept => {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let thread = thread::Builder::new()
                .name("alloc-echo-server".into())
                .spawn(move || {
                    let (stream, _) = listener.accept().unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let ws = std::cell::RefCell::new(syncws::accept(stream).unwrap());
                    let counted = echo_and_count(
                        rounds,
                        || ws.borrow_mut().read().unwrap(),
                        |message| ws.borrow_mut().send(message).unwrap(),
                    );
                    report.send(counted).unwrap();
                })
                .unwrap();
            (addr, Stop::Thread(thread))
        }
        Via::Server => {
            let report = std::sync::Mutex::new(report);
            let handle = syncws::Server::bind("127.0.0.1:0")
                .unwrap()
                .spawn(move |mut session: syncws::Session| {
                    session
                        .reader()
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let session = std::cell::RefCell::new(session);
                    let counted = echo_and_count(
                        rounds,
                        || session.borrow_mut().read().unwrap(),
                        |message| session.borrow().send(message).unwrap(),
                    );
                    report.lock().unwrap().send(counted).unwrap();
                })
                .unwrap();
            (handle.local_addr(), Stop::Server(handle))
        }
    };

    let mut client = TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client
        .write_all(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        client.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    // A masked binary frame, and the unmasked echo expected back (RFC 6455 §5.2, §5.3).
    let key = [0x11, 0x22, 0x33, 0x44];
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut frame = binary_header(len, true);
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    let mut expected = binary_header(len, false);
    expected.extend_from_slice(&payload);
    let mut reply = vec![0u8; expected.len()];
    for _ in 0..WARM_UP + rounds * MEASURED {
        client.write_all(&frame).unwrap();
        client.read_exact(&mut reply).unwrap();
        assert_eq!(reply, expected);
    }
    let counted = counted.recv_timeout(Duration::from_secs(10)).unwrap();
    match server {
        Stop::Thread(thread) => thread.join().unwrap(),
        Stop::Server(handle) => handle.shutdown(),
    }
    counted
}

/// How [`server_echo`] stops its server.
enum Stop {
    Thread(thread::JoinHandle<()>),
    Server(syncws::ServerHandle),
}

/// A final binary frame's first bytes up to the mask key (RFC 6455 §5.2).
fn binary_header(len: usize, masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut header = vec![0x82];
    match len {
        0..=125 => header.push(mask_bit | len as u8),
        126..=0xffff => {
            header.push(mask_bit | 126);
            header.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            header.push(mask_bit | 127);
            header.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    header
}

/// Echoes 1 B to 64 KiB messages through `via` and checks that steady state allocates nothing.
fn assert_steady_echo_allocates_nothing(via: Via) {
    for len in [1, 16, 1000, 16 << 10, 20 << 10, 64 << 10] {
        let (allocs, bytes) = server_echo(via, len);
        assert_eq!(
            (allocs, bytes),
            (0, 0),
            "allocations and bytes for {MEASURED} echoed {len}-byte messages ({via:?})"
        );
    }
}

#[test]
fn websocket_server_echo_allocates_nothing_in_steady_state() {
    // Each message sent back is the buffer the next one is received into (`Receiver::recycle`):
    // small ones through the input buffer, large ones read straight into it.
    assert_steady_echo_allocates_nothing(Via::Accept);
}

#[test]
fn server_session_echo_allocates_nothing_in_steady_state() {
    // The same through `Server`: `Session::send` offers the message's buffer to the reader, which
    // keeps it while messages keep coming.
    assert_steady_echo_allocates_nothing(Via::Server);
}
