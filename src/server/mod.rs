//! A thread-per-connection WebSocket server: handshake policy, heartbeats, graceful shutdown.

pub(crate) mod accept;
mod connection;
mod http;
mod registry;
mod session;
mod stream;

pub use http::HttpResponse;
pub use session::Session;

use crate::error::Error;
use crate::proto::close::CloseCode;
use crate::proto::config::Config;
use crate::proto::handshake::Request;
use crate::server::accept::{Accept, Reject};
use crate::timing::timer::{HeartbeatConfig, HeartbeatTimer};
use crate::websocket::ending::EndCause;
use registry::Registry;
use std::io::{self, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

type Hook<T> = dyn Fn(&Request, &mut Accept) -> Result<T, Reject> + Send + Sync;
type HttpHandler = dyn Fn(&Request) -> HttpResponse + Send + Sync;
type Handler<T> = dyn Fn(Session<T>) + Send + Sync;
type EndHook = dyn Fn(SocketAddr, &EndCause) + Send + Sync;

/// The default stack of a connection thread. The handshake and the whole echo path (reads of
/// every frame size, pongs, sends, the close) run in 32 KiB (`tests/server.rs`,
/// `the_whole_echo_path_runs_on_a_32_kib_stack`); the rest is room for the handler. It is address
/// space: only the pages touched are resident (about 20 KiB per idle connection in all,
/// `scripts/memory.sh`).
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// The default heartbeat: a ping after 20 s of quiet, failed 20 s later without an answer (as
/// python-websockets does). With it, a dead or half-open peer is freed at most 40 s after the last
/// byte it sent; see [`ServerBuilder::heartbeat`].
pub(crate) const DEFAULT_HEARTBEAT: HeartbeatConfig = HeartbeatConfig {
    interval: Duration::from_secs(20),
    timeout: Duration::from_secs(20),
};

/// How long the accept thread blocks in one `accept()` before it looks at the stop flag again
/// (where the OS honours a receive timeout on a listening socket, as Linux does): the bound on
/// [`ServerHandle::shutdown`]'s wait for the accept thread if waking it fails.
const ACCEPT_POLL: Duration = Duration::from_secs(1);

/// The longest pause of the accept loop after a failed `accept()` (out of descriptors, memory):
/// the pause doubles from 10 ms up to this, so a persistent error does not burn a core.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Settings that do not depend on the hook's type.
#[derive(Clone)]
struct Settings {
    config: Config,
    max_connections: usize,
    allowed_origins: Option<Vec<String>>,
    subprotocols: Vec<String>,
    heartbeat: Option<HeartbeatConfig>,
    message_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    close_timeout: Duration,
    shutdown_timeout: Duration,
    stack_size: usize,
    retry_after_secs: u32,
    /// wss://: the identity, and how long the TLS handshake may take.
    #[cfg(feature = "native-tls")]
    tls: Option<(crate::transport::tls::TlsIdentity, Duration)>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            config: Config::default(),
            max_connections: 10_000,
            allowed_origins: None,
            subprotocols: Vec::new(),
            heartbeat: Some(DEFAULT_HEARTBEAT),
            message_timeout: Some(Duration::from_secs(60)),
            idle_timeout: None,
            write_timeout: Some(Duration::from_secs(10)),
            close_timeout: Duration::from_secs(2),
            shutdown_timeout: Duration::from_secs(5),
            stack_size: DEFAULT_STACK_SIZE,
            retry_after_secs: 5,
            #[cfg(feature = "native-tls")]
            tls: None,
        }
    }
}

/// Builds a [`Server`]. `T` is what the handshake hook attaches to each
/// [`Session`] (`()` without a hook).
pub struct ServerBuilder<T = ()> {
    settings: Settings,
    hook: Arc<Hook<T>>,
    http: Option<Arc<HttpHandler>>,
    on_end: Option<Arc<EndHook>>,
}

