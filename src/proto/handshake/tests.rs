//! RFC 6455 §1.3 and §4.
use super::*;
use crate::proto::error::HandshakeError;
use crate::proto::frame::Decoded;

const LIMITS: HeadLimits = HeadLimits {
    max_size: 8192,
    max_headers: 32,
};

#[test]
fn accept_keys_from_the_rfc_and_real_traffic() {
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(
        accept_key("pNgZr2dChVwcNts30DxZiQ=="),
        "W3UNJiLyRMXlwQ2lsHe8hNFegRU="
    );
    assert_eq!(
        accept_key("x3JJHMbDL1EzLkh9GBhXDw=="),
        "HSmrc0sMlYUkAGmm5OPpG2HaGWk="
    );
}

#[test]
fn generated_keys_are_16_random_bytes() {
    let (a, b) = (generate_key(), generate_key());
    assert_eq!(BASE64.decode(&a).unwrap().len(), 16);
    assert_ne!(a, b);
}

fn request(text: &str) -> Request {
    match parse_request(text.as_bytes(), LIMITS).unwrap() {
        Decoded::Complete(req, _) => req,
        Decoded::Partial => panic!("partial"),
    }
}

const GOOD: &str = "GET /chat?room=1&token=abc HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: a=1; session=xyz\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n";

#[test]
fn the_rfc_request_is_accepted() {
    let req = request(GOOD);
    assert_eq!(check_request(&req).unwrap(), "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(
        (req.path(), req.query_param("token")),
        ("/chat", Some("abc"))
    );
    assert_eq!(req.cookie("session"), Some("xyz"));
    assert_eq!(
        req.subprotocols().collect::<Vec<_>>(),
        ["chat", "superchat"]
    );
    let response = String::from_utf8(accept_response(
        "dGhlIHNhbXBsZSBub25jZQ==",
        Some("chat"),
        &Headers::new(),
    ))
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(response.contains("Sec-WebSocket-Protocol: chat\r\n"));
}

#[test]
fn each_fault_has_its_status() {
    let cases = [
        (GOOD.replace("GET", "POST"), 405),
        (GOOD.replace("Upgrade: websocket\r\n", ""), 400),
        (GOOD.replace("Upgrade: websocket", "Upgrade: h2c"), 400),
        (GOOD.replace("keep-alive, Upgrade", "keep-alive"), 400),
        (GOOD.replace("Host: server.example.com\r\n", ""), 400),
        (GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="), 400),
        (
            GOOD.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            400,
        ),
        (GOOD.replace("Version: 13", "Version: 8"), 426),
    ];
    for (text, status) in cases {
        let err = check_request(&request(&text)).unwrap_err();
        assert_eq!(err.status(), status, "{err}");
    }
    // HTTP/1.0 parses (a plain page request), but an upgrade needs 1.1.
    let v10 = request(&GOOD.replace("HTTP/1.1", "HTTP/1.0"));
    assert_eq!(v10.version, 0);
    assert_eq!(check_request(&v10).unwrap_err().status(), 505);
}

#[test]
fn duplicates_bodies_and_other_targets_are_400() {
    let with = |extra: &str| GOOD.replace("\r\n\r\n", &format!("\r\n{extra}\r\n\r\n"));
    for text in [with("Host: evil.example"), with("HOST: server.example.com")] {
        assert_eq!(
            parse_request(text.as_bytes(), LIMITS),
            Err(HandshakeError::DuplicateField("host"))
        );
    }
    let cases = [
        with("Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw=="),
        with("Sec-WebSocket-Version: 8"),
        with("Origin: https://a.example\r\nOrigin: https://evil.example"),
        with("Content-Length: 5"),
        with("Transfer-Encoding: chunked"),
        GOOD.replace(
            "GET /chat?room=1&token=abc",
            "GET http://evil.example/admin",
        ),
        GOOD.replace("GET /chat?room=1&token=abc", "GET *"),
    ];
    for text in cases {
        let err = check_request(&request(&text)).unwrap_err();
        assert_eq!(err.status(), 400, "{err}: {text}");
    }
    assert!(check_request(&request(&with("Content-Length: 0"))).is_ok());
    assert!(check_request(&request(&with("Origin: https://a.example"))).is_ok());
}

#[test]
fn fields_follow_rfc_9110() {
    for good in ["X-Test", "a", "!#$%&'*+-.^_`|~09azAZ"] {
        assert!(is_token(good), "{good}");
    }
    for bad in ["", "X Test", "X:Test", "X\r\nY", "é", "(x)"] {
        assert!(!is_token(bad), "{bad:?}");
    }
    for good in ["", "a", "a b\tc", "caf\u{e9}", "Bearer abc=="] {
        assert!(is_field_value(good), "{good:?}");
    }
    for bad in [
        "a\r\nInjected: yes",
        "a\nb",
        "a\rb",
        "a\0b",
        " a",
        "a ",
        "\ta",
        "a\x7f",
    ] {
        assert!(!is_field_value(bad), "{bad:?}");
    }
    let mut headers = Headers::new();
    headers.push("X-Test", "a\r\nInjected: yes");
    assert!(matches!(
        headers.validate(),
        Err(HandshakeError::InvalidField(_))
    ));
    // Even unchecked, the writers leave the field out rather than split the head.
    let head = String::from_utf8(reject_response(403, &headers, b"")).unwrap();
    assert!(!head.contains("Injected"), "{head}");
    let head = String::from_utf8(accept_response("k", Some("a\r\nB: c"), &headers)).unwrap();
    assert!(
        !head.contains("Injected") && !head.contains("B: c"),
        "{head}"
    );
}

#[test]
fn version_426_names_13() {
    let text = String::from_utf8(error_response(&HandshakeError::UnsupportedVersion)).unwrap();
    assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
}

#[test]
fn head_limits_give_431() {
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(9000));
    assert_eq!(
        parse_request(big.as_bytes(), LIMITS),
        Err(HandshakeError::HeadTooLarge)
    );
    let many: String = (0..40).map(|i| format!("X-{i}: v\r\n")).collect();
    let text = format!("GET / HTTP/1.1\r\n{many}\r\n");
    assert_eq!(
        parse_request(text.as_bytes(), LIMITS),
        Err(HandshakeError::TooManyHeaders)
    );
}

#[test]
fn partial_heads_are_not_errors() {
    for cut in 0..GOOD.len() {
        assert_eq!(
            parse_request(&GOOD.as_bytes()[..cut], LIMITS),
            Ok(Decoded::Partial)
        );
    }
}

#[test]
fn response_checks() {
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n";
    let parse = |text: &str| match parse_response(text.as_bytes(), LIMITS).unwrap() {
        Decoded::Complete(r, _) => r,
        Decoded::Partial => panic!(),
    };
    let offered = vec!["chat".to_owned()];
    assert_eq!(
        check_response(&parse(ok), key, &offered),
        Ok(Some("chat".into()))
    );
    assert_eq!(
        check_response(&parse(ok), key, &[]),
        Err(HandshakeError::InvalidSubprotocol)
    );
    let bad_accept = ok.replace("s3pP", "AAAA");
    assert_eq!(
        check_response(&parse(&bad_accept), key, &offered),
        Err(HandshakeError::InvalidAccept)
    );
    let refused = parse("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    assert!(
        matches!(check_response(&refused, key, &offered), Err(HandshakeError::UnexpectedResponse(r)) if r.status == 403)
    );
}
