//! Step 5: watching your own connection. A frame hook on each end prints every frame sent (↑)
//! and received (↓): the pong that `read` sends by itself, fragments, the close echo.
//!
//! Run: `cargo run --example frame_hook`, or with the `log` feature, which sends the same lines
//! through the `log` crate (level trace, target `syncws::proto::frame`):
//! `cargo run --example frame_hook --features log`.

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use syncws::proto::FrameObserver;
use syncws::{CloseCode, DataKind, Message};

/// A hook that prints one line per frame, tagged with which end saw it.
fn printer(end: &'static str) -> FrameObserver {
    Arc::new(move |direction, header, payload| {
        let line = syncws::proto::dissect::summary(direction, header, payload);
        println!("{end:>6} {} {line}", direction.arrow());
    })
}

fn main() -> Result<(), syncws::Error> {
    #[cfg(feature = "log")]
    stderr_logger::install();

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("ws://{}/", listener.local_addr()?);
    // The server: echo data until the client closes. Its thread ends with the connection.
    let server = std::thread::Builder::new().name("echo".into()).spawn(
        move || -> Result<(), syncws::Error> {
            let mut ws = syncws::accept(listener.accept()?.0)?;
            ws.set_frame_hook(Some(printer("server")));
            loop {
                match ws.read()? {
                    msg @ (Message::Text(_) | Message::Binary(_)) => ws.send(msg)?,
                    Message::Close(_) => return Ok(()), // read() already sent the echo
                    _ => {}
                }
            }
        },
    )?;

    // Fragments of at most 10 bytes, so that a streamed message shows its pieces.
    let mut config = syncws::Config::default();
    config.write_fragment_size = 10;
    let (mut ws, _) = syncws::ClientBuilder::new(&url).config(config).connect()?;
    ws.set_frame_hook(Some(printer("client")));
    ws.send(Message::text("hello"))?;
    ws.read()?;
    // A ping: the server's read() answers it with a pong carrying the same bytes.
    ws.send(Message::Ping(b"still there?".to_vec()))?;
    ws.read()?;
    // One message in three frames: Text (FIN 0), Continuation (FIN 0), Continuation (FIN 1).
    // The server receives it whole and echoes it in one frame.
    let mut writer = ws.send_stream(DataKind::Text)?;
    writer.write_all(b"one message, sent in pieces")?;
    writer.finish()?;
    ws.read()?;
    // The closing handshake: our close, the server's echo, then TCP ends.
    ws.close(CloseCode::Normal, "done")?;
    server.join().expect("server thread panicked")
}

#[cfg(feature = "log")]
mod stderr_logger {
    //! The smallest `log` backend: every record to stderr.
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, record: &log::Record) {
            eprintln!(
                "[log {} {}] {}",
                record.level(),
                record.target(),
                record.args()
            );
        }
        fn flush(&self) {}
    }
    pub fn install() {
        let _ = log::set_logger(&Stderr);
        log::set_max_level(log::LevelFilter::Trace);
    }
}
