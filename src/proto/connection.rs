//! A whole connection without I/O: the inbound half (decoding, validation) and the outbound half
//! (encoding, the connection's state) working together.
//!
//! ```
//! use syncws::proto::{Connection, Role};
//! use syncws::proto::config::Config;
//! use syncws::proto::message::{Event, Message};
//! let mut server = Connection::new(Role::Server, &Config::default());
//! // RFC 6455 §5.7: a masked "Hello" from a client.
//! server.receive_data(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
//! assert_eq!(server.next_event()?, Some(Event::Message(Message::text("Hello"))));
//! server.send(&Message::text("Hello"))?;
//! assert_eq!(server.data_to_send(), [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
//! # Ok::<(), syncws::proto::Error>(())
//! ```

use super::Role;
use super::deflate::DeflateParams;
use super::error::Error;
use super::message::{DataKind, Event, Message};
use super::observer::FrameObserver;
use super::receiver::Receiver;
use super::sender::{Sender, State};
use crate::proto::config::{Config, DeflateConfig};

/// The sans-I/O protocol state machine: feed it bytes, take events and bytes to send.
#[derive(Debug)]
pub struct Connection {
    receiver: Receiver,
    sender: Sender,
}

impl Connection {
    /// A connection whose opening handshake has completed, in `role`, with `config`'s limits.
    pub fn new(role: Role, config: &Config) -> Connection {
        let mut receiver = Receiver::new(role, config.limits(), config.read_buffer_size);
        receiver.set_control_frame_rate(config.max_control_frames_per_second);
        Connection {
            receiver,
            sender: Sender::new(role),
        }
    }

    /// Sets (or with `None` removes) the frame hook on both halves: it sees every frame sent
    /// and received; see [`observer`](super::observer).
    pub fn set_frame_observer(&mut self, observer: Option<FrameObserver>) {
        self.receiver.set_frame_observer(observer.clone());
        self.sender.set_frame_observer(observer);
    }

    /// Turns on permessage-deflate (RFC 7692) with parameters agreed in the opening handshake:
    /// incoming messages with RSV1 are inflated, outgoing ones compressed per `config` (level,
    /// threshold, receive-only). Without the `deflate` feature this does nothing (no agreement can
    /// be reached then).
    pub fn set_deflate(&mut self, params: &DeflateParams, config: &DeflateConfig) {
        super::deflate::install(&mut self.receiver, &mut self.sender, params, config);
    }

    /// Splits into the inbound and outbound halves (a split connection's reader and writer).
    pub(crate) fn into_parts(self) -> (Receiver, Sender) {
        (self.receiver, self.sender)
    }

    /// The inbound half.
    pub(crate) fn receiver(&mut self) -> &mut Receiver {
        &mut self.receiver
    }

    /// The outbound half.
    pub(crate) fn sender(&mut self) -> &mut Sender {
        &mut self.sender
    }

    /// The connection's state.
    pub fn state(&self) -> State {
        self.sender.state()
    }

    /// Hands over bytes received from the peer.
    pub fn receive_data(&mut self, data: &[u8]) {
        self.receiver.receive_data(data);
    }

