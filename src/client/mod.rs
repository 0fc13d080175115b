//! The client side: connecting (TCP, proxy tunnel, TLS), redirects, and the client's handshake.

mod outbox;
pub(crate) mod proxy;
pub(crate) mod reconnect;
pub(crate) mod url;

use crate::client::proxy::Proxy;
use crate::client::url::WsUrl;
use crate::error::{Error, HandshakeError, UrlError};
use crate::proto::Role;
use crate::proto::config::Config;
use crate::proto::deflate::negotiation;
use crate::proto::frame::Decoded;
use crate::proto::handshake::{
    ClientRequest, Headers, Response, check_response, check_subprotocols, generate_key,
    parse_response,
};
use crate::transport::net_stream::NetStream;
use crate::transport::tls::TlsOptions;
use crate::websocket::WebSocket;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Connects to a `ws://` or `wss://` URL and performs the opening handshake.
///
/// Returns the connection and the server's `101` response. Blocks while connecting and during the
/// handshake (bounded by [`Config::handshake_timeout`], through a proxy and TLS too: for `wss://`
/// a short-lived thread shuts the socket down at the deadline). Honours the proxy environment
/// variables (see [`Proxy::from_env`]), follows up to 5 redirects, and sends a keepalive ping
/// every 20 s while [`WebSocket::read`] waits; [`ClientBuilder`] changes all three.
///
/// ```no_run
/// let (mut ws, _response) = syncws::connect("ws://127.0.0.1:9001/")?;
/// ws.send(syncws::Message::text("hello"))?;
/// println!("{}", ws.read()?);
/// # Ok::<(), syncws::Error>(())
/// ```
///
/// Errors: [`Error::Url`] for a bad URL (or `wss://` without the `native-tls` feature),
/// [`Error::Io`] if no address accepts, [`Error::Proxy`] if a proxy refuses the tunnel,
/// [`Error::Tls`] if TLS or certificate verification fails, [`Error::Handshake`] if the server
/// refuses (the response is in [`HandshakeError::UnexpectedResponse`]).
pub fn connect(url: &str) -> Result<(WebSocket<NetStream>, Response), Error> {
    ClientBuilder::new(url).connect()
}

/// Where a client's proxy setting comes from.
#[derive(Debug, Clone, Default)]
enum ProxySetting {
    /// `http_proxy`, `https_proxy`, `all_proxy`, `no_proxy`.
    #[default]
    FromEnvironment,
    /// Connect directly.
    Direct,
    /// This proxy.
    Use(Proxy),
}

/// Options for a client connection.
///
/// ```no_run
/// use std::time::Duration;
/// let (ws, response) = syncws::ClientBuilder::new("wss://example.com/chat")
///     .header("Authorization", "Bearer secret")
///     .subprotocol("chat.v1")
///     .connect_timeout(Duration::from_secs(5))
///     .connect()?;
/// println!("agreed subprotocol: {:?}", ws.subprotocol());
/// # Ok::<(), syncws::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    headers: Headers,
    subprotocols: Vec<String>,
    config: Config,
    connect_timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    tls: TlsOptions,
    proxy: ProxySetting,
    max_redirects: usize,
    /// Keepalive pings: every `.0`, failing the connection when a pong takes longer than `.1`.
    heartbeat: Option<(Duration, Duration)>,
}

/// The keepalive a client has unless told otherwise, as python-websockets: a ping every 20 s,
/// and the connection fails when its pong takes more than 20 s.
const DEFAULT_HEARTBEAT: (Duration, Duration) = (Duration::from_secs(20), Duration::from_secs(20));

