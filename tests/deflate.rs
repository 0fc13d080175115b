//! permessage-deflate (RFC 7692) end to end: negotiation over loopback, what goes on the wire
//! (RSV1, threshold, receive-only), and the memory bound against a decompression bomb.
#![cfg(feature = "deflate")]

mod common;

use common::{DEADLINE, raw_connect, serve_once, upgrade_request};
use flate2::{Compress, Compression, FlushCompress};
use std::io::{Read, Write};
use syncws::error::ProtocolError;
use syncws::proto::Event;
use syncws::proto::deflate::DeflateParams;
use syncws::proto::{Connection, Role};
use syncws::{CloseCode, Config, DataKind, DeflateConfig, Error, Message};

/// An echo server for one connection with `config`; returns the agreed parameters.
fn echo_server(config: Config) -> (String, std::thread::JoinHandle<Option<DeflateParams>>) {
    let (addr, handle) = serve_once(move |stream| {
        let mut ws = syncws::Acceptor::new()
            .config(config)
            .accept(stream)
            .unwrap();
        let agreed = ws.deflate().copied();
        while let Ok(msg) = ws.read() {
            if msg.is_data() {
                ws.send(msg).unwrap();
            }
        }
        agreed
    });
    (format!("ws://{addr}/"), handle)
}

fn json(count: usize) -> String {
    (0..count)
        .map(|i| format!("{{\"id\":{i},\"name\":\"item {}\",\"ok\":true}}", i % 13))
        .collect()
}

#[test]
fn both_roles_agree_by_default_and_echo_every_shape() {
    let (url, server) = echo_server(Config::default());
    let (mut ws, response) = syncws::connect(&url).unwrap();
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    // The server compresses with, and asks the client for, 12-bit windows (4 KiB of history per
    // direction on a quiet connection; see docs/compression.md).
    assert_eq!(
        response.header("sec-websocket-extensions"),
        Some("permessage-deflate; server_max_window_bits=12; client_max_window_bits=12")
    );
    let mut agreed = DeflateParams::default();
    agreed.server_max_window_bits = 12;
    agreed.client_max_window_bits = 12;
    assert_eq!(ws.deflate(), Some(&agreed));
    for size in [0, 1, 127, 128, 4096, 1 << 20] {
        let text = json(size / 30 + 1);
        ws.send(Message::text(text.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Text(text));
        let binary: Vec<u8> = (0..size).map(|i| (i % 7) as u8).collect();
        ws.send(Message::Binary(binary.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Binary(binary));
    }
    // A streamed message is compressed fragment by fragment and arrives whole.
    let text = json(2000);
    let mut writer = ws.send_stream(DataKind::Text).unwrap();
    for piece in text.as_bytes().chunks(1000) {
        writer.write_all(piece).unwrap();
    }
    writer.finish().unwrap();
    assert_eq!(ws.read().unwrap(), Message::Text(text));
    ws.close(CloseCode::Normal, "").unwrap();
    assert_eq!(server.join().unwrap(), Some(agreed));
}

#[test]
fn parameters_from_each_side_take_effect() {
    let mut server_config = Config::default();
    server_config.deflate.server_max_window_bits = 10;
    server_config.deflate.client_no_context_takeover = true;
    let (url, server) = echo_server(server_config);
    let mut client_config = Config::default();
    client_config.deflate.server_no_context_takeover = true;
    client_config.deflate.client_max_window_bits = 11;
    let (mut ws, response) = syncws::ClientBuilder::new(&url)
        .config(client_config)
        .connect()
        .unwrap();
    assert_eq!(
        response.header("sec-websocket-extensions"),
        Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=11"
        )
    );
    let mut want = DeflateParams::default();
    want.server_no_context_takeover = true;
    want.client_no_context_takeover = true;
    want.server_max_window_bits = 10;
    want.client_max_window_bits = 11;
    assert_eq!(ws.deflate(), Some(&want));
    for _ in 0..3 {
        let text = json(500);
        ws.send(Message::text(text.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Text(text));
    }
    ws.close(CloseCode::Normal, "").unwrap();
    assert_eq!(server.join().unwrap(), Some(want));
}

#[test]
fn disabled_on_either_side_means_plain_websocket() {
    let mut off = Config::default();
    off.deflate.enabled = false;
    let (url, server) = echo_server(off.clone());
    let (mut ws, response) = syncws::connect(&url).unwrap();
    assert_eq!(response.header("sec-websocket-extensions"), None);
    assert_eq!(ws.deflate(), None);
    ws.send(Message::text(json(100))).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text(json(100)));
    ws.close(CloseCode::Normal, "").unwrap();
    assert_eq!(server.join().unwrap(), None);

    let (url, server) = echo_server(Config::default());
    let (mut ws, _) = syncws::ClientBuilder::new(&url)
        .config(off)
        .connect()
        .unwrap();
    assert_eq!(ws.deflate(), None);
    ws.close(CloseCode::Normal, "").unwrap();
    assert_eq!(server.join().unwrap(), None);
}

#[test]
fn server_declines_bad_offers_and_takes_a_later_good_one() {
    let cases = [
        ("permessage-deflate; server_max_window_bits=16", None),
        ("permessage-deflate; bogus", None),
        (
            "permessage-deflate; client_max_window_bits=99, permessage-deflate; server_max_window_bits=9",
            Some("permessage-deflate; server_max_window_bits=9"),
        ),
    ];
    for (offer, answer) in cases {
        let (addr, server) = serve_once(|stream| {
            let ws = syncws::accept(stream).unwrap();
            ws.deflate().copied()
        });
        let mut stream = raw_connect(addr);
        let request = upgrade_request(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
        stream.write_all(request.as_bytes()).unwrap();
        let mut head = vec![0; 1024];
        let n = stream.read(&mut head).unwrap();
        let head = String::from_utf8_lossy(&head[..n]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let line = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "));
        assert_eq!(line, answer, "{offer}");
        assert_eq!(server.join().unwrap().is_some(), answer.is_some());
    }
}

#[test]
fn client_fails_a_bad_server_answer() {
    for answer in [
        "permessage-deflate; unknown",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate, permessage-deflate",
        "x-something-else",
    ] {
        let (addr, server) = serve_once(move |mut stream| {
            let mut buf = [0u8; 2048];
            let n = stream.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let key = request
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .to_owned();
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: {answer}\r\n\r\n",
                syncws::proto::handshake::accept_key(&key)
            );
            stream.write_all(response.as_bytes()).unwrap();
            request
        });
        let err = syncws::connect(&format!("ws://{addr}/")).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Handshake(syncws::error::HandshakeError::InvalidExtension(_))
            ),
            "{answer}: {err}"
        );
        let request = server.join().unwrap();
        assert!(
            request.contains(
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            )
        );
    }
}

