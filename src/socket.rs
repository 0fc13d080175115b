//! The blocking driver: a [`Connection`] over any `Read + Write` stream.

use crate::config::Config;
use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::deflate::DeflateParams;
use crate::proto::message::{DataKind, Event, Message};
use crate::proto::utf8::Utf8Validator;
use crate::proto::{Connection, Role, Sender, State};
use std::io::{self, Read, Write};

/// How many bytes a client discards while it waits for the server to close TCP after the closing
/// handshake; a server that keeps talking past this is cut off.
const CLOSE_DRAIN_LIMIT: usize = 64 * 1024;

/// A WebSocket connection over a blocking stream, after the opening handshake.
///
/// Get one from [`connect`](crate::connect) or [`ClientBuilder`](crate::ClientBuilder) (client) or
/// [`accept`](crate::accept) (server), or wrap a stream whose handshake was done elsewhere with
/// [`WebSocket::from_stream`].
///
/// Every method blocks on the stream; a stream with read or write timeouts makes them return
/// [`Error::Io`] with `WouldBlock` or `TimedOut` ([`Error::is_timeout`]), after which the call can
/// be repeated: a partly received frame is kept, a partly written one is finished first.
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    /// Boxed: a `WebSocket` is moved by value through the handshake and into the caller's frame,
    /// and every byte it carries there stays in each connection thread's resident stack.
    conn: Box<Connection>,
    role: Role,
    config: Config,
    subprotocol: Option<String>,
    deflate: Option<DeflateParams>,
    /// The end of the connection was reported to the caller.
    ended: bool,
}

impl<S: Read + Write> WebSocket<S> {
    /// Wraps a stream on which the opening handshake is complete.
    pub fn from_stream(stream: S, role: Role, config: Config) -> WebSocket<S> {
        WebSocket::from_partially_read(stream, &[], role, config)
    }

    /// Like [`from_stream`](Self::from_stream), with bytes already read from the stream after the
    /// handshake (they belong to the WebSocket stream).
    pub fn from_partially_read(stream: S, read: &[u8], role: Role, config: Config) -> WebSocket<S> {
        let mut conn = Box::new(Connection::new(role, &config));
        conn.receive_data(read);
        WebSocket {
            stream,
            conn,
            role,
            config,
            subprotocol: None,
            deflate: None,
            ended: false,
        }
    }

    /// Takes the connection apart, for [`split`](crate::WebSocket::split).
    pub(crate) fn into_parts(self) -> (S, Box<Connection>, Config, Option<String>) {
        (self.stream, self.conn, self.config, self.subprotocol)
    }

    pub(crate) fn set_subprotocol(&mut self, protocol: Option<String>) {
        self.subprotocol = protocol;
    }

    /// Turns on permessage-deflate with the parameters agreed in the opening handshake, using
    /// [`Config::deflate`] for the level, threshold and receive-only mode. [`connect`](crate::connect)
    /// and [`accept`](crate::accept) do this themselves; call it after [`from_stream`](Self::from_stream)
    /// when the handshake was done elsewhere (e.g. with
    /// [`negotiation::select_offer`](crate::proto::deflate::negotiation::select_offer)), before
    /// any message is exchanged. Without the `deflate` feature there is no codec: `params` is
    /// ignored and [`deflate`](Self::deflate) stays `None`.
    pub fn set_deflate(&mut self, params: Option<DeflateParams>) {
        if !cfg!(feature = "deflate") {
            return;
        }
        if let Some(params) = &params {
            self.conn.set_deflate(params, &self.config.deflate);
        }
        self.deflate = params;
    }

    /// Reads the next message, blocking until one arrives.
    ///
    /// Pings are answered before they are returned. The peer's close is returned once as
    /// [`Message::Close`], after our reply has been sent: the closing handshake is then complete.
    /// After that, `read` returns [`Error::ConnectionClosed`] (a client first waits for the server
    /// to close TCP, RFC 6455 §7.1.1), then [`Error::AlreadyClosed`].
    ///
    /// Errors: [`Error::Protocol`] when the peer broke the protocol (the failing close frame has
    /// been sent; drop the connection); [`Error::Io`] for transport errors, `UnexpectedEof` when
    /// the peer vanished without a close frame.
    pub fn read(&mut self) -> Result<Message, Error> {
        let mid_stream = self.conn.receiver().is_mid_stream();
        whole_message(mid_stream, || self.read_with(false))
    }

