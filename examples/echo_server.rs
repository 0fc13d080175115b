//! An echo server: one thread per connection, every text and binary message sent back.
//!
//! Run: `cargo run --example echo_server -- [ADDR] [--heartbeat SECS] [--max-connections N] [--tls CERT.pem KEY.pem] [--subprotocol NAME]...`
//! (default 127.0.0.1:9001), then `cargo run --example echo_client -- ws://127.0.0.1:9001/`.
//!
//! `--heartbeat SECS` pings a connection after SECS of quiet and drops it if nothing arrives
//! within SECS more; `--max-connections N` answers 503 beyond N connections; `--tls CERT.pem
//! KEY.pem` serves wss:// (feature `native-tls`, on by default).
//!
//! `--subprotocol NAME` (repeatable, most preferred first) selects the first NAME the client
//! offers. A browser that offers a subprotocol fails the handshake when the server selects none
//! (RFC 6455 §4.1 lets it), so a page doing `new WebSocket(url, "echo-protocol")` needs
//! `--subprotocol echo-protocol`. A client that offers none of them is still served, without one.

use std::time::Duration;
use syncws::{Message, Server};

/// RFC 6455 §4.1: each subprotocol name is a `token` (RFC 7230 §3.2.6): one or more visible
/// ASCII characters other than separators, so no space, comma, quote, slash or brackets.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:9001".to_owned();
    let mut builder = Server::builder();
    #[cfg_attr(not(feature = "native-tls"), allow(unused_mut))]
    let mut scheme = "ws";
    let mut subprotocols = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--heartbeat" => {
                let secs: u64 = args.next().ok_or("--heartbeat needs SECS")?.parse()?;
                let secs = Duration::from_secs(secs);
                builder = builder.heartbeat(secs, secs);
            }
            "--max-connections" => {
                let n: usize = args.next().ok_or("--max-connections needs N")?.parse()?;
                builder = builder.max_connections(n);
            }
            #[cfg(feature = "native-tls")]
            "--tls" => {
                let cert = std::fs::read(args.next().ok_or("--tls needs CERT.pem KEY.pem")?)?;
                let key = std::fs::read(args.next().ok_or("--tls needs CERT.pem KEY.pem")?)?;
                let identity = syncws::TlsIdentity::from_pem(&cert, &key)?;
                builder = builder.tls(identity, Duration::from_secs(10));
                scheme = "wss";
            }
            "--subprotocol" => {
                let name = args.next().ok_or("--subprotocol needs NAME")?;
                if !is_token(&name) {
                    // Refused before binding: a name that is not a token could never be
                    // selected, and every browser offering it would fail its handshake.
                    eprintln!(
                        "echo_server: --subprotocol {name:?} is not a valid subprotocol name: \
                         RFC 6455 §4.1 wants a token (letters, digits and !#$%&'*+-.^_`|~; \
                         no spaces, commas or other separators)"
                    );
                    std::process::exit(2);
                }
                subprotocols.push(name);
            }
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}").into()),
            _ => addr = arg,
        }
    }
    let server = builder
        .subprotocols(subprotocols)
        // The server reports why each connection ended: a typed cause, not just 1006.
        .on_end(|peer, cause| println!("{peer} closed: {cause}"))
        .bind(&addr)?;
    eprintln!(
        "echo server listening on {scheme}://{}/",
        server.local_addr()?
    );
    server.serve(|mut session| {
        let agreed = session
            .subprotocol()
            .map(|protocol| format!(" (subprotocol {protocol})"))
            .unwrap_or_default();
        println!(
            "{} opened {}{agreed}",
            session.peer_addr(),
            session.request().target
        );
        // Pings are answered inside read(); only data is echoed. read() fails once the
        // connection has ended, and on_end above prints why.
        while let Ok(message) = session.read() {
            if let Message::Text(_) | Message::Binary(_) = message {
                if session.send(message).is_err() {
                    break;
                }
            }
        }
    })?;
    Ok(())
}
