//! The reconnecting client against servers that go away, come back, or stop answering.

mod common;

use common::DEADLINE;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use syncws::Backoff;
use syncws::{ClientBuilder, Error, Message, Reconnecting, Server, ServerHandle};

fn echo_server(addr: SocketAddr) -> ServerHandle {
    Server::bind(addr)
        .unwrap()
        .spawn(|mut session| {
            while let Ok(msg) = session.read() {
                if msg.is_data() && session.send(msg).is_err() {
                    break;
                }
            }
        })
        .unwrap()
}

fn fast_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(20), Duration::from_millis(200)).max_attempts(100)
}

/// Reads until a text message equal to `want` arrives (bounded).
fn read_until(ws: &mut Reconnecting, want: &str) {
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < DEADLINE, "never got {want:?}");
        match ws.read() {
            Ok(Message::Text(t)) if t == want => return,
            Ok(_) => {}
            Err(e) => panic!("read failed while waiting for {want:?}: {e}"),
        }
    }
}

#[test]
fn survives_a_server_restart_and_delivers_the_outbox() {
    let first = echo_server("127.0.0.1:0".parse().unwrap());
    let addr = first.local_addr();
    let connects = Arc::new(Mutex::new(0));
    let (ended_tx, ended) = mpsc::channel();
    let mut ws = Reconnecting::builder(ClientBuilder::new(format!("ws://{addr}/")))
        .backoff(fast_backoff())
        .on_connect({
            let connects = Arc::clone(&connects);
            move |writer| {
                let mut n = connects.lock().unwrap();
                *n += 1;
                writer.send(Message::text(format!("hello #{n}")))
            }
        })
        .on_disconnect(move |d| {
            let _ = ended_tx.send((d.cause.close_code().as_u16(), d.retry_in));
        })
        .connect()
        .unwrap();
    read_until(&mut ws, "hello #1");

    // While the client's read() notices the shutdown and retries, another thread queues a
    // message and brings the server back on the same port.
    let sender = ws.writer();
    let restarter = std::thread::spawn(move || {
        let (code, retry_in) = ended.recv_timeout(DEADLINE).unwrap();
        assert!(!sender.is_connected());
        sender.send(Message::text("queued while down")).unwrap();
        (code, retry_in, Instant::now(), echo_server(addr))
    });
    // Shutdown sends 1001 and waits for our reply, which read() gives: run it on its own thread.
    let stopping = std::thread::spawn(move || first.shutdown());
    read_until(&mut ws, "hello #2");
    stopping.join().unwrap();
    read_until(&mut ws, "queued while down");
    let (code, retry_in, restarted_at, second) = restarter.join().unwrap();
    assert_eq!(code, 1001);
    assert!(retry_in.unwrap() <= Duration::from_millis(200));
    eprintln!(
        "back and outbox flushed {:?} after the new server started",
        restarted_at.elapsed()
    );
    assert_eq!(ws.connections(), 2);
    drop(ws);
    second.shutdown();
}

#[test]
fn a_silent_server_is_detected_by_heartbeats() {
    // The first connection is accepted and then ignored (no pongs); the second one echoes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (silent, _) = listener.accept().unwrap();
        let silent = syncws::accept(silent).unwrap();
        let (good, _) = listener.accept().unwrap();
        let mut ws = syncws::accept(good).unwrap();
        // Echo until "bye" (pings from the client's heartbeat come and go meanwhile).
        loop {
            match ws.read() {
                Ok(msg) if msg.is_data() => {
                    let last = msg.as_text() == Some("bye");
                    ws.send(msg).unwrap();
                    if last {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        drop(silent);
    });
    let (ended_tx, ended) = mpsc::channel();
    let started = Instant::now();
    let mut ws = Reconnecting::builder(ClientBuilder::new(format!("ws://{addr}/")))
        .backoff(fast_backoff())
        .heartbeat(Duration::from_millis(100), Duration::from_millis(100))
        .on_connect(|writer| writer.send(Message::text("hello")))
        .on_disconnect(move |d| {
            let _ = ended_tx.send(d.cause.clone());
        })
        .connect()
        .unwrap();
    // The silent server swallows the first hello; the second connection echoes its own.
    read_until(&mut ws, "hello");
    let cause = ended.recv_timeout(DEADLINE).unwrap();
    assert_eq!(cause, syncws::EndCause::HeartbeatTimeout, "{cause}");
    eprintln!(
        "dead server noticed and replaced in {:?}",
        started.elapsed()
    );
    assert_eq!(ws.connections(), 2);
    ws.send(Message::text("bye")).unwrap();
    read_until(&mut ws, "bye");
    drop(ws);
    server.join().unwrap();
}

#[test]
fn a_policy_close_is_not_retried() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .spawn(|mut session| {
            let _ = session.close(syncws::CloseCode::Policy, "banned");
        })
        .unwrap();
    let mut ws =
        Reconnecting::builder(ClientBuilder::new(format!("ws://{}/", server.local_addr())))
            .backoff(fast_backoff())
            .connect()
            .unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, syncws::CloseCode::Policy),
        other => panic!("{other:?}"),
    }
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    assert_eq!(ws.connections(), 1);
    server.shutdown();
}

#[test]
fn without_an_outbox_a_send_while_down_is_an_error() {
    let server = echo_server("127.0.0.1:0".parse().unwrap());
    let addr = server.local_addr();
    let (down_tx, down) = mpsc::channel();
    let mut ws = Reconnecting::builder(ClientBuilder::new(format!("ws://{addr}/")))
        .backoff(Backoff::new(Duration::from_millis(10), Duration::from_millis(10)).max_attempts(3))
        .outbox(0)
        .on_disconnect(move |d| {
            let _ = down_tx.send(d.retry_in);
        })
        .connect()
        .unwrap();
    let sender = ws.writer();
    let stopping = std::thread::spawn(move || server.shutdown());
    // read() answers the shutdown's 1001, then tries again until attempts run out.
    let result = ws.read();
    stopping.join().unwrap();
    assert!(down.recv_timeout(DEADLINE).is_ok());
    assert!(matches!(
        sender.send(Message::text("lost")),
        Err(Error::Disconnected)
    ));
    assert!(result.is_err(), "{result:?}");
}

/// `ReconnectingWriter::send(Message::Close(None))` on a connection that is up sends a close
/// frame without a code (an empty payload); the same during a reconnect is in
/// tests/review_w4.rs (`review4_a_close_without_code_during_a_reconnect_has_no_code`).
#[test]
fn a_close_without_code_on_a_live_connection_has_no_code() {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let mut tcp = common::raw_accept(&listener);
        // One masked close frame: 2 header bytes, the 4-byte mask, then the payload.
        let mut head = [0u8; 2];
        tcp.read_exact(&mut head).unwrap();
        let mut mask = [0u8; 4];
        tcp.read_exact(&mut mask).unwrap();
        (head[0], head[1] & 0x7f)
    });
    let ws = Reconnecting::builder(ClientBuilder::new(url))
        .backoff(fast_backoff())
        .connect()
        .unwrap();
    ws.writer().send(Message::Close(None)).unwrap();
    let (opcode, length) = server.join().unwrap();
    assert_eq!(opcode, 0x88, "a final close frame");
    assert_eq!(length, 0, "Close(None) went out with a payload");
    drop(ws);
}
