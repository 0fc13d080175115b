//! Both ends split, both directions saturated at once, every payload checked byte for byte.
//!
//! Shared by `split_duplex.rs` (ws://) and the TLS tests (wss://): a case takes a server builder
//! and a function that connects a client to the server's address and splits it, so the same
//! exchange runs over any transport.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use syncws::{CloseCode, Message, Reader, ServerBuilder, Session, Writer};

/// How long one exchange may take before it counts as stuck: generous, for a loaded machine.
pub const EXCHANGE_BOUND: Duration = Duration::from_secs(60);

/// Which end wrote a message: seeds its pattern, so a message from the wrong direction fails.
#[derive(Debug, Clone, Copy)]
pub enum From {
    Client,
    Server,
}

/// Message `index` of `size` bytes from `from`: a pattern distinct per message and direction
/// (a 4 KiB block derived from both, repeated with a shift each time; built by copying, so a
/// debug build makes it fast).
pub fn payload(from: From, index: usize, size: usize) -> Vec<u8> {
    let seed = (index as u32).wrapping_mul(2_654_435_761) ^ matches!(from, From::Server) as u32;
    let block: Vec<u8> = (0..4096u32 + 256)
        .map(|i| (seed.wrapping_add(i).wrapping_mul(0x9e37_79b9) >> 24) as u8)
        .collect();
    let mut out = Vec::with_capacity(size);
    let mut shift = 0;
    while out.len() < size {
        let take = (size - out.len()).min(4096);
        out.extend_from_slice(&block[shift..shift + take]);
        shift = (shift + 1) % 256;
    }
    out
}

/// Sends `count` messages of `size` bytes.
fn send_all(writer: &Writer, from: From, count: usize, size: usize) -> Result<(), String> {
    for index in 0..count {
        writer
            .send(Message::Binary(payload(from, index, size)))
            .map_err(|e| {
                format!(
                    "{from:?} send {index}/{count}: {e} ({:?})",
                    writer.end_cause()
                )
            })?;
    }
    Ok(())
}

/// Reads `count` messages of `size` bytes sent by `from`, checking each byte.
fn receive_all(reader: &mut Reader, from: From, count: usize, size: usize) -> Result<(), String> {
    for index in 0..count {
        let message = reader.read().map_err(|e| {
            format!(
                "read {index}/{count} from {from:?}: {e} ({:?})",
                reader.end_cause()
            )
        })?;
        let Message::Binary(data) = message else {
            return Err(format!(
                "message {index} from {from:?}: unexpected {message:?}"
            ));
        };
        if data != payload(from, index, size) {
            return Err(format!(
                "message {index} from {from:?} corrupt ({} bytes)",
                data.len()
            ));
        }
    }
    Ok(())
}

/// One end's half of the exchange: a writer thread sends while this thread reads.
fn both_ways(
    reader: &mut Reader,
    writer: &Writer,
    me: From,
    peer: From,
    count: usize,
    size: usize,
) -> Result<(), String> {
    let sending = {
        let writer = writer.clone();
        thread::spawn(move || send_all(&writer, me, count, size))
    };
    let received = receive_all(reader, peer, count, size);
    let sent = sending
        .join()
        .map_err(|_| "writer thread panicked".to_string())?;
    received.and(sent)
}

/// Spawns a server from `builder` whose every session runs the exchange, connects with
/// `connect`, runs the client's side, and fails the test if either side fails or the whole
/// exchange takes longer than [`EXCHANGE_BOUND`].
pub fn exchange(
    builder: ServerBuilder<()>,
    connect: impl FnOnce(SocketAddr) -> (Reader, Writer) + Send + 'static,
    count: usize,
    size: usize,
) {
    let (server_tx, server_rx) = mpsc::channel();
    let server_tx = std::sync::Mutex::new(server_tx);
    // The locking is under test, not compression: a debug build spends seconds per compressible
    // megabyte, and a peer that slow would meet the write timeout on a loaded machine.
    let mut config = syncws::Config::default();
    config.deflate.enabled = false;
    let server = builder
        .config(config)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |mut session: Session| {
            let writer = session.writer();
            let result = both_ways(
                session.reader(),
                &writer,
                From::Server,
                From::Client,
                count,
                size,
            );
            // Then wait for the client's close, so its reader sees the whole exchange.
            if result.is_ok() {
                while let Ok(message) = session.read() {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            }
            let _ = server_tx.lock().unwrap().send(result);
        })
        .unwrap();
    let addr = server.local_addr();
    let (client_tx, client_rx) = mpsc::channel();
    let started = Instant::now();
    thread::spawn(move || {
        let (mut reader, writer) = connect(addr);
        reader.set_read_timeout(Some(EXCHANGE_BOUND)).unwrap();
        let mut result = both_ways(
            &mut reader,
            &writer,
            From::Client,
            From::Server,
            count,
            size,
        );
        if result.is_ok() {
            result = reader
                .close(CloseCode::Normal, "done")
                .map(drop)
                .map_err(|e| format!("client close: {e}"));
        }
        let _ = client_tx.send(result);
    });
    let client = client_rx
        .recv_timeout(EXCHANGE_BOUND)
        .unwrap_or_else(|_| panic!("{count} × {size} B: client stuck after {EXCHANGE_BOUND:?}"));
    let left = EXCHANGE_BOUND.saturating_sub(started.elapsed());
    let server_result = server_rx
        .recv_timeout(left.max(Duration::from_secs(5)))
        .unwrap_or_else(|_| Err("server session did not finish".into()));
    client.unwrap_or_else(|e| panic!("{count} × {size} B: client: {e}"));
    server_result.unwrap_or_else(|e| panic!("{count} × {size} B: server: {e}"));
    server.shutdown();
}

/// The plain client's connect: `ws://`, then split.
pub fn connect_ws(addr: SocketAddr) -> (Reader, Writer) {
    let (ws, _) = syncws::connect(&format!("ws://{addr}/")).expect("connect");
    ws.split().expect("split")
}

/// `ws://` over a client socket with small kernel buffers (`bytes` each way), so that the
/// writers on both ends fill them after a few frames, and then block: what a slow network does.
pub fn connect_ws_small_buffers(addr: SocketAddr, bytes: usize) -> (Reader, Writer) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
    socket.set_send_buffer_size(bytes).expect("SO_SNDBUF");
    socket.connect(&addr.into()).expect("connect");
    let stream: std::net::TcpStream = socket.into();
    let (ws, _) = syncws::ClientBuilder::new(format!("ws://{addr}/"))
        .connect_on(stream)
        .expect("handshake");
    ws.split().expect("split")
}
