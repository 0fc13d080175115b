//! The frame inspector (`examples/inspect`): its `--decode` output for a frame captured from a
//! real client, byte for byte, and the proxy between a syncws client and an echo server.

mod common;

#[allow(dead_code)]
#[path = "../examples/inspect/main.rs"]
mod inspector;

use common::{DEADLINE, serve_once};
use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, mpsc};
use syncws::{CloseCode, CloseFrame, Message};

/// The captured frame: a client's masked text frame carrying this JSON, 5 lines, 4-space
/// indentation, no trailing newline, masked with the key a0 fe 8b 23.
const CAPTURED_JSON: &str = "{\n    \"userId\": 10001,\n    \"code\": 1001,\n    \"data\": {}\n}";

#[test]
fn the_captured_frame_is_dissected_exactly() {
    let key = [0xa0, 0xfe, 0x8b, 0x23];
    let payload = CAPTURED_JSON.as_bytes();
    assert_eq!(payload.len(), 57);
    // Built by hand, as RFC 6455 §5.2 and §5.3 describe it, not with the crate's encoder.
    let mut wire = vec![0x80 | 0x1, 0x80 | payload.len() as u8];
    wire.extend_from_slice(&key);
    wire.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    let hex: Vec<String> = wire.iter().map(|b| format!("{b:02x}")).collect();

    let expected = "\
Text frame, 63 bytes on the wire (6 header + 57 payload)
  1... .... = FIN: 1 (final frame of its message)
  .0.. .... = RSV1: 0
  ..0. .... = RSV2: 0
  ...0 .... = RSV3: 0
  .... 0001 = Opcode: 0x1 Text (data frame)
  1... .... = MASK: 1 (masked: client to server)
  .011 1001 = Payload length: 57 (7-bit form, 0-125)
  Masking key: a0 fe 8b 23
  Payload as sent, masked:
    0000  db f4 ab 03 80 de a9 56  d3 9b f9 6a c4 dc b1 03
    0010  91 ce bb 13 91 d2 81 03  80 de ab 01 c3 91 ef 46
    0020  82 c4 ab 12 90 ce ba 0f  aa de ab 03 80 dc ef 42
    0030  d4 9f a9 19 80 85 f6 29  dd
  Payload unmasked, as text:
    {
        \"userId\": 10001,
        \"code\": 1001,
        \"data\": {}
    }
";
    // As typed on the command line: spaced, and as one run of digits.
    assert_eq!(inspector::decode(&hex.join(" ")).unwrap(), expected);
    assert_eq!(inspector::decode(&hex.concat()).unwrap(), expected);
    let c_array: Vec<String> = wire.iter().map(|b| format!("0x{b:02x}")).collect();
    assert_eq!(inspector::decode(&c_array.join(", ")).unwrap(), expected);
    assert_eq!(syncws::proto::dissect::dissect_bytes(&wire), expected);
}

#[test]
fn decode_rejects_what_is_not_hex() {
    assert!(inspector::decode("81 8").is_err());
    assert!(inspector::decode("zz").is_err());
    assert!(inspector::decode("").is_err());
}

/// One frame as the inspector printed it: the `#id +time arrow who` line's tail, and the rest.
fn frames(output: &str) -> Vec<(String, String)> {
    let mut frames: Vec<(String, String)> = Vec::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("#0 +") {
            let (_time, who) = rest.split_once(' ').unwrap();
            frames.push((who.to_owned(), String::new()));
        } else if line.starts_with("#0 ") && !frames.is_empty() {
            frames.push((line.to_owned(), String::new()));
        } else if line.is_empty() {
            // The blank line after each frame.
        } else if let Some((_, body)) = frames.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    frames
}

