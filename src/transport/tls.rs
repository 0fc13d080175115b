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
use {
    crate::error::{Error, TlsError},
    std::net::TcpStream,
};

#[cfg(feature = "native-tls")]
impl TlsOptions {
    fn connector(&self) -> Result<native_tls::TlsConnector, Error> {
        let mut builder = native_tls::TlsConnector::builder();
        for pem in &self.root_certificates {
            let cert = native_tls::Certificate::from_pem(pem)
                .map_err(|e| TlsError::new("invalid root certificate", e))?;
            builder.add_root_certificate(cert);
        }
        if let Some((cert, key)) = &self.client_identity {
            let identity = native_tls::Identity::from_pkcs8(cert, key)
                .map_err(|e| TlsError::new("invalid client certificate or key", e))?;
            builder.identity(identity);
        }
        if self.danger_accept_invalid_certs {
            builder.danger_accept_invalid_certs(true);
            builder.danger_accept_invalid_hostnames(true);
        }
        builder
            .build()
            .map_err(|e| TlsError::new("TLS setup failed", e).into())
    }

    /// Runs the TLS handshake over `tcp` for `host` (SNI and hostname verification use it), all
    /// of it by `deadline`. The deadline stays in force on the stream, for the WebSocket
    /// handshake that follows: the caller ends it with `NetStream::set_deadline(None)`.
    pub(crate) fn wrap(
        &self,
        host: &str,
        tcp: TcpStream,
        deadline: Option<std::time::Instant>,
    ) -> Result<crate::transport::net_stream::TlsStream, Error> {
        // Shared by reference count: a split reader waits on the same socket, no second fd.
        let mut socket = crate::transport::tls_socket::TlsSocket::new(std::sync::Arc::new(tcp));
        socket.set_deadline(deadline);
        let tls = self
            .connector()?
            .connect(host, socket)
            .map_err(|e| match e {
                native_tls::HandshakeError::Failure(e) => {
                    TlsError::new(format!("TLS handshake with {host} failed"), e).into()
                }
                // Ours block: a read or write timed out, or the deadline passed. Either way the
                // opening handshake ran out of time, as it would have in its HTTP part.
                native_tls::HandshakeError::WouldBlock(_) => {
                    Error::Handshake(crate::error::HandshakeError::Timeout)
                }
            })?;
        Ok(crate::transport::net_stream::TlsStream::new(
            crate::transport::tls_session::Session::Native(tls),
        ))
    }
}

/// The lowest TLS version a server accepts; see [`TlsIdentity::min_version`].
#[cfg(feature = "native-tls")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 (RFC 5246), the default minimum.
    Tls12,
    /// TLS 1.3 (RFC 8446) only.
    Tls13,
}

/// A server's certificate chain and private key, for `wss://` (feature `native-tls`), and the
/// TLS settings the server uses with them.
///
/// ```no_run
/// let identity = syncws::TlsIdentity::from_pem(
///     &std::fs::read("cert.pem")?,
///     &std::fs::read("key.pem")?,
/// )?
/// .min_version(syncws::TlsVersion::Tls13)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # What each platform offers
///
/// - **Linux and other OpenSSL platforms**: TLS 1.2 and TLS 1.3, and only forward-secret AEAD
///   suites: ECDHE (or finite-field DHE) with AES-GCM or ChaCha20-Poly1305 for TLS 1.2, and the
///   TLS 1.3 suites (Mozilla's "intermediate" v5 profile). CBC, SHA-1 MAC, static-RSA key
///   exchange and TLS 1.0/1.1 are refused. The acceptor is built with the `openssl` crate
///   directly, because native-tls's own keeps TLS 1.3 off and accepts CBC and
///   non-forward-secret suites (Mozilla "intermediate" v4).
/// - **Windows (SChannel) and Apple platforms (Security.framework)**: native-tls's acceptor;
///   versions and suites are what the operating system enables, from the minimum version set
///   here up. Whether TLS 1.3 is offered depends on the platform and its version (not tested
///   here); with [`TlsVersion::Tls13`] a platform without it fails every handshake.
#[cfg(feature = "native-tls")]
#[derive(Clone)]
pub struct TlsIdentity {
    material: Material,
    min_version: TlsVersion,
    acceptor: Acceptor,
}

