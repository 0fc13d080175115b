//! Test certificates made at test time: a CA, a server certificate for localhost/127.0.0.1 signed
//! by it, and a client certificate.
#![allow(dead_code)]

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// PEM strings for one certificate and its private key.
pub struct Pem {
    pub cert: String,
    pub key: String,
}

pub type Pki = TestPki;

pub struct TestPki {
    pub ca: Pem,
    pub server: Pem,
    pub client: Pem,
    /// A server certificate for another host name, signed by the same CA.
    pub wrong_host: Pem,
}

fn leaf(names: &[&str], issuer: &Issuer<'_, KeyPair>) -> Pem {
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

pub fn make() -> TestPki {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "syncws test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = params.self_signed(&ca_key).unwrap();
    let ca = Pem {
        cert: ca_cert.pem(),
        key: ca_key.serialize_pem(),
    };
    let issuer = Issuer::new(params, ca_key);
    TestPki {
        server: leaf(&["localhost", "127.0.0.1"], &issuer),
        client: leaf(&["client.test"], &issuer),
        wrong_host: leaf(&["other.example"], &issuer),
        ca,
    }
}