    /// Where to read the peer's next bytes into, instead of copying them in with
    /// [`receive_data`](Self::receive_data); follow with [`commit`](Self::commit). A large
    /// payload is read straight into its message this way.
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.receiver.read_buf()
    }

    /// The fuzz targets (built by cargo-fuzz, which sets `--cfg fuzzing`) explore the blocking
    /// layer's vectored, predicted reads too; not part of the API.
    #[cfg(fuzzing)]
    #[doc(hidden)]
    pub fn fuzzing_read_bufs(&mut self) -> (&mut [u8], &mut [u8]) {
        self.receiver.read_bufs()
    }

    /// The fuzz targets explore buffer reuse too (see `fuzzing_read_bufs`); not part of the API.
    #[cfg(fuzzing)]
    #[doc(hidden)]
    pub fn fuzzing_recycle(&mut self, buffer: Vec<u8>) {
        self.receiver.recycle(buffer);
    }

    /// Marks the first `n` bytes of the last [`read_buf`](Self::read_buf) as received.
    pub fn commit(&mut self, n: usize) {
        self.receiver.commit(n);
    }

    /// Tells the time of the read that brought the bytes decoded next, and of the messages sent
    /// next (the core has no clock). From the first call on, pings and pongs beyond
    /// [`Config::max_control_frames_per_second`] fail the connection with
    /// [`ProtocolError::ControlFrameFlood`](super::error::ProtocolError); with permessage-deflate
    /// a message 100 ms or more after the previous one in its direction gives its zlib state back
    /// at once; until a time is given every message counts as busy (its state is kept between
    /// messages). Call it once per read, and before sending when messages are compressed.
    pub fn note_time(&mut self, now: std::time::Instant) {
        self.receiver.note_time(now);
        self.sender.note_time(now);
    }

    /// In streaming mode data arrives as [`Event::Chunk`]s as soon as it is read, instead of as
    /// whole messages. Switch only while [`is_mid_stream`](Self::is_mid_stream) is `false`.
    pub fn set_streaming(&mut self, streaming: bool) {
        self.receiver.set_streaming(streaming);
    }

    /// Whether part of a message went out as chunks and the rest has not arrived yet.
    pub fn is_mid_stream(&self) -> bool {
        self.receiver.is_mid_stream()
    }

    /// The next event, after applying the protocol's reactions (pong, close echo, failing close).
    ///
    /// `Ok(None)`: more bytes are needed, or the peer's close has arrived and nothing more will
    /// be read. `Err(Error::Protocol(_))`: the peer broke the protocol; a close frame with the
    /// matching code is queued in [`data_to_send`](Self::data_to_send).
    pub fn next_event(&mut self) -> Result<Option<Event>, Error> {
        next_event(&mut self.receiver, &mut self.sender)
    }

    /// Queues a message (or control frame, or close frame) for sending.
    ///
    /// A [`Message::Close`] starts the closing handshake (the one way to here): its code and
    /// reason are checked before anything is queued, then the state moves to CLOSING (CLOSED if
    /// the peer's close came first) and no further message may be sent.
    ///
    /// Errors: [`Error::AlreadyClosed`] once a close frame was sent; [`Error::InvalidInput`] for a
    /// control payload over 125 bytes (RFC 6455 §5.5), a close code that may not be sent, a
    /// reason over 123 bytes, or a data message while a streamed one is unfinished.
    pub fn send(&mut self, message: &Message) -> Result<(), Error> {
        self.sender.send(message)
    }

    /// Queues one fragment of a message sent piece by piece (RFC 6455 §5.4): the first call
    /// starts a message of `kind`, `fin` ends it. Errors as for [`send`](Self::send).
    pub fn send_fragment(&mut self, kind: DataKind, data: &[u8], fin: bool) -> Result<(), Error> {
        self.sender.send_fragment(kind, data, fin)
    }

    /// Whether bytes wait to be written.
    pub fn has_data_to_send(&self) -> bool {
        self.sender.has_data_to_send()
    }

    /// Bytes waiting to be written.
    pub fn data_to_send(&self) -> &[u8] {
        self.sender.data_to_send()
    }

    /// Drops the first `n` bytes of [`data_to_send`](Self::data_to_send), once written.
    pub fn advance(&mut self, n: usize) {
        self.sender.advance(n);
    }
}

/// One step of the protocol, shared by [`Connection`] and a split connection's reader, which
/// holds the receiver itself and borrows the sender from its writer.
pub(crate) fn next_event(
    receiver: &mut Receiver,
    sender: &mut Sender,
) -> Result<Option<Event>, Error> {
    // RFC 6455 §5.5.1: after the peer's close "the endpoint ... will not process further data".
    if sender.close_received() || sender.state() == State::Closed {
        return Ok(None);
    }
    match receiver.next_event() {
        Ok(Some(event)) => {
            sender.on_event(&event);
            Ok(Some(event))
        }
        Ok(None) => Ok(None),
        Err(violation) => {
            sender.on_violation(violation);
            Err(Error::Protocol(violation))
        }
    }
}

#[cfg(test)]
mod tests {
    //! The protocol driven with byte literals, grouped by RFC 6455 section; each test runs in
    //! both roles where the rule applies to both.
    use super::*;
    use crate::proto::close::{CloseCode, CloseFrame};
    use crate::proto::error::ProtocolError;
    use crate::proto::frame::{Decoded, Frame, FrameHeader, OpCode, encode_frame};
    use crate::proto::message::{Chunk, DataKind};

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A frame as `from` would send it: masked from a client.
    fn frame(from: Role, opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut header = FrameHeader::new(opcode, payload.len() as u64);
        header.fin = fin;
        if from == Role::Client {
            header.mask = Some(KEY);
        }
        let mut out = Vec::new();
        encode_frame(&header, payload, &mut out);
        out
    }

    fn peer(role: Role) -> Role {
        match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }

    fn small_config() -> Config {
        Config {
            max_frame_size: 1000,
            max_message_size: 2000,
            ..Config::default()
        }
    }

    /// Feeds `bytes` to a fresh connection in `role`, one byte at a time, collecting events.
    fn run(role: Role, bytes: &[u8]) -> (Connection, Vec<Event>, Option<Error>) {
        let mut conn = Connection::new(role, &small_config());
        let mut events = Vec::new();
        for byte in bytes {
            conn.receive_data(std::slice::from_ref(byte));
            loop {
                match conn.next_event() {
                    Ok(Some(event)) => events.push(event),
                    Ok(None) => break,
                    Err(e) => return (conn, events, Some(e)),
                }
            }
        }
        (conn, events, None)
    }

    fn sent_frames(conn: &Connection) -> Vec<Frame> {
        let mut bytes = conn.data_to_send();
        let mut frames = Vec::new();
        while let Ok(Decoded::Complete(frame, used)) = Frame::decode(bytes, 1 << 30) {
            frames.push(frame);
            bytes = &bytes[used..];
        }
        frames
    }