/// A thread-per-connection WebSocket server.
///
/// ```no_run
/// use syncws::{Message, Server};
/// Server::builder().bind("127.0.0.1:9001")?.serve(|mut session| {
///     while let Ok(message) = session.read() {
///         if message.is_data() && session.send(message).is_err() {
///             break;
///         }
///     }
/// })?;
/// # Ok::<(), syncws::Error>(())
/// ```
///
/// # Threads
///
/// - the accept loop (`syncws-accept`, or the caller's thread in [`Server::serve`]) only accepts
///   and spawns: it never reads from a client, so a slow client cannot stall it;
/// - one thread per connection (`syncws-conn-N`) runs the opening handshake and then the
///   handler;
/// - one timer thread (`syncws-heartbeat`) pings quiet connections and fails dead ones (the
///   heartbeat is on by default), fails connections past their message deadline or idle limit,
///   and enforces the total deadlines of HTTP answers and of the close wait after a handler.
///
/// Every wait of the server's own is bounded: by a timeout (handshake, write, close, shutdown,
/// one second per `accept()`), or by the peer making progress with the heartbeat to notice when
/// it stops. [`ServerHandle::shutdown`] stops and joins them all.
pub struct Server<T = ()> {
    listener: TcpListener,
    builder: ServerBuilder<T>,
}

impl Server {
    /// A builder with the defaults each setter documents.
    pub fn builder() -> ServerBuilder<()> {
        ServerBuilder {
            settings: Settings::default(),
            hook: Arc::new(|_, _| Ok(())),
            http: None,
            on_end: None,
        }
    }

    /// Binds `addr` with default settings.
    pub fn bind(addr: impl ToSocketAddrs) -> Result<Server, Error> {
        Server::builder().bind(addr)
    }
}

