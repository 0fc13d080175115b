//! The frame hook on live connections over 127.0.0.1 (port 0), both roles, and the `log`
//! feature's records.

mod common;

use common::{DEADLINE, serve_once};
use std::sync::{Arc, Mutex};
use syncws::proto::FrameObserver;
use syncws::{CloseCode, Message};

type Lines = Arc<Mutex<Vec<String>>>;

fn recorder() -> (FrameObserver, Lines) {
    let lines: Lines = Arc::default();
    let sink = Arc::clone(&lines);
    let hook: FrameObserver = Arc::new(move |direction, header, payload| {
        let line = syncws::proto::dissect::summary(direction, header, payload);
        sink.lock().unwrap().push(line);
    });
    (hook, lines)
}

#[test]
fn both_ends_see_every_frame_with_its_direction() {
    let (server_hook, server_lines) = recorder();
    let (addr, server) = serve_once(move |stream| {
        let mut ws = syncws::accept(stream).unwrap();
        ws.set_frame_hook(Some(server_hook));
        loop {
            match ws.read().unwrap() {
                msg @ (Message::Text(_) | Message::Binary(_)) => ws.send(msg).unwrap(),
                Message::Close(_) => return,
                _ => {}
            }
        }
    });
    let (client_hook, client_lines) = recorder();
    // Uncompressed, so that the payloads seen are the ones sent (with `--features deflate` the
    // extension would otherwise be agreed).
    let mut config = syncws::Config::default();
    config.deflate.enabled = false;
    let (mut ws, _) = syncws::ClientBuilder::new(format!("ws://{addr}/"))
        .config(config)
        .connect()
        .unwrap();
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    ws.set_frame_hook(Some(client_hook));
    ws.send(Message::text("hi")).unwrap();
    ws.read().unwrap();
    ws.send(Message::Ping(b"p".to_vec())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"p".to_vec()));
    // A frame larger than the hook is shown: the header says 100000, the payload is cut.
    ws.send(Message::Binary(vec![7; 100_000])).unwrap();
    ws.read().unwrap();
    ws.close(CloseCode::Normal, "bye").unwrap();
    server.join().unwrap();

    // The summary shows the first 32 bytes and marks the rest.
    let cut = ["07"; 32].join(" ") + "…";
    assert_eq!(
        *client_lines.lock().unwrap(),
        [
            "sent Text fin masked len=2 \"hi\"".to_owned(),
            "received Text fin len=2 \"hi\"".to_owned(),
            "sent Ping fin masked len=1 \"p\"".to_owned(),
            "received Pong fin len=1 \"p\"".to_owned(),
            format!("sent Binary fin masked len=100000 {cut}"),
            format!("received Binary fin len=100000 {cut}"),
            "sent Close fin masked len=5 code=1000 (normal closure) \"bye\"".to_owned(),
            "received Close fin len=2 code=1000 (normal closure)".to_owned(),
        ]
    );
    assert_eq!(
        *server_lines.lock().unwrap(),
        [
            "received Text fin masked len=2 \"hi\"".to_owned(),
            "sent Text fin len=2 \"hi\"".to_owned(),
            "received Ping fin masked len=1 \"p\"".to_owned(),
            "sent Pong fin len=1 \"p\"".to_owned(),
            format!("received Binary fin masked len=100000 {cut}"),
            format!("sent Binary fin len=100000 {cut}"),
            "received Close fin masked len=5 code=1000 (normal closure) \"bye\"".to_owned(),
            "sent Close fin len=2 code=1000 (normal closure)".to_owned(),
        ]
    );
}

#[cfg(feature = "log")]
mod log_feature {
    use super::*;

    /// Collects every record of target `syncws::proto::frame`.
    struct Collect(Mutex<Vec<String>>);

    impl log::Log for Collect {
        fn enabled(&self, meta: &log::Metadata) -> bool {
            meta.target() == "syncws::proto::frame"
        }
        fn log(&self, record: &log::Record) {
            if self.enabled(record.metadata()) {
                let line = format!("{} {}", record.level(), record.args());
                self.0.lock().unwrap().push(line);
            }
        }
        fn flush(&self) {}
    }

    static LOGGER: Collect = Collect(Mutex::new(Vec::new()));

    #[test]
    fn every_frame_is_logged_at_trace() {
        log::set_logger(&LOGGER).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
        let (addr, server) = serve_once(|stream| {
            let mut ws = syncws::accept(stream).unwrap();
            while !matches!(ws.read().unwrap(), Message::Close(_)) {}
        });
        // No hook set: the log feature alone reports the frames.
        let (mut ws, _) = syncws::connect(&format!("ws://{addr}/")).unwrap();
        ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
        ws.send(Message::text("logged")).unwrap();
        ws.close(CloseCode::Normal, "").unwrap();
        server.join().unwrap();
        let lines = LOGGER.0.lock().unwrap();
        // Both ends run in this process and log to the same logger.
        for expected in [
            "TRACE sent Text fin masked len=6 \"logged\"",
            "TRACE received Text fin masked len=6 \"logged\"",
            "TRACE sent Close fin len=2 code=1000 (normal closure)",
            "TRACE received Close fin len=2 code=1000 (normal closure)",
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected:?} not in {lines:#?}"
            );
        }
    }
}