#[test]
fn the_proxy_shows_the_handshake_and_every_frame_both_ways() {
    let (server_addr, server) = serve_once(|stream| {
        let mut ws = syncws::accept(stream).unwrap();
        loop {
            match ws.read() {
                Ok(msg) if msg.is_data() => ws.send(msg).unwrap(),
                Ok(Message::Close(_)) => return,
                Ok(_) => {}
                Err(e) => panic!("echo server: {e}"),
            }
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let captured = Arc::new(Mutex::new(Vec::<u8>::new()));
    let out: inspector::relay::Output = captured.clone();
    let upstream = format!("ws://{server_addr}/");
    let (done_tx, done) = mpsc::channel();
    std::thread::Builder::new()
        .name("test-inspector".into())
        .spawn(move || {
            let (client, _) = listener.accept().unwrap();
            let _ = done_tx.send(inspector::relay::inspect(0, client, &upstream, out));
        })
        .unwrap();

    let mut config = syncws::Config::default();
    config.write_fragment_size = 4;
    // Uncompressed, so that the dissected payloads are the ones sent.
    config.deflate.enabled = false;
    let (mut ws, response) = syncws::ClientBuilder::new(format!("ws://{proxy_addr}/"))
        .config(config)
        .connect()
        .unwrap();
    assert_eq!(response.status, 101);
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    ws.send(Message::text("hello")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello"));
    let binary: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
    ws.send(Message::Binary(binary.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(binary));
    ws.send(Message::Ping(b"p".to_vec())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"p".to_vec()));
    // Streamed in 4-byte fragments: "frag", "ment", "ed"; echoed whole.
    let mut writer = ws.send_stream(syncws::DataKind::Text).unwrap();
    writer.write_all(b"fragmented").unwrap();
    writer.finish().unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("fragmented"));
    let reply = ws.close(CloseCode::Normal, "bye").unwrap();
    assert_eq!(reply, Some(CloseFrame::new(CloseCode::Normal, "")));
    drop(ws);
    done.recv_timeout(DEADLINE).unwrap().unwrap();
    server.join().unwrap();

    let output = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
    let head = output.split("#0 +").next().unwrap();
    let server_port = server_addr.port();
    for line in [
        "→ GET / HTTP/1.1".to_owned(),
        format!(
            "→ Host: 127.0.0.1:{server_port}   (was 127.0.0.1:{})",
            proxy_addr.port()
        ),
        "→ Sec-WebSocket-Version: 13".to_owned(),
        "← HTTP/1.1 101 Switching Protocols".to_owned(),
    ] {
        assert!(
            head.lines().any(|l| l == line),
            "{line:?} missing in\n{head}"
        );
    }
    assert!(
        head.contains("✓ Sec-WebSocket-Accept = base64(SHA-1(\""),
        "{head}"
    );

    let frames = frames(&output);
    let who: Vec<&str> = frames.iter().map(|(w, _)| w.as_str()).collect();
    let up = "↑ client → server";
    let down = "↓ server → client";
    assert_eq!(
        who,
        [
            up,
            down,
            up,
            down,
            up,
            down,
            up,
            up,
            up,
            down,
            up,
            down,
            "#0 both sides closed TCP"
        ]
    );
    // The client's frames: masked with a fresh random key each, so check all but the bytes.
    let (_, hello) = &frames[0];
    assert!(hello.starts_with("Text frame, 11 bytes on the wire (6 header + 5 payload)\n"));
    assert!(hello.contains("  1... .... = MASK: 1 (masked: client to server)\n"));
    assert!(
        hello.ends_with("  Payload unmasked, as text:\n    hello\n"),
        "{hello}"
    );
    // The server's are not masked: every byte is known.
    assert_eq!(
        frames[1].1,
        "\
Text frame, 7 bytes on the wire (2 header + 5 payload)
  1... .... = FIN: 1 (final frame of its message)
  .0.. .... = RSV1: 0
  ..0. .... = RSV2: 0
  ...0 .... = RSV3: 0
  .... 0001 = Opcode: 0x1 Text (data frame)
  0... .... = MASK: 0 (unmasked: server to client)
  .000 0101 = Payload length: 5 (7-bit form, 0-125)
  Payload as text:
    hello
"
    );
    let echo = &frames[3].1;
    assert!(echo.contains("  .111 1110 = Payload length: 126 (a 16-bit length follows)\n"));
    assert!(echo.contains("  Extended payload length (16 bits): 300 (126-65535)\n"));
    assert!(echo.contains("    0000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f"));
    assert!(
        frames[4]
            .1
            .contains(".... 1001 = Opcode: 0x9 Ping (control frame)")
    );
    assert!(
        frames[5]
            .1
            .contains(".... 1010 = Opcode: 0xa Pong (control frame)")
    );
    assert!(
        frames[6]
            .1
            .contains("  0... .... = FIN: 0 (more fragments follow)\n")
    );
    assert!(
        frames[6]
            .1
            .ends_with("  Payload unmasked, as text:\n    frag\n")
    );
    for (frame, fin, text) in [(&frames[7].1, 0, "ment"), (&frames[8].1, 1, "ed")] {
        assert!(
            frame.contains("= Opcode: 0x0 Continuation (continues a fragmented Text message)\n"),
            "{frame}"
        );
        assert!(frame.contains(&format!("  {fin}... .... = FIN: {fin} (")));
        assert!(frame.ends_with(&format!("  Payload unmasked, as text:\n    {text}\n")));
    }
    assert!(
        frames[9]
            .1
            .ends_with("  Payload as text:\n    fragmented\n")
    );
    assert!(
        frames[10]
            .1
            .contains("  Close code: 1000 (normal closure)\n  Close reason: \"bye\"\n")
    );
    assert!(
        frames[11]
            .1
            .ends_with("  Close code: 1000 (normal closure)\n"),
        "{}",
        frames[11].1
    );
}

#[test]
fn a_refused_upgrade_is_relayed_and_reported() {
    let (server_addr, server) = serve_once(|mut stream| {
        let mut buf = [0u8; 4096];
        let _ = std::io::Read::read(&mut stream, &mut buf);
        stream
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
            .unwrap();
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let captured = Arc::new(Mutex::new(Vec::<u8>::new()));
    let out: inspector::relay::Output = captured.clone();
    let upstream = format!("ws://{server_addr}/");
    let (done_tx, done) = mpsc::channel();
    std::thread::Builder::new()
        .name("test-inspector".into())
        .spawn(move || {
            let (client, _) = listener.accept().unwrap();
            let _ = done_tx.send(inspector::relay::inspect(0, client, &upstream, out));
        })
        .unwrap();
    let error = syncws::connect(&format!("ws://{proxy_addr}/")).unwrap_err();
    assert!(error.to_string().contains("403"), "{error}");
    done.recv_timeout(DEADLINE).unwrap().unwrap();
    server.join().unwrap();
    let output = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
    assert!(output.contains("← HTTP/1.1 403 Forbidden\n"), "{output}");
    assert!(
        output.contains("✗ Sec-WebSocket-Accept is None"),
        "{output}"
    );
    assert!(
        output.contains("#0 not upgraded; relaying the rest unexamined\n"),
        "{output}"
    );
}

#[test]
fn an_unreachable_upstream_gets_502() {
    // A port that was just free: nothing listens there any more.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let captured = Arc::new(Mutex::new(Vec::<u8>::new()));
    let out: inspector::relay::Output = captured.clone();
    let (done_tx, done) = mpsc::channel();
    std::thread::Builder::new()
        .name("test-inspector".into())
        .spawn(move || {
            let (client, _) = listener.accept().unwrap();
            let _ = done_tx.send(inspector::relay::inspect(
                0,
                client,
                &format!("ws://{closed}/"),
                out,
            ));
        })
        .unwrap();
    let error = syncws::connect(&format!("ws://{proxy_addr}/")).unwrap_err();
    assert!(error.to_string().contains("502"), "{error}");
    assert!(done.recv_timeout(DEADLINE).unwrap().is_err());
    let output = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
    assert!(output.contains("answered 502"), "{output}");
}