impl ClientBuilder {
    /// A client for `url` with default settings.
    pub fn new(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            headers: Headers::new(),
            subprotocols: Vec::new(),
            config: Config::default(),
            connect_timeout: None,
            read_timeout: None,
            write_timeout: None,
            tls: TlsOptions::default(),
            proxy: ProxySetting::default(),
            max_redirects: 5,
            heartbeat: Some(DEFAULT_HEARTBEAT),
        }
    }

    /// Adds a request header (e.g. `Authorization`, `Origin`, `Cookie`).
    ///
    /// The name must be an RFC 9110 token and the value a field value (no CR, LF, NUL or other
    /// control characters, no leading or trailing whitespace); otherwise [`connect`](Self::connect)
    /// returns [`HandshakeError::InvalidField`] before connecting.
    ///
    /// A `Host` header replaces the one made from the URL. `Sec-WebSocket-Key` and
    /// `Sec-WebSocket-Version` are the client's own and refused.
    ///
    /// `Authorization`, `Cookie`, `Proxy-Authorization` (and a given `Host`) are sent to the
    /// URL's scheme, host and port only: a redirect elsewhere drops them.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> ClientBuilder {
        self.headers.push(name, value);
        self
    }

    /// Offers a subprotocol; call again to offer more, most preferred first. A name that is not
    /// an RFC 9110 token makes [`connect`](Self::connect) fail with
    /// [`HandshakeError::InvalidField`] before connecting.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> ClientBuilder {
        self.subprotocols.push(protocol.into());
        self
    }

    /// Sets limits and buffers. Defaults to [`Config::default`].
    pub fn config(mut self, config: Config) -> ClientBuilder {
        self.config = config;
        self
    }

    /// How long each TCP connection attempt may take; each resolved address (IPv6 and IPv4) is
    /// tried in turn. Defaults to the operating system's timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The read deadline on the connection after the handshake: a [`WebSocket::read`] that waits
    /// longer returns a timeout error ([`Error::is_timeout`]) and can be called again without
    /// losing a partly received frame. Defaults to none (wait forever).
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> ClientBuilder {
        self.read_timeout = timeout;
        self
    }

    /// The write deadline on the connection after the handshake. Defaults to none.
    pub fn write_timeout(mut self, timeout: Option<Duration>) -> ClientBuilder {
        self.write_timeout = timeout;
        self
    }

    /// Trusts an extra root certificate (PEM) for `wss://`, e.g. a private CA.
    pub fn root_certificate(mut self, pem: impl Into<Vec<u8>>) -> ClientBuilder {
        self.tls.root_certificates.push(pem.into());
        self
    }

    /// Presents a client certificate (PEM) with its PKCS#8 private key (PEM) for `wss://`.
    pub fn client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> ClientBuilder {
        self.tls.client_identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Turns certificate and host name verification OFF. For tests against self-signed servers
    /// only: anyone on the path can then read and change the traffic.
    pub fn danger_accept_invalid_certs(mut self) -> ClientBuilder {
        self.tls.danger_accept_invalid_certs = true;
        self
    }

    /// Connects through this HTTP proxy (CONNECT tunnel), ignoring the environment.
    pub fn proxy(mut self, proxy: Proxy) -> ClientBuilder {
        self.proxy = ProxySetting::Use(proxy);
        self
    }

    /// Connects directly, ignoring the proxy environment variables.
    pub fn no_proxy(mut self) -> ClientBuilder {
        self.proxy = ProxySetting::Direct;
        self
    }

    /// How many redirects (301, 302, 303, 307, 308) to follow; 0 follows none. A redirect from
    /// `wss://` to `ws://` is never followed. A redirect to another scheme, host or port is
    /// followed without the `Authorization`, `Cookie` and `Proxy-Authorization` headers (nor
    /// the URL's `user:password`), as browsers and curl do. Defaults to 5.
    pub fn max_redirects(mut self, max: usize) -> ClientBuilder {
        self.max_redirects = max;
        self
    }

    /// Keepalive: ping the server every `interval`, and fail the connection (1011, and an
    /// [`Error::Io`] with `ConnectionAborted` from `read`) when a pong takes longer than
    /// `timeout`. On by default at 20 s / 20 s. The round trip of the last ping is
    /// [`WebSocket::latency`].
    ///
    /// The pings are sent while [`WebSocket::read`] waits (the read wakes for them): a
    /// connection whose owner is not reading sends none. After [`WebSocket::split`] the
    /// process-wide timer thread (`syncws-heartbeat`) sends them, whoever is reading. While
    /// keepalive is on, set the read timeout with [`read_timeout`](Self::read_timeout) rather
    /// than on the stream: the stream's read timeout is the keepalive's wake-up tick.
    ///
    /// Applies to [`connect`](Self::connect); a stream given to [`connect_on`](Self::connect_on)
    /// gets none (the driver cannot set its timeouts). A zero or over-a-year duration makes
    /// `connect` fail with [`Error::InvalidConfig`].
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> ClientBuilder {
        self.heartbeat = Some((interval, timeout));
        self
    }

    /// No keepalive pings (see [`heartbeat`](Self::heartbeat)).
    pub fn without_heartbeat(mut self) -> ClientBuilder {
        self.heartbeat = None;
        self
    }

    /// The keepalive setting, for a reconnecting client that runs it on its own timer.
    pub(crate) fn heartbeat_setting(&self) -> Option<(Duration, Duration)> {
        self.heartbeat
    }

    /// Connects and performs the handshake. See [`connect`].
    pub fn connect(self) -> Result<(WebSocket<NetStream>, Response), Error> {
        let first = self.checked_url()?;
        let mut url = first.clone();
        let deadline = self.config.handshake_timeout.map(|t| Instant::now() + t);
        let mut redirects = 0;
        loop {
            let stream = self.open(&url, deadline)?;
            let before_read = |s: &mut NetStream| s.set_read_timeout(remaining(deadline)?);
            let headers = self.headers_for(&first, &url);
            let result = self.handshake(&url, &headers, stream, before_read);
            let result = result.map_err(timeout_as_handshake);
            match result {
                Err(Error::Handshake(HandshakeError::UnexpectedResponse(response)))
                    if matches!(response.status, 301 | 302 | 303 | 307 | 308) =>
                {
                    url = self.follow(&url, &response, redirects)?;
                    redirects += 1;
                }
                Err(e) => return Err(e),
                Ok((mut ws, response)) => {
                    ws.get_mut().set_deadline(None);
                    ws.get_ref().set_read_timeout(self.read_timeout)?;
                    ws.get_ref().set_write_timeout(self.write_timeout)?;
                    ws.know_timeouts();
                    if let Some((interval, timeout)) = self.heartbeat {
                        ws.set_heartbeat(interval, timeout)?;
                    }
                    return Ok((ws, response));
                }
            }
        }
    }

    /// Performs the handshake over `stream`, which the caller connected to the URL's host.
    /// Redirects and timeouts are the caller's business here.
    pub fn connect_on<S: Read + Write>(self, stream: S) -> Result<(WebSocket<S>, Response), Error> {
        let url = self.checked_url()?;
        self.handshake(&url, &self.headers, stream, |_| Ok(()))
    }

    /// Everything the caller gave, checked before a connection is opened: the config, the URL
    /// (RFC 3986), the headers (RFC 9110 fields) and the subprotocols (tokens). A CR or LF in any
    /// of them would otherwise split the request into lines the caller did not mean.
    fn checked_url(&self) -> Result<WsUrl, Error> {
        self.config.validate()?;
        if let Some((interval, timeout)) = self.heartbeat
            && (interval.is_zero()
                || timeout.is_zero()
                || interval.max(timeout) > Config::MAX_TIMEOUT)
        {
            return Err(Error::InvalidConfig(
                "heartbeat durations must be positive and at most a year",
            ));
        }
        let url = WsUrl::parse(&self.url)?;
        self.headers.validate()?;
        for own in ["sec-websocket-key", "sec-websocket-version"] {
            if self.headers.get(own).is_some() {
                return Err(HandshakeError::InvalidField(format!(
                    "{own} is the client's own header; a second one gets 400"
                ))
                .into());
            }
        }
        if self.headers.get_all("host").nth(1).is_some() {
            return Err(HandshakeError::InvalidField("more than one Host header".into()).into());
        }
        check_subprotocols(self.subprotocols.iter().map(String::as_str))?;
        Ok(url)
    }

    /// The caller's headers for a request to `url`: all of them on the first URL's origin
    /// (scheme, host, port); without the credentials anywhere else, so that a redirect cannot
    /// hand them to another server (RFC 9110 §15.4: consider removing fields "where there are
    /// security implications; this includes ... Authorization and Cookie"; browsers and curl do).
    fn headers_for(&self, first: &WsUrl, url: &WsUrl) -> Headers {
        let same_origin = first.secure == url.secure
            && first.host.eq_ignore_ascii_case(&url.host)
            && first.port == url.port;
        if same_origin {
            return self.headers.clone();
        }
        let mut headers = Headers::new();
        for (name, value) in self.headers.iter() {
            // A caller's Host named the first server, not this one.
            let first_only = name.eq_ignore_ascii_case("host")
                || CREDENTIALS.iter().any(|c| c.eq_ignore_ascii_case(name));
            if !first_only {
                headers.push(name, value);
            }
        }
        headers
    }

    /// The next URL of a redirect, if it may be followed.
    fn follow(&self, url: &WsUrl, response: &Response, done: usize) -> Result<WsUrl, Error> {
        let bad = |why: String| Error::Handshake(HandshakeError::BadRedirect(why));
        if done >= self.max_redirects {
            return Err(bad(format!("more than {} redirects", self.max_redirects)));
        }
        let location = response
            .header("location")
            .ok_or_else(|| bad(format!("{} without Location", response.status)))?;
        let next = url.join(location)?;
        if url.secure && !next.secure {
            return Err(bad(format!("{url} redirected to unencrypted {next}")));
        }
        Ok(next)
    }

    /// TCP (direct or through a proxy tunnel), then TLS for `wss://`, whose reads and writes all
    /// keep to the handshake deadline (see `TlsOptions::wrap`).
    fn open(&self, url: &WsUrl, deadline: Option<Instant>) -> Result<NetStream, Error> {
        if url.secure && !cfg!(feature = "native-tls") {
            return Err(UrlError::TlsNotEnabled.into());
        }
        let proxy = match &self.proxy {
            ProxySetting::FromEnvironment => Proxy::from_env(&url.host, url.secure),
            ProxySetting::Direct => None,
            ProxySetting::Use(proxy) => Some(proxy.clone()),
        };
        let dial = |addr: &str| -> Result<TcpStream, Error> {
            let tcp = connect_tcp(addr, self.connect_timeout)?;
            tcp.set_nodelay(true)?;
            let left = remaining(deadline).map_err(|_| HandshakeError::Timeout)?;
            tcp.set_read_timeout(left)?;
            tcp.set_write_timeout(left)?;
            Ok(tcp)
        };
        let tcp = match proxy {
            Some(proxy) => proxy
                .tunnel(
                    &url.socket_addr(),
                    dial,
                    self.config.head_limits(),
                    deadline,
                )
                .map_err(timeout_as_handshake)?,
            None => dial(&url.socket_addr())?,
        };
        if !url.secure {
            return Ok(NetStream::Plain(tcp));
        }
        #[cfg(feature = "native-tls")]
        {
            Ok(NetStream::Tls(Box::new(
                self.tls.wrap(&url.host, tcp, deadline)?,
            )))
        }
        #[cfg(not(feature = "native-tls"))]
        {
            drop(tcp);
            Err(UrlError::TlsNotEnabled.into())
        }
    }

    fn handshake<S: Read + Write>(
        &self,
        url: &WsUrl,
        headers: &Headers,
        mut stream: S,
        mut before_read: impl FnMut(&mut S) -> io::Result<()>,
    ) -> Result<(WebSocket<S>, Response), Error> {
        let key = generate_key();
        // A caller's Host replaces the URL's: a request has one Host (RFC 9112 §3.2).
        let mut host = url.host_header();
        let mut headers = headers.clone();
        if let Some(given) = headers.get("host") {
            host = given.to_owned();
            headers = headers
                .iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
                .fold(Headers::new(), |mut kept, (name, value)| {
                    kept.push(name, value);
                    kept
                });
        }
        if let Some(userinfo) = &url.userinfo {
            if headers.get("authorization").is_none() {
                use base64::Engine;
                let encoded = base64::engine::general_purpose::STANDARD.encode(userinfo);
                headers.push("Authorization", format!("Basic {encoded}"));
            }
        }
        let deflate = &self.config.deflate;
        let offer = deflate.enabled.then(|| negotiation::client_offer(deflate));
        let request = ClientRequest {
            host: &host,
            target: &url.target,
            key: &key,
            subprotocols: &self.subprotocols,
            extensions: offer.as_deref(),
            headers: &headers,
        };
        request.validate()?;
        stream.write_all(&request.to_bytes())?;
        stream.flush()?;

        let limits = self.config.head_limits();
        let mut buf = Vec::with_capacity(1024);
        let (mut response, head_len) = loop {
            if let Decoded::Complete(response, len) = parse_response(&buf, limits)? {
                break (response, len);
            }
            before_read(&mut stream)?;
            read_more(&mut stream, &mut buf, limits.max_size)?;
        };
        if response.status != 101 {
            let mut body = Body {
                buf: &mut buf,
                head_len,
                max: limits.max_size,
            };
            body.read(&mut stream, &mut before_read, &mut response);
        }
        let protocol = check_response(&response, &key, &self.subprotocols)?;
        // RFC 6455 §4.1: an extension we did not offer, or bad parameters, fail the connection.
        let agreed = negotiation::check_server_response(
            response.headers.get_all("sec-websocket-extensions"),
            offer.is_some(),
            deflate,
        )?;
        // Bytes right behind the 101 response are the server's first frames: keep them.
        let mut ws = WebSocket::from_partially_read(
            stream,
            &buf[head_len..],
            Role::Client,
            self.config.clone(),
        );
        ws.set_subprotocol(protocol);
        ws.set_deflate(agreed);
        Ok((ws, response))
    }
}

