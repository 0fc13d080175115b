//! TLS settings for `wss://` clients, and the TLS handshake (feature `native-tls`).
//!
//! Verification is on by default: the server's certificate must chain to a trusted root (the
//! system's, plus any added here) and name the host in the URL. Server Name Indication is sent.

/// How a client verifies and presents itself over TLS. Defaults: system roots, full verification,
/// no client certificate.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra trusted root certificates, PEM-encoded (e.g. a private CA).
    pub root_certificates: Vec<Vec<u8>>,
    /// A client certificate and its PKCS#8 private key, both PEM-encoded.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Accept any certificate and any host name. Only for testing: it removes all protection
    /// against a man in the middle.
    pub danger_accept_invalid_certs: bool,
}

#[cfg(feature = "native-tls")]
use {crate::error::Error, std::net::TcpStream};

#[cfg(feature = "native-tls")]
impl TlsOptions {
    fn connector(&self) -> Result<native_tls::TlsConnector, Error> {
        let mut builder = native_tls::TlsConnector::builder();
        for pem in &self.root_certificates {
            let cert = native_tls::Certificate::from_pem(pem)
                .map_err(|e| Error::Tls(format!("invalid root certificate: {e}")))?;
            builder.add_root_certificate(cert);
        }
        if let Some((cert, key)) = &self.client_identity {
            let identity = native_tls::Identity::from_pkcs8(cert, key)
                .map_err(|e| Error::Tls(format!("invalid client certificate or key: {e}")))?;
            builder.identity(identity);
        }
        if self.danger_accept_invalid_certs {
            builder.danger_accept_invalid_certs(true);
            builder.danger_accept_invalid_hostnames(true);
        }
        builder
            .build()
            .map_err(|e| Error::Tls(format!("TLS setup failed: {e}")))
    }

    /// Runs the TLS handshake over `tcp` for `host` (SNI and hostname verification use it).
    pub(crate) fn wrap(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<native_tls::TlsStream<TcpStream>, Error> {
        self.connector()?.connect(host, tcp).map_err(|e| match e {
            native_tls::HandshakeError::Failure(e) => {
                Error::Tls(format!("TLS handshake with {host} failed: {e}"))
            }
            // Only reachable on a non-blocking socket; ours block, so this is a timeout.
            native_tls::HandshakeError::WouldBlock(_) => {
                Error::Tls(format!("TLS handshake with {host} timed out"))
            }
        })
    }
}
