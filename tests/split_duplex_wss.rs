//! Issue 17's headline over wss://: the cases of `split_duplex.rs`, both ends split over TLS,
//! both directions saturated at once, payloads checked byte for byte.
#![cfg(feature = "native-tls")]

#[path = "common/certs.rs"]
mod certs;
mod duplex;

use std::net::SocketAddr;
use std::time::Duration;
use syncws::{ClientBuilder, Reader, Server, ServerBuilder, TlsIdentity, Writer};

/// A TLS server builder and a client connect for it, from a fresh test PKI.
fn wss() -> (
    ServerBuilder,
    impl FnOnce(SocketAddr) -> (Reader, Writer) + Send + 'static,
) {
    let pki = certs::make();
    let identity =
        TlsIdentity::from_pem(pki.server.cert.as_bytes(), pki.server.key.as_bytes()).unwrap();
    let ca = pki.ca.cert.clone();
    let connect = move |addr: SocketAddr| {
        let (ws, _) = ClientBuilder::new(format!("wss://localhost:{}/", addr.port()))
            .root_certificate(ca.as_bytes())
            .connect()
            .expect("connect");
        ws.split().expect("split")
    };
    (
        Server::builder().tls(identity, Duration::from_secs(10)),
        connect,
    )
}

#[test]
fn eight_one_mib_messages_each_way_at_once_over_tls() {
    let (builder, connect) = wss();
    duplex::exchange(builder, connect, 8, 1 << 20);
}

#[test]
fn sixty_four_one_mib_messages_each_way_at_once_over_tls() {
    let (builder, connect) = wss();
    duplex::exchange(builder, connect, 64, 1 << 20);
}

#[test]
fn two_hundred_fifty_six_64_kib_messages_each_way_at_once_over_tls() {
    let (builder, connect) = wss();
    duplex::exchange(builder, connect, 256, 64 << 10);
}

#[test]
fn two_thousand_1_kib_messages_each_way_at_once_over_tls() {
    let (builder, connect) = wss();
    duplex::exchange(builder, connect, 2000, 1 << 10);
}