/// Headers that carry credentials: sent to the first URL's origin only.
const CREDENTIALS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// The time left before `deadline`, as a socket timeout; an error once it has passed.
fn remaining(deadline: Option<Instant>) -> io::Result<Option<Duration>> {
    let Some(deadline) = deadline else {
        return Ok(None);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::ErrorKind::TimedOut.into())
    } else {
        Ok(Some(left))
    }
}

/// Reads more of a handshake head into `buf`.
pub(crate) fn read_more<S: Read>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<(), Error> {
    // The chunk lives on the heap, at the end of `buf`: a stack array would stay in every
    // connection thread's resident stack for the life of the connection.
    const CHUNK: usize = 1024;
    let filled = buf.len();
    buf.resize(filled + CHUNK, 0);
    loop {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => {
                buf.truncate(filled);
                return Err(HandshakeError::ConnectionClosed.into());
            }
            Ok(n) => {
                buf.truncate(filled + n.min(CHUNK));
                return if buf.len() > max + CHUNK {
                    Err(HandshakeError::HeadTooLarge.into())
                } else {
                    Ok(())
                };
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(filled);
                return Err(e.into());
            }
        }
    }
}

/// The body of a refusal, read into the handshake buffer behind its head.
struct Body<'a> {
    buf: &'a mut Vec<u8>,
    head_len: usize,
    max: usize,
}

