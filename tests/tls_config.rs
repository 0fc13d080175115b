//! The server's TLS configuration (issue 18, item 7), probed with an OpenSSL client: TLS 1.3
//! offered, only forward-secret AEAD suites under TLS 1.2, and the minimum version honoured.
//! Linux/OpenSSL only: elsewhere the platform's TLS library decides (see `TlsIdentity`).
#![cfg(all(
    feature = "native-tls",
    not(any(target_os = "windows", target_vendor = "apple"))
))]

mod common;

use common::DEADLINE;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use std::net::TcpStream;
use syncws::{Server, ServerHandle, TlsIdentity, TlsVersion};

/// A self-signed RSA certificate for localhost and its key, PEM: RSA so that static-RSA
/// (non-forward-secret) suites are possible at all, and can be seen refused.
fn rsa_cert_and_key() -> (
    openssl::x509::X509,
    openssl::pkey::PKey<openssl::pkey::Private>,
) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::{X509, X509NameBuilder};
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    let serial = BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap();
    cert.set_serial_number(&serial).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    (cert.build(), key)
}

fn rsa_identity() -> TlsIdentity {
    let (cert, key) = rsa_cert_and_key();
    TlsIdentity::from_pem(
        &cert.to_pem().unwrap(),
        &key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap()
}

fn server(identity: TlsIdentity) -> ServerHandle {
    Server::builder()
        .tls(identity, DEADLINE)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap()
}

/// What the client asks for: versions, and for TLS 1.2 a cipher list.
struct Offer {
    min: SslVersion,
    max: SslVersion,
    ciphers: Option<&'static str>,
}

/// Handshakes with `offer`; the version and suite agreed, or the error.
fn probe(server: &ServerHandle, offer: Offer) -> Result<(String, String), String> {
    let mut builder = SslConnector::builder(SslMethod::tls_client()).unwrap();
    builder.set_verify(SslVerifyMode::NONE);
    builder.set_min_proto_version(Some(offer.min)).unwrap();
    builder.set_max_proto_version(Some(offer.max)).unwrap();
    if let Some(ciphers) = offer.ciphers {
        // SECLEVEL=0: this client allows whatever it names, so a refusal is the server's.
        builder
            .set_cipher_list(&format!("{ciphers}:@SECLEVEL=0"))
            .unwrap();
    }
    let connector = builder.build();
    let tcp = TcpStream::connect(server.local_addr()).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    tcp.set_write_timeout(Some(DEADLINE)).unwrap();
    let config = connector.configure().unwrap().verify_hostname(false);
    match config.connect("localhost", tcp) {
        Ok(tls) => Ok((
            tls.ssl().version_str().to_string(),
            tls.ssl()
                .current_cipher()
                .map_or(String::new(), |c| c.name().to_string()),
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn tls12(ciphers: &'static str) -> Offer {
    Offer {
        min: SslVersion::TLS1_2,
        max: SslVersion::TLS1_2,
        ciphers: Some(ciphers),
    }
}

const TLS13: Offer = Offer {
    min: SslVersion::TLS1_3,
    max: SslVersion::TLS1_3,
    ciphers: None,
};

#[test]
fn the_server_speaks_tls_1_3() {
    let server = server(rsa_identity());
    let (version, suite) = probe(&server, TLS13).unwrap();
    eprintln!("agreed {version} {suite}");
    assert_eq!(version, "TLSv1.3");
    server.shutdown();
}

#[test]
fn under_tls_1_2_only_forward_secret_aead_suites_are_accepted() {
    let server = server(rsa_identity());
    let accepted = probe(&server, tls12("ECDHE-RSA-AES128-GCM-SHA256")).unwrap();
    assert_eq!(accepted.0, "TLSv1.2");
    for refused in [
        "AES128-GCM-SHA256",       // RSA key exchange: no forward secrecy
        "AES128-SHA",              // and CBC with a SHA-1 MAC
        "ECDHE-RSA-AES128-SHA",    // forward secret, but CBC with SHA-1
        "ECDHE-RSA-AES256-SHA384", // forward secret, but CBC
    ] {
        let result = probe(&server, tls12(refused));
        eprintln!("{refused}: {result:?}");
        assert!(result.is_err(), "{refused} was accepted: {result:?}");
    }
    server.shutdown();
}

#[test]
fn the_minimum_version_is_honoured() {
    let default = server(rsa_identity());
    assert!(probe(&default, tls12("ECDHE-RSA-AES128-GCM-SHA256")).is_ok());
    let old = Offer {
        min: SslVersion::TLS1_1,
        max: SslVersion::TLS1_1,
        ciphers: Some("ECDHE-RSA-AES128-SHA"),
    };
    assert!(probe(&default, old).is_err(), "TLS 1.1 was accepted");
    default.shutdown();

    let strict = server(rsa_identity().min_version(TlsVersion::Tls13).unwrap());
    let result = probe(&strict, tls12("ECDHE-RSA-AES128-GCM-SHA256"));
    assert!(
        result.is_err(),
        "TLS 1.2 accepted above a TLS 1.3 minimum: {result:?}"
    );
    assert_eq!(probe(&strict, TLS13).unwrap().0, "TLSv1.3");
    strict.shutdown();
}

#[test]
fn identities_from_pkcs12_and_bad_input() {
    let (cert, key) = rsa_cert_and_key();
    let archive = openssl::pkcs12::Pkcs12::builder()
        .name("localhost")
        .pkey(&key)
        .cert(&cert)
        .build2("secret")
        .unwrap()
        .to_der()
        .unwrap();
    let identity = TlsIdentity::from_pkcs12(&archive, "secret").unwrap();
    let server = server(identity);
    assert_eq!(probe(&server, TLS13).unwrap().0, "TLSv1.3");
    server.shutdown();

    assert!(TlsIdentity::from_pkcs12(&archive, "wrong").is_err());
    assert!(TlsIdentity::from_pem(b"not a certificate", b"not a key").is_err());
    // A key that does not belong to the certificate.
    let (_, other_key) = rsa_cert_and_key();
    let mismatched = TlsIdentity::from_pem(
        &cert.to_pem().unwrap(),
        &other_key.private_key_to_pem_pkcs8().unwrap(),
    );
    assert!(
        matches!(mismatched, Err(syncws::Error::Tls(_))),
        "{mismatched:?}"
    );
}