impl<T: Send + 'static> ServerBuilder<T> {
    /// Limits, buffers and the handshake timeout ([`Config::handshake_timeout`]: a client whose
    /// request head has not fully arrived by then is dropped). Defaults to [`Config::default`].
    pub fn config(mut self, config: Config) -> Self {
        self.settings.config = config;
        self
    }

    /// Decides each handshake after the built-in checks: return `Ok(data)` to accept (the data
    /// goes to [`Session::data`]; set a subprotocol or response headers on the [`Accept`]), or
    /// a [`Reject`] (e.g. 401 or 403 with a body). Runs on the connection's thread. Defaults to
    /// accepting every valid request.
    pub fn on_handshake<U, F>(self, hook: F) -> ServerBuilder<U>
    where
        F: Fn(&Request, &mut Accept) -> Result<U, Reject> + Send + Sync + 'static,
    {
        ServerBuilder {
            settings: self.settings,
            hook: Arc::new(hook),
            http: self.http,
            on_end: self.on_end,
        }
    }

    /// Browser origins allowed to connect; a request with another `Origin` gets 403. Requests
    /// without `Origin` (non-browser clients) are allowed. Defaults to allowing every origin:
    /// restrict it whenever cookies authenticate users (cross-site WebSocket hijacking).
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// Subprotocols this server speaks, most preferred first: the first one the client also
    /// offers is selected (the hook may override it). Defaults to none.
    pub fn subprotocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// The most connections (including handshakes in progress); beyond it a client gets 503
    /// with `Retry-After`. Defaults to 10,000.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.settings.max_connections = max;
        self
    }

    /// Pings a connection that has been quiet for `interval`, and fails it if nothing arrives
    /// within `timeout` after the ping (close 1011 if it can be sent, then TCP is closed at
    /// once; the cause is [`EndCause::HeartbeatTimeout`]). Anything received counts as life, a
    /// frame or part of one, so a peer busy sending a large message is never failed.
    /// One thread drives all connections' timers.
    ///
    /// Defaults to on, every 20 s with a 20 s timeout (as python-websockets): a peer that died or
    /// vanished without closing TCP is freed (its thread and its `max_connections` slot) at most
    /// 40 s after the last byte it sent. [`without_heartbeat`](Self::without_heartbeat) turns it off.
    ///
    /// The peer's answers count only once read: a handler that never reads (one that only pushes
    /// messages) must read on another thread (the reader is `Send`), or turn the heartbeat off,
    /// or its live peers are failed too.
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.settings.heartbeat = Some(HeartbeatConfig { interval, timeout });
        self
    }

    /// Turns the heartbeat off: a peer that vanishes without closing TCP then holds its thread and
    /// slot until a write to it times out, the idle timeout (if set) ends it, or for ever if the
    /// handler only reads. For clients known to ping on their own, or tests.
    pub fn without_heartbeat(mut self) -> Self {
        self.settings.heartbeat = None;
        self
    }

    /// Fails a connection whose message is still incomplete this long after its first byte
    /// arrived: a peer that dribbles a message forever while answering pings is dropped (close
    /// 1008, [`EndCause::MessageTimeout`]). `None` allows any duration. Defaults to 60 s; raise it
    /// for large messages over slow links.
    pub fn message_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.message_timeout = timeout;
        self
    }

    /// Fails a connection on which no text or binary message has arrived for this long, pings
    /// and pongs notwithstanding (close 1001, [`EndCause::IdleTimeout`]). Defaults to none.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.idle_timeout = timeout;
        self
    }

    /// Bounds every write to a connection; a peer that does not take a frame within it is
    /// failed with 1008 ([`EndCause::WriteTimeout`]). This bounds how long a slow member delays
    /// a [`Room`](crate::Room) broadcast. `None` waits for ever. Defaults to 10 s.
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.write_timeout = timeout;
        self
    }

    /// How long, after the handler returns with the connection still open, the server waits for
    /// the peer's answer to its close frame before closing TCP: one deadline for the whole wait,
    /// however the peer trickles its bytes. Defaults to 2 s.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.settings.close_timeout = timeout;
        self
    }

    /// How long [`ServerHandle::shutdown`] waits for handlers to finish after sending 1001,
    /// before it closes the remaining connections' TCP. Defaults to 5 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// Serves `wss://` with this certificate and key (feature `native-tls`). The TLS handshake
    /// runs on the connection's thread, bounded by `timeout`; then the WebSocket handshake has its
    /// own [`Config::handshake_timeout`]. Defaults to plain `ws://`.
    #[cfg(feature = "native-tls")]
    pub fn tls(mut self, identity: crate::transport::tls::TlsIdentity, timeout: Duration) -> Self {
        self.settings.tls = Some((identity, timeout));
        self
    }

    /// The stack size of each connection thread. Defaults to [`DEFAULT_STACK_SIZE`] (256 KiB);
    /// raise it for handlers with deep recursion or large stack arrays. The library's own path
    /// (handshake, reads, sends, close) fits 32 KiB, or 64 KiB with permessage-deflate agreed
    /// (measured in a debug build by `tests/server.rs`).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.settings.stack_size = bytes;
        self
    }

    /// Serves plain HTTP requests (those without `Upgrade`), e.g. the page of a browser app.
    /// Without it they get 426 with `Upgrade: websocket`.
    pub fn http<F>(mut self, handler: F) -> Self
    where
        F: Fn(&Request) -> HttpResponse + Send + Sync + 'static,
    {
        self.http = Some(Arc::new(handler));
        self
    }

    /// Called on the connection's thread when a WebSocket connection has ended, with the peer's
    /// address and why it ended: the place for a log line. Defaults to none.
    pub fn on_end<F>(mut self, hook: F) -> Self
    where
        F: Fn(SocketAddr, &EndCause) + Send + Sync + 'static,
    {
        self.on_end = Some(Arc::new(hook));
        self
    }

    /// Binds the listening socket (port 0 picks a free port; see [`Server::local_addr`]).
    ///
    /// Errors: [`Error::InvalidConfig`] for unusable settings; [`Error::Io`] if binding fails.
    pub fn bind(self, addr: impl ToSocketAddrs) -> Result<Server<T>, Error> {
        self.settings.config.validate()?;
        if self.settings.max_connections == 0 {
            return Err(Error::InvalidConfig("max_connections must be positive"));
        }
        let zero = |d: Option<Duration>| d.is_some_and(|d| d.is_zero());
        if zero(self.settings.message_timeout) || zero(self.settings.idle_timeout) {
            return Err(Error::InvalidConfig(
                "message and idle timeouts must be positive",
            ));
        }
        if let Some(hb) = self.settings.heartbeat {
            if hb.interval.is_zero() || hb.timeout.is_zero() {
                return Err(Error::InvalidConfig("heartbeat durations must be positive"));
            }
        }
        // The timer computes `now + timeout`: one too far for the clock would panic.
        let too_long = |d: Option<Duration>| d.is_some_and(|d| d > Config::MAX_TIMEOUT);
        let heartbeat = self
            .settings
            .heartbeat
            .map(|hb| hb.interval.max(hb.timeout));
        if too_long(self.settings.message_timeout)
            || too_long(self.settings.idle_timeout)
            || too_long(heartbeat)
        {
            return Err(Error::InvalidConfig(
                "message, idle and heartbeat timeouts over a year; use None for no limit",
            ));
        }
        if self.settings.stack_size < 32 * 1024 {
            return Err(Error::InvalidConfig("stack_size below 32 KiB"));
        }
        let listener = TcpListener::bind(addr)?;
        Ok(Server {
            listener,
            builder: self,
        })
    }
}