    fn assert_failed_with(role: Role, bytes: &[u8], error: ProtocolError) {
        let (conn, _, err) = run(role, bytes);
        match err {
            Some(Error::Protocol(e)) => assert_eq!(e, error, "{role:?}"),
            other => panic!("{role:?}: expected {error:?}, got {other:?}"),
        }
        let frames = sent_frames(&conn);
        let last = frames.last().expect("a close frame");
        assert_eq!(last.header.opcode, OpCode::Close);
        let code = u16::from_be_bytes([last.payload[0], last.payload[1]]);
        assert_eq!(code, error.close_code().as_u16());
        assert_eq!(conn.state(), State::Closed);
    }

    mod rfc6455_5_1_masking {
        use super::*;

        #[test]
        fn server_fails_unmasked_frames() {
            let bytes = frame(Role::Server, OpCode::Text, true, b"hi");
            assert_failed_with(Role::Server, &bytes, ProtocolError::UnmaskedFrame);
        }

        #[test]
        fn client_fails_masked_frames() {
            let bytes = frame(Role::Client, OpCode::Text, true, b"hi");
            assert_failed_with(Role::Client, &bytes, ProtocolError::MaskedFrame);
        }

        #[test]
        fn client_masks_what_it_sends_and_server_does_not() {
            for role in [Role::Client, Role::Server] {
                let mut conn = Connection::new(role, &Config::default());
                conn.send(&Message::text("x")).unwrap();
                let frames = sent_frames(&conn);
                assert_eq!(frames[0].header.mask.is_some(), role == Role::Client);
                assert_eq!(frames[0].payload, b"x");
            }
        }
    }

    mod rfc6455_5_2_framing {
        use super::*;

        #[test]
        fn reserved_bits_fail_both_roles() {
            for role in [Role::Client, Role::Server] {
                for bit in [0x40, 0x20, 0x10] {
                    let mut bytes = frame(peer(role), OpCode::Text, true, b"x");
                    bytes[0] |= bit;
                    assert_failed_with(role, &bytes, ProtocolError::ReservedBits);
                }
            }
        }

        #[test]
        fn reserved_opcodes_fail_both_roles() {
            for role in [Role::Client, Role::Server] {
                for op in [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
                    let bytes = frame(peer(role), OpCode::Reserved(op), true, b"");
                    assert_failed_with(role, &bytes, ProtocolError::ReservedOpcode(op));
                }
            }
        }

        #[test]
        fn every_length_form_arrives_whole() {
            for role in [Role::Client, Role::Server] {
                for len in [0, 1, 125, 126, 999] {
                    let payload = vec![b'a'; len];
                    let (_, events, err) =
                        run(role, &frame(peer(role), OpCode::Binary, true, &payload));
                    assert!(err.is_none());
                    assert_eq!(events, [Event::Message(Message::Binary(payload))]);
                }
            }
        }
    }

    mod rfc6455_5_4_fragmentation {
        use super::*;

        #[test]
        fn hel_lo_with_a_ping_between() {
            for role in [Role::Client, Role::Server] {
                let p = peer(role);
                let mut bytes = frame(p, OpCode::Text, false, b"Hel");
                bytes.extend(frame(p, OpCode::Ping, true, b"?"));
                bytes.extend(frame(p, OpCode::Continuation, true, b"lo"));
                let (conn, events, err) = run(role, &bytes);
                assert!(err.is_none());
                assert_eq!(
                    events,
                    [
                        Event::Message(Message::Ping(b"?".to_vec())),
                        Event::Message(Message::text("Hello"))
                    ]
                );
                // RFC 6455 §5.5.2: the pong goes out at once, between the fragments.
                let sent = sent_frames(&conn);
                assert_eq!(
                    (sent[0].header.opcode, &sent[0].payload[..]),
                    (OpCode::Pong, &b"?"[..])
                );
            }
        }

        #[test]
        fn continuation_with_nothing_to_continue() {
            for role in [Role::Client, Role::Server] {
                let bytes = frame(peer(role), OpCode::Continuation, true, b"x");
                assert_failed_with(role, &bytes, ProtocolError::UnexpectedContinuation);
            }
        }

        #[test]
        fn new_message_inside_a_fragmented_one() {
            for role in [Role::Client, Role::Server] {
                let mut bytes = frame(peer(role), OpCode::Text, false, b"a");
                bytes.extend(frame(peer(role), OpCode::Binary, true, b"b"));
                assert_failed_with(role, &bytes, ProtocolError::ExpectedContinuation);
            }
        }

        #[test]
        fn streaming_mode_hands_over_pieces() {
            let mut conn = Connection::new(Role::Client, &Config::default());
            conn.set_streaming(true);
            conn.receive_data(&frame(Role::Server, OpCode::Binary, false, b"ab"));
            conn.receive_data(&frame(Role::Server, OpCode::Continuation, true, b"c"));
            let chunk = |data: &[u8], first, last| {
                Event::Chunk(Chunk {
                    kind: DataKind::Binary,
                    data: data.to_vec(),
                    first,
                    last,
                })
            };
            assert_eq!(conn.next_event().unwrap(), Some(chunk(b"ab", true, false)));
            assert_eq!(conn.next_event().unwrap(), Some(chunk(b"c", false, true)));
            assert_eq!(conn.next_event().unwrap(), None);
        }
        #[test]
        fn switching_to_streaming_mid_message_loses_nothing() {
            let mut conn = Connection::new(Role::Client, &Config::default());
            conn.receive_data(&frame(Role::Server, OpCode::Binary, false, b"ab"));
            conn.receive_data(&frame(Role::Server, OpCode::Ping, true, b""));
            conn.receive_data(&frame(Role::Server, OpCode::Continuation, true, b"cd"));
            // Whole-message mode: the ping comes out while "ab" waits in the assembly buffer.
            assert_eq!(
                conn.next_event().unwrap(),
                Some(Event::Message(Message::Ping(vec![])))
            );
            conn.set_streaming(true);
            let Some(Event::Chunk(chunk)) = conn.next_event().unwrap() else {
                panic!()
            };
            assert_eq!(
                (&chunk.data[..], chunk.first, chunk.last),
                (&b"abcd"[..], true, true)
            );
        }

