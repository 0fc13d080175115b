//! An echo server: one thread per connection, every text and binary message sent back.
//!
//! Run: `cargo run --example echo_server -- [ADDR] [--heartbeat SECS] [--max-connections N] [--tls CERT.pem KEY.pem]`
//! (default 127.0.0.1:9001), then `cargo run --example echo_client -- ws://127.0.0.1:9001/`.
//!
//! `--heartbeat SECS` pings a connection after SECS of quiet and drops it if nothing arrives
//! within SECS more; `--max-connections N` answers 503 beyond N connections; `--tls CERT.pem
//! KEY.pem` serves wss:// (feature `native-tls`, on by default).

use std::time::Duration;
use syncws::{Message, Server};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:9001".to_owned();
    let mut builder = Server::builder();
    let mut scheme = "ws";
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
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}").into()),
            _ => addr = arg,
        }
    }
    let server = builder
        // The server reports why each connection ended: a typed cause, not just 1006.
        .on_end(|peer, cause| println!("{peer} closed: {cause}"))
        .bind(&addr)?;
    eprintln!(
        "echo server listening on {scheme}://{}/",
        server.local_addr()?
    );
    server.serve(|mut session| {
        println!(
            "{} opened {}",
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
