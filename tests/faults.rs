//! Peers that misbehave at the transport level: each connection ends with a typed cause, frees
//! its thread, and leaves no file descriptor behind (counted in /proc/self).
//!
//! One `#[test]` runs the scenarios in turn: the counts are of this whole process, so no other
//! test thread may come or go meanwhile.

mod common;

use common::{DEADLINE, raw_connect, upgrade_request};
use socket2::SockRef;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};
use syncws::proto::frame::{FrameHeader, OpCode, encode_frame};
use syncws::{EndCause, Message, Server, ServerHandle};

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A server whose handler runs `handler`, reporting each ended connection's cause.
fn server(
    handler: impl Fn(syncws::Session) + Send + Sync + 'static,
) -> (ServerHandle, SocketAddr, mpsc::Receiver<EndCause>) {
    let (tx, causes) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = Server::builder()
        .write_timeout(Some(Duration::from_millis(300)))
        .on_end(move |_, cause| {
            let _ = tx.lock().unwrap().send(cause.clone());
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(handler)
        .unwrap();
    let addr = server.local_addr();
    (server, addr, causes)
}

/// Waits (bounded) until threads and fds are back to what they were.
fn assert_released(threads_before: usize, fds_before: usize) {
    let started = Instant::now();
    while (threads() > threads_before || fds() > fds_before) && started.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(10));
    }
    // At most as many as before: a socket of an earlier scenario may close meanwhile.
    assert!(
        threads() <= threads_before,
        "threads left behind: {} > {threads_before}",
        threads()
    );
    assert!(
        fds() <= fds_before,
        "fds left behind: {} > {fds_before}",
        fds()
    );
}

/// Closes with a TCP reset instead of a FIN (SO_LINGER 0).
fn reset(stream: TcpStream) {
    SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

fn masked(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut header = FrameHeader::new(opcode, payload.len() as u64);
    header.mask = Some([9, 8, 7, 6]);
    let mut out = Vec::new();
    encode_frame(&header, payload, &mut out);
    out
}

fn a_peer_that_resets_mid_frame() {
    let (server, addr, causes) = server(common::echo_session);
    let (threads_before, fds_before) = (threads(), fds());
    let mut raw = common::upgraded(addr);
    let frame = masked(OpCode::Binary, &[7; 1000]);
    raw.write_all(&frame[..500]).unwrap();
    reset(raw);
    let cause = causes.recv_timeout(DEADLINE).unwrap();
    assert!(matches!(cause, EndCause::Io(..)), "{cause}");
    assert_eq!(cause.close_code().as_u16(), 1006);
    assert_released(threads_before, fds_before);
    server.shutdown();
}

fn a_peer_that_resets_mid_handshake() {
    let (server, addr, _causes) = server(common::echo_session);
    let (threads_before, fds_before) = (threads(), fds());
    let mut raw = raw_connect(addr);
    raw.write_all(&upgrade_request("").as_bytes()[..40])
        .unwrap();
    // Reset only once the server holds the connection: otherwise the counts below could match
    // before it was even accepted, and the accept would then add a socket after the check.
    let started = Instant::now();
    while server.connection_count() == 0 && started.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(server.connection_count(), 1, "the server never accepted");
    reset(raw);
    // No WebSocket connection existed, so no cause is reported; the thread and socket go.
    assert_released(threads_before, fds_before);
    // And the server still accepts.
    let (mut ws, _) = syncws::connect(&format!("ws://{addr}/")).unwrap();
    ws.send(Message::text("fine")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("fine"));
    drop(ws);
    server.shutdown();
}

fn a_peer_that_sends_close_and_leaves_at_once() {
    let (server, addr, causes) = server(common::echo_session);
    let (threads_before, fds_before) = (threads(), fds());
    let mut raw = common::upgraded(addr);
    raw.write_all(&masked(OpCode::Close, &[0x03, 0xe8, b'b', b'y', b'e']))
        .unwrap();
    reset(raw);
    let cause = causes.recv_timeout(DEADLINE).unwrap();
    assert!(
        matches!(&cause, EndCause::PeerClosed(Some(f)) if f.code.as_u16() == 1000 && f.reason == "bye"),
        "{cause}"
    );
    assert_released(threads_before, fds_before);
    server.shutdown();
}

fn a_peer_that_never_reads() {
    // The handler floods; the peer reads nothing, so the send buffers fill and a write times out.
    let (server, addr, causes) = server(|session| {
        let chunk = Message::binary(vec![0u8; 64 * 1024]);
        for _ in 0..10_000 {
            if session.send(chunk.clone()).is_err() {
                return;
            }
        }
    });
    let (threads_before, fds_before) = (threads(), fds());
    let raw = common::upgraded(addr);
    SockRef::from(&raw).set_recv_buffer_size(4096).unwrap();
    let cause = causes.recv_timeout(DEADLINE).unwrap();
    assert_eq!(cause, EndCause::WriteTimeout, "{cause}");
    drop(raw);
    assert_released(threads_before, fds_before);
    server.shutdown();
}

#[test]
fn every_fault_ends_typed_and_leaves_nothing_behind() {
    a_peer_that_resets_mid_frame();
    a_peer_that_resets_mid_handshake();
    a_peer_that_sends_close_and_leaves_at_once();
    a_peer_that_never_reads();
}