        #[test]
        fn mid_stream_is_reported() {
            let mut conn = Connection::new(Role::Client, &Config::default());
            conn.set_streaming(true);
            conn.receive_data(&frame(Role::Server, OpCode::Text, false, b"ab"));
            assert!(matches!(conn.next_event().unwrap(), Some(Event::Chunk(_))));
            assert!(conn.is_mid_stream());
            conn.receive_data(&frame(Role::Server, OpCode::Continuation, true, b"c"));
            assert!(matches!(
                conn.next_event().unwrap(),
                Some(Event::Chunk(Chunk { last: true, .. }))
            ));
            assert!(!conn.is_mid_stream());
        }
    }

    mod rfc6455_5_5_control_frames {
        use super::*;

        #[test]
        fn ping_of_126_bytes() {
            for role in [Role::Client, Role::Server] {
                let bytes = frame(peer(role), OpCode::Ping, true, &[0; 126]);
                assert_failed_with(role, &bytes, ProtocolError::ControlFrameTooLong);
            }
        }

        #[test]
        fn fragmented_ping() {
            for role in [Role::Client, Role::Server] {
                let bytes = frame(peer(role), OpCode::Ping, false, b"x");
                assert_failed_with(role, &bytes, ProtocolError::FragmentedControlFrame);
            }
        }

        #[test]
        fn ping_is_answered_with_the_same_payload() {
            for role in [Role::Client, Role::Server] {
                let (conn, events, _) =
                    run(role, &frame(peer(role), OpCode::Ping, true, &[7; 125]));
                assert_eq!(events, [Event::Message(Message::Ping(vec![7; 125]))]);
                let sent = sent_frames(&conn);
                assert_eq!(
                    (sent[0].header.opcode, sent[0].payload.clone()),
                    (OpCode::Pong, vec![7; 125])
                );
            }
        }

        #[test]
        fn sending_a_long_ping_is_refused() {
            let mut conn = Connection::new(Role::Client, &Config::default());
            assert!(matches!(
                conn.send(&Message::Ping(vec![0; 126])),
                Err(Error::InvalidInput(_))
            ));
        }
    }

    mod rfc6455_5_5_1_close {
        use super::*;

        #[test]
        fn peer_close_is_echoed_and_closes() {
            for role in [Role::Client, Role::Server] {
                let payload = CloseFrame::new(CloseCode::GoingAway, "bye").to_payload();
                let (conn, events, err) =
                    run(role, &frame(peer(role), OpCode::Close, true, &payload));
                assert!(err.is_none());
                assert_eq!(
                    events,
                    [Event::Message(Message::Close(Some(CloseFrame::new(
                        CloseCode::GoingAway,
                        "bye"
                    ))))]
                );
                let sent = sent_frames(&conn);
                assert_eq!(sent[0].payload, [0x03, 0xe9]);
                assert_eq!(conn.state(), State::Closed);
            }
        }

        #[test]
        fn empty_close_is_echoed_empty() {
            let (conn, events, _) =
                run(Role::Server, &frame(Role::Client, OpCode::Close, true, b""));
            assert_eq!(events, [Event::Message(Message::Close(None))]);
            assert_eq!(sent_frames(&conn)[0].payload, b"");
        }

        #[test]
        fn bad_close_payloads() {
            let cases: [(&[u8], ProtocolError); 4] = [
                (&[0x03], ProtocolError::InvalidClosePayload),
                (&[0x03, 0xed], ProtocolError::InvalidCloseCode(1005)),
                (&[0x03, 0xee], ProtocolError::InvalidCloseCode(1006)),
                (&[0x03, 0xe8, 0xc0, 0xaf], ProtocolError::InvalidUtf8),
            ];
            for (payload, error) in cases {
                assert_failed_with(
                    Role::Server,
                    &frame(Role::Client, OpCode::Close, true, payload),
                    error,
                );
            }
        }

