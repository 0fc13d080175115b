//! permessage-deflate on quiet connections: the zlib state is released while a connection is quiet
//! (only the window of history is kept) and the stream goes on as if it never was, in the sans-I/O
//! core (unit tests in src/proto/deflate) and through the server's reader. See docs/compression.md.
#![cfg(feature = "deflate")]

mod common;

use common::DEADLINE;
use std::time::Duration;
use syncws::{Message, Server};

fn chat(n: usize) -> String {
    format!(
        "{{\"type\":\"message\",\"id\":{n},\"user\":\"user{}\",\"text\":\"see you at the meeting \
         tomorrow, the branch is green again {n}\",\"reactions\":[{{\"emoji\":\"x\",\"count\":{}}}]}}",
        n % 7,
        n % 3
    )
    .repeat(3)
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
