//! The blocking driver: a [`Connection`] over any `Read + Write` stream.

pub(crate) mod ending;

use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::config::Config;
use crate::proto::deflate::DeflateParams;
use crate::proto::message::{DataKind, Event, Message};
use crate::proto::utf8::Utf8Validator;
use crate::proto::{Connection, Role, Sender, State};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// How many bytes a client discards while it waits for the server to close TCP after the closing
/// handshake; a server that keeps talking past this is cut off.
const CLOSE_DRAIN_LIMIT: usize = 64 * 1024;

/// How long a client made by [`connect`](crate::connect) waits, after the closing handshake, for
/// the server to close TCP (RFC 6455 §7.1.1) before it stops waiting and leaves the closing to
/// the drop of the connection.
pub(crate) const SERVER_CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The read timeout of a stream whose type the driver knows, to bound a wait the caller did not
/// ask for (the wait for the server's TCP close).
struct ReadTimeout<S> {
    get: fn(&S) -> io::Result<Option<Duration>>,
    set: fn(&S, Option<Duration>) -> io::Result<()>,
}

impl<S> Clone for ReadTimeout<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for ReadTimeout<S> {}

impl<S> std::fmt::Debug for ReadTimeout<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadTimeout")
    }
}

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
    /// Why the configuration given to [`from_stream`](Self::from_stream) is unusable; every call
    /// then fails with [`Error::InvalidConfig`].
    invalid_config: Option<&'static str>,
    /// Set for streams from [`connect`](crate::connect): bounds the wait for the server's close.
    read_timeout: Option<ReadTimeout<S>>,
}

impl<S: Read + Write> WebSocket<S> {
    /// Wraps a stream on which the opening handshake is complete.
    ///
    /// `config` is checked with [`Config::validate`]: if it is out of range, the connection is
    /// unusable and every call on it ([`read`](Self::read), [`send`](Self::send), ...) fails with
    /// [`Error::InvalidConfig`] (the halves of a `split` of it start closed). Use
    /// [`try_from_stream`](Self::try_from_stream) to get that error here instead.
    pub fn from_stream(stream: S, role: Role, config: Config) -> WebSocket<S> {
        WebSocket::from_partially_read(stream, &[], role, config)
    }

    /// Like [`from_stream`](Self::from_stream), but an invalid `config` is returned as
    /// [`Error::InvalidConfig`] at once.
    pub fn try_from_stream(stream: S, role: Role, config: Config) -> Result<WebSocket<S>, Error> {
        config.validate()?;
        Ok(WebSocket::from_stream(stream, role, config))
    }

    /// Like [`from_stream`](Self::from_stream), with bytes already read from the stream after the
    /// handshake (they belong to the WebSocket stream). An invalid `config` is handled as there.
    pub fn from_partially_read(stream: S, read: &[u8], role: Role, config: Config) -> WebSocket<S> {
        let invalid_config = config.validate().err().map(|e| e.reason());
        // An unusable configuration never reaches the codec: it gets safe defaults and starts
        // closed, so nothing can loop on a zero-sized fragment or buffer.
        let mut conn = match invalid_config {
            None => Box::new(Connection::new(role, &config)),
            Some(_) => {
                let mut conn = Box::new(Connection::new(role, &Config::default()));
                conn.sender().on_transport_closed();
                conn
            }
        };
        conn.receive_data(read);
        WebSocket {
            stream,
            conn,
            role,
            config,
            subprotocol: None,
            deflate: None,
            ended: false,
            invalid_config,
            read_timeout: None,
        }
    }