    /// Reads the next piece of data or control frame, without waiting for whole messages.
    ///
    /// Data comes as [`Event::Chunk`]s as soon as bytes arrive, so a message of any size is
    /// received in constant memory. Control frames come as [`Event::Message`]. Errors as for
    /// [`read`](Self::read).
    pub fn read_event(&mut self) -> Result<Event, Error> {
        self.read_with(true)
    }

    fn read_with(&mut self, streaming: bool) -> Result<Event, Error> {
        if self.ended {
            return Err(Error::AlreadyClosed);
        }
        if self.conn.state() == State::Closed {
            // The close was returned by the previous call, or the connection failed.
            self.ended = true;
            if self.conn.sender().close_received() {
                if self.role == Role::Client {
                    self.wait_for_server_close();
                }
                return Err(Error::ConnectionClosed);
            }
            return Err(Error::AlreadyClosed);
        }
        self.conn.receiver().set_streaming(streaming);
        loop {
            match self.conn.next_event() {
                Ok(Some(event)) => {
                    // A pong or our close reply may be due.
                    self.flush_pending()?;
                    return Ok(event);
                }
                Ok(None) => self.fill()?,
                Err(error) => {
                    // Fail the connection: send the close frame if the transport still works.
                    let _ = self.flush_pending();
                    return Err(error);
                }
            }
        }
    }

