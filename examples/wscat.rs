//! An interactive client like `wscat`: type a line to send it, see what arrives.
//!
//! Run: `cargo run --example wscat -- URL [-H 'Name: value']... [--subprotocol P] [--insecure]`
//!
//! Commands: `/ping [TEXT]` sends a ping; `/close [CODE [REASON]]` starts the closing handshake.
//! Lines from the server are printed with `<`, control frames in brackets.

use std::io::BufRead;
use std::sync::mpsc;
use std::time::Duration;
use syncws::{ClientBuilder, CloseCode, CloseFrame, Error, Message};

fn main() {
    if let Err(e) = run() {
        eprintln!("wscat: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let mut builder: Option<ClientBuilder> = None;
    let mut extra = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-H" | "--header" => extra.push(("header", args.next().unwrap_or_default())),
            "--subprotocol" | "-s" => extra.push(("subprotocol", args.next().unwrap_or_default())),
            "--insecure" | "-k" => extra.push(("insecure", String::new())),
            url if builder.is_none() && !url.starts_with('-') => {
                builder = Some(ClientBuilder::new(url))
            }
            other => return Err(Error::InvalidInput(usage(other))),
        }
    }
    let mut builder = builder.ok_or(Error::InvalidInput(usage("")))?;
    for (kind, value) in extra {
        builder = match kind {
            "header" => {
                let (name, value) = value
                    .split_once(':')
                    .ok_or(Error::InvalidInput("-H wants 'Name: value'"))?;
                builder.header(name.trim(), value.trim())
            }
            "subprotocol" => builder.subprotocol(value),
            _ => builder.danger_accept_invalid_certs(),
        };
    }
    let (mut ws, response) = builder
        .read_timeout(Some(Duration::from_millis(20)))
        .connect()?;
    eprintln!(
        "connected ({} {}); subprotocol: {:?}",
        response.status,
        response.reason,
        ws.subprotocol()
    );

    let (lines_tx, lines) = mpsc::channel();
    std::thread::Builder::new()
        .name("wscat-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        })?;

    loop {
        // One thread does both directions: a read that times out loses nothing, so between
        // short reads the typed lines go out.
        while let Ok(line) = lines.try_recv() {
            ws.send(command(&line)?)?;
        }
        match ws.read() {
            Ok(Message::Text(text)) => println!("< {text}"),
            Ok(Message::Binary(data)) => println!("< [binary {} bytes]", data.len()),
            Ok(Message::Ping(data)) => {
                println!("[ping {:?}] (answered)", String::from_utf8_lossy(&data))
            }
            Ok(Message::Pong(data)) => println!("[pong {:?}]", String::from_utf8_lossy(&data)),
            Ok(Message::Close(frame)) => {
                println!(
                    "[close {}]",
                    frame.map_or("without a code".to_owned(), |f| f.to_string())
                );
                return Ok(());
            }
            Ok(_) => {}
            Err(e) if e.is_timeout() => {}
            Err(Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// A typed line becomes a message: `/ping`, `/close`, or text.
fn command(line: &str) -> Result<Message, Error> {
    let mut words = line.splitn(3, ' ');
    Ok(match words.next() {
        Some("/ping") => Message::Ping(line.get(6..).unwrap_or("").as_bytes().to_vec()),
        Some("/close") => {
            let code = words
                .next()
                .map_or(Ok(1000), str::parse)
                .map_err(|_| Error::InvalidInput("/close CODE must be a number"))?;
            let reason = words.next().unwrap_or("");
            Message::Close(Some(CloseFrame::new(CloseCode::from(code), reason)))
        }
        _ => Message::text(line),
    })
}

fn usage(_bad: &str) -> &'static str {
    "usage: wscat URL [-H 'Name: value']... [--subprotocol P] [--insecure]"
}