/// What every connection thread shares.
pub(crate) struct Context<T> {
    settings: Settings,
    hook: Arc<Hook<T>>,
    http: Option<Arc<HttpHandler>>,
    on_end: Option<Arc<EndHook>>,
    handler: Box<Handler<T>>,
    /// Heartbeats, message and idle deadlines, and the total deadlines of HTTP answers and close
    /// waits (`cut_at`): started with every server.
    timer: HeartbeatTimer,
    registry: Registry,
    stopping: AtomicBool,
}

impl<T: Send + 'static> Server<T> {
    /// The address the server listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves connections on the calling thread, for ever, running `handler` on each
    /// connection's own thread.
    ///
    /// The connection lives as long as the handler runs: when it returns (or panics) with the
    /// connection still open, the server sends close 1000 (1011 after a panic), reads through
    /// the session's reader (discarding data) until the answer or the close timeout, and closes
    /// TCP. Writers cloned into rooms or other threads then get [`Error::AlreadyClosed`].
    ///
    /// Errors: [`Error::Io`] if the heartbeat thread cannot start or accepting fails for good.
    pub fn serve<F>(self, handler: F) -> Result<(), Error>
    where
        F: Fn(Session<T>) + Send + Sync + 'static,
    {
        let (listener, context) = self.start(handler)?;
        accept_loop(&listener, &context);
        Ok(())
    }

    /// Serves connections on a new thread (`syncws-accept`) and returns a handle to stop them;
    /// handlers run as for [`serve`](Self::serve).
    ///
    /// Errors: [`Error::Io`] if a thread cannot start.
    pub fn spawn<F>(self, handler: F) -> Result<ServerHandle<T>, Error>
    where
        F: Fn(Session<T>) + Send + Sync + 'static,
    {
        let local_addr = self.local_addr()?;
        let (listener, context) = self.start(handler)?;
        // A second handle on the listening socket, made now so that waking the accept thread at
        // shutdown needs no new descriptor (there may be none left then). It also bounds each
        // accept() by ACCEPT_POLL, so that the thread sees the stop flag even if waking fails.
        let waker = listener_as_stream(&listener);
        if let Some(waker) = &waker {
            let _ = waker.set_read_timeout(Some(ACCEPT_POLL));
        }
        let thread_context = Arc::clone(&context);
        let accept_thread = thread::Builder::new()
            .name("syncws-accept".into())
            .spawn(move || accept_loop(&listener, &thread_context))?;
        Ok(ServerHandle {
            context: Some(context),
            accept_thread: Some(accept_thread),
            waker,
            local_addr,
        })
    }

    fn start<F>(self, handler: F) -> Result<(TcpListener, Arc<Context<T>>), Error>
    where
        F: Fn(Session<T>) + Send + Sync + 'static,
    {
        let ServerBuilder {
            settings,
            hook,
            http,
            on_end,
        } = self.builder;
        let watch = crate::timing::watch::WatchConfig {
            heartbeat: settings.heartbeat.map(|h| (h.interval, h.timeout)),
            message_timeout: settings.message_timeout,
            idle_timeout: settings.idle_timeout,
        };
        // Without heartbeat, message or idle timeout no connection is watched (`add` keeps
        // nothing), but the thread still enforces the total deadlines of answers and close waits.
        let timer = HeartbeatTimer::start(watch)?;
        let context = Arc::new(Context {
            settings,
            hook,
            http,
            on_end,
            handler: Box::new(handler),
            timer,
            registry: Registry::default(),
            stopping: AtomicBool::new(false),
        });
        Ok((self.listener, context))
    }
}

