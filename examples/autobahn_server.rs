//! The Autobahn|Testsuite server testee: echoes every message, limits raised to 64 MiB.
//!
//! Run: `cargo run --release --example autobahn_server -- [ADDR]` (default 127.0.0.1:9002), then
//! point `wstest -m fuzzingclient` at it; `scripts/autobahn.sh` does both. Built with
//! `--features deflate` it accepts permessage-deflate offers (the default `Config` enables it).

use std::net::TcpListener;
use syncws::{Acceptor, Config};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("autobahn testee listening on {}", listener.local_addr()?);
    let mut config = Config::default();
    config.max_message_size = 64 << 20;
    config.max_frame_size = 64 << 20;
    let acceptor = Acceptor::new().config(config);
    for stream in listener.incoming() {
        let stream = stream?;
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        std::thread::spawn(move || {
            let Ok(mut ws) = acceptor.accept(stream) else {
                return;
            };
            while let Ok(msg) = ws.read() {
                if msg.is_data() && ws.send(msg).is_err() {
                    break;
                }
                if matches!(ws.state(), syncws::proto::State::Closed) {
                    break;
                }
            }
        });
    }
    Ok(())
}
