//! One connection's thread: the opening handshake under the server's policy, the handler, and
//! the end.

use super::accept::{Accept, Decision, decide};
use super::http::{self, HttpResponse};
use super::session::{Addrs, ReaderHome};
use super::stream::ServerIo;
use super::{Context, Session};
use crate::client::read_more;
use crate::error::{Error, HandshakeError};
use crate::proto::Connection;
use crate::proto::Role;
use crate::proto::close::CloseCode;
use crate::proto::deflate::DeflateParams;
use crate::proto::frame::Decoded;
use crate::proto::handshake::{Request, check_request, error_response, parse_request};
use crate::proto::message::{Event, Message};
use crate::split::{Reader, Writer};
use crate::websocket::ending::EndCause;
use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Removes the connection from the registry however the thread ends (a handler may panic).
struct Deregister<'a, T> {
    context: &'a Context<T>,
    id: u64,
}

impl<T> Drop for Deregister<'_, T> {
    fn drop(&mut self) {
        self.context.registry.remove(self.id);
    }
}

/// The body of a connection thread.
pub(super) fn run<T: Send + 'static>(context: &Arc<Context<T>>, stream: Arc<TcpStream>, id: u64) {
    let _deregister = Deregister { context, id };
    if let Some(opened) = open(context, stream, id) {
        serve(context, opened);
    }
}

/// Runs the handler; the end guard closes and reports the connection after it, however it returns.
///
/// The session comes boxed from `open` and is unboxed only here, so `run`'s frame stays small while
/// `open` works below it.
#[inline(never)]
#[allow(clippy::boxed_local)] // The box is the point: see above.
fn serve<T: Send + 'static>(context: &Arc<Context<T>>, opened: Box<Opened<'_, T>>) {
    let (session, _end) = *opened;
    (context.handler)(session);
}

/// A connection ready for its handler: the session and the guard that ends it.
type Opened<'a, T> = (Session<T>, End<'a, T>);

/// Everything before the handler: TLS, the opening handshake, and the connection's setup.
///
/// Each step is a function of its own, not inlined, so that only one step's locals are on the
/// stack at a time and none while the handler runs: the deepest frame of a connection thread sets
/// how many of its stack pages stay resident, for as long as the connection lives.
#[inline(never)]
fn open<T: Send + 'static>(
    context: &Arc<Context<T>>,
    stream: Arc<TcpStream>,
    id: u64,
) -> Option<Box<Opened<'_, T>>> {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok()?;
    let (io, (request, data, leftover, subprotocol, deflate)) = upgrade(context, &stream)?;
    let client = context
        .settings
        .trusted_proxies
        .client_addr(peer, &request.headers);
    let (reader, writer) = halves(context, &stream, io, leftover, subprotocol, deflate);
    let addrs = Addrs { peer, client };
    Some(register(
        context, id, addrs, stream, reader, writer, request, data,
    ))
}

/// TLS if configured, then the opening handshake.
#[inline(never)]
fn upgrade<T: Send + 'static>(
    context: &Context<T>,
    stream: &Arc<TcpStream>,
) -> Option<(ServerIo, Upgraded<T>)> {
    let mut io = ServerIo::Plain(Arc::clone(stream));
    #[cfg(feature = "native-tls")]
    if let Some((identity, timeout)) = &context.settings.tls {
        // The TLS handshake runs here, on the connection's thread, with its own deadline.
        match identity.accept_shared(Arc::clone(stream), Some(*timeout)) {
            Ok(tls) => io = ServerIo::Tls(Box::new(tls)),
            Err(_) => return None,
        }
    }
    let upgraded = handshake(context, &mut io, stream)?;
    Some((io, upgraded))
}

/// The upgraded connection's protocol state, split into the session's reader and a writer.
#[inline(never)]
fn halves<T>(
    context: &Context<T>,
    stream: &TcpStream,
    io: ServerIo,
    leftover: Vec<u8>,
    subprotocol: Option<String>,
    deflate: Option<DeflateParams>,
) -> (Reader, Writer) {
    let _ = stream.set_read_timeout(None);
    let _ = stream.set_write_timeout(context.settings.write_timeout);
    let config = context.settings.config.clone();
    let mut conn = Box::new(Connection::new(Role::Server, &config));
    // Bytes pipelined behind the request are the client's first frames.
    conn.receive_data(&leftover);
    if let Some(params) = &deflate {
        conn.set_deflate(params, &config.deflate);
    }
    drop(leftover);
    io.split(conn, config, subprotocol)
}