impl Body<'_> {
    /// Reads the body (up to its Content-Length, within `max`), best effort: it often says why.
    /// Each read goes through `before_read`, so the handshake deadline holds for the body too:
    /// a server trickling it a byte at a time cannot keep the client past it.
    fn read<S: Read>(
        &mut self,
        stream: &mut S,
        before_read: &mut impl FnMut(&mut S) -> io::Result<()>,
        response: &mut Response,
    ) {
        let wanted = response
            .header("content-length")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0)
            .min(self.max);
        while self.buf.len() - self.head_len < wanted {
            if before_read(stream).is_err()
                || read_more(stream, self.buf, self.head_len + self.max).is_err()
            {
                break;
            }
        }
        let end = self.buf.len().min(self.head_len + wanted);
        response.body = self.buf[self.head_len..end].to_vec();
    }
}

/// Tries each address `addr` resolves to, in order, until one accepts.
fn connect_tcp(addr: &str, timeout: Option<Duration>) -> Result<TcpStream, Error> {
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
        let attempt = match timeout {
            Some(t) => TcpStream::connect_timeout(&addr, t),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host resolved to no address"))
        .into())
}

/// A read or write deadline during the handshake is the handshake's timeout.
pub(crate) fn timeout_as_handshake(error: Error) -> Error {
    if error.is_timeout() {
        HandshakeError::Timeout.into()
    } else {
        error
    }
}
