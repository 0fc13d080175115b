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

    /// Runs the TLS handshake over `tcp` for `host` (SNI and hostname verification use it), all
    /// of it by `deadline`. The deadline stays in force on the stream, for the WebSocket
    /// handshake that follows: the caller ends it with `NetStream::set_deadline(None)`.
    pub(crate) fn wrap(
        &self,
        host: &str,
        tcp: TcpStream,
        deadline: Option<std::time::Instant>,
    ) -> Result<crate::net_stream::TlsStream, Error> {
        // Shared by reference count: a split reader waits on the same socket, no second fd.
        let mut socket = crate::tls_socket::TlsSocket::new(std::sync::Arc::new(tcp));
        socket.set_deadline(deadline);
        let tls = self
            .connector()?
            .connect(host, socket)
            .map_err(|e| match e {
                native_tls::HandshakeError::Failure(e) => {
                    Error::Tls(format!("TLS handshake with {host} failed: {e}"))
                }
                // Ours block: a read or write timed out, or the deadline passed.
                native_tls::HandshakeError::WouldBlock(_) => {
                    Error::Tls(format!("TLS handshake with {host} timed out"))
                }
            })?;
        Ok(crate::net_stream::TlsStream::new(tls))
    }
}

/// A server's certificate chain and private key, for `wss://` (feature `native-tls`).
///
/// ```no_run
/// let identity = syncws::TlsIdentity::from_pem(
///     &std::fs::read("cert.pem")?,
///     &std::fs::read("key.pem")?,
/// )?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "native-tls")]
#[derive(Clone)]
pub struct TlsIdentity {
    acceptor: native_tls::TlsAcceptor,
}

#[cfg(feature = "native-tls")]
impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsIdentity")
    }
}

#[cfg(feature = "native-tls")]
impl TlsIdentity {
    /// From a PEM certificate chain (leaf first) and a PEM PKCS#8 private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsIdentity, Error> {
        let identity = native_tls::Identity::from_pkcs8(cert_pem, key_pem)
            .map_err(|e| Error::Tls(format!("invalid certificate or key: {e}")))?;
        TlsIdentity::new(identity)
    }

    /// From a PKCS#12 archive (`.p12` / `.pfx`) and its password.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<TlsIdentity, Error> {
        let identity = native_tls::Identity::from_pkcs12(der, password)
            .map_err(|e| Error::Tls(format!("invalid PKCS#12 archive: {e}")))?;
        TlsIdentity::new(identity)
    }

    fn new(identity: native_tls::Identity) -> Result<TlsIdentity, Error> {
        let acceptor = native_tls::TlsAcceptor::new(identity)
            .map_err(|e| Error::Tls(format!("TLS setup failed: {e}")))?;
        Ok(TlsIdentity { acceptor })
    }

    /// Runs the server's TLS handshake on `tcp` within `timeout` (on the caller's thread): one
    /// deadline for the whole handshake, however slowly the client sends.
    pub fn accept(
        &self,
        tcp: TcpStream,
        timeout: Option<std::time::Duration>,
    ) -> Result<crate::NetStream, Error> {
        let tls = self.accept_shared(std::sync::Arc::new(tcp), timeout)?;
        Ok(crate::NetStream::Tls(Box::new(tls)))
    }

    /// The handshake over a socket shared by reference count (the server keeps a handle to
    /// shut it down), all of it within `timeout`; the socket's timeouts are left at `timeout`.
    pub(crate) fn accept_shared(
        &self,
        tcp: std::sync::Arc<TcpStream>,
        timeout: Option<std::time::Duration>,
    ) -> Result<crate::net_stream::TlsStream, Error> {
        tcp.set_read_timeout(timeout)?;
        tcp.set_write_timeout(timeout)?;
        let mut socket = crate::tls_socket::TlsSocket::new(std::sync::Arc::clone(&tcp));
        socket.set_deadline(timeout.and_then(|t| std::time::Instant::now().checked_add(t)));
        let mut tls = self
            .acceptor
            .accept(socket)
            .map_err(|e| match e {
                native_tls::HandshakeError::Failure(e) => {
                    Error::Tls(format!("TLS handshake failed: {e}"))
                }
                native_tls::HandshakeError::WouldBlock(_) => {
                    Error::Tls("TLS handshake timed out".into())
                }
            })?;
        tls.get_mut().set_deadline(None);
        tcp.set_read_timeout(timeout)?;
        tcp.set_write_timeout(timeout)?;
        Ok(crate::net_stream::TlsStream::new(tls))
    }
}
