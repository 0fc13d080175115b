//! What a server's handler gets: one accepted connection, its request, and the hook's data.

use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::handshake::Request;
use crate::proto::message::{Event, Message};
use crate::split::{Reader, Writer};
use crate::websocket::ending::EndCause;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Where a session's reader goes when the session is dropped: back to the server, which reads
/// through it (TLS and compression included) while it waits for the peer's close reply.
pub(crate) type ReaderHome = Arc<Mutex<Option<Reader>>>;

/// A connection's two addresses: the TCP peer, and the client as trusted proxies name it (the
/// peer itself without them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Addrs {
    pub(crate) peer: SocketAddr,
    pub(crate) client: SocketAddr,
}

/// The session's reader, sent home when dropped (unless [`Session::into_parts`] took it).
#[derive(Debug)]
struct HomeBound {
    reader: Option<Reader>,
    home: ReaderHome,
}

impl HomeBound {
    fn get(&self) -> &Reader {
        self.reader
            .as_ref()
            .expect("a session's reader is taken only by into_parts")
    }

    fn get_mut(&mut self) -> &mut Reader {
        self.reader
            .as_mut()
            .expect("a session's reader is taken only by into_parts")
    }
}

impl Drop for HomeBound {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            *self.home.lock().unwrap_or_else(|e| e.into_inner()) = Some(reader);
        }
    }
}

/// One WebSocket connection accepted by a [`Server`](crate::Server), handed to the handler on
/// the connection's own thread.
///
/// Read with [`read`](Self::read); send with [`send`](Self::send) or, from other threads, with a
/// [`writer`](Self::writer) clone. `T` is what the handshake hook returned (e.g. the user it
/// authenticated).
#[derive(Debug)]
pub struct Session<T = ()> {
    reader: HomeBound,
    request: Request,
    data: T,
    addrs: Addrs,
}

impl<T> Session<T> {
    pub(crate) fn new(
        reader: Reader,
        home: ReaderHome,
        request: Request,
        data: T,
        addrs: Addrs,
    ) -> Session<T> {
        Session {
            reader: HomeBound {
                reader: Some(reader),
                home,
            },
            request,
            data,
            addrs,
        }
    }

    /// Reads the next message; see [`Reader::read`]. When it fails or the connection closes,
    /// [`end_cause`](Self::end_cause) says why.
    pub fn read(&mut self) -> Result<Message, Error> {
        self.reader.get_mut().read()
    }

    /// Reads the next piece of data or control frame; see [`Reader::read_event`].
    pub fn read_event(&mut self) -> Result<Event, Error> {
        self.reader.get_mut().read_event()
    }

    /// Sends a message; see [`Writer::send`]. Its buffer may take the next message received, so
    /// an echo or a relay reuses one allocation (as with [`WebSocket::send`](crate::WebSocket::send)).
    pub fn send(&self, message: Message) -> Result<(), Error> {
        let buffer = self.reader.get().writer().send_returning(message)?;
        self.reader.get().offer_buffer(buffer);
        Ok(())
    }

    /// The closing handshake: sends a close frame and reads until the peer's reply, bounded by
    /// the close timeout; returns the peer's close frame. See [`Reader::close`].
    pub fn close(
        &mut self,
        code: impl Into<CloseCode>,
        reason: &str,
    ) -> Result<Option<CloseFrame>, Error> {
        self.reader.get_mut().close(code, reason)
    }

    /// A writer for this connection, to send from other threads or to put in a
    /// [`Room`](crate::Room).
    pub fn writer(&self) -> Writer {
        self.reader.get().writer().clone()
    }

    /// The opening handshake request: path, query, headers, cookies.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// What the handshake hook returned.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// What the handshake hook returned, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.data
    }

    /// The TCP peer's address: behind a load balancer, the balancer's.
    pub fn peer_addr(&self) -> SocketAddr {
        self.addrs.peer
    }

    /// The client's address: the one a trusted proxy forwarded (see
    /// [`ServerBuilder::trusted_proxies`](crate::ServerBuilder::trusted_proxies); its port is 0
    /// when the proxy gave none), else the TCP peer's. What `on_end` reports; the address to log
    /// or to rate-limit by.
    pub fn client_addr(&self) -> SocketAddr {
        self.addrs.client
    }

    /// The subprotocol agreed in the handshake.
    pub fn subprotocol(&self) -> Option<&str> {
        self.reader.get().subprotocol()
    }

    /// Why the connection ended, once it has.
    pub fn end_cause(&self) -> Option<EndCause> {
        self.reader.get().end_cause()
    }

    /// The reading half, e.g. to set a read timeout.
    pub fn reader(&mut self) -> &mut Reader {
        self.reader.get_mut()
    }

    /// Takes the session apart into its reader, a writer, the request and the hook's data.
    ///
    /// The reader is then the caller's: when the handler returns with the connection open, the
    /// server sends its close frame but cannot read the reply, and closes TCP at once.
    pub fn into_parts(mut self) -> (Reader, Writer, Request, T) {
        let reader = self.reader.reader.take().expect("taken only here");
        let writer = reader.writer().clone();
        (reader, writer, self.request, self.data)
    }
}
