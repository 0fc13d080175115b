//! Review findings (see the review report). Each test is ignored while its finding stands; run
//! them with `cargo test --all-features --test review_findings -- --ignored`.
//!
//! Bounds are generous (a loaded 2-core machine): they tell a bounded wait from an unbounded one.

mod common;

use std::time::Duration;
use syncws::{ClientBuilder, Message, Reconnecting, Server, ServerBuilder};

/// A server built with `settings` either refuses the settings at `bind` or echoes a message.
fn refuses_or_serves(settings: ServerBuilder) -> Result<(), String> {
    let server = match settings.bind("127.0.0.1:0") {
        Ok(server) => server,
        Err(_) => return Ok(()), // refused up front: fine
    };
    let server = server
        .spawn(common::echo_session)
        .map_err(|e| e.to_string())?;
    let url = format!("ws://{}/", server.local_addr());
    let (mut ws, _) = ClientBuilder::new(url)
        .read_timeout(Some(Duration::from_secs(10)))
        .connect()
        .map_err(|e| format!("connect: {e}"))?;
    ws.send(Message::text("hello"))
        .map_err(|e| format!("send: {e}"))?;
    let answer = ws.read().map_err(|e| format!("read: {e}"))?;
    if answer != Message::text("hello") {
        return Err(format!("answer {answer:?}"));
    }
    Ok(())
}

/// Finding 3 (fixed on this branch): `ServerBuilder::bind` checked the message/idle timeouts and heartbeat durations for
/// zero only. A large one (e.g. `Duration::MAX` for "no practical limit") overflows
/// `Instant + Duration` in `proto::watch::Watch::next_deadline` / `proto::heartbeat::poll_timeout`
/// when the connection is registered with the timer (`HeartbeatTimer::add_with`), so every
/// connection's thread panics right after the 101 and nothing is served. The same durations in
/// `ReconnectBuilder::heartbeat` panic the caller of `connect`.
#[test]
fn huge_timer_durations_are_refused_or_work() {
    let cases: [(&str, ServerBuilder); 3] = [
        (
            "message_timeout",
            Server::builder().message_timeout(Some(Duration::MAX)),
        ),
        (
            "idle_timeout",
            Server::builder().idle_timeout(Some(Duration::MAX)),
        ),
        (
            "heartbeat",
            Server::builder().heartbeat(Duration::MAX, Duration::MAX),
        ),
    ];
    let mut failures = Vec::new();
    for (name, settings) in cases {
        if let Err(e) = refuses_or_serves(settings) {
            failures.push(format!("{name}: {e}"));
        }
    }
    // The client side: `ReconnectBuilder::heartbeat` is not checked either.
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let connecting = std::thread::spawn(move || {
        Reconnecting::builder(ClientBuilder::new(url))
            .heartbeat(Duration::MAX, Duration::MAX)
            .connect()
            .map(drop)
    });
    match connecting.join() {
        Ok(Ok(())) | Ok(Err(syncws::Error::InvalidConfig(_))) => {}
        Ok(Err(e)) => failures.push(format!("Reconnecting heartbeat: {e}")),
        Err(_) => failures.push("Reconnecting heartbeat: connect panicked".into()),
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Finding 4: `Sender::close` while the reading thread is reconnecting (inside `open`, the
/// handshake not yet answered) finds no current writer, sets `closing` and returns `Ok`; but
/// `Reconnecting::reconnect`/`open` never look at `closing` after the wait, so the new connection
/// is established, no close frame is ever sent on it, and `Reconnecting::read` then blocks on it
/// (for ever with a quiet server) although the client was closed "for good".
#[test]
fn close_during_a_reconnect_attempt_ends_the_client() {
    use std::io::Write;
    use std::sync::mpsc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (second_tx, second) = mpsc::channel();
    let server = std::thread::spawn(move || {
        // First connection: upgraded, then closed by the server with 1001 (retried).
        let (mut first, _) = listener.accept().unwrap();
        common::answer_upgrade(&mut first);
        first.write_all(&[0x88, 0x02, 0x03, 0xE9]).unwrap();
        // Second connection: the client is inside `open` while this waits.
        let (mut second, _) = listener.accept().unwrap();
        second_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(800));
        common::answer_upgrade(&mut second);
        // Quiet: holds the connection open (bounded), as an idle server does.
        second
            .set_read_timeout(Some(Duration::from_secs(12)))
            .unwrap();
        let mut sink = [0u8; 256];
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(12) {
            match std::io::Read::read(&mut second, &mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        drop(first);
    });
    let mut ws = Reconnecting::builder(ClientBuilder::new(format!("ws://{addr}/")))
        .connect()
        .unwrap();
    let sender = ws.writer();
    let (done_tx, done) = mpsc::channel();
    let reading = std::thread::spawn(move || {
        // Reads the first connection's close (1001: retried), reconnects, and reads on.
        let result = ws.read();
        let _ = done_tx.send(format!("{result:?}"));
    });
    second
        .recv_timeout(Duration::from_secs(20))
        .expect("no reconnect attempt");
    // The client is closed for good while it is connecting again.
    let closed = sender.start_close(syncws::CloseCode::Normal, "bye");
    let outcome = done.recv_timeout(Duration::from_secs(6));
    let _ = reading.join();
    let _ = server.join();
    assert!(closed.is_ok(), "{closed:?}");
    assert!(
        outcome.is_ok(),
        "Reconnecting::read still blocked 6 s after Sender::close (it returned only when the server hung up: {:?})",
        outcome
    );
}

/// Finding 5 (fixed on this branch): `Reader::set_read_timeout(Some(Duration::ZERO))` fails (the OS refuses a zero
/// timeout), but `ReadDeadline::set_caller` stores the new bound before installing it, and
/// `Reader::set_read_timeout` keeps the changed deadline even on error. Every later read then
/// tries to install the zero timeout again and fails with `InvalidInput`: one rejected call
/// leaves the connection unreadable (the unsplit `WebSocket::set_read_timeout` changes nothing
/// when it fails).
#[test]
fn a_rejected_read_timeout_leaves_the_reader_usable() {
    use syncws::{Config, Role, WebSocket};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (mut reader, _writer) = WebSocket::from_stream(server, Role::Server, Config::default())
        .split()
        .unwrap();
    let mut peer = WebSocket::from_stream(client, Role::Client, Config::default());
    assert!(reader.set_read_timeout(Some(Duration::ZERO)).is_err());
    peer.send(Message::text("still here")).unwrap();
    let read = reader.read();
    assert!(
        matches!(&read, Ok(m) if *m == Message::text("still here")),
        "after a refused timeout: {read:?}"
    );
}
