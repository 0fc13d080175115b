//! A TLS session over a [`TlsSocket`] (feature `native-tls`): native-tls's, or, for a server on
//! the platforms where native-tls runs on OpenSSL, one from our own OpenSSL acceptor (see
//! [`TlsIdentity`](crate::TlsIdentity) for why).

use crate::transport::tls_socket::TlsSocket;
use std::io::{self, Read, Write};

/// One TLS session, whichever library made it.
#[derive(Debug)]
pub(crate) enum Session {
    Native(native_tls::TlsStream<TlsSocket>),
    #[cfg(not(any(target_os = "windows", target_vendor = "apple")))]
    OpenSsl(openssl::ssl::SslStream<TlsSocket>),
}

impl Session {
    pub(crate) fn socket(&self) -> &TlsSocket {
        match self {
            Session::Native(tls) => tls.get_ref(),
            #[cfg(not(any(target_os = "windows", target_vendor = "apple")))]
            Session::OpenSsl(tls) => tls.get_ref(),
        }
    }

    pub(crate) fn socket_mut(&mut self) -> &mut TlsSocket {
        match self {
            Session::Native(tls) => tls.get_mut(),
            #[cfg(not(any(target_os = "windows", target_vendor = "apple")))]
            Session::OpenSsl(tls) => tls.get_mut(),
        }
    }

    /// Queues TLS close_notify (RFC 8446 §6.1); it goes out with the socket's next write.
    pub(crate) fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Session::Native(tls) => tls.shutdown(),
            #[cfg(not(any(target_os = "windows", target_vendor = "apple")))]
            Session::OpenSsl(tls) => tls.shutdown().map(drop).map_err(|e| {
                e.into_io_error()
                    .unwrap_or_else(|e| io::Error::other(e.to_string()))
            }),
        }
    }

    /// The peer's certificate, DER-encoded, if it sent one.
    pub(crate) fn peer_certificate_der(&self) -> Option<Vec<u8>> {
        match self {
            Session::Native(tls) => tls.peer_certificate().ok().flatten()?.to_der().ok(),
            #[cfg(not(any(target_os = "windows", target_vendor = "apple")))]
            Session::OpenSsl(tls) => tls.ssl().peer_certificate()?.to_der().ok(),
        }
    }
}

impl Read for Session {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Session::Native(tls) => tls.read(buf),
            #[cfg(not(any(target_os = "windows", target_vendor = "apple")))]
            Session::OpenSsl(tls) => tls.read(buf),
        }
    }
}

impl Write for Session {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Session::Native(tls) => tls.write(buf),
            #[cfg(not(any(target_os = "windows", target_vendor = "apple")))]
            Session::OpenSsl(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Session::Native(tls) => tls.flush(),
            #[cfg(not(any(target_os = "windows", target_vendor = "apple")))]
            Session::OpenSsl(tls) => tls.flush(),
        }
    }
}
