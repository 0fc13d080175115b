//! What carries the bytes: plain TCP or TLS over it, whole or split into a read and a write half.

pub(crate) mod net_stream;
pub(crate) mod split_net;
pub(crate) mod tls;
#[cfg(feature = "native-tls")]
pub(crate) mod tls_halves;
#[cfg(feature = "native-tls")]
pub(crate) mod tls_session;
#[cfg(feature = "native-tls")]
pub(crate) mod tls_socket;
