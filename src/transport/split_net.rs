//! Splitting a [`NetStream`] connection: plain TCP as in [`split`](crate::split), and `wss://`
//! (feature `native-tls`).
//!
//! A TLS session is one object for both directions, so after the split it sits behind a mutex
//! held only to encrypt or decrypt (its bytes go through memory queues, never the socket): the
//! reader reads ciphertext from the socket without any lock, the writer writes ciphertext
//! without it. A reader never waits for a writer nor a writer for a reader; a peer trickling a
//! TLS record holds up no one, and each byte of it counts as activity for the heartbeat
//! (`split::tls_halves`).

use crate::error::Error;
use crate::split::{Reader, Writer, split_tcp};
use crate::transport::net_stream::NetStream;
use crate::websocket::WebSocket;
use std::sync::Arc;
#[cfg(feature = "native-tls")]
use {
    crate::split::split_parts, crate::transport::net_stream::TlsStream,
    crate::transport::tls_halves::tls_halves,
};

impl WebSocket<NetStream> {
    /// Splits a plain or TLS connection into a [`Reader`] and a `Clone + Send + Sync`
    /// [`Writer`]; see [`WebSocket::<TcpStream>::split`](WebSocket::split). Over TLS too, the
    /// reader and the writers never wait for each other. Either way the connection keeps one
    /// socket.
    ///
    /// Errors: none today; the `Result` matches the TCP split.
    pub fn split(self) -> Result<(Reader, Writer), Error> {
        let role = self.role();
        let (stream, conn, config, subprotocol) = self.into_parts();
        Ok(match stream {
            NetStream::Plain(tcp) => split_tcp(conn, Arc::new(tcp), role, config, subprotocol),
            #[cfg(feature = "native-tls")]
            NetStream::Tls(tls) => split_tls(conn, *tls, role, config, subprotocol),
        })
    }
}

/// Splits a TLS session into a read half and a write half that share it only for CPU work.
#[cfg(feature = "native-tls")]
pub(crate) fn split_tls(
    conn: Box<crate::proto::Connection>,
    tls: TlsStream,
    role: crate::proto::Role,
    config: crate::proto::config::Config,
    subprotocol: Option<String>,
) -> (Reader, Writer) {
    let TlsStream { tls, socket } = tls;
    let (read_half, write_half) = tls_halves(tls);
    split_parts(
        conn,
        Box::new(read_half),
        Box::new(write_half),
        socket,
        role,
        config,
        subprotocol,
    )
}
