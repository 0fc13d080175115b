//! Hostile input against a running `Server`: each case asserts the exact reply, and that the
//! server keeps serving a well-behaved client during and after.

mod common;

use common::{DEADLINE, raw_connect, read_to_close, upgrade_request};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use syncws::proto::frame::{FrameHeader, OpCode, encode_frame};
use syncws::{Config, Message, NetStream, Server, ServerHandle, WebSocket};

/// An echo server with a short handshake timeout, and a client that stays connected throughout.
struct Setup {
    server: Option<ServerHandle>,
    addr: SocketAddr,
    witness: WebSocket<NetStream>,
}

impl Setup {
    fn new() -> Setup {
        let mut config = Config::default();
        config.handshake_timeout = Some(Duration::from_millis(800));
        config.max_message_size = 1 << 20;
        config.max_frame_size = 1 << 20;
        let server = Server::builder()
            .config(config)
            .bind("127.0.0.1:0")
            .unwrap()
            .spawn(common::echo_session)
            .unwrap();
        let addr = server.local_addr();
        let (witness, _) = syncws::connect(&format!("ws://{addr}/")).unwrap();
        witness.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
        let mut setup = Setup {
            server: Some(server),
            addr,
            witness,
        };
        setup.still_serving("before");
        setup
    }

    /// The long-lived client still gets its echo, and a new client can connect.
    fn still_serving(&mut self, when: &str) {
        self.witness.send(Message::text(when)).unwrap();
        assert_eq!(self.witness.read().unwrap(), Message::text(when));
        let (mut fresh, _) = syncws::connect(&format!("ws://{}/", self.addr)).unwrap();
        fresh.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
        fresh.send(Message::binary(vec![1, 2, 3])).unwrap();
        assert_eq!(fresh.read().unwrap(), Message::binary(vec![1, 2, 3]));
    }

    /// Sends `request` raw and returns the whole answer (until the server closes).
    fn answer(&mut self, request: &[u8]) -> String {
        let mut raw = raw_connect(self.addr);
        raw.write_all(request).unwrap();
        self.still_serving("during");
        String::from_utf8_lossy(&read_to_close(&mut raw)).into_owned()
    }

    /// Upgrades a raw connection, sends `frames`, and returns the close code the server sent
    /// (after which it must close TCP).
    fn close_code_for(&mut self, frames: &[u8]) -> u16 {
        let mut raw = common::upgraded(self.addr);
        raw.write_all(frames).unwrap();
        self.still_serving("during");
        let rest = read_to_close(&mut raw);
        // RFC 6455 §7.1.7: fail the connection with a close frame, then close TCP.
        assert!(
            rest.len() >= 4 && rest[0] == 0x88,
            "no close frame: {rest:?}"
        );
        u16::from_be_bytes([rest[2], rest[3]])
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.still_serving("after");
        if let Some(server) = self.server.take() {
            let _ = self.witness.send(Message::Close(None));
            let _ = self.witness.read();
            server.shutdown();
        }
    }
}

/// A client frame: masked, as RFC 6455 §5.3 requires.
fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut header = FrameHeader::new(opcode, payload.len() as u64);
    header.fin = fin;
    header.mask = Some([1, 2, 3, 4]);
    let mut out = Vec::new();
    encode_frame(&header, payload, &mut out);
    out
}

