//! Answers to pings: during the closing handshake (RFC 6455 §5.5.2) and coalesced when pings
//! come faster than the pongs leave (§5.5.3).

use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::config::Config;
use crate::proto::frame::{Decoded, Frame, OpCode};
use crate::proto::message::{Event, Message};
use crate::proto::{Connection, Role, State};

/// The frames queued for sending, decoded.
fn queued(conn: &Connection) -> Vec<(OpCode, Vec<u8>)> {
    let mut bytes = conn.data_to_send();
    let mut frames = Vec::new();
    while let Ok(Decoded::Complete(frame, used)) = Frame::decode(bytes, 1 << 30) {
        frames.push((frame.header.opcode, frame.payload));
        bytes = &bytes[used..];
    }
    assert!(bytes.is_empty(), "only whole frames are queued");
    frames
}

/// A ping "Hello" as the peer of `role` sends it (RFC 6455 §5.7): masked from a client.
fn hello_ping_to(role: Role) -> Vec<u8> {
    match role {
        Role::Server => vec![
            0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
        Role::Client => vec![0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
    }
}

/// A masked ping from a client carrying `payload`.
fn client_ping(payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let mut frame = vec![0x89, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// Decodes every event buffered so far.
fn drain(conn: &mut Connection) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = conn.next_event().unwrap() {
        events.push(event);
    }
    events
}

fn pong(payload: &[u8]) -> (OpCode, Vec<u8>) {
    (OpCode::Pong, payload.to_vec())
}

mod rfc6455_5_5_2_ping_while_closing {
    use super::*;

    #[test]
    fn a_ping_after_our_close_and_before_theirs_is_answered() {
        for role in [Role::Client, Role::Server] {
            let mut conn = Connection::new(role, &Config::default());
            conn.send(&Message::Close(Some(CloseFrame::new(
                CloseCode::Normal,
                "",
            ))))
            .unwrap();
            assert_eq!(conn.state(), State::Closing);
            conn.receive_data(&hello_ping_to(role));
            assert_eq!(
                drain(&mut conn),
                [Event::Message(Message::Ping(b"Hello".to_vec()))]
            );
            // Our close, then the pong: "an endpoint MUST send a Pong frame in response, unless
            // it already received a Close frame".
            assert_eq!(
                queued(&conn),
                [(OpCode::Close, vec![0x03, 0xe8]), pong(b"Hello")],
                "{role:?}"
            );
            if role == Role::Server {
                // Unmasked from a server, byte for byte.
                assert_eq!(
                    conn.data_to_send(),
                    [
                        0x88, 0x02, 0x03, 0xe8, 0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f
                    ]
                );
            }
        }
    }

    #[test]
    fn a_ping_after_the_peers_close_is_not_answered() {
        for role in [Role::Client, Role::Server] {
            let mut conn = Connection::new(role, &Config::default());
            conn.send(&Message::Close(None)).unwrap();
            let close: &[u8] = match role {
                Role::Server => &[0x88, 0x80, 1, 2, 3, 4],
                Role::Client => &[0x88, 0x00],
            };
            conn.receive_data(close);
            conn.receive_data(&hello_ping_to(role));
            assert_eq!(drain(&mut conn), [Event::Message(Message::Close(None))]);
            assert_eq!(queued(&conn), [(OpCode::Close, vec![])], "{role:?}");
            assert_eq!(conn.state(), State::Closed);
        }
    }
}

mod rfc6455_5_5_3_coalesced_pongs {
    use super::*;

    #[test]
    fn a_hundred_thousand_pings_in_one_buffer_get_one_pong_for_the_last() {
        let mut conn = Connection::new(Role::Server, &Config::default());
        conn.sender().set_pongs_kept(1);
        let pings: Vec<u8> = (0..100_000u32)
            .flat_map(|i| client_ping(&i.to_be_bytes()))
            .collect();
        conn.receive_data(&pings);
        assert_eq!(drain(&mut conn).len(), 100_000);
        let pongs = queued(&conn);
        assert_eq!(pongs.len(), 1, "pongs queued");
        assert_eq!(pongs[0], pong(&99_999u32.to_be_bytes()));
    }

    #[test]
    fn a_client_s_coalesced_pong_is_masked_and_whole() {
        let mut conn = Connection::new(Role::Client, &Config::default());
        conn.sender().set_pongs_kept(1);
        for payload in [&b"first"[..], b"second, longer", b"3"] {
            let mut ping = vec![0x89, payload.len() as u8];
            ping.extend_from_slice(payload);
            conn.receive_data(&ping);
        }
        assert_eq!(drain(&mut conn).len(), 3);
        assert_eq!(queued(&conn), [pong(b"3")]);
        assert_eq!(conn.data_to_send().len(), 2 + 4 + 1, "masked, one frame");
    }

    #[test]
    fn data_between_pings_keeps_its_place_and_the_later_ping_is_answered() {
        let mut conn = Connection::new(Role::Server, &Config::default());
        conn.sender().set_pongs_kept(1);
        conn.receive_data(&client_ping(b"a"));
        conn.receive_data(&client_ping(b"b"));
        drain(&mut conn);
        conn.send(&Message::text("data")).unwrap();
        conn.receive_data(&client_ping(b"c"));
        conn.receive_data(&client_ping(b"d"));
        drain(&mut conn);
        assert_eq!(
            queued(&conn),
            [pong(b"b"), (OpCode::Text, b"data".to_vec()), pong(b"d")]
        );
    }

    #[test]
    fn a_pong_the_application_sent_is_never_replaced() {
        let mut conn = Connection::new(Role::Server, &Config::default());
        conn.sender().set_pongs_kept(1);
        conn.send(&Message::Pong(b"mine".to_vec())).unwrap();
        conn.receive_data(&client_ping(b"a"));
        conn.receive_data(&client_ping(b"b"));
        drain(&mut conn);
        assert_eq!(queued(&conn), [pong(b"mine"), pong(b"b")]);
    }

    #[test]
    fn a_pong_already_looked_at_or_taken_is_not_replaced() {
        // The writer may copy what `data_to_send` showed and `advance` later: bytes it has seen
        // stay as they were.
        let mut conn = Connection::new(Role::Server, &Config::default());
        conn.sender().set_pongs_kept(1);
        conn.receive_data(&client_ping(b"a"));
        drain(&mut conn);
        assert_eq!(conn.data_to_send().len(), 3);
        conn.receive_data(&client_ping(b"b"));
        conn.receive_data(&client_ping(b"c"));
        drain(&mut conn);
        assert_eq!(queued(&conn), [pong(b"a"), pong(b"c")]);

        let mut sender = Connection::new(Role::Server, &Config::default())
            .into_parts()
            .1;
        sender.set_pongs_kept(1);
        sender.on_event(&Event::Message(Message::Ping(b"x".to_vec())));
        assert_eq!(sender.take_data_to_send(), [0x8a, 0x01, b'x']);
        sender.on_event(&Event::Message(Message::Ping(b"y".to_vec())));
        sender.advance(1);
        sender.on_event(&Event::Message(Message::Ping(b"z".to_vec())));
        assert_eq!(sender.take_data_to_send(), [0x01, b'y', 0x8a, 0x01, b'z']);
    }
}