/// A connected pair of sans-I/O connections with permessage-deflate on.
fn pair(
    params: DeflateParams,
    server: DeflateConfig,
    client: DeflateConfig,
) -> (Connection, Connection) {
    let mut s = Connection::new(Role::Server, &Config::default());
    let mut c = Connection::new(Role::Client, &Config::default());
    s.set_deflate(&params, &server);
    c.set_deflate(&params, &client);
    (s, c)
}

fn transfer(from: &mut Connection, to: &mut Connection) -> Vec<u8> {
    let bytes = from.data_to_send().to_vec();
    from.advance(bytes.len());
    to.receive_data(&bytes);
    bytes
}

#[test]
fn rsv1_marks_compressed_messages_and_the_threshold_skips_small_ones() {
    let config = DeflateConfig::default();
    let (mut server, mut client) = pair(DeflateParams::default(), config.clone(), config);
    client.send(&Message::text(json(20))).unwrap();
    let wire = transfer(&mut client, &mut server);
    assert_eq!(wire[0], 0xc1, "FIN + RSV1 + text");
    assert!(wire.len() < json(20).len() / 2);
    assert_eq!(
        server.next_event().unwrap(),
        Some(Event::Message(Message::text(json(20))))
    );
    // Under the threshold (128 bytes by default): sent as is.
    client.send(&Message::text("short")).unwrap();
    let wire = transfer(&mut client, &mut server);
    assert_eq!(wire[0], 0x81, "no RSV1");
    assert_eq!(
        server.next_event().unwrap(),
        Some(Event::Message(Message::text("short")))
    );
    // Control frames are never compressed (RFC 7692 §6.1).
    client.send(&Message::Ping(vec![b'p'; 125])).unwrap();
    assert_eq!(transfer(&mut client, &mut server)[0], 0x89);
}