#[cfg(feature = "native-tls")]
impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("min_version", &self.min_version)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "native-tls")]
impl TlsIdentity {
    /// From a PEM certificate chain (leaf first) and a PEM PKCS#8 private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsIdentity, Error> {
        TlsIdentity::new(Material::from_pem(cert_pem, key_pem)?)
    }

    /// From a PKCS#12 archive (`.p12` / `.pfx`) and its password.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<TlsIdentity, Error> {
        TlsIdentity::new(Material::from_pkcs12(der, password)?)
    }

    /// The lowest TLS version accepted: [`TlsVersion::Tls12`] by default. A client offering
    /// only older versions fails the handshake.
    ///
    /// Errors: [`Error::Tls`] if the platform's TLS library cannot be set up so.
    pub fn min_version(self, version: TlsVersion) -> Result<TlsIdentity, Error> {
        let acceptor = Acceptor::new(&self.material, version)?;
        Ok(TlsIdentity {
            min_version: version,
            acceptor,
            ..self
        })
    }

    fn new(material: Material) -> Result<TlsIdentity, Error> {
        let acceptor = Acceptor::new(&material, TlsVersion::Tls12)?;
        Ok(TlsIdentity {
            material,
            min_version: TlsVersion::Tls12,
            acceptor,
        })
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
    ) -> Result<crate::transport::net_stream::TlsStream, Error> {
        tcp.set_read_timeout(timeout)?;
        tcp.set_write_timeout(timeout)?;
        let mut socket = crate::transport::tls_socket::TlsSocket::new(std::sync::Arc::clone(&tcp));
        socket.set_deadline(timeout.and_then(|t| std::time::Instant::now().checked_add(t)));
        let mut session = self.acceptor.accept(socket)?;
        session.socket_mut().set_deadline(None);
        tcp.set_read_timeout(timeout)?;
        tcp.set_write_timeout(timeout)?;
        Ok(crate::transport::net_stream::TlsStream::new(session))
    }
}

/// Where native-tls runs on OpenSSL: our own OpenSSL acceptor.
#[cfg(all(
    feature = "native-tls",
    not(any(target_os = "windows", target_vendor = "apple"))
))]
mod platform {
    use super::TlsVersion;
    use crate::error::{Error, TlsError};
    use crate::transport::tls_session::Session;
    use crate::transport::tls_socket::TlsSocket;
    use openssl::pkey::{PKey, Private};
    use openssl::ssl::{HandshakeError, SslAcceptor, SslMethod, SslVersion};
    use openssl::x509::X509;