fn status(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn request_without_upgrade_gets_426() {
    let mut setup = Setup::new();
    let answer = setup.answer(
        upgrade_request("")
            .replace("Upgrade: websocket\r\n", "")
            .as_bytes(),
    );
    assert_eq!(status(&answer), 426, "{answer}");
    assert!(answer.contains("Upgrade: websocket\r\n"), "{answer}");
}

#[test]
fn version_8_gets_426_naming_13() {
    let mut setup = Setup::new();
    let answer = setup.answer(
        upgrade_request("")
            .replace("Version: 13", "Version: 8")
            .as_bytes(),
    );
    assert_eq!(status(&answer), 426, "{answer}");
    assert!(answer.contains("Sec-WebSocket-Version: 13\r\n"), "{answer}");
}

#[test]
fn missing_key_gets_400() {
    let mut setup = Setup::new();
    let request =
        upgrade_request("").replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
    assert_eq!(status(&setup.answer(request.as_bytes())), 400);
}

#[test]
fn sixty_four_kib_of_headers_gets_431() {
    let mut setup = Setup::new();
    let filler: String = (0..64)
        .map(|i| format!("X-Filler-{i}: {}\r\n", "a".repeat(1000)))
        .collect();
    let answer = setup.answer(upgrade_request(&filler).as_bytes());
    assert_eq!(status(&answer), 431, "{answer}");
}

#[test]
fn a_head_sent_one_byte_at_a_time_is_dropped_by_the_handshake_timeout() {
    let mut setup = Setup::new();
    let mut raw = raw_connect(setup.addr);
    let request = upgrade_request("");
    let started = Instant::now();
    let mut dropped = false;
    // One byte every 100 ms: the 800 ms handshake timeout ends it long before the head is done.
    for byte in request.as_bytes() {
        if raw.write_all(&[*byte]).is_err() {
            dropped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
        let mut probe = [0u8; 256];
        raw.set_nonblocking(true).unwrap();
        let peeked = raw.read(&mut probe);
        raw.set_nonblocking(false).unwrap();
        match peeked {
            Ok(0) => {
                dropped = true;
                break;
            }
            Ok(n) => {
                // A 408 answer, then the close.
                assert!(
                    String::from_utf8_lossy(&probe[..n]).starts_with("HTTP/1.1 408"),
                    "{:?}",
                    &probe[..n]
                );
                dropped = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(dropped, "the slow client was not dropped");
    assert!(started.elapsed() < Duration::from_secs(3));
    setup.still_serving("after the slow client");
}

#[test]
fn an_unmasked_client_frame_gets_1002() {
    let mut setup = Setup::new();
    assert_eq!(setup.close_code_for(&[0x81, 0x02, b'h', b'i']), 1002);
}

#[test]
fn a_header_announcing_2_pow_63_minus_1_bytes_gets_1009() {
    let mut setup = Setup::new();
    let bytes = [
        0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
    ];
    assert_eq!(setup.close_code_for(&bytes), 1009);
}

#[test]
fn reserved_opcodes_get_1002() {
    let mut setup = Setup::new();
    for op in [3, 7, 0xb, 0xf] {
        assert_eq!(
            setup.close_code_for(&frame(OpCode::Reserved(op), true, b"")),
            1002,
            "opcode {op}"
        );
    }
}

#[test]
fn a_126_byte_ping_gets_1002() {
    let mut setup = Setup::new();
    assert_eq!(
        setup.close_code_for(&frame(OpCode::Ping, true, &[0; 126])),
        1002
    );
}

#[test]
fn a_fragmented_ping_gets_1002() {
    let mut setup = Setup::new();
    assert_eq!(
        setup.close_code_for(&frame(OpCode::Ping, false, b"x")),
        1002
    );
}

#[test]
fn invalid_utf8_text_gets_1007() {
    let mut setup = Setup::new();
    assert_eq!(
        setup.close_code_for(&frame(OpCode::Text, true, b"\xce\xba\xed\xa0\x80")),
        1007
    );
}

#[test]
fn rsv1_without_an_extension_gets_1002() {
    let mut setup = Setup::new();
    let mut bytes = frame(OpCode::Text, true, b"x");
    bytes[0] |= 0x40;
    assert_eq!(setup.close_code_for(&bytes), 1002);
}

#[test]
fn a_close_frame_with_a_1_byte_payload_gets_1002() {
    let mut setup = Setup::new();
    assert_eq!(
        setup.close_code_for(&frame(OpCode::Close, true, &[0x03])),
        1002
    );
}

#[test]
fn close_code_1005_on_the_wire_gets_1002() {
    let mut setup = Setup::new();
    assert_eq!(
        setup.close_code_for(&frame(OpCode::Close, true, &[0x03, 0xed])),
        1002
    );
}

#[test]
fn a_continuation_with_nothing_to_continue_gets_1002() {
    let mut setup = Setup::new();
    assert_eq!(
        setup.close_code_for(&frame(OpCode::Continuation, true, b"x")),
        1002
    );
}

#[test]
fn a_new_data_frame_inside_a_fragmented_message_gets_1002() {
    let mut setup = Setup::new();
    let mut bytes = frame(OpCode::Text, false, b"a");
    bytes.extend(frame(OpCode::Binary, true, b"b"));
    assert_eq!(setup.close_code_for(&bytes), 1002);
}

// Issue 18 item 5: a request the server reads one way and a proxy or allowlist another.

#[test]
fn a_second_host_key_or_version_gets_400() {
    let mut setup = Setup::new();
    for extra in [
        "Host: evil.example\r\n",
        "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n",
        "Sec-WebSocket-Version: 8\r\n",
        "Origin: https://a.example\r\nOrigin: https://b.example\r\n",
    ] {
        let answer = setup.answer(upgrade_request(extra).as_bytes());
        assert_eq!(status(&answer), 400, "{extra:?}: {answer}");
        assert!(answer.contains("more than one"), "{answer}");
    }
}

#[test]
fn an_upgrade_request_with_a_body_gets_400_and_its_body_is_not_read_as_frames() {
    let mut setup = Setup::new();
    // The "body" is a valid masked text frame: upgraded, it would be echoed.
    let body = frame(OpCode::Text, true, b"smuggled");
    for extra in [
        format!("Content-Length: {}\r\n", body.len()),
        "Transfer-Encoding: chunked\r\n".to_owned(),
    ] {
        let mut request = upgrade_request(&extra).into_bytes();
        request.extend_from_slice(&body);
        let answer = setup.answer(&request);
        assert_eq!(status(&answer), 400, "{extra:?}: {answer}");
        assert!(!answer.contains("smuggled"), "{answer}");
    }
    // Content-Length: 0 is no body.
    let mut raw = raw_connect(setup.addr);
    raw.write_all(upgrade_request("Content-Length: 0\r\n").as_bytes())
        .unwrap();
    let mut head = [0u8; 12];
    raw.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
}

#[test]
fn absolute_form_and_asterisk_targets_get_400() {
    let mut setup = Setup::new();
    for target in ["http://evil.example/admin", "*", "ws://127.0.0.1/chat"] {
        let request = upgrade_request("").replacen("/chat", target, 1);
        let answer = setup.answer(request.as_bytes());
        assert_eq!(status(&answer), 400, "{target}: {answer}");
    }
}

/// A server with an Origin allowlist and a page handler, and the paths its sessions saw.
fn policy_server() -> (ServerHandle, SocketAddr, std::sync::mpsc::Receiver<String>) {
    let (seen, paths) = std::sync::mpsc::channel();
    let seen = std::sync::Mutex::new(seen);
    let mut config = Config::default();
    config.handshake_timeout = Some(Duration::from_secs(5));
    let server = Server::builder()
        .config(config)
        .allowed_origins(["https://good.example"])
        .http(|req| syncws::HttpResponse::new(200).body(format!("page {}\n", req.path())))
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |session| {
            let _ = seen
                .lock()
                .unwrap()
                .send(session.request().path().to_owned());
            common::echo_session(session);
        })
        .unwrap();
    let addr = server.local_addr();
    (server, addr, paths)
}

#[test]
fn a_second_origin_does_not_slip_past_the_allowlist() {
    let (server, addr, paths) = policy_server();
    let allowed = "Origin: https://good.example\r\n";
    let mut alone = raw_connect(addr);
    alone
        .write_all(upgrade_request(allowed).as_bytes())
        .unwrap();
    let mut head = [0u8; 12];
    alone.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    assert_eq!(paths.recv_timeout(DEADLINE).unwrap(), "/chat");
    drop(alone);
    for extra in [
        format!("{allowed}Origin: https://evil.example\r\n"),
        format!("Origin: https://evil.example\r\n{allowed}"),
    ] {
        let (status, answer) = common::status_of(addr, upgrade_request(&extra).as_bytes());
        assert_eq!(status, 400, "{extra:?}: {answer}");
    }
    let (status, _) = common::status_of(
        addr,
        upgrade_request("Origin: https://evil.example\r\n").as_bytes(),
    );
    assert_eq!(status, 403);
    server.shutdown();
    assert!(paths.try_recv().is_err(), "an evil origin was upgraded");
}

#[test]
fn a_plain_http_1_0_request_reaches_the_page_handler() {
    let (server, addr, _) = policy_server();
    let (status, answer) = common::status_of(addr, b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200, "{answer}");
    assert!(answer.ends_with("page /index.html\n"), "{answer}");
    // RFC 9112 §3.2: two Host headers get 400, page or not.
    let (status, answer) = common::status_of(
        addr,
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    );
    assert_eq!(status, 400, "{answer}");
    // An HTTP/1.0 upgrade stays refused: RFC 6455 §4.1 needs 1.1.
    let request = upgrade_request("").replace("HTTP/1.1", "HTTP/1.0");
    assert_eq!(common::status_of(addr, request.as_bytes()).0, 505);
    server.shutdown();
}
