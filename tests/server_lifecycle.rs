//! The server's lifecycle under hostile or careless use: shutdown from inside a handler, the close
//! wait after a handler returns, refused requests and slow HTTP clients that must not hold a slot,
//! silent peers freed by the default-on heartbeat, and rooms that forget ended connections.
//!
//! Bounds asserted here are generous (the machine is a loaded 2-core VM): they tell a bounded wait
//! from an unbounded one, not a fast server from a slow one.

#[cfg(feature = "native-tls")]
#[path = "common/certs.rs"]
mod certs;
mod common;

use common::{DEADLINE, raw_connect, upgrade_request};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use syncws::{Config, EndCause, HttpResponse, Message, Room, Server, ServerHandle};

/// Waits for `condition` for up to `limit`, polling; returns whether it came true.
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let give_up = Instant::now() + limit;
    while Instant::now() < give_up {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Sends a raw upgrade request and reads the status line's code.
fn upgrade_status(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(DEADLINE)).ok()?;
    stream.write_all(upgrade_request("").as_bytes()).ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

// ---- 17.4: shutdown from a handler or on_end ----

type SharedHandle = Arc<Mutex<Option<ServerHandle>>>;

#[test]
fn shutdown_called_from_a_handler_returns_and_stops_the_server() {
    let slot: SharedHandle = Arc::new(Mutex::new(None));
    let (done_tx, done) = mpsc::channel();
    let handler_slot = Arc::clone(&slot);
    let done_tx = Mutex::new(done_tx);
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |_session| {
            let handle = handler_slot.lock().unwrap().take();
            if let Some(handle) = handle {
                handle.shutdown();
                let _ = done_tx.lock().unwrap().send(());
            }
        })
        .unwrap();
    let addr = server.local_addr();
    *slot.lock().unwrap() = Some(server);
    let _client = syncws::connect(&format!("ws://{addr}/")).unwrap();
    done.recv_timeout(DEADLINE)
        .expect("shutdown() from the handler never returned");
    // The listener is gone: a new client is refused or closed without an upgrade.
    assert!(
        eventually(DEADLINE, || upgrade_status(addr) != Some(101)),
        "the server still upgrades after shutdown"
    );
}

