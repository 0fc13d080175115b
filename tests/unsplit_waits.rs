//! The unsplit `WebSocket` under a peer that stops reading, a server that never closes TCP, and
//! an unusable configuration: nothing decoded is lost, nothing half-sent looks finished, and
//! no wait is without a bound (issue 17, items 5, 8, 10, 14).

mod common;

use common::DEADLINE;
use socket2::SockRef;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use syncws::{CloseCode, Config, DataKind, Error, Message, Role, WebSocket};

/// A short write timeout, so that a peer that stops reading makes writes time out quickly.
const WRITE_TIMEOUT: Duration = Duration::from_millis(100);

/// A connected pair over loopback with small socket buffers: the client's writes fill them fast.
/// The client has a short write timeout; both have a read timeout of [`DEADLINE`].
fn small_buffered_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // Inherited by the accepted socket, and set before the window is agreed.
    SockRef::from(&listener).set_recv_buffer_size(4096).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    SockRef::from(&client).set_send_buffer_size(4096).unwrap();
    client.set_write_timeout(Some(WRITE_TIMEOUT)).unwrap();
    for stream in [&client, &server] {
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
    }
    server.set_write_timeout(Some(DEADLINE)).unwrap();
    (client, server)
}

/// A server end that accepts messages up to 64 MiB.
fn server_end(stream: TcpStream) -> WebSocket<TcpStream> {
    let mut config = Config::default();
    config.max_message_size = 64 << 20;
    config.max_frame_size = 64 << 20;
    WebSocket::from_stream(stream, Role::Server, config)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Streams `total` bytes in `chunk`-sized `write_all`s to a server that starts reading only after
/// the first write timed out; every failed write is repeated as it was. The server must get the
/// message byte for byte: a timeout neither repeats nor loses a chunk.
fn streamed_message_survives_write_timeouts(chunk: usize) {
    let (client, server) = small_buffered_pair();
    let total = 48 * chunk;
    let (start_reading, go) = mpsc::channel::<()>();
    let reader = thread::spawn(move || {
        let mut ws = server_end(server);
        let _ = go.recv_timeout(DEADLINE);
        ws.read()
    });
    let mut ws = WebSocket::from_stream(client, Role::Client, Config::default());
    let data = pattern(total);
    let mut writer = ws.send_stream(DataKind::Binary).unwrap();
    let mut timeouts = 0;
    let started = Instant::now();
    for piece in data.chunks(chunk) {
        loop {
            assert!(started.elapsed() < DEADLINE, "the stream never got through");
            match writer.write_all(piece) {
                Ok(()) => break,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    timeouts += 1;
                    let _ = start_reading.send(());
                }
                Err(e) => panic!("write failed: {e}"),
            }
        }
    }
    let _ = start_reading.send(());
    if let Err(e) = writer.finish() {
        assert!(e.is_timeout(), "{e}");
        let finish_started = Instant::now();
        while let Err(e) = ws.flush() {
            assert!(e.is_timeout(), "{e}");
            assert!(finish_started.elapsed() < DEADLINE);
        }
    }
    assert!(
        timeouts > 0,
        "the peer never pushed back; the test proves nothing"
    );
    match reader.join().unwrap() {
        Ok(Message::Binary(got)) => {
            assert_eq!(got.len(), total, "length after {timeouts} timeouts");
            assert!(got == data, "content differs after {timeouts} timeouts");
        }
        other => panic!("expected the message, got {other:?}"),
    }
}

#[test]
fn a_streamed_message_survives_write_timeouts_in_whole_fragments() {
    streamed_message_survives_write_timeouts(64 << 10);
}

#[test]
fn a_streamed_message_survives_write_timeouts_in_part_fragments() {
    streamed_message_survives_write_timeouts(48 << 10);
}

/// What the server end reads first: a message, or how the connection ended.
fn first_message(server: TcpStream) -> thread::JoinHandle<Result<Message, Error>> {
    thread::spawn(move || server_end(server).read())
}

fn assert_failed_with_1011(got: Result<Message, Error>) {
    match got {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::InternalError),
        other => panic!("expected a 1011 close and no message, got {other:?}"),
    }
}

