//! The Server negotiates permessage-deflate like `accept` does (feature `deflate`).
#![cfg(feature = "deflate")]

mod common;

use syncws::{Message, Server};

#[test]
fn the_server_agrees_to_permessage_deflate_and_echoes_compressed() {
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap();
    let (mut ws, response) = syncws::connect(&format!("ws://{}/", server.local_addr())).unwrap();
    assert!(
        response
            .header("sec-websocket-extensions")
            .unwrap()
            .starts_with("permessage-deflate")
    );
    assert!(ws.deflate().is_some());
    let text = "{\"event\": \"tick\", \"value\": 42} ".repeat(200);
    for _ in 0..3 {
        ws.send(Message::text(text.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(text.clone()));
    }
    drop(ws);
    server.shutdown();
}