#[test]
fn dropping_the_handle_in_on_end_returns() {
    let slot: SharedHandle = Arc::new(Mutex::new(None));
    let (done_tx, done) = mpsc::channel();
    let end_slot = Arc::clone(&slot);
    let done_tx = Mutex::new(done_tx);
    let server = Server::builder()
        .on_end(move |_, _| {
            let handle = end_slot.lock().unwrap().take();
            if handle.is_some() {
                drop(handle);
                let _ = done_tx.lock().unwrap().send(());
            }
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|_session| {})
        .unwrap();
    let addr = server.local_addr();
    *slot.lock().unwrap() = Some(server);
    let mut client = syncws::connect(&format!("ws://{addr}/")).unwrap().0;
    client.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = client.read(); // the server's close
    done.recv_timeout(DEADLINE)
        .expect("dropping the handle in on_end never returned");
}

// ---- 17.16: every dead or silent peer is freed ----

#[test]
fn a_peer_that_upgrades_then_goes_silent_is_freed_by_the_heartbeat() {
    let (tx, causes) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = Server::builder()
        .heartbeat(Duration::from_millis(200), Duration::from_millis(300))
        .max_connections(1)
        .on_end(move |_, cause| {
            let _ = tx.lock().unwrap().send(cause.clone());
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|mut session| while session.read().is_ok() {})
        .unwrap();
    let addr = server.local_addr();
    // Upgrade, then never read or write again.
    let mut silent = raw_connect(addr);
    silent.write_all(upgrade_request("").as_bytes()).unwrap();
    let mut head = [0u8; 12];
    silent.read_exact(&mut head).unwrap();
    assert_eq!(&head[9..12], b"101");
    let cause = causes
        .recv_timeout(DEADLINE)
        .expect("the slot was never freed");
    assert_eq!(cause, EndCause::HeartbeatTimeout);
    assert!(eventually(DEADLINE, || server.connection_count() == 0));
    // The only slot is free again.
    assert!(eventually(DEADLINE, || upgrade_status(addr) == Some(101)));
}

// ---- 18.2 and 18.3: refused requests and slow HTTP clients ----

/// A client of a `max_connections(1)` server must be served while another holds the only slot
/// with a slow answer.
fn served_while_slot_is_held(addr: SocketAddr) -> Duration {
    let start = Instant::now();
    // Generous: the holder's deadline is 1–2 s; anything under 15 s is a bounded hold.
    assert!(
        eventually(Duration::from_secs(15), || upgrade_status(addr)
            == Some(101)),
        "the slot stayed held"
    );
    start.elapsed()
}

#[test]
fn a_refused_client_dripping_bytes_does_not_hold_the_slot() {
    let mut config = Config::default();
    config.handshake_timeout = Some(Duration::from_secs(2));
    let server = Server::builder()
        .config(config)
        .max_connections(1)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|_session| {})
        .unwrap();
    let addr = server.local_addr();
    let mut dripper = raw_connect(addr);
    // No Upgrade header: refused with 426. Then a byte every 150 ms, for up to 20 s.
    dripper
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (stop_tx, stop) = mpsc::channel::<()>();
    let drip = thread::spawn(move || {
        let give_up = Instant::now() + DEADLINE;
        while Instant::now() < give_up {
            if dripper.write_all(b"x").is_err() {
                return;
            }
            if stop.recv_timeout(Duration::from_millis(150)).is_ok() {
                return;
            }
        }
    });
    // Let the refusal and a few drips happen first.
    thread::sleep(Duration::from_millis(300));
    served_while_slot_is_held(addr);
    let _ = stop_tx.send(());
    drip.join().unwrap();
}

#[test]
fn a_large_page_to_a_slow_reader_is_bounded_by_the_handshake_timeout() {
    let mut config = Config::default();
    config.handshake_timeout = Some(Duration::from_secs(2));
    let page = Arc::new(vec![b'x'; 4 << 20]);
    let server = Server::builder()
        .config(config)
        .max_connections(1)
        .http(move |_| HttpResponse::new(200).body(page.as_slice().to_vec()))
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|_session| {})
        .unwrap();
    let addr = server.local_addr();
    // A small receive buffer, read slowly: ~40 KB/s would take 100 s for the page.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut slow: TcpStream = socket.into();
    slow.set_read_timeout(Some(DEADLINE)).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (stop_tx, stop) = mpsc::channel::<()>();
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let give_up = Instant::now() + DEADLINE;
        while Instant::now() < give_up {
            match slow.read(&mut buf) {
                Ok(n) if n > 0 => {}
                _ => return,
            }
            if stop.recv_timeout(Duration::from_millis(100)).is_ok() {
                return;
            }
        }
    });
    thread::sleep(Duration::from_millis(300));
    served_while_slot_is_held(addr);
    let _ = stop_tx.send(());
    reader.join().unwrap();
}

// ---- 17.6: the close wait after a handler returns ----