/// Accepts until the server stops: each connection gets a thread, or a 503 over the cap.
///
/// Waits only in `accept()`, for at most [`ACCEPT_POLL`] where the OS allows (then it looks at the
/// stop flag), and in the backoff after a failed accept (at most [`ACCEPT_BACKOFF_MAX`]).
fn accept_loop<T: Send + 'static>(listener: &TcpListener, context: &Arc<Context<T>>) {
    let mut backoff = Backoff::default();
    loop {
        let accepted = listener.accept();
        if context.stopping.load(Ordering::Acquire) {
            return;
        }
        context.registry.reap();
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff.reset();
                // Linux copies the listener's SO_RCVTIMEO (the accept poll) to accepted sockets.
                let _ = stream.set_read_timeout(None);
                stream
            }
            // The poll timed out, or this one connection failed before we took it: go on.
            Err(e) if is_per_connection(&e) => continue,
            // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS), or worse: retrying at once
            // would fail the same way and burn a core. Pause, longer each time.
            Err(e) => {
                backoff.pause(&e);
                continue;
            }
        };
        let mut live = context.registry.lock();
        if live.len() >= context.settings.max_connections {
            drop(live);
            refuse_over_capacity(stream, context.settings.retry_after_secs);
            continue;
        }
        // One socket shared by the registry (to wake it at shutdown) and the connection.
        let stream = Arc::new(stream);
        let id = Registry::insert(&mut live, Arc::clone(&stream));
        let thread_context = Arc::clone(context);
        let spawned = thread::Builder::new()
            .name(format!("syncws-conn-{id}"))
            .stack_size(context.settings.stack_size)
            .spawn(move || connection::run(&thread_context, stream, id));
        match spawned {
            Ok(thread) => Registry::set_thread(&mut live, id, thread),
            Err(_) => {
                // No thread for it (the OS limit): the stream was moved into the failed
                // closure and is closed; forget the slot.
                drop(live);
                context.registry.remove(id);
            }
        }
    }
}

/// Errors that concern one connection (or the poll), not the listener: retry at once.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The accept loop's pause after failed accepts: 10 ms, doubling up to [`ACCEPT_BACKOFF_MAX`];
/// reset by the next successful accept. The first failure of a streak is logged (feature `log`).
#[derive(Default)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn pause(&mut self, error: &io::Error) {
        if self.next.is_zero() {
            #[cfg(feature = "log")]
            log::warn!(target: "syncws::server", "accept failed, backing off: {error}");
            self.next = Duration::from_millis(10);
        }
        let _ = error;
        #[cfg(test)]
        tests::ACCEPT_PAUSES.fetch_add(1, Ordering::Relaxed);
        thread::sleep(self.next);
        self.next = (self.next * 2).min(ACCEPT_BACKOFF_MAX);
    }

    fn reset(&mut self) {
        self.next = Duration::ZERO;
    }
}

/// Wakes a thread blocked in `accept()` on the listener `waker` is a handle of. On Linux,
/// shutting a listening socket down makes a blocked (and every later) `accept()` fail at once.
/// Elsewhere a connection to ourselves is tried too (bounded by 1 s); failing both, the accept
/// thread still sees the stop flag within [`ACCEPT_POLL`] where the OS honours SO_RCVTIMEO on a
/// listening socket (Linux does).
fn wake_accept(waker: Option<&TcpStream>, local: SocketAddr) {
    if let Some(socket) = waker {
        let _ = socket.shutdown(Shutdown::Both);
    }
    if !cfg!(target_os = "linux") {
        let _ = TcpStream::connect_timeout(&wake_addr(local), Duration::from_secs(1));
    }
}

/// A second handle on the listening socket, typed as a stream for the socket calls a listener
/// lacks (`SO_RCVTIMEO`, `shutdown`). Dropping it closes only this handle.
fn listener_as_stream(listener: &TcpListener) -> Option<TcpStream> {
    let clone = listener.try_clone().ok()?;
    #[cfg(unix)]
    return Some(TcpStream::from(std::os::fd::OwnedFd::from(clone)));
    #[cfg(windows)]
    return Some(TcpStream::from(std::os::windows::io::OwnedSocket::from(
        clone,
    )));
    #[cfg(not(any(unix, windows)))]
    {
        drop(clone);
        None
    }
}

/// Answers 503 on the accept thread without waiting for the client: reads only what has already
/// arrived (so closing does not reset the connection before the client reads the answer).
fn refuse_over_capacity(mut stream: TcpStream, retry_after_secs: u32) {
    if stream.set_nonblocking(true).is_ok() {
        let mut scratch = [0u8; 2048];
        while matches!(stream.read(&mut scratch), Ok(n) if n > 0) {}
    }
    let response = http::unavailable(retry_after_secs, "too many connections").to_bytes();
    // A fresh socket's send buffer is empty: this write does not block.
    let _ = stream.write_all(&response);
    let _ = stream.shutdown(Shutdown::Write);
}

