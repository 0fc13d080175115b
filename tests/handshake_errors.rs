//! Every malformed opening handshake gets its status from `accept` (RFC 6455 §4.2.1, §4.2.2).

mod common;

use common::{serve_once, status_of, upgrade_request};

/// Runs `accept` on one connection fed `request`; returns the status the client saw.
fn answer_to(request: &[u8]) -> (u16, String) {
    let (addr, server) = serve_once(|stream| syncws::accept(stream).err());
    let answer = status_of(addr, request);
    assert!(server.join().unwrap().is_some(), "accept should fail");
    answer
}

fn good() -> String {
    upgrade_request("")
}

#[test]
fn not_get_is_405() {
    assert_eq!(
        answer_to(good().replacen("GET", "POST", 1).as_bytes()).0,
        405
    );
}

#[test]
fn http_1_0_is_505() {
    assert_eq!(
        answer_to(good().replace("HTTP/1.1", "HTTP/1.0").as_bytes()).0,
        505
    );
}

#[test]
fn missing_upgrade_is_400() {
    assert_eq!(
        answer_to(good().replace("Upgrade: websocket\r\n", "").as_bytes()).0,
        400
    );
}

#[test]
fn wrong_upgrade_is_400() {
    assert_eq!(
        answer_to(
            good()
                .replace("Upgrade: websocket", "Upgrade: h2c")
                .as_bytes()
        )
        .0,
        400
    );
}

#[test]
fn missing_connection_upgrade_is_400() {
    assert_eq!(
        answer_to(
            good()
                .replace("Connection: Upgrade", "Connection: keep-alive")
                .as_bytes()
        )
        .0,
        400
    );
}

#[test]
fn missing_host_is_400() {
    assert_eq!(
        answer_to(good().replace("Host: 127.0.0.1\r\n", "").as_bytes()).0,
        400
    );
}

#[test]
fn key_that_is_not_16_bytes_is_400() {
    for key in ["c2hvcnQ=", "not base64!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let request = good().replace("dGhlIHNhbXBsZSBub25jZQ==", key);
        assert_eq!(answer_to(request.as_bytes()).0, 400, "{key}");
    }
}

#[test]
fn version_8_is_426_naming_13() {
    let (status, answer) = answer_to(good().replace("Version: 13", "Version: 8").as_bytes());
    assert_eq!(status, 426);
    assert!(answer.contains("Sec-WebSocket-Version: 13\r\n"), "{answer}");
}

#[test]
fn a_head_over_8_kib_is_431() {
    let filler = format!("X-Filler: {}\r\n", "a".repeat(9000));
    assert_eq!(answer_to(upgrade_request(&filler).as_bytes()).0, 431);
}

#[test]
fn too_many_headers_is_431() {
    let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(answer_to(upgrade_request(&many).as_bytes()).0, 431);
}

#[test]
fn garbage_is_400() {
    assert_eq!(answer_to(b"\x16\x03\x01 not http at all\r\n\r\n").0, 400);
}

#[test]
fn the_answer_carries_a_reason() {
    let (_, answer) = answer_to(good().replace("Host: 127.0.0.1\r\n", "").as_bytes());
    assert!(answer.ends_with("missing Host\n"), "{answer}");
}

#[test]
fn a_second_origin_key_or_version_is_400() {
    for extra in [
        "Origin: https://a.example\r\nOrigin: https://b.example\r\n",
        "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n",
        "Sec-WebSocket-Version: 13\r\n",
        "Host: evil.example\r\n",
    ] {
        assert_eq!(
            answer_to(upgrade_request(extra).as_bytes()).0,
            400,
            "{extra}"
        );
    }
}

#[test]
fn a_body_or_a_target_that_is_not_a_path_is_400() {
    assert_eq!(
        answer_to(upgrade_request("Content-Length: 3\r\n").as_bytes()).0,
        400
    );
    assert_eq!(
        answer_to(upgrade_request("Transfer-Encoding: chunked\r\n").as_bytes()).0,
        400
    );
    for target in ["http://evil.example/admin", "*"] {
        let request = good().replacen("/chat", target, 1);
        assert_eq!(answer_to(request.as_bytes()).0, 400, "{target}");
    }
}
