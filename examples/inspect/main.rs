//! A WebSocket inspector: a transparent proxy that prints every frame, Wireshark style.
//!
//! ```text
//! cargo run --example inspect -- LISTEN_ADDR UPSTREAM_URL
//! cargo run --example inspect -- 127.0.0.1:9002 ws://127.0.0.1:9001/
//! cargo run --example inspect -- --decode "81 85 37 fa 21 3d 7f 9f 4d 51 58"
//! ```
//!
//! Point a client (a browser's `new WebSocket("ws://127.0.0.1:9002/")`, or
//! `cargo run --example echo_client -- ws://127.0.0.1:9002/`) at LISTEN_ADDR. The inspector
//! forwards the opening handshake to UPSTREAM_URL's host and port (the client's path and
//! headers are kept, `Host` is rewritten), prints both heads and checks the accept key, then
//! relays the raw bytes both ways, dissecting every frame: FIN, RSV1–3, opcode, MASK, the length
//! and its encoding, the masking key, the payload before and after unmasking, close codes.
//!
//! `--decode HEX` dissects frames given as hex on the command line (spaces and colons are
//! ignored), e.g. bytes copied from a packet capture.
//!
//! The listening address is printed on stderr (`listening on …`), so a port of 0 works.

pub mod handshake;
pub mod pump;
pub mod relay;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--decode") => match decode(&args[1..].concat()) {
            Ok(text) => print!("{text}"),
            Err(e) => fail(&e),
        },
        Some(listen) if args.len() == 2 => {
            if let Err(e) = serve(listen, &args[1]) {
                fail(&e.to_string());
            }
        }
        _ => {
            eprintln!("usage: inspect LISTEN_ADDR UPSTREAM_URL | inspect --decode HEX");
            std::process::exit(2);
        }
    }
}

/// Accepts clients forever, one inspecting thread each (it ends when both sides have closed).
fn serve(listen: &str, upstream: &str) -> std::io::Result<()> {
    if syncws::WsUrl::parse(upstream)
        .map_err(std::io::Error::other)?
        .secure
    {
        // Through TLS the frames are encrypted: there would be nothing to dissect.
        return Err(std::io::Error::other(
            "the upstream must be a ws:// URL, not wss://",
        ));
    }
    let listener = TcpListener::bind(listen)?;
    eprintln!("listening on {} → {upstream}", listener.local_addr()?);
    let out: relay::Output = Arc::new(Mutex::new(std::io::stdout()));
    for (id, client) in listener.incoming().enumerate() {
        let (client, out, upstream) = (client?, Arc::clone(&out), upstream.to_owned());
        std::thread::Builder::new()
            .name(format!("inspect-{id}"))
            .spawn(move || {
                if let Err(e) = relay::inspect(id, client, &upstream, out) {
                    eprintln!("#{id} ended: {e}");
                }
            })?;
    }
    Ok(())
}

/// `--decode`: the dissection of the frames in `hex`.
pub fn decode(hex: &str) -> Result<String, String> {
    match parse_hex(hex)? {
        bytes if bytes.is_empty() => Err("--decode needs the frame's bytes in hex".to_owned()),
        bytes => Ok(syncws::proto::dissect::dissect_bytes(&bytes)),
    }
}

/// Hex digits in pairs; whitespace, `:`, `,` and `0x` prefixes are skipped, so a hex stream,
/// a hex dump's bytes and a C array all work.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .replace("0x", "")
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && !matches!(b, b':' | b','))
        .collect();
    if digits.len() % 2 != 0 {
        return Err("odd number of hex digits".to_owned());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
            u8::from_str_radix(pair, 16).map_err(|_| format!("not hex: {pair:?}"))
        })
        .collect()
}

fn fail(message: &str) -> ! {
    eprintln!("inspect: {message}");
    std::process::exit(1);
}
