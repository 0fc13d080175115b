//! The inspector's first phase: the HTTP upgrade, forwarded from the client to the server and
//! back, with both heads printed and the server's `Sec-WebSocket-Accept` checked.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use syncws::proto::frame::Decoded;
use syncws::proto::handshake::{HeadLimits, WEBSOCKET_GUID, parse_request, parse_response};

const LIMITS: HeadLimits = HeadLimits::new(16 << 10, 100);

/// What is left once the heads have passed: bytes each side sent right behind its head (they
/// are already frames) and whether the server switched protocols.
pub struct Upgrade {
    pub switched: bool,
    pub from_client: Vec<u8>,
    pub from_server: Vec<u8>,
}

/// Forwards the request (with `Host` set to the upstream's) and the response, describing both
/// in `log`.
pub fn forward(
    client: &mut TcpStream,
    server: &mut TcpStream,
    upstream_host: &str,
    log: &mut String,
) -> io::Result<Upgrade> {
    let (request, from_client) = read_head(client, |buf| parse_request(buf, LIMITS))?;
    let _ = writeln!(log, "→ {} {} HTTP/1.1", request.method, request.target);
    // Rebuild the head: the same fields in the same order, but the Host the server expects.
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
    for (name, value) in request.headers.iter() {
        let value = if name.eq_ignore_ascii_case("host") {
            let _ = writeln!(log, "→ {name}: {upstream_host}   (was {value})");
            upstream_host
        } else {
            let _ = writeln!(log, "→ {name}: {value}");
            value
        };
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    server.write_all(head.as_bytes())?;

    let (response, from_server) = read_head(server, |buf| parse_response(buf, LIMITS))?;
    let _ = writeln!(log, "← HTTP/1.1 {} {}", response.status, response.reason);
    for (name, value) in response.headers.iter() {
        let _ = writeln!(log, "← {name}: {value}");
    }
    let mut answer = format!("HTTP/1.1 {} {}\r\n", response.status, response.reason);
    for (name, value) in response.headers.iter() {
        let _ = write!(answer, "{name}: {value}\r\n");
    }
    answer.push_str("\r\n");
    client.write_all(answer.as_bytes())?;

    // RFC 6455 §4.2.2: the accept key proves that the server read this very request.
    let key = request.header("sec-websocket-key").unwrap_or("");
    let expected = syncws::proto::handshake::accept_key(key);
    match response.header("sec-websocket-accept") {
        Some(got) if got == expected => {
            let _ = writeln!(
                log,
                "✓ Sec-WebSocket-Accept = base64(SHA-1(\"{key}\" + \"{WEBSOCKET_GUID}\")) = {expected}"
            );
        }
        got => {
            let _ = writeln!(
                log,
                "✗ Sec-WebSocket-Accept is {got:?}, expected {expected}"
            );
        }
    }
    if response
        .header("sec-websocket-extensions")
        .is_some_and(|e| e.contains("permessage-deflate"))
    {
        let _ = writeln!(
            log,
            "  permessage-deflate agreed: RSV1 marks compressed messages; their payload is shown raw"
        );
    }
    Ok(Upgrade {
        switched: response.status == 101,
        from_client,
        from_server,
    })
}

/// Reads until `parse` finds a complete head; returns it and the bytes after it.
fn read_head<T>(
    stream: &mut TcpStream,
    parse: impl Fn(&[u8]) -> Result<Decoded<T>, syncws::error::HandshakeError>,
) -> io::Result<(T, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        match parse(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))? {
            Decoded::Complete(head, len) => return Ok((head, buf.split_off(len))),
            Decoded::Partial => {}
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
