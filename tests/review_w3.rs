//! Review of the w3 change (issue 19 API rework + issue 21 item 6 fan-out queue): each test
//! reproduces one finding; failing ones are `#[ignore = "review finding N: ..."]`.
//! Loopback only, port 0, every wait bounded.

mod common;

use common::DEADLINE;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use syncws::{ClientBuilder, Config, Message};

/// A WebSocket server that completes the handshake by hand and then never reads again (its
/// receive buffer fills); it holds the socket until `stop` fires or DEADLINE passes.
fn silent_server() -> (SocketAddr, mpsc::Sender<()>, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = mpsc::channel::<()>();
    let handle = thread::spawn(move || {
        let tcp = common::raw_accept(&listener);
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
fn reader_close_is_bounded_by_close_timeout_even_when_a_send_is_stuck() {
    let (took, result) =
        close_while_a_send_is_stuck(|mut reader, _| format!("{:?}", reader.close(1000u16, "bye")));
    assert!(
        took < Duration::from_secs(2),
        "close took {took:?}: {result}"
    );
}

/// `Writer::send(Message::Close)` is `start_close`: bounded the same way (it used to wait for
/// the write half like any message).
#[test]
fn writer_send_of_a_close_is_bounded_by_close_timeout_even_when_a_send_is_stuck() {
    let (took, result) = close_while_a_send_is_stuck(|_, writer| {
        let frame = syncws::CloseFrame::new(1000u16, "bye");
        format!("{:?}", writer.send(Message::Close(Some(frame))))
    });
    assert!(
        took < Duration::from_secs(2),
        "close took {took:?}: {result}"
    );
    assert!(result.contains("TimedOut"), "{result}");
}

/// Runs `close` on a client (close_timeout 500 ms) whose other `Writer::send` is blocked on a
/// silent server; returns how long `close` took and its result.
fn close_while_a_send_is_stuck(
    close: impl FnOnce(syncws::Reader, syncws::Writer) -> String + Send + 'static,
) -> (Duration, String) {
    let (addr, stop, server) = silent_server();
    let mut config = Config::default();
    config.close_timeout = Duration::from_millis(500);
    let (ws, _) = ClientBuilder::new(format!("ws://{addr}/"))
        .config(config)
        .without_heartbeat()
        .connect()
        .unwrap();
    let (reader, writer) = ws.split().unwrap();
    let sender = writer.clone();
    // Fills both socket buffers and then blocks: the peer never reads.
    let stuck = thread::spawn(move || sender.send(Message::Binary(vec![7; 64 << 20])));
    thread::sleep(Duration::from_millis(500));
    assert!(
        !stuck.is_finished(),
        "the send should be blocked on the silent peer"
    );
    let (done_tx, done) = mpsc::channel();
    let closer = writer.clone();
    thread::spawn(move || {
        let started = Instant::now();
        let result = close(reader, closer);
        let _ = done_tx.send((started.elapsed(), result));
    });
    let outcome = done.recv_timeout(Duration::from_secs(5));
    // Clean up whatever happened: cutting TCP wakes every blocked call.
    writer.abort();
    let _ = stop.send(());
    let _ = stuck.join();
    let _ = server.join();
    outcome.expect("the close did not return within 5 s (close_timeout 500 ms)")
}

/// Reads one frame raw: (fin+opcode byte, payload, unmasked). A client's frames are masked, a
/// server's are not (RFC 6455 §5.1); `masked` says which side sent it.
fn read_raw_frame(tcp: &mut TcpStream, masked: bool) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head)?;
    assert_eq!(head[1] & 0x80 != 0, masked, "mask bit");
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            tcp.read_exact(&mut ext)?;
            u16::from_be_bytes(ext) as usize
        }
        127 => {
            let mut ext = [0u8; 8];
            tcp.read_exact(&mut ext)?;
            u64::from_be_bytes(ext) as usize
        }
        n => n as usize,
    };
    let mut key = [0u8; 4];
    if masked {
        tcp.read_exact(&mut key)?;
    }
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload)?;
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
    Ok((head[0], payload))
}

/// Reads one masked client frame.
fn read_client_frame(tcp: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    read_raw_frame(tcp, true)
}

/// Reads one unmasked server frame.
fn read_frame(tcp: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    read_raw_frame(tcp, false)
}

