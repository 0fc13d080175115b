//! Split reader and writer over wss://: sending from other threads while the reader waits, and
//! how long a writer waits behind a reader blocked on an idle TLS connection.
#![cfg(feature = "native-tls")]

#[path = "common/certs.rs"]
mod certs;
mod common;

use common::{DEADLINE, serve_once};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use syncws::{Acceptor, ClientBuilder, Message, TlsIdentity};

fn tls_server<T: Send + 'static>(
    pki: &certs::Pki,
    handler: impl FnOnce(syncws::Reader, syncws::Writer) -> T + Send + 'static,
) -> (u16, std::thread::JoinHandle<T>) {
    let identity =
        TlsIdentity::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap();
    let (addr, handle) = serve_once(move |tcp| {
        let stream = identity.accept(tcp, Some(DEADLINE)).unwrap();
        let ws = Acceptor::new().accept(stream).unwrap();
        let (reader, writer) = ws.split().unwrap();
        handler(reader, writer)
    });
    (addr.port(), handle)
}

#[test]
fn split_echo_over_tls_with_a_second_sender() {
    let pki = certs::make();
    let (port, server) = tls_server(&pki, |mut reader, writer| {
        // The server's writer sends on its own thread while the reader echoes.
        let ticker = {
            let writer = writer.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    writer.send(Message::text(format!("tick {i}"))).unwrap();
                }
            })
        };
        let mut echoed = 0;
        while let Ok(msg) = reader.read() {
            if msg.is_data() {
                writer.send(msg).unwrap();
                echoed += 1;
            }
        }
        ticker.join().unwrap();
        echoed
    });
    let (ws, _) = ClientBuilder::new(format!("wss://localhost:{port}/"))
        .root_certificate(pki.ca.cert.as_bytes())
        .connect()
        .unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    reader.set_read_timeout(Some(DEADLINE)).unwrap();
    let sender = std::thread::spawn(move || {
        for i in 0..50 {
            writer
                .send(Message::Binary(vec![i as u8; 1000 + i * 300]))
                .unwrap();
        }
        writer
    });
    let (mut ticks, mut echoes) = (0, 0);
    while ticks + echoes < 100 {
        match reader.read().unwrap() {
            Message::Text(t) => {
                assert_eq!(t, format!("tick {ticks}"));
                ticks += 1;
            }
            Message::Binary(b) => {
                assert_eq!(b, vec![echoes as u8; 1000 + echoes * 300]);
                echoes += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    let writer = sender.join().unwrap();
    writer.start_close(syncws::CloseCode::Normal, "").unwrap();
    assert!(matches!(reader.read().unwrap(), Message::Close(_)));
    assert_eq!(server.join().unwrap(), 50);
}

#[test]
fn a_writer_is_not_blocked_by_a_reader_waiting_on_an_idle_tls_connection() {
    let pki = certs::make();
    let (received_tx, received) = mpsc::channel();
    let (port, server) = tls_server(&pki, move |mut reader, _writer| {
        for _ in 0..20 {
            received_tx.send(reader.read().unwrap()).unwrap();
        }
    });
    let (ws, _) = ClientBuilder::new(format!("wss://localhost:{port}/"))
        .root_certificate(pki.ca.cert.as_bytes())
        .connect()
        .unwrap();
    let (mut reader, writer) = ws.split().unwrap();
    // The reader blocks: the server never sends anything.
    let (started_tx, started) = mpsc::channel();
    let reading = std::thread::spawn(move || {
        started_tx.send(()).unwrap();
        reader
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        reader.read()
    });
    started.recv_timeout(DEADLINE).unwrap();
    std::thread::sleep(Duration::from_millis(50)); // let the reader reach its wait
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let started = Instant::now();
        writer
            .send(Message::text(format!("while the reader waits {i}")))
            .unwrap();
        worst = worst.max(started.elapsed());
        assert_eq!(
            received.recv_timeout(DEADLINE).unwrap(),
            Message::text(format!("while the reader waits {i}"))
        );
    }
    eprintln!("longest writer wait behind a blocked TLS reader: {worst:?}");
    // A reader that held the lock while waiting would stall every send until its 3 s timeout.
    assert!(worst < Duration::from_secs(1), "writer waited {worst:?}");
    server.join().unwrap();
    // The server has hung up: the blocked reader wakes with an error, not a message.
    assert!(reading.join().unwrap().is_err());
}
