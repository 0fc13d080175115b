//! A thread-per-connection WebSocket server: handshake policy, heartbeats, graceful shutdown.
//!
//! [`ServerBuilder`] (builder.rs) holds the settings; [`Server`] (here) starts the accept loop
//! (listener.rs), which gives each connection a thread (connection.rs) and a [`Session`];
//! handle.rs stops it all.

pub(crate) mod accept;
mod builder;
mod connection;
mod handle;
mod http;
mod listener;
mod proxies;
mod registry;
mod session;
mod stream;

pub use builder::ServerBuilder;
pub use handle::{ServerHandle, ShutdownHandle};
pub use http::HttpResponse;
pub use session::Session;

use crate::error::Error;
use crate::proto::handshake::Request;
use crate::timing::timer::HeartbeatTimer;
use crate::websocket::ending::EndCause;
use accept::Hook;
use builder::Settings;
use handle::StopSignal;
use registry::Registry;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::thread;

type HttpHandler = dyn Fn(&Request) -> HttpResponse + Send + Sync;
type Handler<T> = dyn Fn(Session<T>) + Send + Sync;
type EndHook = dyn Fn(SocketAddr, &EndCause) + Send + Sync;

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
/// it stops. [`ServerHandle::shutdown`] (or a [`ShutdownHandle`] for `serve`) stops and joins
/// them all.
pub struct Server<T = ()> {
    listener: TcpListener,
    builder: ServerBuilder<T>,
    signal: Arc<StopSignal>,
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
    stop: Arc<StopSignal>,
}

impl<T: Send + 'static> Server<T> {
    pub(super) fn bound(listener: TcpListener, builder: ServerBuilder<T>) -> Result<Self, Error> {
        let signal = Arc::new(StopSignal::new(&listener)?);
        Ok(Server {
            listener,
            builder,
            signal,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.listener.local_addr()?)
    }

    /// A handle that stops this server from any thread, taken before [`serve`](Self::serve).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle::new(&self.signal)
    }

    /// Serves connections on the calling thread, running `handler` on each connection's own
    /// thread, until a [`ShutdownHandle`] stops it; it returns when every thread it started has
    /// ended.
    ///
    /// The connection lives as long as the handler runs: when it returns (or panics) with the
    /// connection still open, the server sends close 1000 (1011 after a panic), reads through
    /// the session's reader (discarding data) until the answer or the close timeout, and closes
    /// TCP. Writers cloned into rooms or other threads then get [`Error::AlreadyClosed`].
    ///
    /// Errors: [`Error::Io`] if the heartbeat thread cannot start.
    pub fn serve<F>(self, handler: F) -> Result<(), Error>
    where
        F: Fn(Session<T>) + Send + Sync + 'static,
    {
        let (listener, context) = self.start(handler)?;
        listener::accept_loop(&listener, &context);
        drop(listener);
        handle::shut_down(&context);
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
        let thread_context = Arc::clone(&context);
        let accept_thread =
            thread::Builder::new()
                .name("syncws-accept".into())
                .spawn(move || {
                    listener::accept_loop(&listener, &thread_context);
                    drop(listener);
                    // Stopped by a ShutdownHandle: nobody else runs the sequence.
                    if thread_context.stop.signalled() {
                        handle::shut_down(&thread_context);
                    }
                })?;
        Ok(ServerHandle {
            signal: Arc::clone(&context.stop),
            context: Some(context),
            accept_thread: Some(accept_thread),
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
            stop: self.signal,
        });
        Ok((self.listener, context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
    fn the_builder_close_timeout_is_the_connections_config_close_timeout_in_either_order() {
        let short = Duration::from_millis(300);
        let default = Server::builder().bind("127.0.0.1:0").unwrap();
        assert_eq!(
            default.builder.settings.config.close_timeout,
            Duration::from_secs(5)
        );
        let before = Server::builder()
            .close_timeout(short)
            .config(crate::Config::default())
            .bind("127.0.0.1:0")
            .unwrap();
        let after = Server::builder()
            .config(crate::Config::default())
            .close_timeout(short)
            .bind("127.0.0.1:0")
            .unwrap();
        assert_eq!(before.builder.settings.config.close_timeout, short);
        assert_eq!(after.builder.settings.config.close_timeout, short);
    }
}
