//! Review of the w3 change (issue 19 API rework + issue 21 item 6 fan-out queue): each test
//! reproduces one finding; failing ones are `#[ignore = "review finding N: ..."]`.
//! Loopback only, port 0, every wait bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use syncws::{ClientBuilder, Config, Message};

const DEADLINE: Duration = Duration::from_secs(20);

/// A WebSocket server that completes the handshake by hand and then never reads again (its
/// receive buffer fills); it holds the socket until `stop` fires or DEADLINE passes.
fn silent_server() -> (SocketAddr, mpsc::Sender<()>, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = mpsc::channel::<()>();
    let handle = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("sec-websocket-key").then(|| v.trim().to_owned())
            })
            .unwrap();
        let accept = syncws::proto::handshake::accept_key(&key);
        write!(
            tcp,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .unwrap();
        let _ = stopped.recv_timeout(DEADLINE);
        drop(tcp);
    });
    (addr, stop, handle)
}

/// Finding 1: `Reader::close` promises "Takes at most `Config::close_timeout` in all", but it
/// first calls `Writer::start_close`, which waits (`Shared::own`, unbounded) for the write half
/// held by a `Writer::send` blocked on a peer that does not read (a client has no write timeout
/// by default), then writes the close frame with no deadline. The close never returns.
#[test]
#[ignore = "review finding 1: Reader::close is not bounded by close_timeout while the write half is busy"]
fn reader_close_is_bounded_by_close_timeout_even_when_a_send_is_stuck() {
    let (addr, stop, server) = silent_server();
    let mut config = Config::default();
    config.close_timeout = Duration::from_millis(500);
    let (ws, _) = ClientBuilder::new(format!("ws://{addr}/"))
        .config(config)
        .without_heartbeat()
        .connect()
        .unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    let sender = writer.clone();
    // Fills both socket buffers and then blocks: the peer never reads.
    let stuck = thread::spawn(move || sender.send(Message::Binary(vec![7; 64 << 20])));
    thread::sleep(Duration::from_millis(500));
    assert!(!stuck.is_finished(), "the send should be blocked on the silent peer");
    let (done_tx, done) = mpsc::channel();
    thread::spawn(move || {
        let started = Instant::now();
        let result = reader.close(1000u16, "bye");
        let _ = done_tx.send((started.elapsed(), format!("{result:?}")));
    });
    let outcome = done.recv_timeout(Duration::from_secs(5));
    // Clean up whatever happened: cutting TCP wakes every blocked call.
    writer.abort();
    let _ = stop.send(());
    let _ = stuck.join();
    let _ = server.join();
    let (took, result) = outcome.expect("Reader::close did not return within 5 s (close_timeout 500 ms)");
    assert!(took < Duration::from_secs(2), "close took {took:?}: {result}");
}