        #[test]
        fn our_close_then_theirs_completes_the_handshake() {
            let mut conn = Connection::new(Role::Server, &Config::default());
            conn.send(&Message::Close(Some(CloseFrame::new(
                CloseCode::Normal,
                "done",
            ))))
            .unwrap();
            assert_eq!(conn.state(), State::Closing);
            assert!(matches!(
                conn.send(&Message::text("late")),
                Err(Error::AlreadyClosed)
            ));
            // Data may still arrive before the peer's close (RFC 6455 §7.1.2).
            conn.receive_data(&frame(Role::Client, OpCode::Text, true, b"in flight"));
            conn.receive_data(&frame(Role::Client, OpCode::Close, true, &[0x03, 0xe8]));
            assert_eq!(
                conn.next_event().unwrap(),
                Some(Event::Message(Message::text("in flight")))
            );
            assert!(matches!(
                conn.next_event().unwrap(),
                Some(Event::Message(Message::Close(_)))
            ));
            assert_eq!(conn.state(), State::Closed);
            // Only our one close frame went out: no echo of theirs.
            assert_eq!(sent_frames(&conn).len(), 1);
        }

        #[test]
        fn nothing_is_processed_after_the_peers_close() {
            let mut bytes = frame(Role::Client, OpCode::Close, true, b"");
            bytes.extend(frame(Role::Client, OpCode::Text, true, b"ignored"));
            let (_, events, err) = run(Role::Server, &bytes);
            assert!(err.is_none());
            assert_eq!(events.len(), 1);
        }

        #[test]
        fn unsendable_codes_are_refused_on_send() {
            let mut conn = Connection::new(Role::Server, &Config::default());
            for code in [1005, 1006, 1015, 999, 2000] {
                let close = Message::Close(Some(CloseFrame::new(code, "")));
                assert!(
                    matches!(conn.send(&close), Err(Error::InvalidInput(_))),
                    "{code}"
                );
            }
        }
    }

    mod rfc6455_8_1_utf8 {
        use super::*;

        #[test]
        fn invalid_text_fails_with_1007_in_both_roles() {
            for role in [Role::Client, Role::Server] {
                let bytes = frame(
                    peer(role),
                    OpCode::Text,
                    true,
                    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
                );
                assert_failed_with(role, &bytes, ProtocolError::InvalidUtf8);
            }
        }

        #[test]
        fn fails_before_the_frame_ends() {
            // Autobahn 6.4.x: the payload is cut after the impossible byte; the rest never comes.
            let mut conn = Connection::new(Role::Server, &Config::default());
            let bytes = frame(
                Role::Client,
                OpCode::Text,
                true,
                b"valid\xf4\x90\x80\x80 and more",
            );
            conn.receive_data(&bytes[..6 + 7]);
            assert!(matches!(
                conn.next_event(),
                Err(Error::Protocol(ProtocolError::InvalidUtf8))
            ));
        }