#[test]
fn receive_only_inflates_but_sends_plain() {
    let mut receive_only = DeflateConfig::default();
    receive_only.receive_only = true;
    let (mut server, mut client) = pair(
        DeflateParams::default(),
        receive_only,
        DeflateConfig::default(),
    );
    client.send(&Message::text(json(50))).unwrap();
    assert_eq!(transfer(&mut client, &mut server)[0], 0xc1);
    assert_eq!(
        server.next_event().unwrap(),
        Some(Event::Message(Message::text(json(50))))
    );
    server.send(&Message::text(json(50))).unwrap();
    let wire = transfer(&mut server, &mut client);
    assert_eq!(wire[0], 0x81);
    assert!(wire.len() > json(50).len());
    assert_eq!(
        client.next_event().unwrap(),
        Some(Event::Message(Message::text(json(50))))
    );
}

#[test]
fn an_agreed_8_bit_window_means_that_side_sends_plain() {
    let mut params = DeflateParams::default();
    params.server_max_window_bits = 8;
    let config = DeflateConfig::default();
    let (mut server, mut client) = pair(params, config.clone(), config);
    server.send(&Message::text(json(50))).unwrap();
    assert_eq!(transfer(&mut server, &mut client)[0], 0x81);
    client.send(&Message::text(json(50))).unwrap();
    assert_eq!(transfer(&mut client, &mut server)[0], 0xc1);
    assert!(matches!(client.next_event(), Ok(Some(Event::Message(_)))));
    assert!(matches!(server.next_event(), Ok(Some(Event::Message(_)))));
}

/// A masked client frame, built by hand.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n < 65536 => {
            frame.push(0x80 | 126);
            frame.extend((n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend((n as u64).to_be_bytes());
        }
    }
    let key = [1, 2, 3, 4];
    frame.extend(key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

#[test]
fn rsv1_where_it_does_not_belong_is_1002() {
    let config = DeflateConfig::default();
    // RFC 7692 §6.1: RSV1 on a continuation frame, or on a control frame.
    for frames in [
        [client_frame(0x01, b"a"), client_frame(0xc0, b"b")].concat(),
        client_frame(0xc9, b"ping"),
    ] {
        let (mut server, _) = pair(DeflateParams::default(), config.clone(), config.clone());
        server.receive_data(&frames);
        let mut result = server.next_event();
        if let Ok(Some(_)) = result {
            result = server.next_event();
        }
        assert!(
            matches!(
                result,
                Err(syncws::proto::Error::Protocol(ProtocolError::ReservedBits))
            ),
            "{result:?}"
        );
    }
    // Without the extension RSV1 on a data frame is 1002 too (RFC 6455 §5.2).
    let mut plain = Connection::new(Role::Server, &Config::default());
    plain.receive_data(&client_frame(
        0xc1,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    ));
    assert!(matches!(
        plain.next_event(),
        Err(syncws::proto::Error::Protocol(ProtocolError::ReservedBits))
    ));
}

#[test]
fn corrupt_compressed_data_is_1007() {
    let config = DeflateConfig::default();
    let (mut server, _) = pair(DeflateParams::default(), config.clone(), config);
    server.receive_data(&client_frame(0xc1, &[0xff; 16]));
    assert!(matches!(
        server.next_event(),
        Err(syncws::proto::Error::Protocol(
            ProtocolError::InvalidCompressedData
        ))
    ));
    assert_eq!(&server.data_to_send()[..4], [0x88, 0x02, 0x03, 0xef]);
}

/// A message that inflates to `gib` GiB of zeros. DEFLATE cannot do better than about 1032:1, so
/// each GiB takes about 1 MiB: 1 MiB of zeros compressed once, then the same again (now only
/// back-references into the window) repeated.
fn bomb(gib: usize) -> Vec<u8> {
    let mut deflate = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut first = Vec::with_capacity(4096);
    deflate
        .compress_vec(&zeros, &mut first, FlushCompress::Sync)
        .unwrap();
    let mut repeat = Vec::with_capacity(4096);
    deflate
        .compress_vec(&zeros, &mut repeat, FlushCompress::Sync)
        .unwrap();
    let mut bomb = first;
    for _ in 1..gib << 10 {
        bomb.extend_from_slice(&repeat);
    }
    bomb
}

#[test]
fn a_10_gib_bomb_stops_at_the_limit_with_1009() {
    let bomb = bomb(10);
    assert!(bomb.len() < 12 << 20, "{} bytes on the wire", bomb.len());
    let mut config = Config::default();
    config.max_message_size = 1 << 20;
    let (addr, server) = serve_once(move |stream| {
        let mut ws = syncws::Acceptor::new()
            .config(config)
            .accept(stream)
            .unwrap();
        let result = ws.read();
        let held = ws.buffered_capacity();
        // Read the rest of the bomb so closing the socket does not reset the connection (and
        // with it the close frame) before the client reads its answer.
        let _ = std::io::copy(ws.get_mut(), &mut std::io::sink());
        (result, held)
    });
    let mut stream = raw_connect(addr);
    stream
        .write_all(upgrade_request("Sec-WebSocket-Extensions: permessage-deflate\r\n").as_bytes())
        .unwrap();
    // The server fails the connection after about 1 KiB of the bomb, and discards the rest.
    // In 512 KiB fragments: each frame is within every limit; only the inflated size is not.
    let pieces: Vec<&[u8]> = bomb.chunks(512 << 10).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let fin = if i + 1 == pieces.len() { 0x80 } else { 0 };
        let first = if i == 0 { 0x42 } else { 0x00 };
        stream.write_all(&client_frame(fin | first, piece)).unwrap();
    }
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let (result, held) = server.join().unwrap();
    assert!(
        matches!(result, Err(Error::Protocol(ProtocolError::MessageTooLarge))),
        "{result:?}"
    );
    // The message buffer never outgrew the limit: 1 MiB, plus one byte (the proof of excess)
    // and the 4 KiB input buffer.
    assert!(held <= (1 << 20) + 1 + 4096, "{held} bytes held");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let close = [0x88, 0x02, 0x03, 0xf1]; // close 1009
    assert!(
        answer.windows(4).any(|w| w == close),
        "no 1009 close frame in the answer"
    );
}