/// Registers the writer with the server and its heartbeat, and makes the session.
#[inline(never)]
#[allow(clippy::too_many_arguments)] // One call site; each is a distinct part of the connection.
fn register<T: Send + 'static>(
    context: &Arc<Context<T>>,
    id: u64,
    addrs: Addrs,
    socket: Arc<TcpStream>,
    reader: Reader,
    writer: Writer,
    request: Request,
    data: T,
) -> Box<Opened<'_, T>> {
    if !context.registry.opened(id, &writer) {
        // Shutdown began between the 101 and now.
        writer.close_from_shared_thread(
            EndCause::ServerShutdown,
            CloseCode::GoingAway,
            "server shutdown",
            Duration::ZERO,
        );
    }
    context.timer.add(&writer);
    let home = ReaderHome::default();
    let end = End {
        context,
        writer: writer.clone(),
        socket,
        home: Arc::clone(&home),
        client: addrs.client,
    };
    Box::new((Session::new(reader, home, request, data, addrs), end))
}

/// The end of an upgraded connection, however the handler returns (a panic included): stop its
/// heartbeat, close what the handler left open, and report why it ended.
struct End<'a, T> {
    context: &'a Context<T>,
    writer: Writer,
    socket: Arc<TcpStream>,
    /// Where the session leaves its reader when the handler drops it.
    home: ReaderHome,
    /// What `on_end` reports: the client's address, through trusted proxies.
    client: std::net::SocketAddr,
}

impl<T> Drop for End<'_, T> {
    fn drop(&mut self) {
        // The timer lets go of its writer now, not at the connection's next deadline.
        self.context.timer.remove(&self.writer);
        // A handler that panicked left the connection in an unknown state: 1011.
        let (code, reason) = if std::thread::panicking() {
            (CloseCode::InternalError, "handler failed")
        } else {
            (CloseCode::Normal, "")
        };
        let reader = self.home.lock().unwrap_or_else(|e| e.into_inner()).take();
        // (A handler could swap readers between sessions; only this connection's will do.)
        let reader = reader.filter(|r| r.writer().same_connection(&self.writer));
        finish(
            self.context,
            &self.writer,
            &self.socket,
            reader,
            code,
            reason,
        );
        let cause = self
            .writer
            .end_cause()
            .unwrap_or(EndCause::LocalClosed(None));
        if let Some(on_end) = &self.context.on_end {
            on_end(self.client, &cause);
        }
    }
}

/// After the handler: close what it left open and end TCP (the server closes first, RFC 6455
/// §7.1.1), giving the peer up to the close timeout to answer our close frame.
///
/// The wait reads through the session's own reader, which knows TLS and the agreed compression
/// (data that still arrives is decoded and discarded, within the configured limits), and it is
/// one total deadline: the timer shuts the socket down when it passes, whatever the peer trickles.
/// Without the reader (the handler took it with `into_parts`) nothing can read the reply: TCP is
/// closed at once.
fn finish<T>(
    context: &Context<T>,
    writer: &Writer,
    socket: &Arc<TcpStream>,
    reader: Option<Reader>,
    code: CloseCode,
    reason: &str,
) {
    if writer.is_open() {
        let _ = writer.start_close(code, reason);
    }
    if let Some(mut reader) = reader {
        let deadline = deadline_after(context.settings.config.close_timeout);
        let _cut = context.timer.cut_at(socket, deadline);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || reader.set_read_timeout(Some(left)).is_err() {
                break;
            }
            // The peer's close (or an error, or the connection already closed) ends the wait.
            // Data arrives in pieces and is dropped piece by piece: nothing is assembled.
            match reader.read_event() {
                Ok(Event::Message(Message::Close(_))) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    writer.shutdown_cleanly();
}

/// `timeout` from now; a duration too large for the clock means a deadline decades away.
pub(super) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(1 << 30))
}

/// Reads within the handshake deadline: each read waits only for the time left.
struct Deadline<'a> {
    io: &'a mut ServerIo,
    socket: &'a TcpStream,
    until: Option<Instant>,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(until) = self.until {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.socket.set_read_timeout(Some(left))?;
        }
        self.io.read(buf)
    }
}

type Upgraded<T> = (Request, T, Vec<u8>, Option<String>, Option<DeflateParams>);

