//! wss:// over real TLS on loopback, with certificates made at test time.
#![cfg(feature = "native-tls")]

#[path = "common/certs.rs"]
mod certs;
mod common;

use common::serve_once;
use std::sync::mpsc;
use std::time::Duration;
use syncws::{ClientBuilder, CloseCode, Error, Message};

fn tls_acceptor(pem: &certs::Pem) -> native_tls::TlsAcceptor {
    let identity =
        native_tls::Identity::from_pkcs8(pem.cert.as_bytes(), pem.key.as_bytes()).unwrap();
    native_tls::TlsAcceptor::new(identity).unwrap()
}

/// A wss echo server for one connection, presenting `pem`. Returns what ended it.
fn wss_echo(pem: &certs::Pem) -> (u16, std::thread::JoinHandle<Result<(), String>>) {
    let acceptor = tls_acceptor(pem);
    let (addr, handle) = serve_once(move |tcp| {
        let tls = acceptor.accept(tcp).map_err(|e| e.to_string())?;
        let mut ws = syncws::accept(tls).map_err(|e| e.to_string())?;
        loop {
            match ws.read() {
                Ok(msg) if msg.is_data() => ws.send(msg).map_err(|e| e.to_string())?,
                Ok(Message::Close(_)) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    });
    (addr.port(), handle)
}

#[test]
fn wss_echo_with_a_trusted_private_ca() {
    let pki = certs::make();
    let (port, server) = wss_echo(&pki.server);
    let (mut ws, _) = ClientBuilder::new(format!("wss://localhost:{port}/"))
        .root_certificate(pki.ca.cert.as_bytes())
        .connect()
        .unwrap();
    assert!(ws.get_ref().is_tls());
    for size in [0, 125, 70_000, 1 << 20] {
        let data = vec![0x5a; size];
        ws.send(Message::Binary(data.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::Binary(data));
    }
    ws.close(CloseCode::Normal, "").unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let pki = certs::make();
    let (port, server) = wss_echo(&pki.server);
    let err = ClientBuilder::new(format!("wss://localhost:{port}/"))
        .connect()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tls(e) if e.to_string().contains("certificate")),
        "{err}"
    );
    assert!(server.join().unwrap().is_err());
}

#[test]
fn a_hostname_mismatch_is_refused() {
    let pki = certs::make();
    let (port, server) = wss_echo(&pki.wrong_host);
    let err = ClientBuilder::new(format!("wss://localhost:{port}/"))
        .root_certificate(pki.ca.cert.as_bytes())
        .connect()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tls(e) if e.to_string().contains("localhost") && e.to_string().contains("hostname")),
        "{err}"
    );
    assert!(server.join().unwrap().is_err());
}

#[test]
fn the_loud_opt_out_accepts_anything() {
    let pki = certs::make();
    let (port, server) = wss_echo(&pki.wrong_host);
    let (mut ws, _) = ClientBuilder::new(format!("wss://127.0.0.1:{port}/"))
        .danger_accept_invalid_certs()
        .connect()
        .unwrap();
    ws.send(Message::text("insecure but working")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("insecure but working"));
    ws.close(CloseCode::Normal, "").unwrap();
    server.join().unwrap().unwrap();
}

#[test]
fn a_bad_root_certificate_is_a_clear_error() {
    let err = ClientBuilder::new("wss://127.0.0.1:1/")
        .root_certificate(b"not a pem".to_vec())
        .connect();
    // Connecting to port 1 fails first or the PEM is rejected first; either way no panic.
    assert!(err.is_err());
    let pki = certs::make();
    let (port, _server) = wss_echo(&pki.server);
    let err = ClientBuilder::new(format!("wss://localhost:{port}/"))
        .root_certificate(b"not a pem".to_vec())
        .connect()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tls(e) if e.context() == "invalid root certificate"),
        "{err}"
    );
}

#[test]
fn a_client_certificate_is_presented() {
    use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode};
    use openssl::x509::X509;
    let pki = certs::make();
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    builder
        .set_certificate(&X509::from_pem(pki.server.cert.as_bytes()).unwrap())
        .unwrap();
    builder
        .set_private_key(
            &openssl::pkey::PKey::private_key_from_pem(pki.server.key.as_bytes()).unwrap(),
        )
        .unwrap();
    builder
        .cert_store_mut()
        .add_cert(X509::from_pem(pki.ca.cert.as_bytes()).unwrap())
        .unwrap();
    // Demand a client certificate signed by the CA.
    builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    let acceptor = builder.build();
    let (addr, server) = serve_once(move |tcp| {
        let tls = acceptor.accept(tcp).map_err(|e| e.to_string())?;
        let subject = tls
            .ssl()
            .peer_certificate()
            .map(|c| format!("{:?}", c.subject_alt_names()));
        let mut ws = syncws::accept(tls).map_err(|e| e.to_string())?;
        let msg = ws.read().map_err(|e| e.to_string())?;
        Ok::<_, String>((subject, msg))
    });
    let (mut ws, _) = ClientBuilder::new(format!("wss://localhost:{}/", addr.port()))
        .root_certificate(pki.ca.cert.as_bytes())
        .client_certificate(pki.client.cert.as_bytes(), pki.client.key.as_bytes())
        .connect()
        .unwrap();
    ws.send(Message::text("with my certificate")).unwrap();
    let (subject, msg) = server.join().unwrap().unwrap();
    assert!(subject.unwrap().contains("client.test"));
    assert_eq!(msg, Message::text("with my certificate"));
}

#[test]
fn a_timed_out_read_over_tls_is_retried_without_losing_the_frame() {
    let pki = certs::make();
    let acceptor = tls_acceptor(&pki.server);
    let (go_on, wait) = mpsc::channel::<()>();
    let (addr, server) = serve_once(move |tcp| {
        let tls = acceptor.accept(tcp).unwrap();
        let mut ws = syncws::accept(tls).unwrap();
        // Send the first half of a frame, wait until the client has timed out, send the rest.
        let mut frame = Vec::new();
        syncws::proto::frame::encode_frame(
            &syncws::proto::frame::FrameHeader::new(syncws::proto::frame::OpCode::Text, 11),
            b"hello world",
            &mut frame,
        );
        use std::io::Write;
        ws.get_mut().write_all(&frame[..6]).unwrap();
        ws.get_mut().flush().unwrap();
        wait.recv_timeout(common::DEADLINE).unwrap();
        ws.get_mut().write_all(&frame[6..]).unwrap();
        ws.get_mut().flush().unwrap();
        ws.read().ok()
    });
    let (mut ws, _) = ClientBuilder::new(format!("wss://localhost:{}/", addr.port()))
        .root_certificate(pki.ca.cert.as_bytes())
        .read_timeout(Some(Duration::from_millis(100)))
        .connect()
        .unwrap();
    let err = ws.read().unwrap_err();
    assert!(err.is_timeout(), "{err}");
    go_on.send(()).unwrap();
    ws.get_ref()
        .set_read_timeout(Some(common::DEADLINE))
        .unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello world"));
    drop(ws);
    server.join().unwrap();
}
