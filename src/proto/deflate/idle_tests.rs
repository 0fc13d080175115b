//! A quiet connection releases its zlib state (only the window of history is kept) and the
//! streams go on as if it never was.

use crate::proto::config::{Config, DeflateConfig};
use crate::proto::deflate::DeflateParams;
use crate::proto::message::{Event, Message};
use crate::proto::{Connection, Role};

fn chat(n: usize) -> String {
    format!(
        "{{\"type\":\"message\",\"id\":{n},\"user\":\"user{}\",\"text\":\"see you at the meeting \
         tomorrow, the branch is green again {n}\",\"reactions\":[{{\"emoji\":\"x\",\"count\":{}}}]}}",
        n % 7,
        n % 3
    )
    .repeat(3)
}

fn transfer(from: &mut Connection, to: &mut Connection) {
    let bytes = from.data_to_send().to_vec();
    from.advance(bytes.len());
    to.receive_data(&bytes);
}

fn next_message(conn: &mut Connection) -> Message {
    match conn.next_event() {
        Ok(Some(Event::Message(message))) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn a_quiet_connection_releases_its_zlib_state_and_the_streams_go_on() {
    let params = DeflateParams {
        server_max_window_bits: 12,
        client_max_window_bits: 12,
        ..DeflateParams::default()
    };
    let config = DeflateConfig::default();
    let mut server = Connection::new(Role::Server, &Config::default());
    let mut client = Connection::new(Role::Client, &Config::default());
    server.set_deflate(&params, &config);
    client.set_deflate(&params, &config);
    for n in 0..40 {
        let message = Message::text(chat(n));
        client.send(&message).unwrap();
        transfer(&mut client, &mut server);
        let received = next_message(&mut server);
        assert_eq!(received, message);
        server.send(&received).unwrap();
        transfer(&mut server, &mut client);
        assert_eq!(next_message(&mut client), message, "echo {n}");
        if n % 5 == 4 {
            // Messages in quick succession keep the state; going quiet releases it.
            assert!(server.receiver().holds_more_than_idle(), "{n}");
            assert!(server.sender().holds_more_than_idle(), "{n}");
            server.receiver().shrink();
            server.sender().shrink();
            assert!(!server.receiver().holds_more_than_idle(), "{n}");
            assert!(!server.sender().holds_more_than_idle(), "{n}");
        }
    }
}

#[test]
fn messages_a_second_apart_hold_no_zlib_state_between_them() {
    // The times the I/O layer would hand in; nothing waits.
    let t0 = std::time::Instant::now();
    let params = DeflateParams::default();
    let config = DeflateConfig::default();
    let mut server = Connection::new(Role::Server, &Config::default());
    let mut client = Connection::new(Role::Client, &Config::default());
    server.set_deflate(&params, &config);
    client.set_deflate(&params, &config);
    for n in 0..5 {
        let now = t0 + std::time::Duration::from_secs(n);
        client.note_time(now);
        server.note_time(now);
        let message = Message::text(chat(n as usize));
        client.send(&message).unwrap();
        transfer(&mut client, &mut server);
        let received = next_message(&mut server);
        server.send(&received).unwrap();
        transfer(&mut server, &mut client);
        assert_eq!(next_message(&mut client), message, "echo {n}");
        // No `shrink`: the quiet spell before each message is enough.
        assert!(!server.receiver().holds_more_than_idle(), "{n}");
        assert!(!server.sender().holds_more_than_idle(), "{n}");
        assert!(!client.sender().holds_more_than_idle(), "{n}");
    }
}