    /// Fails every call on a connection made with an invalid configuration.
    fn check_config(&self) -> Result<(), Error> {
        match self.invalid_config {
            None => Ok(()),
            Some(why) => Err(Error::InvalidConfig(why)),
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
    /// Pings are answered before they are returned, except a ping that arrived together with more
    /// frames: such a batch is answered once, for its latest ping (RFC 6455 §5.5.3), when the
    /// batch has been read (or sooner, by a send). The peer's close is returned once as
    /// [`Message::Close`], after our reply has been sent: the closing handshake is then complete.
    /// After that, `read` returns [`Error::ConnectionClosed`] (a client first waits for the server
    /// to close TCP, RFC 6455 §7.1.1, for up to 2 seconds on a connection from
    /// [`connect`](crate::connect)), then [`Error::AlreadyClosed`].
    ///
    /// A message read is never lost to a write: if the pong or close reply it calls for cannot
    /// be written in time, the message is returned anyway and the reply stays queued, to go out
    /// first on the next call (`read`, [`send`](Self::send) or [`flush`](Self::flush)).
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
        self.check_config()?;
        if self.ended {
            return Err(Error::AlreadyClosed);
        }
        let closed = self.conn.state() == State::Closed;
        // While decoded-but-unread frames are held (a batch of pings), their pongs wait: the
        // batch is answered once, for the latest ping (RFC 6455 §5.5.3), before the next wait.
        let batch_pending = !closed && self.conn.receiver().has_buffered_data();
        if self.conn.has_data_to_send()
            && !batch_pending
            && (!closed || self.conn.sender().close_received())
        {
            // A pong or close reply that an earlier call could not write goes out first; a
            // timeout here has decoded nothing, so the call can be repeated.
            self.flush_pending()?;
        }
        if closed {
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
                    // A pong or our close reply may be due. The event is returned whatever the
                    // write does: a reply it could not finish stays queued for the next call
                    // (read, send or flush), and a broken transport shows on the next call.
                    // A ping with more frames behind it waits for them (see `batch_pending`).
                    let is_ping = matches!(event, Event::Message(Message::Ping(_)));
                    if !(is_ping && self.conn.receiver().has_buffered_data()) {
                        let _ = self.flush_pending();
                    }
                    return Ok(event);
                }
                Ok(None) => {
                    // Nothing decoded in this call yet: a pong held for a batch goes out now,
                    // and a timeout here loses nothing.
                    if self.conn.has_data_to_send() {
                        self.flush_pending()?;
                    }
                    self.fill()?
                }
                Err(error) => {
                    // Fail the connection: send the close frame if the transport still works.
                    let _ = self.flush_pending();
                    return Err(error.into());
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
                    // Pings and pongs are counted per second of this clock (Config::max_control_frames_per_second).
                    self.conn.receiver().note_time(Instant::now());
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
        self.check_config()?;
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
            if let Err(error) = self.conn.send(&message) {
                if self.conn.state() == State::Closed {
                    // The send failed the connection (a compression failure, 1011): the close
                    // frame goes out if the transport still works.
                    let _ = self.flush_pending();
                }
                return Err(error.into());
            }
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
    /// the server closes TCP (for up to 2 seconds on a connection from [`connect`](crate::connect)).
    /// Returns the peer's close frame.
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
        self.check_config()?;
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
    /// first by the server". The client waits for it, discarding at most a bounded amount, for at
    /// most [`SERVER_CLOSE_WAIT`] on a stream from [`connect`](crate::connect) (other streams:
    /// as long as their own read timeout allows).
    // Out of line: its scratch buffer would otherwise sit in every read's stack frame.
    #[cold]
    #[inline(never)]
    fn wait_for_server_close(&mut self) {
        let deadline = Instant::now().checked_add(SERVER_CLOSE_WAIT);
        let bound = self.read_timeout;
        let before = bound.and_then(|timeout| (timeout.get)(&self.stream).ok());
        let mut scratch = [0u8; 1024];
        let mut drained = 0;
        while drained < CLOSE_DRAIN_LIMIT {
            if let (Some(timeout), Some(deadline)) = (bound, deadline) {
                let left = deadline.saturating_duration_since(Instant::now());
                // A zero timeout means "none" to the socket: stop instead.
                if left.is_zero() {
                    break;
                }
                let left = before.flatten().map_or(left, |user| user.min(left));
                if (timeout.set)(&self.stream, Some(left)).is_err() {
                    break;
                }
            }
            match self.stream.read(&mut scratch) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
        if let (Some(timeout), Some(before)) = (bound, before) {
            let _ = (timeout.set)(&self.stream, before);
        }
    }

    /// Starts a message sent in fragments through an [`io::Write`]; see [`MessageWriter`].
    ///
    /// Errors: [`Error::AlreadyClosed`] after a close frame was sent.
    pub fn send_stream(&mut self, kind: DataKind) -> Result<MessageWriter<'_, S>, Error> {
        self.check_config()?;
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

    /// Fails the connection from our side: queues a close frame with `code` (unless one was
    /// sent), writes what it can, and ends the connection, so nothing more is sent or read.
    fn fail(&mut self, code: CloseCode, reason: &str) {
        let _ = self
            .conn
            .sender()
            .close(Some(CloseFrame::new(code, reason)));
        let _ = self.flush_pending();
        self.conn.sender().on_transport_closed();
    }
}

impl WebSocket<crate::transport::net_stream::NetStream> {
    /// Lets the client bound its wait for the server's TCP close by [`SERVER_CLOSE_WAIT`].
    pub(crate) fn bound_close_wait(&mut self) {
        self.read_timeout = Some(ReadTimeout {
            get: |stream| stream.tcp().read_timeout(),
            set: |stream, timeout| stream.set_read_timeout(timeout),
        });
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
/// (RFC 6455 §5.4). Call [`finish`](Self::finish) to send the last fragment.
///
/// Each `write` takes all of its buffer (`Ok(len)`) or none of it (`Err`), so repeating a write
/// that failed, e.g. with a timeout ([`io::ErrorKind::WouldBlock`] or `TimedOut`), neither loses
/// nor repeats a byte. A fragment that a write timeout interrupted stays queued (in memory, up to
/// one write's worth) and is finished by the next call.
///
/// A message that cannot be finished never looks finished to the peer: dropping the writer
/// without [`finish`](Self::finish), a text message ending inside a UTF-8 character, or a
/// transport error in the middle fails the connection with 1011 (internal error) instead.
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
    /// The fragment being filled (never `capacity` long between calls).
    buf: Vec<u8>,
    capacity: usize,
    utf8: Utf8Validator,
    /// The last fragment was queued, or the connection was failed: nothing more to do.
    finished: bool,
}

impl<S: Read + Write> MessageWriter<'_, S> {
    /// Sends what is buffered as the final fragment, ending the message.
    ///
    /// Errors: [`Error::InvalidInput`] if a text message ended inside a UTF-8 character (the
    /// connection is then failed with 1011); [`Error::Io`] if the final fragment could not be
    /// written: after a timeout it stays queued and [`WebSocket::flush`] (or any later call)
    /// finishes it.
    pub fn finish(mut self) -> Result<(), Error> {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if self.kind == DataKind::Text && self.utf8.finish().is_err() {
            self.ws
                .fail(CloseCode::InternalError, "unfinished UTF-8 character");
            return Err(Error::InvalidInput(
                "text message ended inside a UTF-8 character",
            ));
        }
        if let Err(error) = self
            .ws
            .conn
            .sender()
            .send_fragment(self.kind, &self.buf, true)
        {
            if self.ws.conn.state() != State::Closed {
                self.ws
                    .fail(CloseCode::InternalError, "message not finished");
            }
            return Err(error.into());
        }
        self.buf.clear();
        self.flush_queued()
    }

    /// Writes what is queued. A timeout leaves it queued; any other failure fails the connection
    /// (the message can never be finished).
    fn flush_queued(&mut self) -> Result<(), Error> {
        match self.ws.flush_pending() {
            Err(error) if !error.is_timeout() => {
                self.ws.conn.sender().on_transport_closed();
                self.finished = true;
                Err(error)
            }
            other => other,
        }
    }

    /// Queues the full fragment in `buf` (not the last).
    fn queue_fragment(&mut self) -> Result<(), Error> {
        self.ws
            .conn
            .sender()
            .send_fragment(self.kind, &self.buf, false)?;
        self.buf.clear();
        Ok(())
    }
}

fn to_io(error: Error) -> io::Error {
    match error {
        Error::Io(io) => io,
        Error::InvalidInput(why) => io::Error::new(io::ErrorKind::InvalidInput, why),
        other => io::Error::other(other.to_string()),
    }
}

impl<S: Read + Write> Write for MessageWriter<'_, S> {
    /// Takes all of `data` or, with an error, none of it (see [`MessageWriter`]).
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.finished {
            return Err(to_io(Error::AlreadyClosed));
        }
        // What an earlier write left queued goes first; a timeout here has taken nothing.
        self.flush_queued().map_err(to_io)?;
        if data.is_empty() {
            return Ok(0);
        }
        if self.ws.conn.state() != State::Open {
            return Err(to_io(Error::AlreadyClosed));
        }
        let mut utf8 = self.utf8.clone();
        if self.kind == DataKind::Text && utf8.feed(data).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "text message is not UTF-8",
            ));
        }
        // From here on every byte of `data` is taken: fragments are queued, and a timeout
        // only stops the writing (the next call goes on with it).
        self.utf8 = utf8;
        let mut rest = data;
        let mut writable = true;
        while !rest.is_empty() {
            let take = (self.capacity - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() < self.capacity {
                break;
            }
            if let Err(error) = self.queue_fragment() {
                // Only a closed connection refuses a fragment; the message is lost either way.
                self.finished = true;
                return Err(to_io(error));
            }
            if writable {
                match self.flush_queued() {
                    Ok(()) => {}
                    // Stop writing; the rest of `data` is queued and goes with the next call.
                    Err(error) if error.is_timeout() => writable = false,
                    Err(error) => return Err(to_io(error)),
                }
            }
        }
        Ok(data.len())
    }

    /// Writes the queued fragments; the fragment being filled waits for more data or
    /// [`finish`](MessageWriter::finish).
    fn flush(&mut self) -> io::Result<()> {
        self.flush_queued().map_err(to_io)
    }
}

impl<S: Read + Write> Drop for MessageWriter<'_, S> {
    /// Dropped unfinished: the message cannot be completed, so the connection is failed with
    /// 1011 rather than ending the message early.
    fn drop(&mut self) {
        if !self.finished {
            self.finished = true;
            self.ws.fail(CloseCode::InternalError, "message abandoned");
        }
    }
}
