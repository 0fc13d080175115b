//! The blocking driver: a [`Connection`] over any `Read + Write` stream.

mod close;
pub(crate) mod ending;
mod keepalive;
mod message_writer;

pub use message_writer::MessageWriter;

use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::config::Config;
use crate::proto::deflate::DeflateParams;
use crate::proto::message::{DataKind, Event, Message};
use crate::proto::{Connection, Role, Sender, State};
use crate::split::SplitStream;
use keepalive::Keepalive;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// The read timeout of a stream whose type the driver knows ([`SplitStream`]), to
/// bound waits the caller did not ask for: the closing handshake, the wait for the server's TCP
/// close, and the wake-ups of the keepalive.
struct Timeouts<S> {
    get: fn(&S) -> io::Result<Option<Duration>>,
    set: fn(&S, Option<Duration>) -> io::Result<()>,
}

impl<S> Clone for Timeouts<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Timeouts<S> {}

impl<S> std::fmt::Debug for Timeouts<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Timeouts")
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
///
/// [`close`](Self::close) runs the closing handshake within
/// [`Config::close_timeout`]; [`ping`](Self::ping) waits for its pong; a client from
/// [`connect`](crate::connect) sends keepalive pings while [`read`](Self::read) waits
/// ([`ClientBuilder::heartbeat`](crate::ClientBuilder::heartbeat)) and reports their round
/// trip as [`latency`](Self::latency). [`split`](Self::split) gives a reader and writers for
/// other threads.
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
    /// Set for streams whose timeouts the driver can set (see [`Timeouts`]).
    timeouts: Option<Timeouts<S>>,
    /// Keepalive pings, the last round trip, and messages that arrived while [`ping`](Self::ping)
    /// waited; boxed and made on first use, so a connection without them carries one pointer.
    keepalive: Option<Box<Keepalive>>,
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
            timeouts: None,
            keepalive: None,
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
    /// The stream gets back the caller's read timeout if the keepalive changed it.
    pub(crate) fn into_parts(self) -> (S, Box<Connection>, Config, Option<String>) {
        if let (Some(timeouts), Some(keepalive)) = (self.timeouts, &self.keepalive)
            && keepalive.ticking()
        {
            let _ = (timeouts.set)(&self.stream, keepalive.caller_timeout());
        }
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
        if let Some(message) = self.take_queued() {
            return Ok(message);
        }
        let mid_stream = self.conn.receiver().is_mid_stream();
        whole_message(mid_stream, || self.read_with(false))
    }

    /// Reads the next piece of data or control frame, without waiting for whole messages.
    ///
    /// Data comes as [`Event::Chunk`]s as soon as bytes arrive, so a message of any size is
    /// received in constant memory. Control frames come as [`Event::Message`]. Errors as for
    /// [`read`](Self::read).
    pub fn read_event(&mut self) -> Result<Event, Error> {
        if let Some(message) = self.take_queued() {
            return Ok(Event::Message(message));
        }
        self.read_with(true)
    }

    /// A message kept while [`ping`](Self::ping) waited, if any.
    fn take_queued(&mut self) -> Option<Message> {
        self.keepalive.as_mut()?.take_queued()
    }

    /// The next event for the caller: the pong of our own ping is not one.
    fn read_with(&mut self, streaming: bool) -> Result<Event, Error> {
        let until = self.keepalive.as_ref().and_then(|k| k.read_deadline());
        loop {
            let event = self.read_until(streaming, until)?;
            if let Event::Message(Message::Pong(payload)) = &event
                && self.is_our_pong(payload)
            {
                continue;
            }
            return Ok(event);
        }
    }

    /// Reads the next event. While the keepalive ticks, a timed-out read is a wake-up (a ping
    /// may be due) until `until`, the caller's own deadline.
    fn read_until(&mut self, streaming: bool, until: Option<Instant>) -> Result<Event, Error> {
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
                    self.wait_for_server_close(None);
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
                    if self.keepalive.is_some() {
                        self.keep_alive()?;
                    }
                    match self.fill() {
                        Err(error) if error.is_timeout() && self.woke_for_keepalive(until) => {}
                        other => other?,
                    }
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
    /// Blocks until the frame is handed to the stream.
    ///
    /// [`Message::Close`] starts the closing handshake as [`close`](Self::close) does (the same
    /// checks of code and reason before anything is written, the same state afterwards: no
    /// message can be sent) but returns once the frame is written, without waiting for the
    /// peer's reply: keep reading, and [`read`](Self::read) returns the peer's close, then
    /// [`Error::ConnectionClosed`]. `Message::Close(None)` sends a close frame without a code
    /// (the peer reports 1005).
    ///
    /// Errors: [`Error::AlreadyClosed`] after a close frame was sent; [`Error::InvalidInput`] for a
    /// control payload over 125 bytes, a close code that may not be sent or a close reason over
    /// 123 bytes; [`Error::Io`].
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        self.flush_pending()?;
        if let Message::Close(frame) = message {
            // One way to close: the path `close` takes, without the wait for the reply.
            self.start_close(frame)?;
            return self.flush_pending();
        }
        self.conn.sender().note_time_if_compressing(Instant::now);
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

    /// Starts a message sent in fragments through an [`io::Write`]; see [`MessageWriter`].
    ///
    /// Errors: [`Error::AlreadyClosed`] after a close frame was sent.
    pub fn send_stream(&mut self, kind: DataKind) -> Result<MessageWriter<'_, S>, Error> {
        self.check_config()?;
        if self.conn.state() != State::Open {
            return Err(Error::AlreadyClosed);
        }
        Ok(MessageWriter::new(self, kind))
    }

    /// Sets (or with `None` removes) the frame hook: a callback that sees every frame this
    /// connection sends and receives, with its direction, header and unmasked payload (the first
    /// [`OBSERVED_PAYLOAD_MAX`](crate::proto::observer::OBSERVED_PAYLOAD_MAX) bytes of it).
    /// Frames that arrived with the handshake but were not read yet are seen too.
    ///
    /// ```no_run
    /// let (mut ws, _) = syncws::connect("ws://127.0.0.1:9001/")?;
    /// ws.set_frame_hook(Some(std::sync::Arc::new(|direction, header, payload| {
    ///     eprintln!("{}", syncws::proto::dissect::summary(direction, header, payload));
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

    /// Lets the driver set the stream's read timeout, to bound the closing handshake in all
    /// ([`Config::close_timeout`]) and to wake a waiting read for keepalive pings.
    pub(crate) fn know_timeouts(&mut self)
    where
        S: SplitStream,
    {
        self.timeouts = Some(Timeouts {
            get: |stream| stream.read_timeout(),
            set: |stream, timeout| stream.set_read_timeout(timeout),
        });
    }

    /// Fails the connection from our side: queues a close frame with `code` (unless one was
    /// sent), writes what it can, and ends the connection, so nothing more is sent or read.
    pub(crate) fn fail(&mut self, code: CloseCode, reason: &str) {
        let _ = self
            .conn
            .sender()
            .close(Some(CloseFrame::new(code, reason)));
        let _ = self.flush_pending();
        self.conn.sender().on_transport_closed();
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
