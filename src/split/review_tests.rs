//! Review findings on the split writer, each reproduced before its fix: a shared thread's ping
//! that could not be written must neither poison later sends nor be stranded.

use crate::proto::Role;
use crate::proto::config::Config;
use crate::proto::message::Message;
use crate::websocket::WebSocket;
use crate::websocket::ending::EndCause;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Fills the socket's send buffer and the peer's receive buffer with junk, without blocking.
fn fill(tcp: &TcpStream) {
    let clone = tcp.try_clone().unwrap();
    clone.set_nonblocking(true).unwrap();
    let junk = [0u8; 64 * 1024];
    let started = Instant::now();
    loop {
        match (&clone).write(&junk) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
        assert!(started.elapsed() < Duration::from_secs(20));
    }
    clone.set_nonblocking(false).unwrap();
}

/// Finding 1: a shared thread's ping (heartbeat) that gives up after its 50 ms leaves
/// `WriteSide::due` set (`write_out`'s `Ok(false)` path keeps it). Long after, with a peer that
/// reads steadily, the next send's first partial write sees the stale deadline and
/// fails the healthy connection with WriteTimeout at once.
#[test]
fn a_ping_that_gave_up_does_not_leave_a_stale_deadline_for_later_sends() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let raw = server.try_clone().unwrap();
    let (_reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
        .split()
        .unwrap();
    // The peer is momentarily not reading: the pipe is full.
    fill(&raw);
    // The heartbeat's ping stalls and gives up after SHARED_THREAD_WRITE_BOUND.
    assert!(!writer.ping_from_shared_thread());
    // The peer now reads everything, steadily (at most 256 KiB every 2 ms).
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let draining = std::thread::spawn(move || {
        let mut client = client;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0usize;
        while let Ok(n) = client.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
            std::thread::sleep(Duration::from_millis(2));
        }
        total
    });
    // Well past the ping's deadline (5 s after its stall), the pipe long drained.
    std::thread::sleep(Duration::from_millis(6000));
    let started = Instant::now();
    let result = writer.send(Message::Binary(vec![7u8; 32 << 20]));
    let took = started.elapsed();
    let cause = writer.end_cause();
    writer.abort();
    let _ = draining.join();
    assert!(
        result.is_ok(),
        "a send to a peer reading steadily failed after {took:?}: {result:?}, cause {cause:?}"
    );
    assert!(!matches!(cause, Some(EndCause::WriteTimeout)));
}

/// Finding 2: a shared thread's write that gives up (`kick(Some(stop))` -> `drain` -> `Ok(false)`)
/// leaves its frame in `WriteSide::unwritten` with no owner, and nothing writes it until the
/// application happens to send again. The module docs promise "nothing queued is stranded". For
/// the heartbeat this means: a peer that was not reading for 50 ms when the ping came (a full
/// pipe) and then reads everything never receives the ping, cannot answer it, and is failed with
/// HeartbeatTimeout at the pong deadline although it was reading all along.
#[test]
fn a_ping_that_gave_up_reaches_the_peer_once_it_reads_again() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    // Small fixed buffers: the kernel cannot grow them, so a full pipe stays full.
    socket2::SockRef::from(&client)
        .set_recv_buffer_size(4096)
        .unwrap();
    socket2::SockRef::from(&server)
        .set_send_buffer_size(4096)
        .unwrap();
    server
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let raw = server.try_clone().unwrap();
    let (_reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
        .split()
        .unwrap();
    // A backlog the peer has not read yet (zeros: no 0x89 byte among them).
    fill(&raw);
    // The heartbeat pings after 200 ms of quiet; the peer takes nothing, so the ping is left
    // without an owner (the precondition of the finding). The timer must try it again.
    let timer =
        crate::timing::timer::HeartbeatTimer::start(crate::timing::timer::HeartbeatConfig {
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
        })
        .unwrap();
    timer.add(&writer);
    let waiting = Instant::now();
    while !writer.is_stranded() {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the ping was never left unowned"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Now the peer reads everything, and watches for the ping (unmasked: 0x89 0x00).
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    let mut last = 0u8;
    let mut seen = None;
    while started.elapsed() < Duration::from_secs(5) && seen.is_none() {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let bytes = &buf[..n];
                if bytes.windows(2).any(|w| w == [0x89, 0x00]) || (last == 0x89 && bytes[0] == 0) {
                    seen = Some(started.elapsed());
                }
                last = bytes[n - 1];
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    writer.abort();
    assert!(
        seen.is_some(),
        "the ping never reached a peer that read everything for 5 s"
    );
}
