//! What each fuzz target checks, as plain functions: the targets call them with libFuzzer's
//! inputs, and `tests/fuzz_regressions.rs` calls them with the committed corpus and every input
//! that once failed, so a regression fails `cargo test` without a fuzzer.
#![allow(dead_code)]

use syncws::proto::Event;
use syncws::proto::frame::{Decoded, Frame, FrameHeader};
use syncws::proto::handshake::{
    HeadLimits, Headers, accept_response, check_request, check_response, error_response,
    parse_request, parse_response,
};
use syncws::proto::{Connection, Role};
use syncws::{Config, Message, WsUrl};

const LIMITS: HeadLimits = HeadLimits::new(8192, 64);

/// The frame header and whole-frame decoders: never panic; what decodes re-encodes to the same
/// bytes when it used the shortest length form.
pub fn frame_decoder(data: &[u8]) {
    if let Ok(Decoded::Complete(header, used)) = FrameHeader::decode(data) {
        assert!(used <= data.len() && used <= 14);
        let mut out = Vec::new();
        header.encode(&mut out);
        if out.len() == used {
            assert_eq!(&out[..], &data[..used]);
        }
    }
    if let Ok(Decoded::Complete(frame, used)) = Frame::decode(data, 1 << 16) {
        assert!(used <= data.len());
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(
            FrameHeader::decode(&out),
            Ok(Decoded::Complete(frame.header, frame.header.encoded_len()))
        );
    }
}

/// The server's request parser and checks; any answer it builds parses as an HTTP response.
pub fn handshake_request(data: &[u8]) {
    match parse_request(data, LIMITS) {
        Ok(Decoded::Complete(request, used)) => {
            assert!(used <= data.len());
            let _ = (
                request.path(),
                request.query(),
                request.cookie("a"),
                request.query_param("b"),
            );
            let _ = request.subprotocols().count();
            match check_request(&request) {
                Ok(key) => {
                    let response = accept_response(&key, None, &Headers::new());
                    assert!(matches!(
                        parse_response(&response, LIMITS),
                        Ok(Decoded::Complete(..))
                    ));
                }
                Err(error) => {
                    let response = error_response(&error);
                    assert!(matches!(
                        parse_response(&response, LIMITS),
                        Ok(Decoded::Complete(..))
                    ));
                }
            }
        }
        Ok(Decoded::Partial) => assert!(data.len() < LIMITS.max_size),
        Err(_) => {}
    }
}

/// The client's response parser and checks.
pub fn handshake_response(data: &[u8]) {
    if let Ok(Decoded::Complete(response, used)) = parse_response(data, LIMITS) {
        assert!(used <= data.len());
        let offered = ["chat".to_owned()];
        let _ = check_response(&response, "dGhlIHNhbXBsZSBub25jZQ==", &offered);
    }
}

/// The URL parser and redirect resolution; a parsed URL prints to a string that parses back to it.
pub fn url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (base, location) = text.split_once('\n').unwrap_or((text, "/"));
    if let Ok(url) = WsUrl::parse(base) {
        if url.userinfo.is_none() {
            assert_eq!(WsUrl::parse(&url.to_string()).as_ref(), Ok(&url), "{url}");
        }
        let _ = (url.host_header(), url.socket_addr());
        let _ = url.join(location);
    }
    let _ = syncws::Proxy::parse(text);
}

