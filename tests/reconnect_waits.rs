//! The reconnecting client under a server that stops reading, never answers a close, or is
//! waited for longer than the clock can count: no send waits behind a network write, order is
//! kept, and no wait is without a bound (issue 17, items 9, 10 and 14).

mod common;

use common::DEADLINE;
use socket2::SockRef;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use syncws::Backoff;
use syncws::{ClientBuilder, CloseCode, Error, Message, Reconnecting, WebSocket};

fn fast_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(20), Duration::from_millis(200)).max_attempts(100)
}

/// A listener whose accepted sockets have a small receive buffer: a server that does not read
/// stops a client's writes soon.
fn small_window_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    SockRef::from(&listener).set_recv_buffer_size(4096).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Accepts one WebSocket connection; also returns a handle on its socket.
fn accept_ws(listener: &TcpListener) -> (WebSocket<TcpStream>, TcpStream) {
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.set_write_timeout(Some(DEADLINE)).unwrap();
    let socket = stream.try_clone().unwrap();
    let mut config = syncws::Config::default();
    config.max_message_size = 64 << 20;
    config.max_frame_size = 64 << 20;
    let ws = syncws::Acceptor::new()
        .config(config)
        .accept(stream)
        .unwrap();
    (ws, socket)
}

/// Waits until bytes from the client are in `socket`'s receive buffer.
fn wait_for_bytes(socket: &TcpStream) {
    let mut byte = [0u8; 1];
    assert!(socket.peek(&mut byte).unwrap() > 0);
}

/// Reads data messages until the client's close or `count` messages.
fn read_messages(ws: &mut WebSocket<TcpStream>, count: usize) -> Vec<Message> {
    let mut got = Vec::new();
    while got.len() < count {
        match ws.read() {
            Ok(message) if message.is_data() => got.push(message),
            Ok(_) => {}
            Err(e) => panic!(
                "server read failed after {} messages (first bytes {:?}): {e}",
                got.len(),
                got.iter()
                    .map(|m: &Message| m.as_bytes()[0])
                    .collect::<Vec<_>>()
            ),
        }
    }
    got
}

fn numbered(i: u8, len: usize) -> Message {
    let mut data = vec![i; len];
    data[len - 1] = 0xff;
    Message::binary(data)
}

fn assert_numbered(got: &[Message], len: usize) {
    for (i, message) in got.iter().enumerate() {
        let Message::Binary(data) = message else {
            panic!("message {i}: {message:?}")
        };
        assert_eq!(data.len(), len, "message {i}");
        assert_eq!(data[0], i as u8, "message {i} out of order");
    }
}

/// Runs the client's reading side until its connection ends for good.
fn read_until_closed(mut ws: Reconnecting) -> thread::JoinHandle<Result<Message, Error>> {
    thread::spawn(move || {
        loop {
            match ws.read() {
                Ok(Message::Close(frame)) => return Ok(Message::Close(frame)),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    })
}

#[test]
fn a_send_does_not_wait_while_the_outbox_is_written_to_a_server_that_does_not_read() {
    // 8 MiB: more than a client's socket send buffer grows to (4 MiB by default on Linux).
    const COUNT: u8 = 8;
    const LEN: usize = 1 << 20;
    let (listener, addr) = small_window_listener();
    let (queued, wait_queued) = mpsc::channel::<()>();
    let (draining, wait_draining) = mpsc::channel::<()>();
    let (read_now, wait_read_now) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        // The first connection drops at once: the client reconnects.
        drop(accept_ws(&listener));
        wait_queued.recv_timeout(DEADLINE).unwrap();
        let (mut ws, socket) = accept_ws(&listener);
        wait_for_bytes(&socket);
        draining.send(()).unwrap();
        let _ = wait_read_now.recv_timeout(DEADLINE + DEADLINE);
        let got = read_messages(&mut ws, COUNT as usize + 1);
        let _ = ws.close(CloseCode::Normal, "done");
        got
    });
    let (ended, wait_ended) = mpsc::channel();
    let ws = Reconnecting::builder(ClientBuilder::new(format!("ws://{addr}/")))
        .backoff(fast_backoff())
        .on_disconnect(move |_| {
            let _ = ended.send(());
        })
        .connect()
        .unwrap();
    let sender = ws.writer();
    let reading = read_until_closed(ws);
    wait_ended.recv_timeout(DEADLINE).unwrap();
    for i in 0..COUNT {
        sender.send(numbered(i, LEN)).unwrap();
    }
    queued.send(()).unwrap();
    // The client is now writing the outbox to a server that does not read.
    wait_draining.recv_timeout(DEADLINE).unwrap();
    let (sent, wait_sent) = mpsc::channel();
    let late = sender.clone();
    thread::spawn(move || {
        let _ = sent.send(late.send(numbered(COUNT, LEN)).is_ok());
    });
    let outcome = wait_sent.recv_timeout(DEADLINE);
    let _ = read_now.send(());
    assert_eq!(
        outcome,
        Ok(true),
        "send waited behind the outbox's network write"
    );
    let got = server.join().unwrap();
    assert_numbered(&got, LEN);
    assert!(reading.join().unwrap().is_ok());
}