#[test]
fn dropping_an_unfinished_stream_fails_the_connection_instead_of_finishing_the_message() {
    let (client, server) = small_buffered_pair();
    client.set_write_timeout(Some(DEADLINE)).unwrap();
    let peer = first_message(server);
    let mut ws = WebSocket::from_stream(client, Role::Client, Config::default());
    let mut writer = ws.send_stream(DataKind::Binary).unwrap();
    // More than one fragment, so the peer has seen the message start.
    writer.write_all(&pattern(100 << 10)).unwrap();
    drop(writer);
    assert_failed_with_1011(peer.join().unwrap());
    assert!(matches!(
        ws.send(Message::text("after")),
        Err(Error::AlreadyClosed)
    ));
}

#[test]
fn a_text_stream_ending_inside_a_character_fails_the_connection() {
    let (client, server) = small_buffered_pair();
    client.set_write_timeout(Some(DEADLINE)).unwrap();
    let peer = first_message(server);
    let mut ws = WebSocket::from_stream(client, Role::Client, Config::default());
    let mut writer = ws.send_stream(DataKind::Text).unwrap();
    // "é" is 0xc3 0xa9: the stream ends after its first byte.
    writer.write_all("abcdefgh".as_bytes()).unwrap();
    writer.write_all(&[0xc3]).unwrap();
    assert!(matches!(writer.finish(), Err(Error::InvalidInput(_))));
    // Not stuck in an unfinished message: the connection is over, and says so.
    assert!(matches!(
        ws.send(Message::text("next")),
        Err(Error::AlreadyClosed)
    ));
    assert_failed_with_1011(peer.join().unwrap());
}

/// Fills the client's socket buffers until a send times out, leaving part of a frame queued.
fn send_until_timeout(ws: &mut WebSocket<TcpStream>) {
    let big = Message::binary(vec![7u8; 256 << 10]);
    for _ in 0..1000 {
        match ws.send(big.clone()) {
            Ok(()) => {}
            Err(e) if e.is_timeout() => return,
            Err(e) => panic!("send failed: {e}"),
        }
    }
    panic!("the peer never pushed back");
}

#[test]
fn read_returns_a_ping_whose_pong_cannot_be_written_and_sends_the_pong_later() {
    let (client, server) = small_buffered_pair();
    let (filled, wait_filled) = mpsc::channel::<()>();
    let (start_reading, go) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let mut ws = server_end(server);
        wait_filled.recv_timeout(DEADLINE).unwrap();
        ws.send(Message::Ping(b"p1".to_vec())).unwrap();
        ws.send(Message::text("hello")).unwrap();
        let _ = go.recv_timeout(DEADLINE);
        // Everything the client sent arrives, the pong after the data it queued first.
        let mut seen = Vec::new();
        let started = Instant::now();
        while started.elapsed() < DEADLINE {
            match ws.read() {
                Ok(Message::Pong(data)) => {
                    seen.push(format!("pong {}", String::from_utf8_lossy(&data)));
                    break;
                }
                Ok(Message::Binary(data)) => seen.push(format!("binary {}", data.len())),
                Ok(other) => seen.push(format!("{other:?}")),
                Err(e) => {
                    seen.push(format!("error {e}"));
                    break;
                }
            }
        }
        seen
    });
    let mut ws = WebSocket::from_stream(client, Role::Client, Config::default());
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    send_until_timeout(&mut ws);
    filled.send(()).unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    while got.len() < 2 {
        assert!(started.elapsed() < DEADLINE, "got only {got:?}");
        match ws.read() {
            Ok(message) => got.push(message),
            Err(e) if e.is_timeout() => {
                let _ = start_reading.send(());
            }
            Err(e) => panic!("read failed after {got:?}: {e}"),
        }
    }
    let _ = start_reading.send(());
    assert!(
        matches!(&got[0], Message::Ping(data) if &data[..] == b"p1"),
        "{got:?}"
    );
    assert!(
        matches!(&got[1], Message::Text(text) if text == "hello"),
        "{got:?}"
    );
    // The pong went out after all, behind the data queued before it.
    let flush_started = Instant::now();
    while let Err(e) = ws.flush() {
        assert!(e.is_timeout(), "{e}");
        assert!(flush_started.elapsed() < DEADLINE);
    }
    let seen = peer.join().unwrap();
    assert_eq!(seen.last().map(String::as_str), Some("pong p1"), "{seen:?}");
}

