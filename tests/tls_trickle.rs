//! A wss peer trickling a TLS record, a byte every 4 ms: the split connection's writers are not
//! held up by it, and the trickle counts as activity for the heartbeat (issue 17, item 1).
#![cfg(feature = "native-tls")]

#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "common/trickle.rs"]
mod trickle;

use common::{DEADLINE, serve_once};
use std::net::TcpStream;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use syncws::{Acceptor, ClientBuilder, EndCause, Message, Server, TlsIdentity, WebSocket};
use trickle::{Control, Trickle};

const PACE: Duration = Duration::from_millis(4);

fn identity(pki: &certs::Pki) -> TlsIdentity {
    TlsIdentity::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap()
}

type Peer = WebSocket<native_tls::TlsStream<Trickle>>;

/// A wss client whose writes can be slowed: TLS and WebSocket handshakes at full speed.
fn trickling_peer(pki: &certs::Pki, port: u16) -> (Peer, Arc<Control>) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    tcp.set_write_timeout(Some(DEADLINE)).unwrap();
    let (stream, control) = Trickle::new(tcp);
    let ca = native_tls::Certificate::from_pem(pki.ca.cert.as_bytes()).unwrap();
    let connector = native_tls::TlsConnector::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let tls = connector.connect("localhost", stream).unwrap();
    let (ws, _) = ClientBuilder::new(format!("wss://localhost:{port}/"))
        .connect_on(tls)
        .unwrap();
    (ws, control)
}

/// Bytes that do not compress (permessage-deflate may be agreed with feature `deflate`), so
/// the record on the wire is as long as the message.
fn noise(size: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Waits (bounded) until the peer has trickled `bytes` bytes of its record.
fn wait_until_trickled(control: &Control, bytes: usize) {
    let started = Instant::now();
    while control.trickled() < bytes {
        assert!(started.elapsed() < DEADLINE, "the trickle did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The server splits; while the peer trickles one record of `size` bytes, a writer on another
/// thread sends 10 messages. Returns the longest send and how much of the record had arrived.
fn writer_wait_behind_a_trickled_record(size: usize, finish: bool) {
    let pki = certs::make();
    let identity = identity(&pki);
    let (go_tx, go) = mpsc::channel::<()>();
    let (waited_tx, waited) = mpsc::channel();
    let (addr, server) = serve_once(move |tcp| {
        let stream = identity.accept(tcp, Some(DEADLINE)).unwrap();
        let ws = Acceptor::new().accept(stream).unwrap();
        let (mut reader, writer) = ws.split().unwrap();
        reader.set_read_timeout(Some(DEADLINE)).unwrap();
        let reading = std::thread::spawn(move || reader.read());
        go.recv_timeout(DEADLINE).unwrap();
        let mut worst = Duration::ZERO;
        for i in 0..10 {
            let started = Instant::now();
            writer
                .send(Message::text(format!("meanwhile {i}")))
                .unwrap();
            worst = worst.max(started.elapsed());
        }
        waited_tx.send(worst).unwrap();
        reading.join().unwrap()
    });
    let (mut peer, control) = trickling_peer(&pki, addr.port());
    control.pace(PACE);
    let payload = noise(size);
    let expected = payload.clone();
    let trickler = std::thread::spawn(move || peer.send(Message::Binary(payload)).map(|()| peer));
    wait_until_trickled(&control, 16);
    go_tx.send(()).unwrap();
    let worst = waited.recv_timeout(DEADLINE * 3).unwrap();
    let arrived = control.trickled();
    eprintln!("{size} B record: longest send {worst:?}, {arrived} bytes trickled by then");
    // Before: the reader held the writer's lock while the record trickled in (8 s for 2 KB).
    assert!(worst < Duration::from_secs(2), "a send waited {worst:?}");
    assert!(
        arrived < size,
        "the record was complete before the sends ended"
    );
    if finish {
        let _peer = trickler.join().unwrap().unwrap();
        let received = server.join().unwrap().unwrap();
        assert_eq!(received, Message::Binary(expected));
    } else {
        control.stop();
        assert!(trickler.join().unwrap().is_err());
        assert!(server.join().unwrap().is_err());
    }
}

#[test]
fn a_trickled_2_kb_tls_record_does_not_hold_up_a_writer() {
    writer_wait_behind_a_trickled_record(2000, true);
}

#[test]
fn a_trickled_16_kb_tls_record_does_not_hold_up_a_writer() {
    writer_wait_behind_a_trickled_record(16 * 1024, false);
}

#[test]
fn a_trickled_tls_record_counts_as_activity_for_the_heartbeat() {
    let pki = certs::make();
    let (ends_tx, ends) = mpsc::channel();
    let ends_tx = std::sync::Mutex::new(ends_tx);
    let (got_tx, got) = mpsc::channel();
    let got_tx = std::sync::Mutex::new(got_tx);
    let server = Server::builder()
        .tls(identity(&pki), DEADLINE)
        .heartbeat(Duration::from_secs(1), Duration::from_secs(1))
        .on_end(move |_, cause| {
            let _ = ends_tx.lock().unwrap().send(cause.clone());
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |mut session| {
            let got_tx = got_tx.lock().unwrap().clone();
            while let Ok(message) = session.read() {
                if message.is_data() {
                    let _ = got_tx.send(message);
                }
            }
        })
        .unwrap();
    let (mut peer, control) = trickling_peer(&pki, server.local_addr().port());
    // 2,000 bytes at 4 ms a byte: about 8 s without a complete record, four heartbeat rounds;
    // the peer answers no ping meanwhile (its one thread is writing).
    control.pace(PACE);
    let payload = noise(2000);
    let started = Instant::now();
    peer.send(Message::Binary(payload.clone())).unwrap();
    let trickled_for = started.elapsed();
    eprintln!("trickled {} bytes in {trickled_for:?}", control.trickled());
    control.pace(Duration::ZERO);
    assert!(trickled_for > Duration::from_secs(3), "{trickled_for:?}");
    // Before: the peer was failed with HeartbeatTimeout mid-record, the message never arrived.
    match got.recv_timeout(DEADLINE) {
        Ok(message) => assert_eq!(message, Message::Binary(payload)),
        Err(_) => panic!("not received; ended with {:?}", ends.try_recv()),
    }
    assert!(ends.try_recv().is_err(), "the connection ended");
    peer.close(syncws::CloseCode::Normal, "").unwrap();
    let ended = ends.recv_timeout(DEADLINE).unwrap();
    assert!(!matches!(ended, EndCause::HeartbeatTimeout), "{ended:?}");
    server.shutdown();
}