/// Finding 8: `Writer::ping` accepted any answer to its ping *or a later one*, so with two
/// pings in flight the first returned the second's (shorter) round trip. Here the peer holds
/// the first ping's pong for `HOLD`, the second ping goes out meanwhile, and both pongs then
/// arrive together: the first ping's round trip is at least `HOLD`.
#[test]
fn concurrent_pings_each_return_their_own_round_trip() {
    const HOLD: Duration = Duration::from_millis(300);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (first_seen_tx, first_seen) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let mut tcp = common::raw_accept(&listener);
        let (op, first) = read_client_frame(&mut tcp).unwrap();
        assert_eq!(op, 0x89, "a ping");
        thread::sleep(HOLD);
        first_seen_tx.send(()).unwrap();
        let (op, second) = read_client_frame(&mut tcp).unwrap();
        assert_eq!(op, 0x89, "a ping");
        for payload in [first, second] {
            tcp.write_all(&[0x8a, payload.len() as u8]).unwrap();
            tcp.write_all(&payload).unwrap();
        }
        // Until the client goes away.
        while read_client_frame(&mut tcp).is_ok() {}
    });
    let (ws, _) = ClientBuilder::new(format!("ws://{addr}/"))
        .without_heartbeat()
        .connect()
        .unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    let reading = thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < DEADLINE && reader.read().is_ok() {}
    });
    let first_writer = writer.clone();
    let first = thread::spawn(move || first_writer.ping());
    first_seen.recv_timeout(DEADLINE).unwrap();
    let second = writer.ping();
    let first = first.join().unwrap();
    writer.abort();
    let _ = reading.join();
    let _ = server.join();
    let (first, second) = (first.unwrap(), second.unwrap());
    assert!(first >= HOLD, "first ping {first:?}, second {second:?}");
    assert!(second < first, "first ping {first:?}, second {second:?}");
}

/// Issue 21 item 6 / `Room` docs: a stalled member over its bound gets, in order and whole, a
/// prefix of the broadcasts and then a 1008 close, and nothing after it. (A promise without an
/// end-to-end test on the wire before this review.)
#[test]
fn a_member_over_its_bound_gets_whole_frames_in_order_then_1008_and_nothing_after() {
    use socket2::{Domain, Socket, Type};
    const FRAME: usize = 16 << 10;
    let room = syncws::Room::with_max_backpressure(64 << 10);
    let (joined_tx, joined) = mpsc::channel();
    let joined_tx = std::sync::Mutex::new(joined_tx);
    let member_room = room.clone();
    let server = syncws::Server::bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |mut session| {
            member_room.join(session.writer());
            let _ = joined_tx.lock().unwrap().send(());
            while session.read().is_ok() {}
        })
        .unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.local_addr().into()).unwrap();
    let mut tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    tcp.write_all(common::upgrade_request("").as_bytes())
        .unwrap();
    common::read_switching_head(&mut tcp);
    joined.recv_timeout(DEADLINE).unwrap();
    // The peer reads nothing while the room broadcasts.
    let started = Instant::now();
    let mut sent = 0u32;
    loop {
        assert!(
            started.elapsed() < DEADLINE,
            "never dropped after {sent} broadcasts"
        );
        let mut payload = vec![(sent % 251) as u8; FRAME];
        payload[..4].copy_from_slice(&sent.to_be_bytes());
        let report = room.broadcast(&Message::Binary(payload), None);
        if report.dropped == 1 {
            break;
        }
        sent += 1;
    }
    assert!(room.is_empty(), "the dropped member left the room");
    // Now read everything: a prefix 0..n of whole frames, then the 1008 close, then EOF.
    let mut next = 0u32;
    let close = loop {
        let (b0, payload) = read_frame(&mut tcp).expect("frame");
        match b0 {
            0x82 => {
                assert_eq!(payload.len(), FRAME, "torn or merged frame");
                let n = u32::from_be_bytes(payload[..4].try_into().unwrap());
                assert_eq!(n, next, "out of order");
                assert!(
                    payload[4..].iter().all(|&b| b == (n % 251) as u8),
                    "corrupt frame {n}"
                );
                next += 1;
            }
            0x88 => break payload,
            other => panic!("unexpected frame byte {other:#x} after {next} frames"),
        }
    };
    assert!(next <= sent, "more frames than broadcasts");
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1008, "{close:?}");
    let mut rest = Vec::new();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = tcp.write_all(&[0x88, 0x80, 0, 0, 0, 0]);
    let _ = tcp.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{} bytes after the close", rest.len());
    drop(server);
}