#[test]
fn a_client_stops_waiting_for_a_server_that_never_closes_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done, wait_done) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut ws = syncws::accept(stream).unwrap();
        // Answers the client's close, then holds TCP open until the test is over.
        while let Ok(message) = ws.read() {
            if let Message::Close(_) = message {
                break;
            }
        }
        let _ = wait_done.recv_timeout(DEADLINE + DEADLINE);
        ws
    });
    let (mut ws, _) = syncws::connect(&format!("ws://{addr}/")).unwrap();
    let (closed, wait_closed) = mpsc::channel();
    let client = thread::spawn(move || {
        let result = ws.close(CloseCode::Normal, "bye");
        let _ = closed.send(result.is_ok());
    });
    let finished = wait_closed.recv_timeout(DEADLINE);
    let _ = done.send(());
    assert_eq!(
        finished,
        Ok(true),
        "close() still waiting for the server's TCP close"
    );
    client.join().unwrap();
    drop(server.join().unwrap());
}

#[test]
fn a_zero_fragment_size_given_to_from_stream_is_refused_not_looped_on() {
    let (client, _server) = small_buffered_pair();
    let mut config = Config::default();
    config.write_fragment_size = 0;
    let (result, got) = mpsc::channel();
    // On its own thread: an endless loop must fail the test, not hang it.
    thread::spawn(move || {
        let mut ws = WebSocket::from_stream(client, Role::Client, config);
        let outcome = match ws.send_stream(DataKind::Binary) {
            Err(e) => Err(e.to_string()),
            Ok(mut writer) => writer.write_all(b"x").map_err(|e| e.to_string()),
        };
        let _ = result.send(outcome);
    });
    match got.recv_timeout(DEADLINE) {
        Ok(Err(message)) => assert!(message.contains("write_fragment_size"), "{message}"),
        Ok(Ok(())) => panic!("a zero-sized fragment was accepted"),
        Err(_) => panic!("writing with write_fragment_size = 0 never returned"),
    }
}

#[test]
fn try_from_stream_reports_an_invalid_config_at_once() {
    let (client, _server) = small_buffered_pair();
    let mut config = Config::default();
    config.write_fragment_size = 0;
    assert!(matches!(
        WebSocket::try_from_stream(client, Role::Client, config),
        Err(Error::InvalidConfig(_))
    ));
    let (client, _server) = small_buffered_pair();
    let mut config = Config::default();
    config.read_buffer_size = 0;
    let mut ws = WebSocket::from_stream(client, Role::Client, config);
    assert!(matches!(ws.read(), Err(Error::InvalidConfig(_))));
    assert!(matches!(
        ws.send(Message::text("x")),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn read_returns_the_peers_close_whose_reply_cannot_be_written_and_replies_later() {
    let (client, server) = small_buffered_pair();
    let (filled, wait_filled) = mpsc::channel::<()>();
    let (start_reading, go) = mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let mut ws = server_end(server);
        wait_filled.recv_timeout(DEADLINE).unwrap();
        ws.send(Message::Close(Some(syncws::CloseFrame::new(
            CloseCode::GoingAway,
            "bye",
        ))))
        .unwrap();
        let _ = go.recv_timeout(DEADLINE);
        // The data queued first, then the close reply.
        let started = Instant::now();
        while started.elapsed() < DEADLINE {
            match ws.read() {
                Ok(Message::Close(frame)) => return frame.map(|f| f.code),
                Ok(_) => {}
                Err(e) => panic!("server read failed: {e}"),
            }
        }
        None
    });
    let mut ws = WebSocket::from_stream(client, Role::Client, Config::default());
    send_until_timeout(&mut ws);
    filled.send(()).unwrap();
    let started = Instant::now();
    let mut got = None;
    let mut after = None;
    while after.is_none() {
        assert!(started.elapsed() < DEADLINE, "got {got:?}");
        match ws.read() {
            Ok(message) => got = Some(message),
            Err(e) if e.is_timeout() => {
                let _ = start_reading.send(());
            }
            Err(e) => after = Some(e),
        }
    }
    let _ = start_reading.send(());
    assert!(
        matches!(&got, Some(Message::Close(Some(frame))) if frame.code == CloseCode::GoingAway),
        "{got:?}"
    );
    assert!(matches!(after, Some(Error::ConnectionClosed)), "{after:?}");
    assert_eq!(peer.join().unwrap(), Some(CloseCode::GoingAway));
}
