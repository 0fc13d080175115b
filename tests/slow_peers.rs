//! Slow peers: a message dribbled forever, a connection that never sends data. Both are dropped
//! by the server's timer thread with their typed cause, while a well-behaved client is not.

mod common;

use common::{DEADLINE, read_to_close};
use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use syncws::{EndCause, Message, Server, ServerHandle};

fn server(
    message: Duration,
    idle: Option<Duration>,
) -> (ServerHandle, std::net::SocketAddr, mpsc::Receiver<EndCause>) {
    let (tx, causes) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = Server::builder()
        .message_timeout(Some(message))
        .idle_timeout(idle)
        .heartbeat(Duration::from_millis(100), Duration::from_secs(2))
        .on_end(move |_, cause| {
            let _ = tx.lock().unwrap().send(cause.clone());
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap();
    let addr = server.local_addr();
    (server, addr, causes)
}

#[test]
fn a_message_dribbled_forever_is_dropped_at_its_deadline() {
    let (server, addr, causes) = server(Duration::from_millis(600), None);
    let mut raw = common::upgraded(addr);
    // A masked binary frame announcing 1,000 bytes, then one byte every 50 ms: the connection is
    // never quiet, so only the message deadline can end it.
    raw.write_all(&[0x82, 0xfe, 0x03, 0xe8, 1, 2, 3, 4])
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    for _ in 0..100 {
        if raw.write_all(&[0]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        raw.set_nonblocking(true).unwrap();
        let mut probe = [0u8; 64];
        let peeked = raw.peek(&mut probe);
        raw.set_nonblocking(false).unwrap();
        if matches!(peeked, Ok(n) if n >= 4) {
            // The server's close frame (pings may come first).
            closed = true;
            break;
        }
    }
    assert!(closed, "the dribbling peer was not dropped");
    assert_eq!(
        causes.recv_timeout(DEADLINE).unwrap(),
        EndCause::MessageTimeout
    );
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(550), "{elapsed:?}");
    let rest = read_to_close(&mut raw);
    // The close frame carries 1008 (after any pings: find the 0x88 frame).
    let close = rest
        .windows(4)
        .find(|w| w[0] == 0x88)
        .expect("a close frame");
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1008);
    server.shutdown();
}

#[test]
fn a_connection_that_never_sends_data_is_dropped_when_idle() {
    let (server, addr, causes) = server(Duration::from_secs(60), Some(Duration::from_millis(500)));
    let (mut quiet, _) = syncws::connect(&format!("ws://{addr}/")).unwrap();
    let (mut busy, _) = syncws::connect(&format!("ws://{addr}/")).unwrap();
    quiet
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let started = Instant::now();
    let mut n = 0;
    // The quiet client answers pings (inside read) but sends no data; the busy one echoes.
    let close = loop {
        assert!(started.elapsed() < DEADLINE);
        busy.send(Message::text(format!("{n}"))).unwrap();
        assert_eq!(busy.read().unwrap(), Message::text(format!("{n}")));
        n += 1;
        match quiet.read() {
            Ok(Message::Close(frame)) => break frame,
            Ok(_) => {}
            Err(e) if e.is_timeout() => {}
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(close.unwrap().code.as_u16(), 1001);
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert_eq!(
        causes.recv_timeout(DEADLINE).unwrap(),
        EndCause::IdleTimeout
    );
    // The busy client was never idle.
    busy.send(Message::text("still fine")).unwrap();
    assert_eq!(busy.read().unwrap(), Message::text("still fine"));
    drop(busy);
    server.shutdown();
}