/// Runs an `Acceptor` with `hook` on one loopback connection; returns the raw answer.
fn answer_of(
    hook: impl Fn(&syncws::Request, &mut syncws::Accept) -> Result<(), syncws::HttpResponse>
    + Send
    + Sync
    + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        let acceptor = syncws::Acceptor::new().on_handshake(hook);
        let _ = acceptor.handshake(tcp);
    });
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    tcp.write_all(common::upgrade_request("").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    let _ = server.join();
    String::from_utf8_lossy(&out).into_owned()
}

fn count_fields(answer: &str, name: &str) -> usize {
    let head = answer.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .filter(|l| {
            l.split(':')
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
        })
        .count()
}

/// Finding 2: `HttpResponse::header` accepts the framing fields the library writes itself
/// ("`Content-Length` and `Connection: close` are always added"), so a caller's
/// `Content-Length`/`Transfer-Encoding` goes on the wire next to the library's: two
/// conflicting lengths (RFC 9110 §8.6, RFC 9112 §6.3 — a response-splitting shape for any
/// intermediary). Likewise `Accept::add_header` can repeat `Upgrade`/`Sec-WebSocket-Accept`.
#[test]
fn caller_headers_cannot_duplicate_framing_or_handshake_fields() {
    let reject = answer_of(|_, _| {
        Err(syncws::HttpResponse::new(401)
            .header("Content-Length", "0")
            .header("Transfer-Encoding", "chunked")
            .body("abc"))
    });
    assert!(reject.starts_with("HTTP/1.1 "), "{reject}");
    assert!(
        count_fields(&reject, "content-length") <= 1
            && count_fields(&reject, "transfer-encoding") == 0,
        "conflicting framing on the wire:\n{reject}"
    );
    let upgrade = answer_of(|_, accept| {
        accept.add_header("Sec-WebSocket-Accept", "bogus");
        Ok(())
    });
    assert!(
        count_fields(&upgrade, "sec-websocket-accept") <= 1,
        "two Sec-WebSocket-Accept in the 101:\n{upgrade}"
    );
}

/// Finding 3: `WebSocket::ping` holds messages that arrive while it waits, "at most
/// `Config::max_message_size` bytes of them in all", but counts only payload bytes: empty
/// messages cost 0, so a peer that answers a ping with a stream of 2-byte empty frames makes the
/// client hold an unbounded number of `Message`s (tens of bytes of heap each) until the ping
/// times out (20 s by default). Here 50 000 are held under a 1 KiB bound.
#[test]
fn messages_held_during_ping_are_bounded_in_count_too() {
    const FLOOD: usize = 50_000;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let mut tcp = common::raw_accept(&listener);
        // Wait for the client's ping frame, then flood empty binary messages; never pong.
        let mut ping = [0u8; 2];
        tcp.read_exact(&mut ping).unwrap();
        assert_eq!(ping[0], 0x89);
        let flood: Vec<u8> = [0x82u8, 0x00].repeat(FLOOD);
        tcp.write_all(&flood).unwrap();
        let mut sink = Vec::new();
        let _ = tcp.read_to_end(&mut sink);
    });
    let mut config = Config::default();
    config.max_message_size = 1024;
    let (mut ws, _) = ClientBuilder::new(format!("ws://{addr}/"))
        .config(config)
        .heartbeat(Duration::from_secs(600), Duration::from_secs(2))
        .connect()
        .unwrap();
    let result = ws.ping();
    // Count what the ping held for the next reads.
    let mut held = 0usize;
    if matches!(&result, Err(e) if e.is_timeout()) {
        while held < FLOOD {
            match ws.read() {
                Ok(m) if m.as_bytes().is_empty() => held += 1,
                _ => break,
            }
        }
    }
    drop(ws);
    let _ = server.join();
    assert!(
        held <= 1024,
        "ping held {held} messages under a 1 KiB bound (result {result:?})"
    );
}

/// Finding 4: two `close_timeout`s on a server with different meanings and defaults:
/// `ServerBuilder::close_timeout` (2 s, only the server's own close after the handler returns)
/// and `Config::close_timeout` (5 s, `Session::close`, "bounded by the close timeout"). A user
/// who sets the builder's gets a `Session::close` that still waits 5 s for a silent peer.
#[test]
fn server_builder_close_timeout_bounds_session_close() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = syncws::Server::builder()
        .close_timeout(Duration::from_millis(300))
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |mut session| {
            let started = Instant::now();
            let result = session.close(1000u16, "bye");
            let _ = tx
                .lock()
                .unwrap()
                .send((started.elapsed(), format!("{result:?}")));
        })
        .unwrap();
    let mut tcp = TcpStream::connect(server.local_addr()).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    tcp.write_all(common::upgrade_request("").as_bytes())
        .unwrap();
    // Never answer the close; keep the socket open.
    let (took, result) = rx.recv_timeout(DEADLINE).expect("Session::close returned");
    drop(tcp);
    drop(server);
    assert!(
        took < Duration::from_secs(2),
        "Session::close took {took:?} with ServerBuilder::close_timeout(300 ms): {result}"
    );
}

