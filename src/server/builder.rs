//! [`ServerBuilder`]: a server's settings, each with its default, checked when it binds.

use super::accept::{Accept, Hook};
use super::http::HttpResponse;
use super::proxies::TrustedProxies;
use super::{EndHook, HttpHandler, Server};
use crate::error::Error;
use crate::proto::config::Config;
use crate::proto::handshake::Request;
use crate::timing::timer::HeartbeatConfig;
use crate::websocket::ending::EndCause;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// The default heartbeat: a ping after 20 s of quiet, failed 20 s later without an answer (as
/// python-websockets does). With it, a dead or half-open peer is freed at most 40 s after the last
/// byte it sent; see [`ServerBuilder::heartbeat`].
pub(crate) const DEFAULT_HEARTBEAT: HeartbeatConfig = HeartbeatConfig {
    interval: Duration::from_secs(20),
    timeout: Duration::from_secs(20),
};

/// Settings that do not depend on the hook's type.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) config: Config,
    pub(super) max_connections: usize,
    pub(super) allowed_origins: Option<Vec<String>>,
    pub(super) subprotocols: Vec<String>,
    pub(super) heartbeat: Option<HeartbeatConfig>,
    pub(super) message_timeout: Option<Duration>,
    pub(super) idle_timeout: Option<Duration>,
    pub(super) write_timeout: Option<Duration>,
    /// Set by [`ServerBuilder::close_timeout`]; overrides the config's at `bind`, whatever the
    /// order of the calls.
    pub(super) close_timeout: Option<Duration>,
    pub(super) shutdown_timeout: Duration,
    pub(super) stack_size: usize,
    pub(super) retry_after_secs: u32,
    /// Proxies whose forwarding headers name the client, as given; parsed by `bind`.
    pub(super) trusted_proxy_specs: Vec<String>,
    /// The same, parsed.
    pub(super) trusted_proxies: TrustedProxies,
    /// wss://: the identity, and how long the TLS handshake may take.
    #[cfg(feature = "native-tls")]
    pub(super) tls: Option<(crate::transport::tls::TlsIdentity, Duration)>,
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
            close_timeout: None,
            shutdown_timeout: Duration::from_secs(5),
            stack_size: ServerBuilder::DEFAULT_STACK_SIZE,
            retry_after_secs: 5,
            trusted_proxy_specs: Vec::new(),
            trusted_proxies: TrustedProxies::default(),
            #[cfg(feature = "native-tls")]
            tls: None,
        }
    }
}

/// Builds a [`Server`]. `T` is what the handshake hook attaches to each
/// [`Session`](crate::Session) (`()` without a hook).
pub struct ServerBuilder<T = ()> {
    pub(super) settings: Settings,
    pub(super) hook: Arc<Hook<T>>,
    pub(super) http: Option<Arc<HttpHandler>>,
    pub(super) on_end: Option<Arc<EndHook>>,
}

impl ServerBuilder {
    /// The default stack of a connection thread, 256 KiB: the library's own path (handshake,
    /// reads, sends, close) fits 32 KiB (`tests/server.rs` checks it), the rest is room for the
    /// handler. It is address space: only the pages a thread touches become resident.
    pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;
}

impl<T: Send + 'static> ServerBuilder<T> {
    /// Limits, buffers and the handshake timeout ([`Config::handshake_timeout`]: a client whose
    /// request head has not fully arrived by then is dropped). Defaults to [`Config::default`].
    pub fn config(mut self, config: Config) -> Self {
        self.settings.config = config;
        self
    }

    /// Decides each handshake after the built-in checks: return `Ok(data)` to accept (the data
    /// goes to [`Session::data`](crate::Session::data); set a subprotocol or response headers on the [`Accept`]), or
    /// an [`HttpResponse`] to refuse (e.g. 401 or 403 with a body). Runs on the connection's
    /// thread. Defaults to accepting every valid request. The same hook shape as
    /// [`Acceptor::on_handshake`](crate::Acceptor::on_handshake).
    pub fn on_handshake<U, F>(self, hook: F) -> ServerBuilder<U>
    where
        F: Fn(&Request, &mut Accept) -> Result<U, HttpResponse> + Send + Sync + 'static,
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

    /// How long the server waits for the peer's answer to a close frame before closing TCP:
    /// one deadline for the whole wait, however the peer trickles its bytes. It bounds both
    /// [`Session::close`](crate::Session::close) and the server's own close when the handler
    /// returns with the connection still open. It is the connections'
    /// [`Config::close_timeout`] (this call wins over [`config`](Self::config), in either
    /// order). Defaults to the config's, 5 s.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.settings.close_timeout = Some(timeout);
        self
    }

    /// How long [`ServerHandle::shutdown`](crate::ServerHandle::shutdown) waits for handlers to finish after sending 1001,
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

    /// The stack size of each connection thread, at least 32 KiB. Defaults to
    /// [`ServerBuilder::DEFAULT_STACK_SIZE`] (256 KiB); raise it for handlers with deep recursion
    /// or large stack arrays. The library's own path fits 32 KiB, or 64 KiB with
    /// permessage-deflate agreed.
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

    /// Takes the client's address from the forwarding headers of these proxies (e.g. a load
    /// balancer in front of the servers): IP addresses (`"10.0.0.7"`, `"::1"`) or CIDR ranges
    /// (`"10.0.0.0/8"`, `"fd00::/8"`), checked by [`bind`](Self::bind). When the TCP peer is
    /// one of them, [`Session::client_addr`](crate::Session::client_addr) and [`on_end`](Self::on_end) see the address in
    /// `Forwarded: for=` (RFC 7239), or else in `X-Forwarded-For`: the right-most one that is not
    /// itself a trusted proxy, since every value left of it was written by someone untrusted.
    /// From any other peer, or when the header is malformed, they see the TCP peer. Defaults to
    /// none: the headers are ignored.
    ///
    /// The proxies must write (or remove) `Forwarded` whenever it is present: a client's own
    /// `Forwarded` passed through by a proxy that writes only `X-Forwarded-For` would be believed
    /// (with nginx: `proxy_set_header Forwarded "";` next to `X-Forwarded-For`).
    pub fn trusted_proxies<I, S>(mut self, proxies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.trusted_proxy_specs = proxies.into_iter().map(Into::into).collect();
        self
    }

    /// Called on the connection's thread when a WebSocket connection has ended, with the
    /// client's address ([`Session::client_addr`](crate::Session::client_addr)) and why it ended: the place for a log line.
    /// Defaults to none.
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
    pub fn bind(mut self, addr: impl ToSocketAddrs) -> Result<Server<T>, Error> {
        if let Some(timeout) = self.settings.close_timeout {
            self.settings.config.close_timeout = timeout;
        }
        self.settings.config.validate()?;
        if self.settings.max_connections == 0 {
            return Err(Error::InvalidConfig("max_connections must be positive"));
        }
        // RFC 6455 §4.1: each subprotocol is a token; a name that is not could never be offered
        // by a client, and would be refused as a response header anyway.
        if crate::proto::handshake::check_subprotocols(
            self.settings.subprotocols.iter().map(String::as_str),
        )
        .is_err()
        {
            return Err(Error::InvalidConfig(
                "subprotocol names must be RFC 9110 tokens",
            ));
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
        let mut builder = self;
        builder.settings.trusted_proxies = TrustedProxies::parse(
            &builder.settings.trusted_proxy_specs,
        )
        .ok_or(Error::InvalidConfig(
            "trusted_proxies: each must be an IP address or a CIDR range like 10.0.0.0/8",
        ))?;
        Server::bound(TcpListener::bind(addr)?, builder)
    }
}
