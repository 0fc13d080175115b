//! One total deadline for each handshake over TLS, however slowly the peer sends: the TLS
//! handshake (server and client) and the WebSocket handshake that follows it (issue 18, item 4).
//! Before, each read had its own timeout, so a byte every so often kept a handshake alive.
#![cfg(feature = "native-tls")]

#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "common/trickle.rs"]
mod trickle;

use common::DEADLINE;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use syncws::{ClientBuilder, Config, Server, TlsIdentity};
use trickle::Trickle;

/// The setting under test; the trickles below would take 20 s and more.
const SETTING: Duration = Duration::from_secs(1);
/// Generous, for a loaded machine: cut within this, where the trickle needs many times more.
const CUT_WITHIN: Duration = Duration::from_secs(8);

fn identity(pki: &certs::Pki) -> TlsIdentity {
    TlsIdentity::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap()
}

fn config_with_handshake_timeout(timeout: Duration) -> Config {
    let mut config = Config::default();
    config.handshake_timeout = Some(timeout);
    config
}

/// Sends `head`, then a byte of `body` every `pace`, until a write fails or the peer closes.
/// Returns how long the peer kept the connection.
fn trickle_raw(tcp: TcpStream, head: &[u8], body_len: usize, pace: Duration) -> Duration {
    let started = Instant::now();
    let mut reader = tcp.try_clone().unwrap();
    reader.set_read_timeout(Some(DEADLINE * 4)).unwrap();
    let closed = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
        started.elapsed()
    });
    let mut writer = tcp;
    let _ = writer.write_all(head);
    for _ in 0..body_len {
        if closed.is_finished() || writer.write_all(&[0x42]).is_err() {
            break;
        }
        std::thread::sleep(pace);
    }
    let _ = writer.shutdown(std::net::Shutdown::Both);
    closed.join().unwrap()
}

#[test]
fn a_trickled_client_hello_is_cut_at_the_tls_timeout() {
    let pki = certs::make();
    let server = Server::builder()
        .tls(identity(&pki), SETTING)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap();
    let tcp = TcpStream::connect(server.local_addr()).unwrap();
    // A handshake record announcing 256 bytes, which then come one every 200 ms (51 s).
    let kept = trickle_raw(
        tcp,
        &[0x16, 0x03, 0x01, 0x01, 0x00],
        256,
        Duration::from_millis(200),
    );
    eprintln!("a trickled ClientHello was kept {kept:?} (TLS timeout {SETTING:?})");
    assert!(kept < CUT_WITHIN, "kept {kept:?}");
    server.shutdown();
}

#[test]
fn a_client_tls_handshake_with_a_trickling_server_is_cut_at_the_handshake_timeout() {
    let pki = certs::make();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        // A handshake record announcing 256 bytes, then a byte every 200 ms.
        trickle_raw(
            tcp,
            &[0x16, 0x03, 0x03, 0x01, 0x00],
            256,
            Duration::from_millis(200),
        )
    });
    let started = Instant::now();
    let result = ClientBuilder::new(format!("wss://localhost:{port}/"))
        .root_certificate(pki.ca.cert.as_bytes())
        .config(config_with_handshake_timeout(SETTING))
        .connect();
    let took = started.elapsed();
    eprintln!("the client gave up on a trickling TLS server after {took:?}: {result:?}");
    assert!(result.is_err());
    assert!(took < CUT_WITHIN, "took {took:?}");
    server.join().unwrap();
}

/// A request head of about 2,600 bytes: one TLS record.
fn long_upgrade_request() -> Vec<u8> {
    common::upgrade_request(&format!("X-Padding: {}\r\n", "p".repeat(2500))).into_bytes()
}

#[test]
fn a_trickled_upgrade_request_over_tls_is_cut_at_the_handshake_timeout() {
    let pki = certs::make();
    let server = Server::builder()
        .tls(identity(&pki), DEADLINE)
        .config(config_with_handshake_timeout(SETTING))
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap();
    let tcp = TcpStream::connect(server.local_addr()).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    tcp.set_write_timeout(Some(DEADLINE)).unwrap();
    let (stream, control) = Trickle::new(tcp);
    let ca = native_tls::Certificate::from_pem(pki.ca.cert.as_bytes()).unwrap();
    let connector = native_tls::TlsConnector::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let mut tls = connector.connect("localhost", stream).unwrap();
    // The TLS handshake went at full speed; the request's record comes a byte every 8 ms (21 s).
    control.pace(Duration::from_millis(8));
    let started = Instant::now();
    let sent = tls.write_all(&long_upgrade_request());
    let kept = started.elapsed();
    eprintln!(
        "a trickled upgrade request was kept {kept:?}, {} bytes (handshake timeout {SETTING:?})",
        control.trickled()
    );
    assert!(sent.is_err(), "the whole request went through");
    assert!(kept < CUT_WITHIN, "kept {kept:?}");
    server.shutdown();
}

#[test]
fn a_trickled_upgrade_response_over_tls_is_cut_at_the_client_handshake_timeout() {
    let pki = certs::make();
    let identity =
        native_tls::Identity::from_pkcs8(pki.server.cert.as_bytes(), pki.server.key.as_bytes())
            .unwrap();
    let acceptor = native_tls::TlsAcceptor::new(identity).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        tcp.set_write_timeout(Some(DEADLINE)).unwrap();
        let (stream, control) = Trickle::new(tcp);
        let mut tls = acceptor.accept(stream).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && tls.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        // One record of about 2,600 bytes, a byte every 8 ms (21 s), until the client hangs up.
        control.pace(Duration::from_millis(8));
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nX-Padding: {}\r\n",
            "p".repeat(2500)
        );
        let _ = tls.write_all(response.as_bytes());
    });
    let started = Instant::now();
    let result = ClientBuilder::new(format!("wss://localhost:{port}/"))
        .root_certificate(pki.ca.cert.as_bytes())
        .config(config_with_handshake_timeout(SETTING))
        .connect();
    let took = started.elapsed();
    eprintln!("the client gave up on a trickled upgrade response after {took:?}: {result:?}");
    assert!(result.is_err());
    assert!(took < CUT_WITHIN, "took {took:?}");
    server.join().unwrap();
}
