//! permessage-deflate on quiet connections: the zlib state is released while a connection is quiet
//! (only the window of history is kept) and the stream goes on as if it never was, in the sans-I/O
//! core and through the server's reader. See docs/compression.md.
#![cfg(feature = "deflate")]

mod common;

use common::DEADLINE;
use std::time::Duration;
use syncws::proto::{Connection, Role};
use syncws::{Config, DeflateConfig, DeflateParams, Event, Message, Server};

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
fn the_server_resumes_compression_after_each_quiet_spell() {
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap();
    let (mut ws, _) = syncws::connect(&format!("ws://{}/", server.local_addr())).unwrap();
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    assert!(ws.deflate().is_some());
    for n in 0..12 {
        if n % 3 == 0 {
            // The scenario itself, not synchronisation: longer than the reader's 100 ms quiet
            // window, after which the server releases its zlib states.
            std::thread::sleep(Duration::from_millis(250));
        }
        let message = Message::text(chat(n));
        ws.send(message.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), message, "echo {n}");
    }
    ws.close(syncws::CloseCode::Normal, "").unwrap();
    server.shutdown();
}