/// The `Sec-WebSocket-Extensions` parser and permessage-deflate negotiation (RFC 7692 §7): never
/// panics; what a server agrees to is within RFC 7692's ranges and its answer is accepted by a
/// client that offered the default offer.
pub fn extensions(data: &[u8]) {
    use syncws::proto::deflate::negotiation::{
        check_server_response, client_offer, parse_extensions, select_offer,
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let values: Vec<&str> = text.split('\n').collect();
    let _ = parse_extensions(values.iter().copied());
    let mut config = syncws::DeflateConfig::default();
    config.enabled = true;
    if let Some(agreed) = select_offer(values.iter().copied(), &config) {
        assert!((8..=15).contains(&agreed.server_max_window_bits));
        assert!((8..=15).contains(&agreed.client_max_window_bits));
        let answer = agreed.to_header_value();
        assert!(parse_extensions([answer.as_str()]).is_ok(), "{answer}");
    }
    // As a client: whatever the server answers is checked without panicking, and the default
    // offer's own answer round-trips.
    let _ = check_server_response(values.iter().copied(), true, &config);
    let offer = client_offer(&config);
    let agreed = select_offer([offer.as_str()], &config).expect("our own offer is acceptable");
    let answer = agreed.to_header_value();
    assert_eq!(
        check_server_response([answer.as_str()], true, &config),
        Ok(Some(agreed))
    );
}

/// The protocol state machine in the server role.
pub fn connection_server(data: &[u8]) {
    connection(Role::Server, data)
}

/// The protocol state machine in the client role.
pub fn connection_client(data: &[u8]) {
    connection(Role::Client, data)
}

/// Hands a received message's buffer back as `WebSocket::send` does after echoing it (so the next
/// message may be received into it), for the messages of even length: both paths are explored.
/// Buffer reuse is internal to the crate: only a cargo-fuzz build (`--cfg fuzzing`) reaches it.
fn recycle_some(conn: &mut Connection, buffer: Vec<u8>) {
    #[cfg(fuzzing)]
    if buffer.len() % 2 == 0 {
        conn.fuzzing_recycle(buffer);
    }
    #[cfg(not(fuzzing))]
    let _ = (conn, buffer);
}

/// Drives a connection with arbitrary peer bytes read in arbitrary pieces, switching between
/// whole-message and streaming reads; the first byte picks the piece size, the modes and whether a
/// large message comes first.
fn connection(role: Role, data: &[u8]) {
    let Some((&control, bytes)) = data.split_first() else {
        return;
    };
    let mut config = Config::default();
    config.max_frame_size = 1 << 16;
    config.max_message_size = 1 << 17;
    let mut conn = Connection::new(role, &config);
    // Built with `deflate` (scripts/fuzz.sh with FUZZ_FEATURES=deflate), the connection has
    // permessage-deflate agreed, so compressed frames and the bounded inflater are explored too.
    #[cfg(feature = "deflate")]
    conn.set_deflate(
        &syncws::proto::deflate::DeflateParams::default(),
        &config.deflate,
    );
    // Pieces of 1 to 1,024 bytes.
    let piece = (usize::from(control & 0x1f) + 1).pow(2);
    let mut streaming = control & 0x40 != 0;
    let mut received = 0usize;
    // Inputs are small (4 KiB), so a large message first, if asked for, puts the receiver in the
    // state only such a message leads to: the next frame expected to be like it (predicted reads).
    // It is read whole: setting up, not what is explored.
    let prelude = if control & 0x20 != 0 {
        large_message_from_peer(role)
    } else {
        Vec::new()
    };
    let input = [prelude.as_slice(), bytes].concat();
    let mut rest = input.as_slice();
    while !rest.is_empty() {
        let piece = if rest.len() > bytes.len() {
            rest.len() - bytes.len()
        } else {
            piece
        };
        // As the blocking layer reads: into what the receiver offers (the input buffer, the
        // message itself for a large payload, or both for a predicted frame), a piece at a time.
        // (Vectored, predicted reads are internal: only a cargo-fuzz build reaches them.)
        #[cfg(fuzzing)]
        let (first, second) = conn.fuzzing_read_bufs();
        #[cfg(not(fuzzing))]
        let (first, second): (&mut [u8], &mut [u8]) = (conn.read_buf(), &mut []);
        let mut n = 0;
        for slice in [first, second] {
            let take = slice.len().min(rest.len()).min(piece - n);
            slice[..take].copy_from_slice(&rest[..take]);
            rest = &rest[take..];
            n += take;
        }
        conn.commit(n);
        loop {
            conn.set_streaming(streaming);
            match conn.next_event() {
                Ok(Some(Event::Message(Message::Text(text)))) => {
                    // Validated text really is UTF-8 (it is a String) and within the limit.
                    assert!(text.len() <= config.max_message_size);
                    received += text.len();
                    recycle_some(&mut conn, text.into_bytes());
                }
                Ok(Some(Event::Message(Message::Binary(data)))) => {
                    assert!(data.len() <= config.max_message_size);
                    received += data.len();
                    recycle_some(&mut conn, data);
                }
                Ok(Some(Event::Chunk(chunk))) => received += chunk.data.len(),
                Ok(Some(Event::Message(message))) => {
                    // Control frames never exceed 125 bytes (RFC 6455 §5.5).
                    assert!(message.len() <= 125);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(syncws::proto::Error::Protocol(violation)) => {
                    // A violation queues exactly one close frame with its code.
                    let out = conn.data_to_send();
                    assert!(out.len() >= 2);
                    let _ = violation.close_code();
                    return;
                }
                Err(other) => panic!("unexpected error from peer bytes: {other}"),
            }
            if control & 0x80 != 0 && !conn.is_mid_stream() {
                streaming = !streaming;
            }
        }
        // Replies (pongs, close echo) stay bounded by what the peer sent: at worst an empty
        // 2-byte ping costs a client a 6-byte masked pong.
        assert!(conn.data_to_send().len() <= 3 * bytes.len() + 16);
        conn.advance(conn.data_to_send().len());
    }
    // Without compression nothing comes out that did not come in (inflating may, up to the limit
    // per message checked above).
    #[cfg(not(feature = "deflate"))]
    assert!(received <= prelude.len() + bytes.len());
    let _ = received;
}

/// A 16 KiB binary message in one frame, as the peer of `role` sends it: the smallest that is
/// read straight into the message.
fn large_message_from_peer(role: Role) -> Vec<u8> {
    let len: u16 = 16 * 1024;
    let mut frame = match role {
        // From a client: masked (with a zero key, so the payload is as written).
        Role::Server => vec![0x82, 0x80 | 126, (len >> 8) as u8, len as u8, 0, 0, 0, 0],
        Role::Client => vec![0x82, 126, (len >> 8) as u8, len as u8],
    };
    frame.resize(frame.len() + usize::from(len), b'x');
    frame
}
