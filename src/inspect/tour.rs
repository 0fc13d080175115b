//! # A tour of the WebSocket protocol (RFC 6455), computed by syncws
//!
//! This module has no items: it is a walk through the protocol, from the HTTP upgrade to the
//! last close frame. Every number and every byte below is computed by the crate in the example
//! next to it, and the examples run with `cargo test`, so the tour cannot drift from the code.
//!
//! To watch the same things happen on a live connection, run the inspector
//! (`cargo run --example inspect -- 127.0.0.1:9002 ws://127.0.0.1:9001/`) between any client and
//! server, or set a [frame hook](crate::WebSocket::set_frame_hook) on your own connection.
//!
//! 1. [The opening handshake](#1-the-opening-handshake)
//! 2. [The frame layout](#2-the-frame-layout)
//! 3. [Masking, and why it exists](#3-masking-and-why-it-exists)
//! 4. [Fragmentation](#4-fragmentation)
//! 5. [Control frames](#5-control-frames)
//! 6. [The closing handshake and the close codes](#6-the-closing-handshake-and-the-close-codes)
//! 7. [Heartbeats versus TCP keep-alive](#7-heartbeats-versus-tcp-keep-alive)
//!
//! ## 1. The opening handshake
//!
//! A WebSocket connection starts as an HTTP/1.1 `GET` that asks to *upgrade* the TCP connection
//! (RFC 6455 §4.1). Besides the `Upgrade` and `Connection` headers it carries a fresh random
//! `Sec-WebSocket-Key`: 16 random bytes in base64, which is always 24 characters.
//!
//! ```
//! use syncws::proto::handshake::{ClientRequest, generate_key};
//! use base64::Engine;
//!
//! let key = generate_key();
//! assert_eq!(key.len(), 24);
//! let raw = base64::engine::general_purpose::STANDARD.decode(&key).unwrap();
//! assert_eq!(raw.len(), 16);
//!
//! // The request of RFC 6455 §1.2, with the RFC's sample key.
//! let request = ClientRequest::new("server.example.com", "/chat", "dGhlIHNhbXBsZSBub25jZQ==");
//! assert_eq!(
//!     String::from_utf8(request.to_bytes()).unwrap(),
//!     "GET /chat HTTP/1.1\r\n\
//!      Host: server.example.com\r\n\
//!      Upgrade: websocket\r\n\
//!      Connection: Upgrade\r\n\
//!      Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!      Sec-WebSocket-Version: 13\r\n\
//!      \r\n"
//! );
//! ```
//!
//! The server answers `101 Switching Protocols` with `Sec-WebSocket-Accept`: the key with a
//! fixed GUID appended, hashed with SHA-1, in base64 (§1.3, §4.2.2). The arithmetic is public so
//! that a client can check that the server really read *this* request and is not, say, a cache
//! replaying an old answer or an HTTP server that does not understand WebSockets at all.
//!
//! ```
//! use sha1::{Digest, Sha1};
//! use base64::Engine;
//! use syncws::proto::handshake::WEBSOCKET_GUID;
//!
//! let key = "dGhlIHNhbXBsZSBub25jZQ==";
//! assert_eq!(WEBSOCKET_GUID, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
//! let digest = Sha1::digest(format!("{key}{WEBSOCKET_GUID}").as_bytes());
//! // The 20 bytes RFC 6455 §1.3 prints.
//! assert_eq!(digest[..], [
//!     0xb3, 0x7a, 0x4f, 0x2c, 0xc0, 0x62, 0x4f, 0x16, 0x90, 0xf6,
//!     0x46, 0x06, 0xcf, 0x38, 0x59, 0x45, 0xb2, 0xbe, 0xc4, 0xea,
//! ]);
//! let accept = base64::engine::general_purpose::STANDARD.encode(&digest[..]);
//! assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! // The crate does all of it in one call.
//! assert_eq!(syncws::proto::handshake::accept_key(key), accept);
//!
//! let response = syncws::proto::handshake::accept_response(key, None, &Default::default());
//! assert_eq!(
//!     String::from_utf8(response).unwrap(),
//!     "HTTP/1.1 101 Switching Protocols\r\n\
//!      Upgrade: websocket\r\n\
//!      Connection: Upgrade\r\n\
//!      Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
//!      \r\n"
//! );
//! ```
//!
//! After the blank line that ends the response, both sides speak frames on the same TCP
//! connection; HTTP is over.
//!
//! ## 2. The frame layout
//!
//! Every message travels in one or more frames (RFC 6455 §5.2):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! :                     Payload Data continued ...                :
//! +---------------------------------------------------------------+
//! ```
//!
//! The first byte holds FIN (this frame ends its message), three reserved bits for extensions
//! and the opcode; the second holds MASK and a 7-bit length. Take the server's "Hello" from
//! RFC 6455 §5.7 apart:
//!
//! ```
//! use syncws::proto::frame::{Decoded, FrameHeader, OpCode};
//! let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
//! assert_eq!(wire[0] >> 7, 1);          // FIN
//! assert_eq!(wire[0] >> 4 & 0b111, 0);  // RSV1-3
//! assert_eq!(wire[0] & 0x0f, 0x1);      // opcode 1: text
//! assert_eq!(wire[1] >> 7, 0);          // MASK: a server does not mask
//! assert_eq!(wire[1] & 0x7f, 5);        // payload length
//! let Decoded::Complete(header, header_len) = FrameHeader::decode(&wire)? else { panic!() };
//! assert_eq!((header.fin, header.opcode, header.payload_len), (true, OpCode::Text, 5));
//! assert_eq!(&wire[header_len..], b"Hello");
//! # Ok::<(), syncws::error::ProtocolError>(())
//! ```
//!
//! The length has three forms, and the shortest that fits must be used: up to 125 in the 7-bit
//! field itself; 126 means "a 16-bit length follows" (up to 65535); 127 means "a 64-bit length
//! follows", whose top bit must be 0. A header is therefore 2 to 14 bytes long.
//!
//! ```
//! use syncws::proto::frame::{FrameHeader, LengthForm, MAX_HEADER_LEN, OpCode};
//! let header_len = |len| FrameHeader::new(OpCode::Binary, len).encoded_len();
//! assert_eq!(FrameHeader::new(OpCode::Binary, 125).length_form(), LengthForm::Short);
//! assert_eq!(header_len(125), 2);
//! assert_eq!(FrameHeader::new(OpCode::Binary, 126).length_form(), LengthForm::Extended16);
//! assert_eq!((header_len(126), header_len(65535)), (4, 4));
//! assert_eq!(FrameHeader::new(OpCode::Binary, 65536).length_form(), LengthForm::Extended64);
//! assert_eq!(header_len(65536), 10);
//! // A client adds 4 bytes of masking key: the longest header is 14 bytes.
//! let mut masked = FrameHeader::new(OpCode::Binary, 65536);
//! masked.mask = Some([0; 4]);
//! assert_eq!(masked.encoded_len(), 14);
//! assert_eq!(MAX_HEADER_LEN, 14);
//! // The largest length the 64-bit form may carry: 2^63 - 1.
//! assert_eq!(u64::MAX >> 1, 9_223_372_036_854_775_807);
//! ```
//!
//! The opcodes (§5.2, §11.8): 0x0 continuation, 0x1 text, 0x2 binary, 0x8 close, 0x9 ping,
//! 0xA pong. 0x3–0x7 and 0xB–0xF are reserved; a frame with one of them fails the connection.
//!
//! ```
//! use syncws::proto::frame::OpCode;
//! let named: Vec<(u8, &str)> = (0u8..16)
//!     .map(OpCode::from_bits)
//!     .filter(|op| !matches!(op, OpCode::Reserved(_)))
//!     .map(|op| (op.bits(), op.name()))
//!     .collect();
//! assert_eq!(named, [
//!     (0x0, "Continuation"), (0x1, "Text"), (0x2, "Binary"),
//!     (0x8, "Close"), (0x9, "Ping"), (0xa, "Pong"),
//! ]);
//! ```
//!
//! ## 3. Masking, and why it exists
//!
//! Every frame a client sends is masked: the client picks a fresh 4-byte key per frame, puts it
//! in the header, and XORs payload byte `i` with key byte `i % 4` (§5.3). A server never masks,
//! and each side fails the connection if the other gets this wrong (§5.1).
//!
//! ```
//! // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
//! let key = [0x37, 0xfa, 0x21, 0x3d];
//! let mut payload = *b"Hello";
//! syncws::proto::mask::apply_mask(&mut payload, key, 0);
//! assert_eq!(payload, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//! assert_eq!(payload[0], b'H' ^ 0x37);
//! // XOR is its own inverse: masking again unmasks.
//! syncws::proto::mask::apply_mask(&mut payload, key, 0);
//! assert_eq!(&payload, b"Hello");
//! ```
//!
//! Masking is not encryption — the key travels in clear right before the payload. It protects
//! *other people's* infrastructure. In a browser, a web page's script decides what a WebSocket
//! sends, but not the key. Research published in 2011 ("Talking to Yourself for Fun and
//! Profit", Huang, Chen, Barth, Rescorla and Jackson) showed that some transparent proxies,
//! which do not understand the upgrade, keep parsing the byte stream as HTTP. A malicious page
//! could then write bytes that look like `GET /script.js HTTP/1.1` with a `Host` of its
//! choosing, have the proxy take the attacker's next response as that script, and poison the
//! proxy's cache for every user behind it. With masking the script cannot predict a single byte
//! on the wire (§10.3), so it cannot forge a request:
//!
//! ```
//! let forged = b"GET /script.js HTTP/1.1\r\nHost: victim.example\r\n\r\n";
//! let mut on_the_wire = forged.to_vec();
//! // A real client draws the key at random for every frame (`rand::random()`); say it drew:
//! let key = [0x12, 0x34, 0x56, 0x78];
//! syncws::proto::mask::apply_mask(&mut on_the_wire, key, 0);
//! // What the proxy sees is no longer "GET ...", and the page could not know what it would be.
//! assert_eq!(on_the_wire[..4], [b'G' ^ 0x12, b'E' ^ 0x34, b'T' ^ 0x56, b' ' ^ 0x78]);
//! assert_eq!(on_the_wire[..4], [0x55, 0x71, 0x02, 0x58]);
//! ```
//!
//! The server's frames need no mask: the attack needs a page to control what a *client* sends.
//!
//! ## 4. Fragmentation
//!
//! A message may be cut into frames (§5.4): the first carries the opcode (text or binary) and
//! FIN = 0, the middle ones are continuations with FIN = 0, the last a continuation with FIN = 1.
//! Senders use it to stream a message whose size they do not know yet; receivers put it back
//! together. Fragments of two messages never interleave.
//!
//! ```
//! use syncws::proto::frame::{Frame, OpCode};
//! use syncws::proto::{Connection, Role};
//! use syncws::{Config, DataKind, Message};
//! use syncws::proto::Event;
//!
//! // RFC 6455 §5.7: "Hello" sent in two frames.
//! let first = Frame::new(OpCode::Text, "Hel").fin(false);
//! let last = Frame::new(OpCode::Continuation, "lo");
//! assert_eq!(first.to_bytes(), [0x01, 0x03, 0x48, 0x65, 0x6c]);
//! assert_eq!(last.to_bytes(), [0x80, 0x02, 0x6c, 0x6f]);
//!
//! // A client reassembles them into one message.
//! let mut client = Connection::new(Role::Client, &Config::default());
//! client.receive_data(&first.to_bytes());
//! assert_eq!(client.next_event()?, None); // not a message yet
//! client.receive_data(&last.to_bytes());
//! assert_eq!(client.next_event()?, Some(Event::Message(Message::text("Hello"))));
//!
//! // A server sends the same two frames with `send_fragment`.
//! let mut server = Connection::new(Role::Server, &Config::default());
//! server.send_fragment(DataKind::Text, b"Hel", false)?;
//! server.send_fragment(DataKind::Text, b"lo", true)?;
//! assert_eq!(server.data_to_send(), [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);
//! # Ok::<(), syncws::Error>(())
//! ```
//!
//! ## 5. Control frames
//!
//! Opcodes with the high bit set — close, ping, pong — are control frames (§5.5). They may
//! arrive *between* the fragments of a message, so they must be short and whole: at most 125
//! bytes of payload, never fragmented. A ping is answered with a pong carrying the same data.
//!
//! ```
//! use syncws::proto::frame::{Frame, OpCode};
//! use syncws::proto::{Connection, Role};
//! use syncws::{CloseCode, Config, Message};
//! use syncws::proto::Event;
//! use syncws::error::ProtocolError;
//!
//! assert!(OpCode::Close.is_control() && OpCode::Ping.is_control() && OpCode::Pong.is_control());
//! assert_eq!(OpCode::Ping.bits() & 0x8, 0x8);
//!
//! // A ping arrives in the middle of a fragmented message; it is answered at once.
//! let mut client = Connection::new(Role::Client, &Config::default());
//! client.receive_data(&Frame::new(OpCode::Text, "Hel").fin(false).to_bytes());
//! client.receive_data(&Frame::new(OpCode::Ping, "are you there?").to_bytes());
//! client.receive_data(&Frame::new(OpCode::Continuation, "lo").to_bytes());
//! let ping = Message::Ping(b"are you there?".to_vec());
//! assert_eq!(client.next_event()?, Some(Event::Message(ping)));
//! let pong = client.data_to_send().to_vec();
//! assert_eq!(pong[0], 0x8a);                        // FIN + opcode 0xA
//! assert_eq!(pong[1], 0x80 | 14);                   // masked (a client), 14 bytes
//! assert_eq!(client.next_event()?, Some(Event::Message(Message::text("Hello"))));
//!
//! // 125 bytes is the limit, both ways.
//! assert!(client.send(&Message::Ping(vec![0; 125])).is_ok());
//! assert!(client.send(&Message::Ping(vec![0; 126])).is_err());
//! let mut server = Connection::new(Role::Server, &Config::default());
//! server.receive_data(&Frame::new(OpCode::Ping, vec![0; 126]).masked([1, 2, 3, 4]).to_bytes());
//! let violation = ProtocolError::ControlFrameTooLong;
//! assert!(matches!(server.next_event(), Err(syncws::proto::Error::Protocol(v)) if v == violation));
//! assert_eq!(violation.close_code(), CloseCode::Protocol);
//! assert_eq!(CloseCode::Protocol.as_u16(), 1002);
//! # Ok::<(), syncws::Error>(())
//! ```
//!
//! ## 6. The closing handshake and the close codes
//!
//! Either side may start closing by sending a close frame; the other answers with its own close
//! frame and sends nothing more (§5.5.1, §7). Then the TCP connection ends, the server closing
//! it first (§7.1.1) so that the TIME_WAIT state lands on the server. A close frame's payload is
//! empty, or a 2-byte big-endian status code followed by a UTF-8 reason; the reason may be 123
//! bytes at most so that the whole payload fits in a control frame's 125.
//!
//! ```
//! use syncws::proto::{Connection, Role, State};
//! use syncws::proto::close::MAX_REASON_LEN;
//! use syncws::{CloseCode, CloseFrame, Config, Message};
//! use syncws::proto::Event;
//!
//! let bye = CloseFrame::new(CloseCode::Normal, "bye");
//! assert_eq!(bye.to_payload(), [0x03, 0xe8, b'b', b'y', b'e']);
//! assert_eq!(u16::from_be_bytes([0x03, 0xe8]), 1000);
//! assert_eq!(MAX_REASON_LEN, 125 - 2);
//!
//! let mut client = Connection::new(Role::Client, &Config::default());
//! let mut server = Connection::new(Role::Server, &Config::default());
//! client.send(&Message::Close(Some(bye.clone())))?;
//! assert_eq!(client.state(), State::Closing);       // waiting for the answer
//! server.receive_data(client.data_to_send());
//! assert_eq!(server.next_event()?, Some(Event::Message(Message::Close(Some(bye)))));
//! assert_eq!(server.state(), State::Closed);        // it answered: done on its side
//! // The answer echoes the code (a server's frame: unmasked, so readable here).
//! assert_eq!(server.data_to_send(), [0x88, 0x02, 0x03, 0xe8]);
//! client.receive_data(server.data_to_send());
//! client.next_event()?;
//! assert_eq!(client.state(), State::Closed);
//! # Ok::<(), syncws::Error>(())
//! ```
//!
//! The status codes (§7.4.1, and the IANA registry for 1012–1015). Three of them are never sent
//! in a close frame: they exist so that an API can *report* what happened — 1005 when the close
//! frame had no code, 1006 when the connection ended without any close frame, 1015 when the TLS
//! handshake failed. Receiving one of them on the wire fails the connection, as does 1004
//! (reserved) or any code below 1000.
//!
//! | code | meaning | may be sent |
//! |---|---|---|
//! | 1000 | normal closure | yes |
//! | 1001 | going away (server shutdown, page left) | yes |
//! | 1002 | protocol error | yes |
//! | 1003 | unsupported data | yes |
//! | 1004 | reserved | no |
//! | 1005 | no status received | **never** |
//! | 1006 | abnormal closure | **never** |
//! | 1007 | invalid frame payload data (e.g. bad UTF-8) | yes |
//! | 1008 | policy violation | yes |
//! | 1009 | message too big | yes |
//! | 1010 | mandatory extension (client only) | yes |
//! | 1011 | internal error | yes |
//! | 1012 | service restart | yes |
//! | 1013 | try again later | yes |
//! | 1014 | bad gateway | yes |
//! | 1015 | TLS handshake failure | **never** |
//!
//! Beyond these: 1016–2999 are reserved for future revisions of the protocol, 3000–3999 are
//! registered with IANA by libraries and frameworks, and 4000–4999 are for private use between
//! an application's own client and server. The table above, checked against the crate:
//!
//! ```
//! use syncws::CloseCode;
//! let table = [
//!     (1000, "normal closure", true),
//!     (1001, "going away", true),
//!     (1002, "protocol error", true),
//!     (1003, "unsupported data", true),
//!     (1004, "reserved", false),
//!     (1005, "no status received", false),
//!     (1006, "abnormal closure", false),
//!     (1007, "invalid frame payload data", true),
//!     (1008, "policy violation", true),
//!     (1009, "message too big", true),
//!     (1010, "mandatory extension", true),
//!     (1011, "internal error", true),
//!     (1012, "service restart", true),
//!     (1013, "try again later", true),
//!     (1014, "bad gateway", true),
//!     (1015, "TLS handshake failure", false),
//! ];
//! for (code, meaning, sendable) in table {
//!     assert_eq!(CloseCode::from(code).description(), meaning);
//!     assert_eq!(CloseCode::from(code).is_sendable(), sendable, "{code}");
//! }
//! // The ranges: what may appear on the wire, and what fails the connection.
//! let sendable = |range: std::ops::RangeInclusive<u16>| {
//!     range.map(CloseCode::from).all(CloseCode::is_sendable)
//! };
//! let never = |range: std::ops::RangeInclusive<u16>| {
//!     !range.map(CloseCode::from).any(CloseCode::is_sendable)
//! };
//! assert!(never(0..=999) && never(1016..=2999) && never(5000..=u16::MAX));
//! assert!(sendable(3000..=3999) && sendable(4000..=4999));
//! assert_eq!(CloseCode::from(3000).description(), "registered for libraries and frameworks");
//! assert_eq!(CloseCode::from(4000).description(), "private use");
//! ```
//!
//! ## 7. Heartbeats versus TCP keep-alive
//!
//! A TCP connection with no traffic looks the same whether the peer is idle, crashed, or cut
//! off by a NAT or a proxy that dropped the connection from its tables. TCP keep-alive probes are
//! the kernel's answer, but they are a poor heartbeat for WebSockets: they are off by default,
//! RFC 1122 §4.2.3.6 says the interval "MUST default to no less than two hours", they prove only
//! that the peer's *kernel* is alive, and they carry no data, so a proxy or load balancer that
//! counts idle time by application bytes still closes the connection. They also stop at the
//! first proxy: each TCP hop has its own keep-alive.
//!
//! A WebSocket ping travels inside the connection, through every proxy, to the peer's
//! *application*, whose pong proves that it still reads (§5.5.2, §5.5.3). It also measures the
//! round trip. It is tiny — a server's empty ping is 2 bytes, a client's 6 (the masking key) —
//! and a pong may also be sent unsolicited, as a one-way "I am alive".
//!
//! ```
//! use syncws::proto::frame::{Frame, OpCode};
//! use syncws::proto::{Connection, Role};
//! use syncws::{Config, Message};
//!
//! let mut server = Connection::new(Role::Server, &Config::default());
//! server.send(&Message::Ping(Vec::new()))?;
//! assert_eq!(server.data_to_send(), [0x89, 0x00]);
//! let mut client = Connection::new(Role::Client, &Config::default());
//! client.send(&Message::Ping(Vec::new()))?;
//! assert_eq!(client.data_to_send().len(), 6);
//! // The pong carries the ping's data back (§5.5.3): here 8 bytes, e.g. a timestamp.
//! let stamp = 1_700_000_000_000u64.to_be_bytes();
//! client.receive_data(&Frame::new(OpCode::Ping, stamp).to_bytes());
//! client.next_event()?;
//! let pong = client.data_to_send()[6..].to_vec(); // after the client's own ping
//! assert_eq!(pong.len(), 2 + 4 + 8);
//! let mut unmasked = pong[6..].to_vec();
//! syncws::proto::mask::apply_mask(&mut unmasked, [pong[2], pong[3], pong[4], pong[5]], 0);
//! assert_eq!(unmasked, stamp);
//! # Ok::<(), syncws::Error>(())
//! ```