/// A server-side member accepted by hand (so a frame hook can be set), and its client: a raw
/// TCP connection with a tiny receive buffer that reads nothing until the test says so.
fn hand_member(
    hook: Option<syncws::proto::FrameObserver>,
) -> (syncws::Reader, syncws::Writer, TcpStream) {
    use socket2::{Domain, Socket, Type};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut client: TcpStream = socket.into();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
        .write_all(common::upgrade_request("").as_bytes())
        .unwrap();
    let (tcp, _) = listener.accept().unwrap();
    tcp.set_write_timeout(Some(DEADLINE)).unwrap();
    let mut ws = syncws::accept(tcp).unwrap();
    ws.set_frame_hook(hook);
    let (reader, writer) = ws.split().unwrap();
    common::read_switching_head(&mut client);
    (reader, writer, client)
}

/// Broadcasts numbered 16 KiB frames to `room` until one is left queued; returns how many.
fn broadcast_until_queued(room: &syncws::Room) -> u32 {
    let started = Instant::now();
    let mut sent = 0u32;
    let mut extra = 0;
    loop {
        assert!(started.elapsed() < DEADLINE);
        let mut payload = vec![0u8; 16 << 10];
        payload[..4].copy_from_slice(&sent.to_be_bytes());
        let report = room.broadcast(&Message::Binary(payload), None);
        assert_eq!(report.dropped, 0);
        sent += 1;
        if report.queued > 0 {
            // More than one chunk (64 KiB) behind, so some frames stay in the queue itself.
            extra += 1;
            if extra == 16 {
                return sent;
            }
        }
    }
}

/// Finding 5: a connection's frame hook (`WebSocket::set_frame_hook`, user code) runs for
/// room frames on whichever thread hands them over — often the process-wide `syncws-fanout`
/// thread, with the member's outbox and state locks held. A hook that panics there kills that
/// thread for good (no `catch_unwind`; the `OnceLock` still says it runs): every later stalled
/// member of every room in the process is never drained, never closed with 1008, never cut.
/// (A hook that blocks stalls them all likewise.) Runs in a child process: it kills the thread.
#[test]
fn a_panicking_frame_hook_does_not_stop_fan_out_for_other_members() {
    if std::env::var_os("REVIEW_W3_CHILD").is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_panicking_frame_hook_does_not_stop_fan_out_for_other_members",
                "--include-ignored",
                "--nocapture",
            ])
            .env("REVIEW_W3_CHILD", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    static PANICKED: AtomicBool = AtomicBool::new(false);
    let hook: syncws::proto::FrameObserver = std::sync::Arc::new(|_, _, _| {
        if thread::current().name() == Some("syncws-fanout")
            && !PANICKED.swap(true, Ordering::SeqCst)
        {
            panic!("a user's frame hook panics");
        }
    });
    // Member A (with the hook) stalls, then reads: the fan-out thread hands it the rest.
    let (_ra, _wa, mut client_a) = hand_member(Some(hook));
    let room_a = syncws::Room::with_max_backpressure(64 << 20);
    room_a.join(_wa.clone());
    broadcast_until_queued(&room_a);
    let mut sink = [0u8; 65536];
    let started = Instant::now();
    while !PANICKED.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(5) {
        let _ = client_a.read(&mut sink);
    }
    assert!(
        PANICKED.load(Ordering::SeqCst),
        "the hook never ran on the fan-out thread"
    );
    thread::sleep(Duration::from_millis(100));
    // Member B, no hook, another room: stalls, then reads everything.
    let (_rb, wb, mut client_b) = hand_member(None);
    let room_b = syncws::Room::with_max_backpressure(64 << 20);
    room_b.join(wb.clone());
    let sent = broadcast_until_queued(&room_b);
    let mut got = 0u32;
    while got < sent {
        match read_frame(&mut client_b) {
            Ok((0x82, payload)) => {
                assert_eq!(u32::from_be_bytes(payload[..4].try_into().unwrap()), got);
                got += 1;
            }
            Ok((b, _)) => panic!("unexpected frame {b:#x}"),
            Err(e) => panic!("member B got {got} of {sent} broadcasts, then: {e}"),
        }
    }
}
