//! Both ends split over wss://, both directions saturated at once: each end's writer sends while
//! its reader reads, payloads checked byte for byte (issue 17, headline, over TLS). Neither side
//! may wait for the other's reader to finish a write: before, the reader took the writer's lock.
#![cfg(feature = "native-tls")]

#[path = "common/certs.rs"]
mod certs;
mod common;

use common::DEADLINE;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use syncws::{ClientBuilder, Message, Reader, Server, TlsIdentity, Writer};

/// Generous, for a loaded 2-core machine: the exchange takes well under a second unloaded.
const BOUND: Duration = Duration::from_secs(120);

/// Message `index` from the end called `from`: distinct per message and per end.
fn payload(from: u8, index: usize, size: usize) -> Vec<u8> {
    let seed = (index as u32).wrapping_mul(2_654_435_761) ^ u32::from(from) << 24;
    let mut state = seed | 1;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Sends `count` messages of `size` bytes from a thread of its own.
fn send_all(
    writer: Writer,
    from: u8,
    count: usize,
    size: usize,
) -> std::thread::JoinHandle<Result<(), String>> {
    std::thread::spawn(move || {
        for i in 0..count {
            writer
                .send(Message::Binary(payload(from, i, size)))
                .map_err(|e| format!("send {i} of {count}: {e}"))?;
        }
        Ok(())
    })
}

/// Reads `count` messages and checks each byte for byte.
fn receive_all(
    read: &mut dyn FnMut() -> Result<Message, syncws::Error>,
    from: u8,
    count: usize,
    size: usize,
) -> Result<(), String> {
    for i in 0..count {
        match read() {
            Ok(Message::Binary(bytes)) => {
                if bytes != payload(from, i, size) {
                    return Err(format!("message {i} of {count} differs"));
                }
            }
            Ok(other) => return Err(format!("message {i}: unexpected {other:?}")),
            Err(e) => return Err(format!("read {i} of {count}: {e}")),
        }
    }
    Ok(())
}

const CLIENT: u8 = 1;
const SERVER: u8 = 2;

fn saturate_both_ways(count: usize, size: usize) {
    let pki = certs::make();
    let identity =
        TlsIdentity::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap();
    let (outcome_tx, outcome) = mpsc::channel();
    let outcome_tx = std::sync::Mutex::new(outcome_tx);
    let server = Server::builder()
        .tls(identity, DEADLINE)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |mut session| {
            let sending = send_all(session.writer(), SERVER, count, size);
            let received = receive_all(&mut || session.read(), CLIENT, count, size);
            let sent = sending.join().unwrap();
            let _ = outcome_tx.lock().unwrap().send((received, sent));
            // Wait for the client's close.
            while session.read().is_ok() {}
        })
        .unwrap();
    let started = Instant::now();
    let (ws, _) = ClientBuilder::new(format!("wss://localhost:{}/", server.local_addr().port()))
        .root_certificate(pki.ca.cert.as_bytes())
        .connect()
        .unwrap();
    let (mut reader, writer): (Reader, Writer) = ws.split().unwrap();
    reader.set_read_timeout(Some(BOUND)).unwrap();
    let sending = send_all(writer.clone(), CLIENT, count, size);
    let received = receive_all(&mut || reader.read(), SERVER, count, size);
    let sent = sending.join().unwrap();
    let (server_received, server_sent) = outcome.recv_timeout(BOUND).unwrap();
    let took = started.elapsed();
    eprintln!("wss {count} x {size} B each way at once: {took:?}");
    assert_eq!(received, Ok(()), "client reader");
    assert_eq!(sent, Ok(()), "client writer");
    assert_eq!(server_received, Ok(()), "server reader");
    assert_eq!(server_sent, Ok(()), "server writer");
    assert!(took < BOUND, "took {took:?}");
    writer.close(syncws::CloseCode::Normal, "").unwrap();
    assert!(matches!(reader.read(), Ok(Message::Close(_))));
    server.shutdown();
}

#[test]
fn wss_both_ends_split_64_messages_of_1_mib_each_way_at_once() {
    saturate_both_ways(64, 1 << 20);
}

#[test]
fn wss_both_ends_split_256_messages_of_64_kib_each_way_at_once() {
    saturate_both_ways(256, 64 << 10);
}
