//! The client side: connecting and the client's opening handshake.

use crate::config::Config;
use crate::error::{Error, HandshakeError, UrlError};
use crate::proto::Role;
use crate::proto::deflate::negotiation;
use crate::proto::frame::Decoded;
use crate::proto::handshake::{
    ClientRequest, Headers, Response, check_response, generate_key, parse_response,
};
use crate::socket::WebSocket;
use crate::url::WsUrl;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Connects to a `ws://` URL over TCP and performs the opening handshake.
///
/// Returns the connection and the server's `101` response. Blocks while connecting and during the
/// handshake (bounded by [`Config::handshake_timeout`]).
///
/// ```no_run
/// let (mut ws, _response) = syncws::connect("ws://127.0.0.1:9001/")?;
/// ws.send(syncws::Message::text("hello"))?;
/// println!("{}", ws.read()?);
/// # Ok::<(), syncws::Error>(())
/// ```
///
/// Errors: [`Error::Url`] for a bad URL (or `wss://` without TLS support), [`Error::Io`] if no
/// address accepts, [`Error::Handshake`] if the server refuses (the response is in
/// [`HandshakeError::UnexpectedResponse`]).
pub fn connect(url: &str) -> Result<(WebSocket<TcpStream>, Response), Error> {
    ClientBuilder::new(url).connect()
}

/// Performs the client handshake for `url` over a stream the caller has connected.
pub fn client<S: Read + Write>(url: &str, stream: S) -> Result<(WebSocket<S>, Response), Error> {
    ClientBuilder::new(url).connect_on(stream)
}

/// Options for a client connection.
///
/// ```no_run
/// let (ws, response) = syncws::ClientBuilder::new("ws://127.0.0.1:9001/chat")
///     .header("Authorization", "Bearer secret")
///     .subprotocol("chat.v1")
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
}

impl ClientBuilder {
    /// A client for `url` with default settings.
    pub fn new(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            headers: Headers::new(),
            subprotocols: Vec::new(),
            config: Config::default(),
            connect_timeout: None,
        }
    }

    /// Adds a request header (e.g. `Authorization`, `Origin`, `Cookie`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> ClientBuilder {
        self.headers.push(name, value);
        self
    }

    /// Offers a subprotocol; call again to offer more, most preferred first.
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> ClientBuilder {
        self.subprotocols.push(protocol.into());
        self
    }

    /// Sets limits and buffers. Defaults to [`Config::default`].
    pub fn config(mut self, config: Config) -> ClientBuilder {
        self.config = config;
        self
    }

    /// How long to wait for each TCP connection attempt. Defaults to the system's own timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Connects over TCP and performs the handshake. See [`connect`].
    pub fn connect(self) -> Result<(WebSocket<TcpStream>, Response), Error> {
        self.config.validate()?;
        let url = WsUrl::parse(&self.url)?;
        if url.secure {
            return Err(UrlError::TlsNotEnabled.into());
        }
        let stream = connect_tcp(&url.socket_addr(), self.connect_timeout)?;
        stream.set_nodelay(true)?;
        let timeout = self.config.handshake_timeout;
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        let (ws, response) = self.handshake(&url, stream).map_err(timeout_as_handshake)?;
        ws.get_ref().set_read_timeout(None)?;
        ws.get_ref().set_write_timeout(None)?;
        Ok((ws, response))
    }

    /// Performs the handshake over `stream`, which the caller connected to the URL's host.
    pub fn connect_on<S: Read + Write>(self, stream: S) -> Result<(WebSocket<S>, Response), Error> {
        self.config.validate()?;
        let url = WsUrl::parse(&self.url)?;
        self.handshake(&url, stream)
    }

    fn handshake<S: Read + Write>(
        &self,
        url: &WsUrl,
        mut stream: S,
    ) -> Result<(WebSocket<S>, Response), Error> {
        let key = generate_key();
        let host = url.host_header();
        let deflate = &self.config.deflate;
        let offer = deflate.enabled.then(|| negotiation::client_offer(deflate));
        let request = ClientRequest {
            host: &host,
            target: &url.target,
            key: &key,
            subprotocols: &self.subprotocols,
            extensions: offer.as_deref(),
            headers: &self.headers,
        };
        stream.write_all(&request.to_bytes())?;
        stream.flush()?;

        let limits = self.config.head_limits();
        let mut buf = Vec::with_capacity(1024);
        let (mut response, head_len) = loop {
            if let Decoded::Complete(response, len) = parse_response(&buf, limits)? {
                break (response, len);
            }
            read_more(&mut stream, &mut buf, limits.max_size)?;
        };
        if response.status != 101 {
            read_body(
                &mut stream,
                &mut buf,
                head_len,
                &mut response,
                limits.max_size,
            );
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

/// Reads more of a handshake head into `buf`.
pub(crate) fn read_more<S: Read>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<(), Error> {
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Err(HandshakeError::ConnectionClosed.into()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return if buf.len() > max + chunk.len() {
                    Err(HandshakeError::HeadTooLarge.into())
                } else {
                    Ok(())
                };
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads the body of a refusal (up to its Content-Length, within `max`), best effort: it often
/// says why.
fn read_body<S: Read>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    head_len: usize,
    response: &mut Response,
    max: usize,
) {
    let wanted = response
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(max);
    while buf.len() - head_len < wanted {
        if read_more(stream, buf, head_len + max).is_err() {
            break;
        }
    }
    let end = buf.len().min(head_len + wanted);
    response.body = buf[head_len..end].to_vec();
}

fn connect_tcp(addr: &str, timeout: Option<Duration>) -> Result<TcpStream, Error> {
    let mut last = None;
    // Each resolved address in turn (IPv6 and IPv4 alike) until one accepts.
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
