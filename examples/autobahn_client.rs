//! The Autobahn|Testsuite client testee: runs every case of a `wstest -m fuzzingserver`, echoing.
//!
//! Run: `cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 syncws`; add
//! `--features deflate` to offer permessage-deflate (sections 12 and 13).

use syncws::{ClientBuilder, Config, Error, Message};

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let (Some(base), Some(agent)) = (args.next(), args.next()) else {
        eprintln!("usage: autobahn_client URL AGENT");
        std::process::exit(2);
    };
    let base = base.trim_end_matches('/');
    let count: u32 = {
        let (mut ws, _) = syncws::connect(&format!("{base}/getCaseCount"))?;
        let text = ws.read()?.into_bytes();
        String::from_utf8_lossy(&text).trim().parse().unwrap_or(0)
    };
    eprintln!("{count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        if let Err(e) = run_case(&url) {
            eprintln!("case {case}: {e}");
        }
    }
    let (mut ws, _) = syncws::connect(&format!("{base}/updateReports?agent={agent}"))?;
    while ws.read().is_ok() {}
    Ok(())
}

fn run_case(url: &str) -> Result<(), Error> {
    let mut config = Config::default();
    config.max_message_size = 64 << 20;
    config.max_frame_size = 64 << 20;
    // Built with `deflate`, permessage-deflate is offered by default. Also promising
    // client_no_context_takeover lets the suite's 13.2/13.5/13.6 servers request it: they only do
    // when the offer carries it (Autobahn reads it as "the client accepts no context takeover").
    config.deflate.client_no_context_takeover = true;
    // No keepalive pings: each case's frames are compared with what the suite expects.
    let (mut ws, _) = ClientBuilder::new(url)
        .config(config)
        .without_heartbeat()
        .connect()?;
    loop {
        match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => ws.send(msg)?,
            Ok(_) => {}
            // The clean end of a case: the closing handshake finished.
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