        #[test]
        fn fails_fast_in_a_large_frame_read_straight_into_the_message() {
            // A 64 KiB text frame: its payload bypasses the input buffer (direct reads).
            let mut conn = Connection::new(Role::Client, &Config::default());
            conn.receive_data(&[0x81, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
            assert_eq!(conn.next_event().unwrap(), None);
            let mut first = vec![b'a'; 20_000];
            first[19_999] = 0xff;
            // Room follows what arrived, so the bytes go in as a socket would deliver them.
            let mut sent = 0;
            while sent < first.len() {
                let buf = conn.read_buf();
                assert!(buf.len() >= 2048, "not a direct read: {}", buf.len());
                let n = buf.len().min(first.len() - sent);
                buf[..n].copy_from_slice(&first[sent..sent + n]);
                conn.commit(n);
                sent += n;
                if sent < first.len() {
                    assert_eq!(conn.next_event().unwrap(), None);
                }
            }
            // The rest of the frame has not arrived; the violation is reported now.
            assert!(matches!(
                conn.next_event(),
                Err(Error::Protocol(ProtocolError::InvalidUtf8))
            ));
        }

        #[test]
        fn characters_cut_between_fragments_are_fine() {
            let euro = "€".as_bytes();
            let mut bytes = frame(Role::Client, OpCode::Text, false, &euro[..1]);
            bytes.extend(frame(
                Role::Client,
                OpCode::Continuation,
                false,
                &euro[1..2],
            ));
            bytes.extend(frame(Role::Client, OpCode::Continuation, true, &euro[2..]));
            let (_, events, err) = run(Role::Server, &bytes);
            assert!(err.is_none());
            assert_eq!(events, [Event::Message(Message::text("€"))]);
        }
    }

    mod input_buffer {
        use super::*;

        /// Reads `bytes` the way the blocking layer does: into `read_bufs()`, as much as offered
        /// (a vectored read fills its first slice, then its second), at most `per_read` at a time.
        /// Each event goes to `on_event` with the number of reads since the one before it.
        pub(super) fn read_in_pieces(
            conn: &mut Connection,
            mut bytes: &[u8],
            per_read: usize,
            mut on_event: impl FnMut(Event, usize),
        ) {
            let mut reads = 0;
            while !bytes.is_empty() {
                let (first, second) = conn.receiver().read_bufs();
                let mut n = 0;
                for slice in [first, second] {
                    let take = slice.len().min(bytes.len()).min(per_read - n);
                    slice[..take].copy_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    n += take;
                }
                conn.commit(n);
                reads += 1;
                while let Some(event) = conn.next_event().unwrap() {
                    on_event(event, std::mem::take(&mut reads));
                }
            }
        }

        pub(super) fn read_like_a_socket(
            conn: &mut Connection,
            bytes: &[u8],
            on_event: impl FnMut(Event, usize),
        ) {
            read_in_pieces(conn, bytes, usize::MAX, on_event);
        }

        /// How many reads each of the binary messages in `bytes` took.
        fn reads_per_message(conn: &mut Connection, bytes: &[u8]) -> Vec<usize> {
            let mut counts = Vec::new();
            read_like_a_socket(conn, bytes, |event, reads| {
                assert!(matches!(event, Event::Message(Message::Binary(_))));
                counts.push(reads);
            });
            counts
        }

        #[test]
        fn an_idle_connection_offers_only_the_initial_buffer() {
            let mut conn = Connection::new(Role::Server, &Config::default());
            assert_eq!(conn.receiver().read_buf().len(), 2048);
        }

        #[test]
        fn mid_sized_frames_arrive_in_one_read_once_one_has_been_seen() {
            let mut conn = Connection::new(Role::Server, &Config::default());
            let frame_8k = frame(Role::Client, OpCode::Binary, true, &[7; 8 << 10]);
            let bytes = frame_8k.repeat(3);
            // The first fills the 2 KiB buffer, then the buffer grows for the rest of it; the next
            // ones (read back to back, as a pipelining peer sends them) come in whole.
            assert_eq!(reads_per_message(&mut conn, &bytes), [2, 1, 1]);
            // A small frame shrinks the buffer back, so an idle connection holds 2 KiB again.
            let small = frame(Role::Client, OpCode::Binary, true, b"hi");
            assert_eq!(reads_per_message(&mut conn, &small), [1]);
            assert_eq!(conn.receiver().read_buf().len(), 2048);
        }

        #[test]
        fn a_large_frame_not_read_into_the_message_still_comes_in_few_reads() {
            // Streaming mode hands payload out as it comes, so it cannot read straight into a
            // message; the buffer grows for the rest of the frame instead of taking 2 KiB a time.
            let mut conn = Connection::new(Role::Server, &Config::default());
            conn.set_streaming(true);
            let bytes = frame(Role::Client, OpCode::Binary, true, &[7; 40 << 10]);
            let (mut reads, mut received, mut last) = (0, 0, false);
            read_like_a_socket(&mut conn, &bytes, |event, reads_before| {
                let Event::Chunk(chunk) = event else {
                    panic!("expected chunks, got {event:?}");
                };
                reads += reads_before;
                received += chunk.data.len();
                last = chunk.last;
            });
            assert_eq!((received, last), (40 << 10, true));
            assert_eq!(reads, 2, "2 KiB first, then the rest of the frame at once");
        }
    }

    mod predicted_reads {
        use super::input_buffer::{read_in_pieces, read_like_a_socket};
        use super::*;

        fn binary(fill: u8, len: usize) -> Vec<u8> {
            frame(Role::Client, OpCode::Binary, true, &vec![fill; len])
        }

        /// Every event of `bytes` read in pieces of at most `per_read` bytes.
        fn events(bytes: &[u8], per_read: usize) -> Vec<Event> {
            let mut conn = Connection::new(Role::Server, &Config::default());
            let mut events = Vec::new();
            read_in_pieces(&mut conn, bytes, per_read, |event, _| events.push(event));
            events
        }

        #[test]
        fn a_large_message_like_the_last_comes_in_one_read_straight_into_the_message() {
            let mut conn = Connection::new(Role::Server, &Config::default());
            let bytes = [
                binary(1, 64 << 10),
                binary(2, 64 << 10),
                binary(3, 64 << 10),
            ]
            .concat();
            let mut seen = Vec::new();
            read_like_a_socket(&mut conn, &bytes, |event, reads| {
                let Event::Message(Message::Binary(data)) = event else {
                    panic!("expected a binary message, got {event:?}");
                };
                assert!(data.iter().all(|&b| b == data[0]) && data.len() == 64 << 10);
                seen.push((data[0], reads));
            });
            // The first: 2 KiB into the buffer, then the rest into the message, in room that
            // doubles with what arrived (4, 8, 16, 32, 64 KiB). The next ones: one vectored read
            // each, header into the buffer, payload into the message.
            assert_eq!(seen, [(1, 6), (2, 1), (3, 1)]);
            assert_eq!(
                conn.receiver().buffered_capacity(),
                2048,
                "no payload went through the input buffer"
            );
        }

        #[test]
        fn frames_unlike_the_guess_decode_as_usual() {
            // After a 64 KiB message, anything else: control frames, small and fragmented
            // messages, text, other large sizes (same and longer length field), all back to back.
            let text = "ü".repeat(20 << 10);
            let pieces = [
                binary(1, 64 << 10),
                frame(Role::Client, OpCode::Ping, true, b"p"),
                binary(2, 5),
                binary(3, 64 << 10),
                frame(Role::Client, OpCode::Text, true, text.as_bytes()),
                binary(4, 20 << 10),
                binary(5, 100 << 10),
                frame(Role::Client, OpCode::Binary, false, &[6; 64 << 10]),
                frame(Role::Client, OpCode::Continuation, true, &[6; 3]),
                binary(7, 64 << 10),
                binary(8, 1),
            ];
            let expected = [
                Event::Message(Message::Binary(vec![1; 64 << 10])),
                Event::Message(Message::Ping(b"p".to_vec())),
                Event::Message(Message::Binary(vec![2; 5])),
                Event::Message(Message::Binary(vec![3; 64 << 10])),
                Event::Message(Message::Text(text.clone())),
                Event::Message(Message::Binary(vec![4; 20 << 10])),
                Event::Message(Message::Binary(vec![5; 100 << 10])),
                Event::Message(Message::Binary(vec![6; (64 << 10) + 3])),
                Event::Message(Message::Binary(vec![7; 64 << 10])),
                Event::Message(Message::Binary(vec![8; 1])),
            ];
            let bytes = pieces.concat();
            // Whole reads, and reads cut anywhere (in a header, between the two slices).
            for per_read in [usize::MAX, 100_000, 65_541, 4_099, 7] {
                assert_eq!(events(&bytes, per_read), expected, "per read: {per_read}");
            }
        }

        #[test]
        fn invalid_utf8_in_the_payload_a_predicted_read_brings_fails_in_that_read() {
            let mut bad = vec![b'a'; 64 << 10];
            bad[100] = 0xff;
            let bad = frame(Role::Client, OpCode::Text, true, &bad);
            // The start of the message, then the whole of it (left to the final conversion).
            for received in [1014, bad.len()] {
                let mut conn = Connection::new(Role::Server, &Config::default());
                let text = frame(Role::Client, OpCode::Text, true, &[b'a'; 64 << 10]);
                read_like_a_socket(&mut conn, &text, |_, _| {});
                let (head, rest) = conn.receiver().read_bufs();
                assert_eq!(head.len(), 14, "the header of a 64 KiB client frame");
                head.copy_from_slice(&bad[..14]);
                rest[..received - 14].copy_from_slice(&bad[14..received]);
                conn.receiver().commit(received);
                assert!(matches!(
                    conn.next_event(),
                    Err(Error::Protocol(ProtocolError::InvalidUtf8))
                ));
            }
        }

        #[test]
        fn a_sent_message_s_buffer_becomes_the_room_and_its_bytes_never_show() {
            let mut conn = Connection::new(Role::Server, &Config::default());
            read_like_a_socket(&mut conn, &binary(1, 64 << 10), |_, _| {});
            // Too large to be held as room for 64 KiB: dropped.
            conn.receiver().recycle(Vec::with_capacity(1 << 20));
            assert_eq!(conn.receiver().buffered_capacity(), 2048);
            conn.receiver().recycle(vec![9; 64 << 10]);
            let (_, room) = conn.receiver().read_bufs();
            assert!(
                room.iter().all(|&b| b == 9),
                "taken as it is, not zeroed again"
            );
            conn.receiver().commit(0);
            // Frames shorter than the room, and one cut into pieces: only received bytes show.
            let bytes = [binary(2, 20 << 10), binary(3, 64 << 10)].concat();
            let mut seen = Vec::new();
            read_in_pieces(&mut conn, &bytes, 4_099, |event, _| seen.push(event));
            assert_eq!(
                seen,
                [
                    Event::Message(Message::Binary(vec![2; 20 << 10])),
                    Event::Message(Message::Binary(vec![3; 64 << 10])),
                ]
            );
        }

        #[test]
        fn room_over_64_kib_is_only_ever_a_recycled_buffer_and_is_dropped_on_a_miss() {
            let mut conn = Connection::new(Role::Server, &Config::default());
            read_like_a_socket(&mut conn, &binary(1, 1 << 20), |_, _| {});
            assert!(
                conn.receiver().read_bufs().1.is_empty(),
                "no 1 MiB allocated ahead"
            );
            conn.receiver().commit(0);
            conn.receiver().recycle(vec![0; 1 << 20]);
            assert_eq!(conn.receiver().read_bufs().1.len(), 1 << 20);
            conn.receiver().commit(0);
            let mut seen = Vec::new();
            read_like_a_socket(&mut conn, &binary(2, 10), |event, _| seen.push(event));
            assert_eq!(seen, [Event::Message(Message::Binary(vec![2; 10]))]);
            assert!(conn.receiver().buffered_capacity() < 64 << 10);
        }

        #[test]
        fn a_stream_that_fills_only_the_first_slice_still_reads_into_the_room() {
            // `Read::read_vectored`'s default (TLS streams) fills the first non-empty slice only:
            // the header arrives alone, and the payload follows into the same room.
            let mut conn = Connection::new(Role::Server, &Config::default());
            read_like_a_socket(&mut conn, &binary(1, 64 << 10), |_, _| {});
            conn.receiver().recycle(vec![9; 64 << 10]);
            let bytes = binary(2, 64 << 10);
            let (head, _) = conn.receiver().read_bufs();
            head.copy_from_slice(&bytes[..14]);
            conn.receiver().commit(14);
            assert_eq!(conn.receiver().next_event().unwrap(), None);
            let room = conn.receiver().read_buf();
            assert!(
                room.len() == 64 << 10 && room.iter().all(|&b| b == 9),
                "the recycled room, not a new zeroed one"
            );
            let mut seen = Vec::new();
            read_like_a_socket(&mut conn, &bytes[14..], |event, _| seen.push(event));
            assert_eq!(seen, [Event::Message(Message::Binary(vec![2; 64 << 10]))]);
        }

        #[test]
        fn an_idle_shrink_drops_the_guess_and_its_room() {
            let mut conn = Connection::new(Role::Server, &Config::default());
            read_like_a_socket(&mut conn, &binary(1, 64 << 10), |_, _| {});
            assert_eq!(conn.receiver().read_bufs().1.len(), 64 << 10);
            conn.receiver().commit(0);
            conn.receiver().shrink();
            assert_eq!(
                conn.receiver().buffered_capacity(),
                2048,
                "the initial buffer only"
            );
            assert!(conn.receiver().read_bufs().1.is_empty());
        }
    }

    mod kept_buffers {
        use super::input_buffer::read_like_a_socket;
        use super::*;

        /// The one message `bytes` brings, read as a socket would.
        fn receive(conn: &mut Connection, bytes: &[u8]) -> Message {
            let mut received = None;
            read_like_a_socket(conn, bytes, |event, _| match event {
                Event::Message(message) => received = Some(message),
                other => panic!("unexpected {other:?}"),
            });
            received.expect("one message")
        }

        /// A server connection whose input buffer is in place (it is allocated on the first read).
        fn server() -> Connection {
            let mut conn = Connection::new(Role::Server, &Config::default());
            receive(&mut conn, &frame(Role::Client, OpCode::Binary, true, &[]));
            assert_eq!(conn.receiver().buffered_capacity(), 2048);
            conn
        }

        #[test]
        fn a_small_sent_message_s_buffer_takes_the_next_message() {
            let mut conn = server();
            for (sent, next) in [
                (Message::binary(vec![0; 100]), OpCode::Binary),
                (Message::text("x".repeat(100)), OpCode::Text),
            ] {
                let sent = sent.into_bytes();
                let address = sent.as_ptr();
                conn.receiver().recycle(sent);
                assert_eq!(conn.receiver().buffered_capacity(), 2048 + 100);
                let received = receive(&mut conn, &frame(Role::Client, next, true, &[b'y'; 60]));
                assert_eq!(received.as_bytes(), [b'y'; 60]);
                let bytes = received.into_bytes();
                assert_eq!(bytes.as_ptr(), address, "received into the kept buffer");
                assert_eq!(conn.receiver().buffered_capacity(), 2048);
            }
        }

        #[test]
        fn a_kept_buffer_too_small_or_over_twice_the_payload_is_not_used() {
            for len in [101, 49] {
                let mut conn = server();
                conn.receiver().recycle(vec![0; 100]);
                let bytes = frame(Role::Client, OpCode::Binary, true, &vec![7; len]);
                let received = receive(&mut conn, &bytes).into_bytes();
                assert_eq!(received, vec![7; len]);
                assert_eq!(received.capacity(), len, "an exact allocation of its own");
            }
        }

        #[test]
        fn only_buffers_up_to_the_direct_read_size_are_kept() {
            let mut conn = server();
            conn.receiver().recycle(Vec::with_capacity((16 << 10) + 1));
            assert_eq!(conn.receiver().buffered_capacity(), 2048);
            conn.receiver().recycle(Vec::with_capacity(16 << 10));
            assert_eq!(conn.receiver().buffered_capacity(), 2048 + (16 << 10));
            // An idle shrink gives it back.
            assert!(conn.receiver().holds_more_than_idle());
            conn.receiver().shrink();
            assert_eq!(conn.receiver().buffered_capacity(), 2048);
            assert!(!conn.receiver().holds_more_than_idle());
        }

        #[test]
        fn an_idle_shrink_keeps_a_buffer_no_larger_than_the_input_buffer() {
            let mut conn = server();
            conn.receiver().recycle(Vec::with_capacity(2048));
            assert!(!conn.receiver().holds_more_than_idle());
            conn.receiver().shrink();
            assert_eq!(conn.receiver().buffered_capacity(), 2048 + 2048);
        }
    }

    mod rfc6455_10_4_limits {
        use super::*;

        #[test]
        fn frame_over_the_limit_fails_with_1009() {
            let bytes = frame(Role::Client, OpCode::Binary, true, &[0; 1001]);
            assert_failed_with(Role::Server, &bytes[..14], ProtocolError::FrameTooLarge);
        }

        #[test]
        fn message_over_the_limit_fails_with_1009() {
            let mut bytes = frame(Role::Client, OpCode::Binary, false, &[0; 1000]);
            bytes.extend(frame(Role::Client, OpCode::Continuation, false, &[0; 1000]));
            bytes.extend(frame(Role::Client, OpCode::Continuation, true, &[0; 1]));
            assert_failed_with(Role::Server, &bytes, ProtocolError::MessageTooLarge);
        }

        #[test]
        fn a_header_announcing_2_pow_63_minus_1_allocates_nothing() {
            let mut conn = Connection::new(Role::Server, &Config::default());
            conn.receive_data(&[
                0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
            ]);
            assert!(matches!(
                conn.next_event(),
                Err(Error::Protocol(ProtocolError::FrameTooLarge))
            ));
            assert!(conn.receiver().buffered_capacity() < 64 * 1024);
        }
    }
}