/// A server whose handler returns at once, leaving the connection open; reports how long the
/// close wait after it lasted.
fn returning_server(
    builder: syncws::ServerBuilder,
) -> (ServerHandle, mpsc::Receiver<(Duration, EndCause)>) {
    let (tx, waits) = mpsc::channel();
    let tx = Mutex::new(tx);
    let returned: Arc<Mutex<Option<Instant>>> = Arc::default();
    let on_end_returned = Arc::clone(&returned);
    let server = builder
        .close_timeout(Duration::from_secs(3))
        .on_end(move |_, cause| {
            let since = on_end_returned.lock().unwrap().take();
            let waited = since.map_or(Duration::ZERO, |t| t.elapsed());
            let _ = tx.lock().unwrap().send((waited, cause.clone()));
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |_session| {
            *returned.lock().unwrap() = Some(Instant::now());
        })
        .unwrap();
    (server, waits)
}

/// The client sends a message (compressed if deflate was agreed: the server must still decode
/// it), then waits `delay` before reading, and so answering, the server's close.
fn answer_close_after<S: Read + Write>(mut ws: syncws::WebSocket<S>, delay: Duration) {
    let _ = ws.send(Message::text("late data ".repeat(100)));
    thread::sleep(delay);
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn check_close_wait(waits: &mpsc::Receiver<(Duration, EndCause)>, at_least: Duration) {
    let (waited, _cause) = waits.recv_timeout(DEADLINE).expect("on_end never ran");
    assert!(
        waited >= at_least,
        "the server stopped waiting for the close reply after {waited:?}"
    );
    assert!(
        waited < DEADLINE,
        "the close wait was not bounded: {waited:?}"
    );
}

#[test]
fn ws_close_wait_lasts_until_the_reply_and_is_bounded() {
    let (server, waits) = returning_server(Server::builder());
    let addr = server.local_addr();
    // The reply comes after ~700 ms: the wait lasts at least most of that.
    let (ws, _) = syncws::connect(&format!("ws://{addr}/")).unwrap();
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    answer_close_after(ws, Duration::from_millis(700));
    check_close_wait(&waits, Duration::from_millis(500));
    // No reply at all: bounded by the close timeout (3 s).
    let (ws, _) = syncws::connect(&format!("ws://{addr}/")).unwrap();
    check_close_wait(&waits, Duration::from_secs(2));
    drop(ws);
}

#[cfg(feature = "native-tls")]
#[test]
fn wss_close_wait_lasts_until_the_reply_and_is_bounded() {
    let pki = certs::make();
    let identity =
        syncws::TlsIdentity::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes())
            .unwrap();
    let builder = Server::builder().tls(identity, Duration::from_secs(10));
    let (server, waits) = returning_server(builder);
    let port = server.local_addr().port();
    let connect = || {
        let (ws, _) = syncws::ClientBuilder::new(format!("wss://localhost:{port}/"))
            .root_certificate(pki.ca.cert.as_bytes())
            .connect()
            .unwrap();
        ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
        ws
    };
    answer_close_after(connect(), Duration::from_millis(700));
    check_close_wait(&waits, Duration::from_millis(500));
    let ws = connect();
    check_close_wait(&waits, Duration::from_secs(2));
    drop(ws);
}

#[cfg(feature = "deflate")]
#[test]
fn deflate_close_wait_lasts_until_the_reply() {
    let mut config = Config::default();
    config.deflate.enabled = true;
    let (server, waits) = returning_server(Server::builder().config(config.clone()));
    let addr = server.local_addr();
    let (ws, _) = syncws::ClientBuilder::new(format!("ws://{addr}/"))
        .config(config)
        .connect()
        .unwrap();
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    answer_close_after(ws, Duration::from_millis(700));
    check_close_wait(&waits, Duration::from_millis(500));
}

// ---- 17.12: rooms forget ended connections ----

#[test]
fn a_room_forgets_a_member_whose_handler_returned_or_panicked() {
    let room = Room::new();
    let handler_room = room.clone();
    let server = Server::builder()
        .close_timeout(Duration::from_millis(200))
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |mut session| {
            handler_room.join(session.writer());
            let first = session.read();
            if matches!(&first, Ok(Message::Text(t)) if t.as_str() == "panic") {
                panic!("a handler that panics (expected by the test)");
            }
        })
        .unwrap();
    let addr = server.local_addr();
    for word in ["bye", "panic"] {
        let (mut ws, _) = syncws::connect(&format!("ws://{addr}/")).unwrap();
        ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
        assert!(eventually(DEADLINE, || room.len() == 1), "never joined");
        ws.send(Message::text(word)).unwrap();
        // No broadcast and no leave: the room forgets the member on its own.
        assert!(
            eventually(DEADLINE, || room.is_empty()),
            "the room kept the member after `{word}`"
        );
        while ws.read().is_ok() {}
    }
}

// ---- 17.10: the accept loop's poll does not leak into connections ----

#[test]
fn without_a_handshake_timeout_a_slow_request_still_upgrades() {
    let mut config = Config::default();
    config.handshake_timeout = None;
    let server = Server::builder()
        .config(config)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|_session| {})
        .unwrap();
    let mut client = raw_connect(server.local_addr());
    // Longer than the accept loop's 1 s poll, which must not become the socket's read timeout.
    thread::sleep(Duration::from_millis(1_500));
    client.write_all(upgrade_request("").as_bytes()).unwrap();
    let mut head = [0u8; 12];
    client.read_exact(&mut head).unwrap();
    assert_eq!(&head[9..12], b"101");
}
