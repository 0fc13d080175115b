//! A wss:// connection that ends cleanly ends its TLS session cleanly too: after the closing
//! handshake the server sends TLS close_notify (RFC 8446 §6.1) before it closes TCP, so the
//! client's TLS layer sees the end of the data, not a truncated stream.
#![cfg(feature = "native-tls")]

#[path = "common/certs.rs"]
mod certs;
mod common;

use std::io::Read;
use std::time::Duration;
use syncws::{ClientBuilder, CloseCode, Message, Server, TlsIdentity};

#[test]
fn after_the_closing_handshake_the_server_sends_tls_close_notify() {
    let pki = certs::make();
    let identity =
        TlsIdentity::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap();
    let server = Server::builder()
        .tls(identity, Duration::from_secs(10))
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap();
    // An OpenSSL client, which can tell a close_notify from a bare TCP close.
    let mut connector =
        openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
    connector
        .cert_store_mut()
        .add_cert(openssl::x509::X509::from_pem(pki.ca.cert.as_bytes()).unwrap())
        .unwrap();
    let tcp = std::net::TcpStream::connect(server.local_addr()).unwrap();
    tcp.set_read_timeout(Some(common::DEADLINE)).unwrap();
    let tls = connector.build().connect("localhost", tcp).unwrap();
    let (mut ws, _) =
        ClientBuilder::new(format!("wss://localhost:{}/", server.local_addr().port()))
            .connect_on(tls)
            .unwrap();
    ws.send(Message::text("hello")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello"));
    ws.send(Message::Close(Some(syncws::CloseFrame::new(
        CloseCode::Normal,
        "bye",
    ))))
    .unwrap();
    assert!(matches!(ws.read().unwrap(), Message::Close(_)));
    // Below the WebSocket layer: read to the end of the TLS stream, then ask OpenSSL whether it
    // ended with the server's close_notify or with TCP alone.
    let tls = ws.get_mut();
    let mut rest = [0u8; 64];
    while matches!(tls.read(&mut rest), Ok(n) if n > 0) {}
    assert!(
        tls.get_shutdown()
            .contains(openssl::ssl::ShutdownState::RECEIVED),
        "the TLS session ended without close_notify"
    );
    server.shutdown();
}