/// Controls a server started with [`Server::spawn`]. Dropping it shuts the server down.
pub struct ServerHandle<T: Send + 'static = ()> {
    context: Option<Arc<Context<T>>>,
    accept_thread: Option<JoinHandle<()>>,
    /// A handle on the listening socket, to wake the accept thread.
    waker: Option<TcpStream>,
    local_addr: SocketAddr,
}

impl<T: Send + 'static> ServerHandle<T> {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections open or in their handshake now.
    pub fn connection_count(&self) -> usize {
        self.context.as_ref().map_or(0, |c| c.registry.lock().len())
    }

    /// Stops the server: stops accepting, answers handshakes in progress with 503, sends close
    /// 1001 to every connection, waits up to the shutdown timeout for handlers to return, then
    /// closes the TCP connections that remain and waits for their handlers. When it returns,
    /// every thread the server started has ended.
    ///
    /// A handler blocked on something other than its connection (another socket, a lock) is
    /// waited for: closing TCP wakes only reads and writes on the connection.
    ///
    /// Called from a handler or from `on_end` (or the handle dropped there), it does not wait
    /// for the calling connection itself, which ends when its handler returns; every other thread
    /// has ended when it returns.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(context) = self.context.take() else {
            return;
        };
        // 1. Stop accepting: set the flag, then wake the blocked accept() (bounded: see
        //    `wake_accept` and ACCEPT_POLL).
        context.stopping.store(true, Ordering::Release);
        wake_accept(self.waker.as_ref(), self.local_addr);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
        // 2. Handshakes in progress get 503 (their threads wake on the read side's shutdown);
        //    open connections get 1001.
        let (handshaking, open) = context.registry.begin_shutdown();
        for stream in handshaking {
            let _ = stream.shutdown(Shutdown::Read);
        }
        //    First without waiting for any lock; then, for connections busy writing, with a
        //    little patience each, all within the shutdown timeout.
        let deadline = connection::deadline_after(context.settings.shutdown_timeout);
        let close = |writer: &crate::split::Writer, patience| {
            writer.close_from_shared_thread(
                EndCause::ServerShutdown,
                CloseCode::GoingAway,
                "server shutdown",
                patience,
            )
        };
        let busy: Vec<_> = open.iter().filter(|w| !close(w, Duration::ZERO)).collect();
        for writer in busy {
            let left = deadline.saturating_duration_since(Instant::now());
            close(writer, left.min(Duration::from_millis(100)));
        }
        // 3. Wait for handlers; then cut what is left and wait for those threads too.
        if !context.registry.wait_empty(Some(deadline)) {
            let (handshaking, open) = context.registry.begin_shutdown();
            for stream in handshaking {
                let _ = stream.shutdown(Shutdown::Both);
            }
            for writer in open {
                writer.fail(
                    EndCause::ServerShutdown,
                    CloseCode::GoingAway,
                    "server shutdown",
                );
            }
            context.registry.wait_empty(None);
        }
        context.registry.reap();
        // 4. The last reference: dropping it stops and joins the heartbeat thread.
        drop(context);
    }
}

