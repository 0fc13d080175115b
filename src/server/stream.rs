//! A server connection's byte path: the socket itself (`ws://`) or TLS over it (`wss://`).

use crate::proto::config::Config;
use crate::proto::{Connection, Role};
use crate::split::{Reader, Writer, split_tcp};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

/// The connection's stream during the handshake; split into reader and writer after it.
pub(super) enum ServerIo {
    Plain(Arc<TcpStream>),
    #[cfg(feature = "native-tls")]
    Tls(Box<crate::transport::net_stream::TlsStream>),
}

impl ServerIo {
    /// Splits after the handshake; either way the connection keeps its one socket.
    pub(super) fn split(
        self,
        conn: Box<Connection>,
        config: Config,
        subprotocol: Option<String>,
    ) -> (Reader, Writer) {
        match self {
            ServerIo::Plain(tcp) => split_tcp(conn, tcp, Role::Server, config, subprotocol),
            #[cfg(feature = "native-tls")]
            ServerIo::Tls(tls) => crate::transport::split_net::split_tls(
                conn,
                *tls,
                Role::Server,
                config,
                subprotocol,
            ),
        }
    }
}

impl ServerIo {
    /// Bounds every later read and write over TLS together by `deadline` (the opening
    /// handshake's one deadline: a client trickling its request record cannot stretch it).
    /// Plain TCP: no effect, the handshake bounds each read itself. `split` ends it.
    #[cfg_attr(not(feature = "native-tls"), allow(unused_variables))]
    pub(super) fn set_deadline(&mut self, deadline: Option<std::time::Instant>) {
        match self {
            ServerIo::Plain(_) => {}
            #[cfg(feature = "native-tls")]
            ServerIo::Tls(tls) => tls.set_deadline(deadline),
        }
    }
}

impl Read for ServerIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ServerIo::Plain(tcp) => (&**tcp).read(buf),
            #[cfg(feature = "native-tls")]
            ServerIo::Tls(tls) => tls.tls.read(buf),
        }
    }
}

impl Write for ServerIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ServerIo::Plain(tcp) => (&**tcp).write(buf),
            #[cfg(feature = "native-tls")]
            ServerIo::Tls(tls) => tls.tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ServerIo::Plain(tcp) => (&**tcp).flush(),
            #[cfg(feature = "native-tls")]
            ServerIo::Tls(tls) => tls.tls.flush(),
        }
    }
}
