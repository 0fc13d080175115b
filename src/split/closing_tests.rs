//! A close while another thread's send is blocked on a peer that stopped reading: bounded by
//! `Config::close_timeout`, and the blocked send wakes.

use crate::error::Error;
use crate::proto::Role;
use crate::proto::config::Config;
use crate::proto::message::Message;
use crate::websocket::WebSocket;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const CLOSE_TIMEOUT: Duration = Duration::from_millis(300);
const DEADLINE: Duration = Duration::from_secs(20);

/// A server-side split whose peer (returned) never reads, with a send blocked in its write on
/// another thread (joined through the returned handle).
fn stuck_send() -> (
    crate::Reader,
    crate::Writer,
    TcpStream,
    thread::JoinHandle<Result<(), Error>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let config = Config {
        close_timeout: CLOSE_TIMEOUT,
        ..Config::default()
    };
    let (reader, writer) = WebSocket::from_stream(server, Role::Server, config)
        .split()
        .unwrap();
    let sender = writer.clone();
    let (writing_tx, writing) = mpsc::channel();
    let stuck = thread::spawn(move || {
        writing_tx.send(()).unwrap();
        // Far more than the kernel buffers hold: blocks once they are full.
        sender.send(Message::Binary(vec![7; 32 << 20]))
    });
    writing.recv_timeout(DEADLINE).unwrap();
    // Until the write half is held and the buffers are full: `is_open` stays true, and a
    // try of the write half fails while the send writes.
    let started = Instant::now();
    while writer.shared.try_own().is_some() || writer.shared.has_output() {
        assert!(
            started.elapsed() < DEADLINE,
            "the send never took the write half"
        );
        thread::sleep(Duration::from_millis(5));
    }
    (reader, writer, peer, stuck)
}

/// Runs `close` on its own thread; a close that never returns fails the test (after cutting
/// TCP through `writer`, so nothing stays blocked) rather than hanging it.
fn timed<T: Send + 'static>(
    writer: &crate::Writer,
    close: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    let (done_tx, done) = mpsc::channel();
    thread::spawn(move || {
        let started = Instant::now();
        let result = close();
        let _ = done_tx.send((result, started.elapsed()));
    });
    let outcome = done.recv_timeout(Duration::from_secs(5));
    if outcome.is_err() {
        writer.abort();
    }
    outcome.expect("the close did not return within 5 s")
}

fn assert_timed_out(result: &Result<impl std::fmt::Debug, Error>) {
    match result {
        Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn start_close_from_another_thread_returns_within_close_timeout_and_wakes_the_send() {
    let (_reader, writer, peer, stuck) = stuck_send();
    let closer = writer.clone();
    let (result, took) = timed(&writer, move || closer.start_close(1000u16, "bye"));
    assert_timed_out(&result);
    assert!(
        took >= CLOSE_TIMEOUT / 2 && took < Duration::from_secs(3),
        "took {took:?}"
    );
    // TCP was cut: the blocked send wakes with an error.
    assert!(stuck.join().unwrap().is_err());
    assert!(!writer.is_open());
    drop(peer);
}

#[test]
fn reader_close_returns_within_close_timeout_while_a_send_writes() {
    let (mut reader, writer, mut peer, stuck) = stuck_send();
    let (result, took) = timed(&writer, move || reader.close(1000u16, "bye"));
    assert_timed_out(&result);
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(stuck.join().unwrap().is_err());
    let _ = peer.flush();
}

#[test]
fn start_close_on_a_free_write_half_sends_the_frame_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let (_reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
        .split()
        .unwrap();
    writer.start_close(1000u16, "bye").unwrap();
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut frame = [0u8; 7];
    io::Read::read_exact(&mut peer, &mut frame).unwrap();
    assert_eq!(frame, [0x88, 5, 0x03, 0xe8, b'b', b'y', b'e']);
    assert!(matches!(
        writer.start_close(1000u16, ""),
        Err(Error::AlreadyClosed)
    ));
}
