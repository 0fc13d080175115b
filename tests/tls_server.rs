//! The server over wss://: echo, heartbeats, a writer on another thread, and the TLS handshake's
//! own timeout.
#![cfg(feature = "native-tls")]

#[path = "common/certs.rs"]
mod certs;
mod common;

use common::DEADLINE;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use syncws::{ClientBuilder, EndCause, Message, Server, ServerHandle, TlsIdentity};

fn wss_server(
    pki: &certs::Pki,
    heartbeat: Option<Duration>,
) -> (ServerHandle, u16, mpsc::Receiver<EndCause>) {
    let identity =
        TlsIdentity::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap();
    let (tx, causes) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let mut builder = Server::builder()
        .tls(identity, Duration::from_millis(500))
        .on_end(move |_, cause| {
            let _ = tx.lock().unwrap().send(cause.clone());
        });
    if let Some(every) = heartbeat {
        builder = builder.heartbeat(every, every);
    }
    let server = builder
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|mut session| {
            // A second thread sends through the writer while this one is blocked reading.
            let writer = session.writer();
            let greeter = std::thread::spawn(move || writer.send(Message::text("welcome")));
            while let Ok(msg) = session.read() {
                if msg.is_data() && session.send(msg).is_err() {
                    break;
                }
            }
            let _ = greeter.join();
        })
        .unwrap();
    let port = server.local_addr().port();
    (server, port, causes)
}

fn client(pki: &certs::Pki, port: u16) -> syncws::WebSocket<syncws::NetStream> {
    let (ws, _) = ClientBuilder::new(format!("wss://localhost:{port}/"))
        .root_certificate(pki.ca.cert.as_bytes())
        .connect()
        .unwrap();
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    ws
}

#[test]
fn wss_echo_through_the_server() {
    let pki = certs::make();
    let (server, port, causes) = wss_server(&pki, None);
    let mut ws = client(&pki, port);
    assert_eq!(ws.read().unwrap(), Message::text("welcome"));
    for size in [1, 200, 70_000, 1 << 20] {
        let data = vec![0x42; size];
        ws.send(Message::Binary(data.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Binary(data));
    }
    // Quiet for longer than the 100 ms the server holds buffers kept for large messages: its
    // read over TLS times out within that window, releases them and waits on.
    std::thread::sleep(Duration::from_millis(300));
    for size in [70_000, 10] {
        let data = vec![0x43; size];
        ws.send(Message::Binary(data.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Binary(data));
    }
    ws.close(syncws::CloseCode::Normal, "bye").unwrap();
    let cause = causes.recv_timeout(DEADLINE).unwrap();
    assert!(
        matches!(&cause, EndCause::PeerClosed(Some(f)) if f.reason == "bye"),
        "{cause}"
    );
    server.shutdown();
}

#[test]
fn heartbeats_over_tls_keep_a_live_client_and_drop_a_silent_one() {
    let pki = certs::make();
    let (server, port, causes) = wss_server(&pki, Some(Duration::from_millis(200)));
    let mut live = client(&pki, port);
    let silent = client(&pki, port);
    // The live client reads (answering pings) for a while; the silent one never reads.
    let until = Instant::now() + Duration::from_millis(1200);
    live.get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut pings = 0;
    while Instant::now() < until {
        match live.read() {
            Ok(Message::Ping(_)) => pings += 1,
            Ok(_) => {}
            Err(e) if e.is_timeout() => {}
            Err(e) => panic!("the live client was dropped: {e}"),
        }
    }
    assert!(pings >= 2, "{pings} pings");
    assert_eq!(
        causes.recv_timeout(DEADLINE).unwrap(),
        EndCause::HeartbeatTimeout
    );
    live.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    live.send(Message::text("still here")).unwrap();
    loop {
        match live.read().unwrap() {
            Message::Text(t) if t == "still here" => break,
            _ => {}
        }
    }
    drop(silent);
    drop(live);
    server.shutdown();
}

#[test]
fn a_client_that_never_starts_tls_is_dropped_by_the_tls_timeout() {
    let pki = certs::make();
    let (server, port, _causes) = wss_server(&pki, None);
    let started = Instant::now();
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut byte = [0u8; 1];
    // The server gives up after its 500 ms TLS timeout and closes.
    let n = std::io::Read::read(&mut idle, &mut byte).unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() < Duration::from_secs(5));
    // Meanwhile and after, real clients are served.
    let mut ws = client(&pki, port);
    assert_eq!(ws.read().unwrap(), Message::text("welcome"));
    drop(ws);
    server.shutdown();
}

#[test]
fn a_plain_ws_client_gets_a_clear_error() {
    let pki = certs::make();
    let (server, port, _causes) = wss_server(&pki, None);
    let mut config = syncws::Config::default();
    config.handshake_timeout = Some(Duration::from_secs(3));
    let err = ClientBuilder::new(format!("ws://127.0.0.1:{port}/"))
        .config(config)
        .connect()
        .unwrap_err();
    eprintln!("{err}");
    assert!(
        matches!(err, syncws::Error::Handshake(_) | syncws::Error::Io(_)),
        "{err}"
    );
    server.shutdown();
}