    fn tls_error(context: &str) -> impl Fn(openssl::error::ErrorStack) -> Error + '_ {
        move |e| TlsError::new(context, e).into()
    }

    /// The certificate chain (leaf first) and key, kept to build acceptors from.
    #[derive(Clone)]
    pub(super) struct Material {
        chain: Vec<X509>,
        key: PKey<Private>,
    }

    impl Material {
        pub(super) fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Material, Error> {
            let invalid = tls_error("invalid certificate or key");
            let chain = X509::stack_from_pem(cert_pem).map_err(&invalid)?;
            if chain.is_empty() {
                return Err(TlsError::message(
                    "invalid certificate or key: no certificate in the PEM",
                )
                .into());
            }
            let key = PKey::private_key_from_pem(key_pem).map_err(&invalid)?;
            Ok(Material { chain, key })
        }

        pub(super) fn from_pkcs12(der: &[u8], password: &str) -> Result<Material, Error> {
            let invalid = tls_error("invalid PKCS#12 archive");
            let parsed = openssl::pkcs12::Pkcs12::from_der(der)
                .and_then(|archive| archive.parse2(password))
                .map_err(&invalid)?;
            let (Some(leaf), Some(key)) = (parsed.cert, parsed.pkey) else {
                return Err(
                    TlsError::message("invalid PKCS#12 archive: no certificate or key").into(),
                );
            };
            let mut chain = vec![leaf];
            chain.extend(parsed.ca.into_iter().flatten());
            Ok(Material { chain, key })
        }
    }

    #[derive(Clone)]
    pub(super) struct Acceptor(SslAcceptor);

    impl Acceptor {
        /// Mozilla "intermediate" v5: TLS 1.2 and 1.3, forward-secret AEAD suites only.
        pub(super) fn new(material: &Material, min: TlsVersion) -> Result<Acceptor, Error> {
            let setup = tls_error("TLS setup failed");
            let mut builder =
                SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(&setup)?;
            let min = match min {
                TlsVersion::Tls12 => SslVersion::TLS1_2,
                TlsVersion::Tls13 => SslVersion::TLS1_3,
            };
            builder.set_min_proto_version(Some(min)).map_err(&setup)?;
            builder.set_private_key(&material.key).map_err(&setup)?;
            let (leaf, rest) = material.chain.split_first().expect("checked when parsed");
            builder.set_certificate(leaf).map_err(&setup)?;
            for cert in rest {
                builder.add_extra_chain_cert(cert.clone()).map_err(&setup)?;
            }
            builder.check_private_key().map_err(&setup)?;
            // OpenSSL's own record buffers (about 34 KiB) are freed while a connection is idle.
            builder.set_mode(openssl::ssl::SslMode::RELEASE_BUFFERS);
            Ok(Acceptor(builder.build()))
        }

        pub(super) fn accept(&self, socket: TlsSocket) -> Result<Session, Error> {
            match self.0.accept(socket) {
                Ok(tls) => Ok(Session::OpenSsl(tls)),
                // Our sockets block: a read or write timed out, or the deadline passed.
                Err(HandshakeError::WouldBlock(_)) => {
                    Err(TlsError::message("TLS handshake timed out").into())
                }
                Err(HandshakeError::Failure(mid)) => {
                    Err(TlsError::new("TLS handshake failed", mid.into_error()).into())
                }
                Err(HandshakeError::SetupFailure(e)) => {
                    Err(TlsError::new("TLS handshake failed", e).into())
                }
            }
        }
    }
}

/// Elsewhere: native-tls's acceptor, with the minimum version set.
#[cfg(all(
    feature = "native-tls",
    any(target_os = "windows", target_vendor = "apple")
))]
mod platform {
    use super::TlsVersion;
    use crate::error::{Error, TlsError};
    use crate::transport::tls_session::Session;
    use crate::transport::tls_socket::TlsSocket;

    #[derive(Clone)]
    pub(super) struct Material(native_tls::Identity);

    impl Material {
        pub(super) fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Material, Error> {
            native_tls::Identity::from_pkcs8(cert_pem, key_pem)
                .map(Material)
                .map_err(|e| TlsError::new("invalid certificate or key", e).into())
        }

        pub(super) fn from_pkcs12(der: &[u8], password: &str) -> Result<Material, Error> {
            native_tls::Identity::from_pkcs12(der, password)
                .map(Material)
                .map_err(|e| TlsError::new("invalid PKCS#12 archive", e).into())
        }
    }

    #[derive(Clone)]
    pub(super) struct Acceptor(native_tls::TlsAcceptor);

    impl Acceptor {
        pub(super) fn new(material: &Material, min: TlsVersion) -> Result<Acceptor, Error> {
            let min = match min {
                TlsVersion::Tls12 => native_tls::Protocol::Tlsv12,
                TlsVersion::Tls13 => native_tls::Protocol::Tlsv13,
            };
            native_tls::TlsAcceptor::builder(material.0.clone())
                .min_protocol_version(Some(min))
                .build()
                .map(Acceptor)
                .map_err(|e| TlsError::new("TLS setup failed", e).into())
        }

        pub(super) fn accept(&self, socket: TlsSocket) -> Result<Session, Error> {
            self.0
                .accept(socket)
                .map(Session::Native)
                .map_err(|e| match e {
                    native_tls::HandshakeError::Failure(e) => {
                        TlsError::new("TLS handshake failed", e).into()
                    }
                    native_tls::HandshakeError::WouldBlock(_) => {
                        TlsError::message("TLS handshake timed out").into()
                    }
                })
        }
    }
}

#[cfg(feature = "native-tls")]
use platform::{Acceptor, Material};