/// Runs the opening handshake: `Some` when upgraded (the 101 is sent); `None` when the request
/// was answered otherwise (HTTP page, refusal, 503) or the client went away or was too slow.
fn handshake<T: Send + 'static>(
    context: &Context<T>,
    io: &mut ServerIo,
    stream: &Arc<TcpStream>,
) -> Option<Upgraded<T>> {
    let settings = &context.settings;
    let config = &settings.config;
    let limits = config.head_limits();
    let until = config.handshake_timeout.map(|t| Instant::now() + t);
    let _ = stream.set_write_timeout(config.handshake_timeout.or(settings.write_timeout));
    // Over TLS one read can span many socket reads (a trickled record): bound them all.
    io.set_deadline(until);
    let mut reader = Deadline {
        io,
        socket: stream,
        until,
    };
    let mut buf = Vec::with_capacity(512);
    let shutting_down = || context.registry.lock().shutting_down;
    let (request, head_len) = loop {
        match parse_request(&buf, limits) {
            Ok(Decoded::Complete(request, len)) => break (request, len),
            Ok(Decoded::Partial) => match read_more(&mut reader, &mut buf, limits.max_size) {
                Ok(()) => {}
                Err(Error::Handshake(HandshakeError::HeadTooLarge)) => {
                    respond(
                        context,
                        reader.io,
                        stream,
                        &error_response(&HandshakeError::HeadTooLarge),
                    );
                    return None;
                }
                Err(_) => {
                    // Closed, timed out (a slow client is dropped), or woken by shutdown.
                    if shutting_down() {
                        respond(context, reader.io, stream, &unavailable(context));
                    }
                    return None;
                }
            },
            Err(error) => {
                respond(context, reader.io, stream, &error_response(&error));
                return None;
            }
        }
    };
    if shutting_down() {
        respond(context, reader.io, stream, &unavailable(context));
        return None;
    }
    // A request without Upgrade is plain HTTP: the page handler, or 426.
    if request.headers.get("upgrade").is_none() {
        let response = match &context.http {
            Some(http) => http(&request).to_bytes(),
            None => http::upgrade_required(),
        };
        respond(context, reader.io, stream, &response);
        return None;
    }
    let key = match check_request(&request) {
        Ok(key) => key,
        Err(error) => {
            respond(context, reader.io, stream, &error_response(&error));
            return None;
        }
    };
    if let (Some(allowed), Some(origin)) = (&settings.allowed_origins, request.origin()) {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
            let refusal = HttpResponse::new(403).body("origin not allowed\n");
            respond(context, reader.io, stream, &refusal.to_bytes());
            return None;
        }
    }
    let preferred = settings.subprotocols.iter().find(|mine| {
        request
            .subprotocols()
            .any(|offered| offered == mine.as_str())
    });
    let mut accept = Accept::new();
    accept.set_subprotocol(preferred.map(String::as_str));
    let upgrade = match decide(&request, &key, accept, &*context.hook, &config.deflate) {
        Decision::Upgrade(upgrade) => upgrade,
        Decision::Refuse(response, _) => {
            respond(context, reader.io, stream, &response);
            return None;
        }
    };
    if io::Write::write_all(reader.io, &upgrade.response).is_err() {
        return None;
    }
    let leftover = buf.split_off(head_len);
    Some((
        request,
        upgrade.data,
        leftover,
        upgrade.subprotocol,
        upgrade.deflate,
    ))
}

/// The longest a refused client's leftover request is drained after the answer: enough for what
/// it sent before reading the answer to arrive, so that closing does not reset the connection
/// before the client has read it (RFC 9112 §9.6).
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// The drain also ends after this long without a byte: a client that sent its whole request is
/// not kept waiting for the rest of [`DRAIN_TIME`].
const DRAIN_QUIET: Duration = Duration::from_millis(200);

/// The most bytes drained after an answer.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Bounds a whole HTTP answer when no handshake timeout is configured.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

fn unavailable<T>(context: &Context<T>) -> Vec<u8> {
    http::unavailable(context.settings.retry_after_secs, "server shutting down").to_bytes()
}

/// Sends a final HTTP answer and closes, best effort: the client may be gone.
///
/// The whole answer has one deadline, the handshake timeout (10 s without one), however slowly
/// the client reads; then the drain has at most [`DRAIN_TIME`] and [`DRAIN_LIMIT`] bytes. The
/// server's timer enforces each deadline by shutting the socket down, so no per-call timeout can
/// be stretched by a peer that takes a byte at a time.
fn respond<T>(context: &Context<T>, io: &mut ServerIo, stream: &Arc<TcpStream>, response: &[u8]) {
    let timeout = context
        .settings
        .config
        .handshake_timeout
        .unwrap_or(ANSWER_TIMEOUT);
    let deadline = deadline_after(timeout);
    let cut = context.timer.cut_at(stream, deadline);
    let written = io::Write::write_all(io, response).is_ok() && io::Write::flush(io).is_ok();
    let _ = stream.shutdown(Shutdown::Write);
    drop(cut);
    if !written {
        return;
    }
    // Let the client read the answer before the socket closes: drain briefly what it still sends.
    let drain_until = (Instant::now() + DRAIN_TIME).min(deadline);
    let _cut = context.timer.cut_at(stream, drain_until);
    let mut scratch = [0u8; 512];
    let mut drained = 0;
    while drained < DRAIN_LIMIT {
        let left = drain_until.saturating_duration_since(Instant::now());
        if left.is_zero()
            || stream
                .set_read_timeout(Some(left.min(DRAIN_QUIET)))
                .is_err()
        {
            break;
        }
        match io.read(&mut scratch) {
            Ok(n) if n > 0 => drained += n,
            _ => break,
        }
    }
}
