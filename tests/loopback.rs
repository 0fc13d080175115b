//! Client ↔ server over 127.0.0.1, port 0: message sizes, fragmentation, pings, every close path.

mod common;

use common::{DEADLINE, serve_once};
use std::io::Write;
use syncws::error::ProtocolError;
use syncws::proto::Event;
use syncws::{CloseCode, CloseFrame, Config, DataKind, Error, Message, WebSocket};

fn big_config() -> Config {
    let mut config = Config::default();
    config.max_frame_size = 32 << 20;
    config.max_message_size = 32 << 20;
    config
}

/// An echo server for one connection; returns how its read loop ended.
fn echo_server() -> (String, std::thread::JoinHandle<Result<(), Error>>) {
    let (addr, handle) = serve_once(|stream| {
        let mut ws = syncws::Acceptor::new()
            .config(big_config())
            .accept(stream)?;
        loop {
            match ws.read() {
                Ok(msg) if msg.is_data() => ws.send(msg)?,
                Ok(Message::Close(_)) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    });
    (format!("ws://{addr}/"), handle)
}

fn client(url: &str) -> WebSocket<syncws::NetStream> {
    let (ws, response) = syncws::ClientBuilder::new(url)
        .config(big_config())
        .connect()
        .unwrap();
    assert_eq!(response.status, 101);
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    ws
}

#[test]
fn every_size_text_and_binary_echoes() {
    let (url, server) = echo_server();
    let mut ws = client(&url);
    for size in [0, 125, 126, 65535, 65536, 1 << 20, 16 << 20] {
        let binary: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        ws.send(Message::Binary(binary.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Binary(binary), "binary {size}");
        let text: String = (0..size)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        ws.send(Message::Text(text.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Text(text), "text {size}");
    }
    let peer = ws.close(CloseCode::Normal, "bye").unwrap();
    assert_eq!(peer, Some(CloseFrame::new(CloseCode::Normal, "")));
    server.join().unwrap().unwrap();
}

#[test]
fn streamed_message_arrives_whole_and_can_be_read_in_pieces() {
    let (url, server) = echo_server();
    let mut config = big_config();
    config.write_fragment_size = 1000;
    let (mut ws, _) = syncws::ClientBuilder::new(&url)
        .config(config)
        .connect()
        .unwrap();
    let text = "fragmented ✓ ".repeat(500);
    let mut writer = ws.send_stream(DataKind::Text).unwrap();
    // Writes of 7 bytes cut characters across fragments; the message is still valid.
    for piece in text.as_bytes().chunks(7) {
        writer.write_all(piece).unwrap();
    }
    writer.finish().unwrap();
    // The server reassembled it and echoed it in one frame; read it back in pieces.
    let mut received = Vec::new();
    loop {
        match ws.read_event().unwrap() {
            Event::Chunk(chunk) => {
                assert_eq!(chunk.kind, DataKind::Text);
                received.extend(chunk.data);
                if chunk.last {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, text.as_bytes());
    ws.close(CloseCode::Normal, "").unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn streaming_text_refuses_invalid_utf8() {
    let (url, _server) = echo_server();
    let mut ws = client(&url);
    let mut writer = ws.send_stream(DataKind::Text).unwrap();
    assert!(writer.write_all(b"\xff").is_err());
}

#[test]
fn pings_between_fragments_are_answered_and_returned() {
    let (addr, server) = serve_once(|stream| {
        let mut ws = syncws::accept(stream).unwrap();
        // A fragmented message with a ping between the fragments (RFC 6455 §5.4 allows it).
        let mut writer = ws.send_stream(DataKind::Binary).unwrap();
        writer.write_all(&[1; 10]).unwrap();
        writer.flush().unwrap();
        // Finished explicitly: a writer dropped unfinished fails the connection (1011).
        writer.finish().unwrap();
        ws.send(Message::Ping(b"are you there".to_vec())).unwrap();
        // The client's pong comes back.
        let pong = ws.read().unwrap();
        ws.close(CloseCode::Normal, "").unwrap();
        pong
    });
    let mut ws = client(&format!("ws://{addr}/"));
    assert_eq!(ws.read().unwrap(), Message::Binary(vec![1; 10]));
    assert_eq!(ws.read().unwrap(), Message::Ping(b"are you there".to_vec()));
    assert!(matches!(ws.read().unwrap(), Message::Close(_)));
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    assert!(matches!(ws.read(), Err(Error::AlreadyClosed)));
    assert_eq!(
        server.join().unwrap(),
        Message::Pong(b"are you there".to_vec())
    );
}

#[test]
fn server_initiated_close() {
    let (addr, server) = serve_once(|stream| {
        let mut ws = syncws::accept(stream).unwrap();
        let reply = ws.close(CloseCode::GoingAway, "restarting").unwrap();
        assert!(matches!(
            ws.send(Message::text("late")),
            Err(Error::AlreadyClosed)
        ));
        reply
    });
    let mut ws = client(&format!("ws://{addr}/"));
    let close = ws.read().unwrap();
    assert_eq!(
        close,
        Message::Close(Some(CloseFrame::new(CloseCode::GoingAway, "restarting")))
    );
    // Our echo went out inside read(); the server has seen the handshake complete.
    assert_eq!(
        server.join().unwrap(),
        Some(CloseFrame::new(CloseCode::GoingAway, ""))
    );
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    assert!(matches!(
        ws.send(Message::text("x")),
        Err(Error::AlreadyClosed)
    ));
}

#[test]
fn client_initiated_close_without_code() {
    let (url, server) = echo_server();
    let mut ws = client(&url);
    ws.send(Message::Close(None)).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Close(None));
    assert!(matches!(ws.read(), Err(Error::ConnectionClosed)));
    server.join().unwrap().unwrap();
}

#[test]
fn data_in_flight_during_close_is_delivered_by_read() {
    let (addr, server) = serve_once(|stream| {
        let mut ws = syncws::accept(stream).unwrap();
        ws.send(Message::text("one")).unwrap();
        ws.send(Message::text("two")).unwrap();
        ws.read().unwrap()
    });
    let mut ws = client(&format!("ws://{addr}/"));
    ws.send(Message::Close(Some(CloseFrame::new(CloseCode::Normal, ""))))
        .unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("one"));
    assert_eq!(ws.read().unwrap(), Message::text("two"));
    assert!(matches!(ws.read().unwrap(), Message::Close(_)));
    assert!(matches!(server.join().unwrap(), Message::Close(_)));
}

#[test]
fn a_protocol_violation_fails_with_its_code() {
    // A raw "client" sends an unmasked frame; the server must answer close 1002.
    let (addr, server) = serve_once(|stream| {
        let mut ws = syncws::accept(stream).unwrap();
        ws.read()
    });
    let mut raw = common::raw_connect(addr);
    raw.write_all(common::upgrade_request("").as_bytes())
        .unwrap();
    raw.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
    let answer = common::read_to_close(&mut raw);
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&answer[head_end..], [0x88, 0x02, 0x03, 0xea]);
    assert!(matches!(
        server.join().unwrap(),
        Err(Error::Protocol(ProtocolError::UnmaskedFrame))
    ));
}

#[test]
fn a_peer_that_vanishes_is_an_unexpected_eof() {
    let (addr, server) = serve_once(|stream| {
        let mut ws = syncws::accept(stream).unwrap();
        let first = ws.read();
        (first, ws.read())
    });
    let ws = client(&format!("ws://{addr}/"));
    drop(ws);
    let (first, second) = server.join().unwrap();
    assert!(
        matches!(first, Err(Error::Io(ref e)) if e.kind() == std::io::ErrorKind::UnexpectedEof)
    );
    assert!(matches!(second, Err(Error::AlreadyClosed)));
}

#[test]
fn bytes_right_behind_the_101_are_kept() {
    // A raw server answers the handshake and a text frame in one write.
    let (addr, server) = serve_once(|mut stream| {
        let accept = common::read_upgrade_request(&mut stream);
        let mut answer = common::switching_protocols(&accept, "").into_bytes();
        answer.extend_from_slice(&[0x81, 0x05, b'e', b'a', b'r', b'l', b'y']);
        stream.write_all(&answer).unwrap();
        common::read_to_close(&mut stream)
    });
    let mut ws = client(&format!("ws://{addr}/"));
    assert_eq!(ws.read().unwrap(), Message::text("early"));
    drop(ws);
    server.join().unwrap();
}

#[test]
fn bytes_pipelined_behind_the_request_are_kept() {
    let (addr, server) = serve_once(|stream| {
        let mut ws = syncws::accept(stream).unwrap();
        ws.read().unwrap()
    });
    let mut raw = common::raw_connect(addr);
    let mut bytes = common::upgrade_request("").into_bytes();
    // RFC 6455 §5.7: masked "Hello", sent in the same packet as the request.
    bytes.extend_from_slice(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    raw.write_all(&bytes).unwrap();
    assert_eq!(server.join().unwrap(), Message::text("Hello"));
}

#[test]
fn subprotocol_and_headers_reach_the_hook() {
    let (addr, server) = serve_once(|stream| {
        let acceptor = syncws::Acceptor::new().on_handshake(|req, accept| {
            assert_eq!(req.header("x-token"), Some("abc"));
            assert_eq!(req.path(), "/room");
            assert_eq!(req.query_param("id"), Some("7"));
            let chosen = req.subprotocols().find(|p| *p == "chat.v2");
            accept
                .set_subprotocol(chosen)
                .add_header("X-Served-By", "test");
            Ok(())
        });
        let ws = acceptor.accept(stream).unwrap();
        ws.subprotocol().map(String::from)
    });
    let (ws, response) = syncws::ClientBuilder::new(format!("ws://{addr}/room?id=7"))
        .header("X-Token", "abc")
        .subprotocol("chat.v1")
        .subprotocol("chat.v2")
        .connect()
        .unwrap();
    assert_eq!(ws.subprotocol(), Some("chat.v2"));
    assert_eq!(response.header("x-served-by"), Some("test"));
    assert_eq!(server.join().unwrap().as_deref(), Some("chat.v2"));
}

#[test]
fn a_rejection_reaches_the_client_with_status_and_body() {
    let (addr, server) = serve_once(|stream| {
        syncws::Acceptor::new()
            .on_handshake(|_, _| {
                Err::<(), _>(syncws::HttpResponse::new(401).body("token required"))
            })
            .accept(stream)
            .err()
    });
    match syncws::connect(&format!("ws://{addr}/")) {
        Err(Error::Handshake(syncws::error::HandshakeError::UnexpectedResponse(response))) => {
            assert_eq!(response.status, 401);
            assert_eq!(response.body, b"token required");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    assert!(matches!(
        server.join().unwrap(),
        Some(Error::Handshake(syncws::error::HandshakeError::Rejected(
            401
        )))
    ));
}

#[test]
fn connect_to_ipv6_loopback() {
    let Ok(listener) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = syncws::accept(stream).unwrap();
        ws.read().unwrap()
    });
    let (mut ws, _) = syncws::connect(&format!("ws://[::1]:{port}/v6")).unwrap();
    ws.send(Message::text("over IPv6")).unwrap();
    assert_eq!(server.join().unwrap(), Message::text("over IPv6"));
}

#[test]
#[cfg(not(feature = "native-tls"))]
fn wss_without_tls_is_a_clear_error() {
    let err = syncws::connect("wss://127.0.0.1:1/").unwrap_err();
    assert!(
        matches!(err, Error::Url(syncws::error::UrlError::TlsNotEnabled)),
        "{err}"
    );
}