#[test]
#[ignore = "not deterministic on loopback: the kernel can take the whole first message before \
            the reset, so its send succeeds and the message is lost with the connection (TCP \
            gives no delivery receipt); needs a transport that fails a write on demand"]
fn a_send_that_fails_as_the_connection_goes_is_sent_first_on_the_next() {
    // Large enough that the first message is still being written when the connection goes.
    const LEN: usize = 16 << 20;
    let (listener, addr) = small_window_listener();
    let (outcome_tx, outcome) = mpsc::channel();
    thread::spawn(move || {
        // The first server takes a few bytes of the first message, then resets the connection:
        // the send under way fails as the connection goes.
        let (first, socket) = accept_ws(&listener);
        let mut some = [0u8; 1024];
        let _ = (&socket).read_exact(&mut some);
        SockRef::from(&socket)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(first);
        drop(socket);
        // The second connection reads at full speed.
        SockRef::from(&listener)
            .set_recv_buffer_size(1 << 20)
            .unwrap();
        let (mut ws, _) = accept_ws(&listener);
        let got = read_messages(&mut ws, 2);
        let _ = ws.close(CloseCode::Normal, "done");
        let _ = outcome_tx.send(got);
    });
    let ws = Reconnecting::builder(ClientBuilder::new(format!("ws://{addr}/")))
        .backoff(fast_backoff())
        .connect()
        .unwrap();
    let sender = ws.writer();
    let reading = read_until_closed(ws);
    sender.send(numbered(0, LEN)).unwrap();
    sender.send(numbered(1, LEN)).unwrap();
    // Bounded: a client that never comes back fails here instead of hanging.
    let got = outcome
        .recv_timeout(DEADLINE + DEADLINE)
        .expect("the second server never got both messages");
    assert_numbered(&got, LEN);
    assert!(reading.join().unwrap().is_ok());
}

#[test]
fn close_returns_when_the_server_never_answers() {
    let (listener, addr) = small_window_listener();
    let (done, wait_done) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let held = accept_ws(&listener);
        let _ = wait_done.recv_timeout(DEADLINE + DEADLINE);
        drop(held);
    });
    let mut ws = Reconnecting::builder(ClientBuilder::new(format!("ws://{addr}/")))
        .connect()
        .unwrap();
    let (closed, wait_closed) = mpsc::channel();
    thread::spawn(move || {
        // Returns, with the timeout the server's silence earned (Config::close_timeout).
        let result = ws.close(CloseCode::Normal, "bye");
        let _ = closed.send(result.map_or_else(|e| e.is_timeout(), |_| false));
    });
    let outcome = wait_closed.recv_timeout(DEADLINE);
    let _ = done.send(());
    assert_eq!(
        outcome,
        Ok(true),
        "close() still waiting for the server's close frame"
    );
    server.join().unwrap();
}

#[test]
fn a_backoff_longer_than_the_clock_can_count_waits_until_closed() {
    let (listener, addr) = small_window_listener();
    let server = thread::spawn(move || drop(accept_ws(&listener)));
    let (ended, wait_ended) = mpsc::channel();
    let ws = Reconnecting::builder(ClientBuilder::new(format!("ws://{addr}/")))
        .backoff(Backoff::new(Duration::MAX, Duration::MAX))
        .on_disconnect(move |d| {
            let _ = ended.send(d.retry_in);
        })
        .connect()
        .unwrap();
    let sender = ws.writer();
    let reading = read_until_closed(ws);
    let retry_in = wait_ended.recv_timeout(DEADLINE).unwrap();
    assert!(retry_in.is_some_and(|wait| wait > Duration::from_secs(1 << 40)));
    sender.start_close(CloseCode::Normal, "bye").unwrap();
    assert!(matches!(
        reading.join().expect("read() panicked"),
        Err(Error::ConnectionClosed)
    ));
    server.join().unwrap();
}