/// A small deterministic generator (xorshift), so a failure can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_messages_parameters_and_fragmentation_round_trip() {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let bits = |rng: &mut Rng| 8 + rng.below(8) as u8;
        let mut params = DeflateParams::default();
        params.server_no_context_takeover = rng.below(2) == 0;
        params.client_no_context_takeover = rng.below(2) == 0;
        params.server_max_window_bits = bits(&mut rng);
        params.client_max_window_bits = bits(&mut rng);
        let mut config = DeflateConfig::default();
        config.level = rng.below(10) as u32;
        config.threshold = rng.below(300);
        let (mut server, mut client) = pair(params, config.clone(), config);
        for _ in 0..30 {
            // Text from a small alphabet (compressible) or arbitrary bytes (not).
            let size = [0, 1, 50, 500, 5000, 70_000][rng.below(6)];
            let text = rng.below(2) == 0;
            let data: Vec<u8> = (0..size)
                .map(|_| {
                    if text {
                        b"abc {}\":,0123"[rng.below(13)]
                    } else {
                        rng.next() as u8
                    }
                })
                .collect();
            let kind = if text {
                DataKind::Text
            } else {
                DataKind::Binary
            };
            let (from, to) = if rng.below(2) == 0 {
                (&mut client, &mut server)
            } else {
                (&mut server, &mut client)
            };
            if rng.below(3) == 0 && size > 1 {
                // Streamed in random pieces.
                let mut rest = &data[..];
                while !rest.is_empty() {
                    let n = 1 + rng.below(rest.len());
                    let (piece, tail) = rest.split_at(n);
                    from.send_fragment(kind, piece, tail.is_empty()).unwrap();
                    rest = tail;
                }
            } else if text {
                from.send(&Message::Text(String::from_utf8(data.clone()).unwrap()))
                    .unwrap();
            } else {
                from.send(&Message::Binary(data.clone())).unwrap();
            }
            // Delivered in random chunks.
            let wire = from.data_to_send().to_vec();
            from.advance(wire.len());
            let mut received = None;
            for chunk in wire.chunks(1 + rng.below(9000)) {
                to.receive_data(chunk);
                while let Some(event) = to.next_event().unwrap_or_else(|e| {
                    panic!("seed {seed} {params:?} size {size} text {text}: {e}")
                }) {
                    received = Some(event);
                }
            }
            let Some(Event::Message(message)) = received else {
                panic!("seed {seed}: nothing received");
            };
            assert_eq!(message.as_bytes(), &data[..], "seed {seed}, {params:?}");
        }
    }
}

#[test]
fn garbage_behind_rsv1_never_panics() {
    let config = DeflateConfig::default();
    let mut rng = Rng(0x1234_5678);
    for _ in 0..2000 {
        let (mut server, _) = pair(DeflateParams::default(), config.clone(), config.clone());
        let payload: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
        server.receive_data(&client_frame(0xc2, &payload));
        // Inflates to something, or fails as a peer's violation: never a panic.
        match server.next_event() {
            Ok(_) => {}
            Err(syncws::proto::Error::Protocol(
                ProtocolError::InvalidCompressedData | ProtocolError::MessageTooLarge,
            )) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
}