impl<T: Send + 'static> Drop for ServerHandle<T> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where to connect to wake our own accept(): the unspecified address is not connectable.
fn wake_addr(local: SocketAddr) -> SocketAddr {
    match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), local.port())
        }
        _ => local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::sync::atomic::AtomicUsize;

    /// Pauses of the accept loop after failed accepts, in this process.
    pub(super) static ACCEPT_PAUSES: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn the_default_server_pings_every_20_s_and_frees_the_dead_within_40_s() {
        let settings = Settings::default();
        let heartbeat = settings
            .heartbeat
            .expect("a default server must have a heartbeat");
        assert_eq!(heartbeat.interval, Duration::from_secs(20));
        assert_eq!(heartbeat.timeout, Duration::from_secs(20));
        // And the opt-out.
        let builder = Server::builder().without_heartbeat();
        assert!(builder.settings.heartbeat.is_none());
    }

    #[test]
    fn the_backoff_grows_to_its_bound_and_resets() {
        let mut backoff = Backoff::default();
        let error = io::Error::other("test");
        let mut pauses = Vec::new();
        for _ in 0..4 {
            backoff.pause(&error);
            pauses.push(backoff.next);
        }
        assert_eq!(pauses[0], Duration::from_millis(20));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        backoff.next = ACCEPT_BACKOFF_MAX;
        backoff.next = (backoff.next * 2).min(ACCEPT_BACKOFF_MAX);
        assert_eq!(backoff.next, ACCEPT_BACKOFF_MAX);
        backoff.reset();
        assert!(backoff.next.is_zero());
    }

    const CHILD: &str = "SYNCWS_TEST_FD_LIMITED_CHILD";
    const CHILD_TEST: &str =
        "server::tests::out_of_descriptors_the_accept_loop_backs_off_and_stops";

    /// Out of file descriptors, `accept()` fails at once for as long as the shortage lasts: the
    /// loop must pause longer and longer (not retry 100 times a second), serve again once
    /// descriptors are free, and `shutdown` must return even though connecting to itself is then
    /// impossible. Runs in a child process with a low descriptor limit (`ulimit -n`).
    #[test]
    #[cfg(target_os = "linux")]
    fn out_of_descriptors_the_accept_loop_backs_off_and_stops() {
        if std::env::var_os(CHILD).is_some() {
            return fd_limited_child();
        }
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
            .arg(exe)
            .args(["--exact", CHILD_TEST, "--test-threads=1", "--nocapture"])
            .env(CHILD, "1")
            .spawn()
            .unwrap();
        let give_up = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > give_up {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the descriptor-limited child did not finish within 60 s");
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "the descriptor-limited child failed");
    }

    #[cfg(target_os = "linux")]
    fn fd_limited_child() {
        // The handshake threads must keep their descriptors for the whole test.
        let config = Config {
            handshake_timeout: Some(Duration::from_secs(60)),
            ..Config::default()
        };
        let server = Server::builder()
            .config(config)
            .bind("127.0.0.1:0")
            .unwrap()
            .spawn(|_session| {})
            .unwrap();
        let addr = server.local_addr();
        // Use up every descriptor: each client holds one here and one in the server.
        let mut clients = Vec::new();
        while clients.len() < 1_000 {
            match TcpStream::connect(addr) {
                Ok(client) => clients.push(client),
                Err(_) => break,
            }
        }
        assert!(
            clients.len() < 1_000,
            "the descriptor limit was not reached"
        );
        // Wait (bounded) until the accept loop has hit the limit, then count its pauses.
        let give_up = Instant::now() + Duration::from_secs(20);
        while ACCEPT_PAUSES.load(Ordering::Relaxed) == 0 {
            assert!(Instant::now() < give_up, "accept never failed");
            thread::sleep(Duration::from_millis(10));
        }
        let before = ACCEPT_PAUSES.load(Ordering::Relaxed);
        thread::sleep(Duration::from_secs(3));
        let during = ACCEPT_PAUSES.load(Ordering::Relaxed) - before;
        // Pauses of 10, 20, 40 … up to 1,000 ms: about 9 in 3 s, where a fixed 10 ms pause
        // would make about 300 (and no pause, millions).
        assert!(during <= 40, "{during} failed accepts in 3 s");
        // Free the descriptors: the server accepts again.
        clients.clear();
        let give_up = Instant::now() + Duration::from_secs(20);
        let served = loop {
            if let Ok(mut client) = TcpStream::connect(addr) {
                let _ = client.set_read_timeout(Some(Duration::from_secs(20)));
                let request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
                let mut status = [0u8; 12];
                if client.write_all(request.as_bytes()).is_ok()
                    && client.read_exact(&mut status).is_ok()
                {
                    break status[9..12].to_vec();
                }
            }
            assert!(Instant::now() < give_up, "never served again");
            thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(served, b"426");
        // Use every descriptor again, with the accept thread (probably) blocked in accept()
        // holding the one it reserved: a connect to ourselves cannot wake it, yet shutdown returns.
        thread::sleep(Duration::from_millis(1_500));
        let mut hoard = Vec::new();
        while let Ok(file) = std::fs::File::open("/dev/null") {
            hoard.push(file);
            if hoard.len() > 1_000 {
                break;
            }
        }
        let (done_tx, done) = std::sync::mpsc::channel();
        thread::spawn(move || {
            server.shutdown();
            let _ = done_tx.send(());
        });
        done.recv_timeout(Duration::from_secs(20))
            .expect("shutdown did not return without descriptors");
        drop(hoard);
        drop(clients);
    }
}
