//! A line-oriented client: each stdin line goes out as a text message; what arrives is printed.
//!
//! Run: `cargo run --example echo_client -- [--ca CERT.pem] URL`
//!
//! `--ca` trusts an extra root certificate for `wss://`; `http_proxy`, `https_proxy`, `all_proxy`
//! and `no_proxy` are honoured.
//!
//! stdout carries only what arrives: text as is, `[binary N bytes]`, and `[close CODE REASON]`.
//! On end of input it sends a close frame, keeps reading until the server's close, and exits 0.

use std::io::BufRead;
use std::sync::mpsc;
use std::time::Duration;
use syncws::{CloseCode, CloseFrame, Error, Message};

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut url, mut ca) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ca" => ca = args.next(),
            _ => url = Some(arg),
        }
    }
    let Some(url) = url else {
        eprintln!("usage: echo_client [--ca CERT.pem] URL");
        std::process::exit(2);
    };
    if let Err(e) = run(&url, ca.as_deref()) {
        eprintln!("echo_client: {e}");
        std::process::exit(1);
    }
}

fn run(url: &str, ca: Option<&str>) -> Result<(), Error> {
    let mut client = syncws::ClientBuilder::new(url);
    if let Some(path) = ca {
        client = client.root_certificate(std::fs::read(path)?);
    }
    let (mut ws, _response) = client.connect()?;
    eprintln!("connected to {url}");

    // stdin is read on its own thread; the socket loop checks for lines between reads.
    let (lines_tx, lines) = mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(Some(line)).is_err() {
                return;
            }
        }
        let _ = lines_tx.send(None);
    });

    // A short read timeout lets one thread both read and send. A timed-out read loses nothing:
    // a partly received frame stays buffered and the next read continues it.
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut input_open = true;
    loop {
        while input_open {
            match lines.try_recv() {
                Ok(Some(line)) => ws.send(Message::text(line))?,
                Ok(None) | Err(mpsc::TryRecvError::Disconnected) => {
                    // End of input: start the closing handshake, then keep reading.
                    input_open = false;
                    ws.send(Message::Close(Some(CloseFrame::new(CloseCode::Normal, ""))))?;
                }
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        match ws.read() {
            Ok(Message::Text(text)) => println!("{text}"),
            Ok(Message::Binary(data)) => println!("[binary {} bytes]", data.len()),
            Ok(Message::Close(frame)) => {
                let (code, reason) = match frame {
                    Some(f) => (f.code.as_u16(), f.reason),
                    None => (CloseCode::NoStatus.as_u16(), String::new()),
                };
                println!(
                    "{}",
                    format!("[close {code} {reason}").trim_end().to_owned() + "]"
                );
                // Wait (briefly) for the server to close TCP: the client closes last.
                ws.get_mut()
                    .set_read_timeout(Some(Duration::from_secs(2)))?;
                let _ = ws.read();
                return Ok(());
            }
            Ok(_) => {}
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(e),
        }
    }
}