    /// Reads once from the stream into the connection.
    fn fill(&mut self) -> Result<(), Error> {
        loop {
            let read = match self.conn.receiver().read_bufs() {
                (buf, []) => self.stream.read(buf),
                // A predicted frame: header and payload in one read (see `Receiver::read_bufs`).
                (head, rest) => self
                    .stream
                    .read_vectored(&mut [io::IoSliceMut::new(head), io::IoSliceMut::new(rest)]),
            };
            match read {
                Ok(0) => {
                    self.conn.receiver().commit(0);
                    self.conn.sender().on_transport_closed();
                    self.ended = true;
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection without a close frame (1006)",
                    )));
                }
                Ok(n) => {
                    self.conn.receiver().commit(n);
                    return Ok(());
                }
                Err(e) => {
                    self.conn.receiver().commit(0);
                    match e.kind() {
                        io::ErrorKind::Interrupted => continue,
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return Err(e.into()),
                        _ => {
                            self.conn.sender().on_transport_closed();
                            return Err(e.into());
                        }
                    }
                }
            }
        }
    }

    /// Writes everything the connection has queued. A timeout leaves the rest queued for the next
    /// call, so a frame is never cut in half.
    fn flush_pending(&mut self) -> Result<(), Error> {
        while !self.conn.data_to_send().is_empty() {
            match self.stream.write(self.conn.data_to_send()) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => self.conn.advance(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.stream.flush()?;
        Ok(())
    }

    /// Sends a message (text, binary, ping, pong, or close).
    ///
    /// Blocks until the frame is handed to the stream. Sending [`Message::Close`] starts the
    /// closing handshake without waiting for the reply (see [`close`](Self::close)).
    ///
    /// Errors: [`Error::AlreadyClosed`] after a close frame was sent; [`Error::InvalidInput`] for a
    /// control payload over 125 bytes or an unsendable close code; [`Error::Io`].
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        self.flush_pending()?;
        if self.conn.sender().send_header(&message)? {
            // A large unmasked payload: written from the message itself, not copied first.
            write_with_payload(&mut self.stream, self.conn.sender(), message.as_bytes())?;
        } else {
            self.conn.send(&message)?;
            self.flush_pending()?;
        }
        // Its buffer may take the next message received (see `Receiver::recycle`).
        self.conn.receiver().recycle(message.into_bytes());
        Ok(())
    }

    /// Writes any frame left over from a send or reply that timed out.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.flush_pending()
    }

    /// Closes the connection: sends a close frame with `code` and `reason`, then reads until the
    /// peer's close frame arrives (data arriving meanwhile is discarded) and, as a client, until
    /// the server closes TCP. Returns the peer's close frame.
    ///
    /// Blocks on the stream: without a read timeout, a peer that never answers blocks forever.
    ///
    /// Errors: [`Error::InvalidInput`] for a code that may not be sent or a reason over 123 bytes;
    /// [`Error::AlreadyClosed`] if a close frame was already sent.
    pub fn close(
        &mut self,
        code: impl Into<CloseCode>,
        reason: &str,
    ) -> Result<Option<CloseFrame>, Error> {
        let frame = CloseFrame::new(code, reason);
        self.conn.sender().close(Some(frame))?;
        self.flush_pending()?;
        loop {
            match self.read()? {
                Message::Close(peer) => {
                    self.ended = true;
                    if self.role == Role::Client {
                        self.wait_for_server_close();
                    }
                    return Ok(peer);
                }
                _ => continue,
            }
        }
    }

    /// RFC 6455 §7.1.1: "the underlying TCP connection, in most normal cases, SHOULD be closed
    /// first by the server". The client waits for it, discarding at most a bounded amount.
    // Out of line: its scratch buffer would otherwise sit in every read's stack frame.
    #[cold]
    #[inline(never)]
    fn wait_for_server_close(&mut self) {
        let mut scratch = [0u8; 1024];
        let mut drained = 0;
        while drained < CLOSE_DRAIN_LIMIT {
            match self.stream.read(&mut scratch) {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    }

    /// Starts a message sent in fragments through an [`io::Write`]; see [`MessageWriter`].
    ///
    /// Errors: [`Error::AlreadyClosed`] after a close frame was sent.
    pub fn send_stream(&mut self, kind: DataKind) -> Result<MessageWriter<'_, S>, Error> {
        if self.conn.state() != State::Open {
            return Err(Error::AlreadyClosed);
        }
        let capacity = self.config.write_fragment_size;
        Ok(MessageWriter {
            ws: self,
            kind,
            buf: Vec::with_capacity(capacity.min(64 << 10)),
            capacity,
            utf8: Utf8Validator::new(),
            finished: false,
        })
    }

    /// Sets (or with `None` removes) the frame hook: a callback that sees every frame this
    /// connection sends and receives, with its direction, header and unmasked payload (the first
    /// [`OBSERVED_PAYLOAD_MAX`](crate::proto::observer::OBSERVED_PAYLOAD_MAX) bytes of it).
    /// Frames that arrived with the handshake but were not read yet are seen too.
    ///
    /// ```no_run
    /// let (mut ws, _) = syncws::connect("ws://127.0.0.1:9001/")?;
    /// ws.set_frame_hook(Some(std::sync::Arc::new(|direction, header, payload| {
    ///     eprintln!("{}", syncws::dissect::summary(direction, header, payload));
    /// })));
    /// # Ok::<(), syncws::Error>(())
    /// ```
    ///
    /// See [`proto::observer`](crate::proto::observer) for what exactly the hook is shown.
    pub fn set_frame_hook(&mut self, hook: Option<crate::proto::FrameObserver>) {
        self.conn.set_frame_observer(hook);
    }

    /// The subprotocol agreed in the opening handshake.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The permessage-deflate parameters agreed in the opening handshake, if it was agreed.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_ref()
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The connection's state.
    pub fn state(&self) -> State {
        self.conn.state()
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, e.g. to set timeouts. Reading or writing it directly corrupts the connection.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream, ending the WebSocket (bytes buffered but not yet read are lost).
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Bytes of buffer memory this connection holds now.
    pub fn buffered_capacity(&mut self) -> usize {
        self.conn.receiver().buffered_capacity() + self.conn.data_to_send().len()
    }

    pub(crate) fn send_fragment(
        &mut self,
        kind: DataKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.flush_pending()?;
        self.conn.sender().send_fragment(kind, data, fin)?;
        self.flush_pending()
    }
}

/// Writes the header [`Sender::send_header`] queued, then `payload`, with vectored writes (one
/// system call for both, usually). What a timeout or error leaves unwritten is queued, so the
/// frame is finished by the next write.
pub(crate) fn write_with_payload<W: Write + ?Sized>(
    stream: &mut W,
    sender: &mut Sender,
    mut payload: &[u8],
) -> Result<(), Error> {
    loop {
        let header = sender.data_to_send();
        if header.is_empty() && payload.is_empty() {
            break;
        }
        let slices = [io::IoSlice::new(header), io::IoSlice::new(payload)];
        match stream.write_vectored(&slices) {
            Ok(0) => {
                sender.queue_unwritten(payload);
                return Err(io::Error::from(io::ErrorKind::WriteZero).into());
            }
            Ok(n) => {
                let from_header = n.min(header.len());
                sender.advance(from_header);
                payload = &payload[n - from_header..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                sender.queue_unwritten(payload);
                return Err(e.into());
            }
        }
    }
    stream.flush()?;
    Ok(())
}

/// `read()` on top of the event reader, shared by [`WebSocket`] and [`Reader`](crate::Reader):
/// whole messages only, and not in the middle of a message already being read in pieces.
pub(crate) fn whole_message(
    mid_stream: bool,
    read_event: impl FnOnce() -> Result<Event, Error>,
) -> Result<Message, Error> {
    if mid_stream {
        return Err(Error::InvalidInput(
            "read() in the middle of a message being read with read_event()",
        ));
    }
    match read_event()? {
        Event::Message(message) => Ok(message),
        Event::Chunk(_) => Err(Error::InvalidInput(
            "a chunk arrived outside streaming mode",
        )),
    }
}

/// Sends one message in fragments of [`Config::write_fragment_size`] as it is written
/// (RFC 6455 §5.4). Call [`finish`](Self::finish) to send the last fragment; dropping the writer
/// finishes it too, ignoring errors.
///
/// ```no_run
/// # fn main() -> Result<(), syncws::Error> {
/// use std::io::Write;
/// let (mut ws, _) = syncws::connect("ws://127.0.0.1:9001/")?;
/// let mut writer = ws.send_stream(syncws::DataKind::Binary)?;
/// std::io::copy(&mut std::fs::File::open("big.bin")?, &mut writer)?;
/// writer.finish()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MessageWriter<'a, S: Read + Write> {
    ws: &'a mut WebSocket<S>,
    kind: DataKind,
    buf: Vec<u8>,
    capacity: usize,
    utf8: Utf8Validator,
    finished: bool,
}

impl<S: Read + Write> MessageWriter<'_, S> {
    /// Sends what is buffered as the final fragment, ending the message.
    ///
    /// Errors: [`Error::InvalidInput`] if a text message ended inside a UTF-8 character.
    pub fn finish(mut self) -> Result<(), Error> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if self.kind == DataKind::Text && self.utf8.finish().is_err() {
            return Err(Error::InvalidInput(
                "text message ended inside a UTF-8 character",
            ));
        }
        let data = std::mem::take(&mut self.buf);
        self.ws.send_fragment(self.kind, &data, true)
    }
}

impl<S: Read + Write> Write for MessageWriter<'_, S> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.kind == DataKind::Text && self.utf8.feed(data).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "text message is not UTF-8",
            ));
        }
        let mut rest = data;
        while !rest.is_empty() {
            let room = self.capacity - self.buf.len();
            let take = room.min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == self.capacity {
                let full = std::mem::take(&mut self.buf);
                self.ws.send_fragment(self.kind, &full, false)?;
                self.buf = full;
                self.buf.clear();
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Read + Write> Drop for MessageWriter<'_, S> {
    fn drop(&mut self) {
        let _ = self.finish_inner();
    }
}
