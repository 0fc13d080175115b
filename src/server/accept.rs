//! The server side of the opening handshake: [`accept`], [`Acceptor`] with its hook, and the
//! decision both it and [`Server`](crate::Server) take once a request has passed the checks.

use super::http::{HttpResponse, server_error};
use crate::client::read_more;
use crate::error::{Error, HandshakeError};
use crate::proto::Role;
use crate::proto::config::{Config, DeflateConfig};
use crate::proto::deflate::{DeflateParams, negotiation};
use crate::proto::frame::Decoded;
use crate::proto::handshake::{
    Headers, Request, accept_response, check_accept, check_caller_fields, check_request,
    error_response, parse_request, reject_response,
};
use crate::websocket::WebSocket;
use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

/// Accepts a WebSocket connection on `stream` with default settings: reads the upgrade request,
/// checks it, answers 101.
///
/// A bad request gets its status (400, 405, 426, 431, 505) and a short reason, and the error is
/// returned; [`check_request`](crate::proto::handshake::check_request) lists what is refused.
/// Bytes the client sent right behind its request are kept for the WebSocket. [`Acceptor`]
/// takes a [`Config`] and a hook that decides each handshake.
///
/// ```no_run
/// let listener = std::net::TcpListener::bind("127.0.0.1:9001")?;
/// let (stream, _) = listener.accept()?;
/// let mut ws = syncws::accept(stream)?;
/// while let Ok(msg) = ws.read() {
///     if msg.is_data() { ws.send(msg)?; }
/// }
/// # Ok::<(), syncws::Error>(())
/// ```
pub fn accept<S: Read + Write>(stream: S) -> Result<WebSocket<S>, Error> {
    Acceptor::new().accept(stream)
}

/// What a handshake hook may set on the 101 response: the subprotocol and extra headers.
///
/// The hook gets it with the server's preferred subprotocol already selected (see
/// [`ServerBuilder::subprotocols`](crate::ServerBuilder::subprotocols)) and may change it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    subprotocol: Option<String>,
    headers: Headers,
}

impl Accept {
    /// No subprotocol, no extra header.
    pub fn new() -> Accept {
        Accept::default()
    }

    /// Selects a subprotocol, or none. It must be one the client offered (RFC 6455 §4.2.2):
    /// otherwise the client gets 500 and the handshake fails with
    /// [`HandshakeError::InvalidSubprotocol`].
    pub fn set_subprotocol(&mut self, protocol: Option<&str>) -> &mut Accept {
        self.subprotocol = protocol.map(str::to_owned);
        self
    }

    /// Adds a response header (e.g. `Set-Cookie`). A name that is not an RFC 9110 token, a
    /// value with a control character (CR, LF, NUL...) or surrounding whitespace, or a field the
    /// library writes or negotiates itself (`Content-Length`, `Transfer-Encoding`, `Connection`,
    /// `Upgrade`, `Sec-WebSocket-*`: set the subprotocol with
    /// [`set_subprotocol`](Self::set_subprotocol)) is never sent: the client gets 500 and the
    /// handshake fails with [`HandshakeError::InvalidField`].
    pub fn add_header(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Accept {
        self.headers.push(name, value);
        self
    }

    /// The subprotocol selected so far.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The extra headers added so far.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }
}

/// The handshake hook: sees the request, sets the 101's details on the [`Accept`], and returns
/// what the connection carries (`Ok`) or the HTTP refusal (`Err`).
pub(crate) type Hook<T> = dyn Fn(&Request, &mut Accept) -> Result<T, HttpResponse> + Send + Sync;

/// Server handshakes with a chosen [`Config`] and an optional hook; cheap to clone, to share
/// between connection threads. `T` is what the hook returns for an accepted request.
///
/// ```no_run
/// use syncws::{Acceptor, HttpResponse};
/// let acceptor = Acceptor::new().on_handshake(|req, accept| {
///     let Some(user) = req.query_param("token").filter(|t| *t == "secret") else {
///         return Err(HttpResponse::new(401).body("missing or wrong token"));
///     };
///     if req.subprotocols().any(|p| p == "chat") {
///         accept.set_subprotocol(Some("chat"));
///     }
///     Ok(user.to_owned())
/// });
/// # let stream = std::net::TcpStream::connect("127.0.0.1:9001")?;
/// let (ws, request, user) = acceptor.handshake(stream)?;
/// # Ok::<(), syncws::Error>(())
/// ```
pub struct Acceptor<T = ()> {
    config: Config,
    hook: Arc<Hook<T>>,
}

impl<T> Clone for Acceptor<T> {
    fn clone(&self) -> Self {
        Acceptor {
            config: self.config.clone(),
            hook: Arc::clone(&self.hook),
        }
    }
}

impl<T> fmt::Debug for Acceptor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for Acceptor {
    fn default() -> Acceptor {
        Acceptor {
            config: Config::default(),
            hook: Arc::new(|_, _| Ok(())),
        }
    }
}

impl Acceptor {
    /// Default settings; every valid request is accepted.
    pub fn new() -> Acceptor {
        Acceptor::default()
    }
}

impl<T> Acceptor<T> {
    /// Sets limits and buffers. Defaults to [`Config::default`].
    pub fn config(mut self, config: Config) -> Acceptor<T> {
        self.config = config;
        self
    }

    /// Decides each handshake after the built-in checks, as
    /// [`ServerBuilder::on_handshake`](crate::ServerBuilder::on_handshake) does: `Ok(data)`
    /// accepts (set a subprotocol or headers on the [`Accept`]), an [`HttpResponse`] refuses
    /// (e.g. 401 with a body) and the handshake fails with [`HandshakeError::Rejected`].
    pub fn on_handshake<U, F>(self, hook: F) -> Acceptor<U>
    where
        F: Fn(&Request, &mut Accept) -> Result<U, HttpResponse> + Send + Sync + 'static,
    {
        Acceptor {
            config: self.config,
            hook: Arc::new(hook),
        }
    }

    /// Performs the handshake on `stream`; see [`accept`].
    pub fn accept<S: Read + Write>(&self, stream: S) -> Result<WebSocket<S>, Error> {
        self.handshake(stream).map(|(ws, _, _)| ws)
    }

    /// Performs the handshake and also returns the request and what the hook returned.
    pub fn handshake<S: Read + Write>(
        &self,
        mut stream: S,
    ) -> Result<(WebSocket<S>, Request, T), Error> {
        self.config.validate()?;
        let limits = self.config.head_limits();
        let mut buf = Vec::with_capacity(1024);
        let parsed = loop {
            match parse_request(&buf, limits) {
                Ok(Decoded::Complete(request, len)) => break Ok((request, len)),
                Ok(Decoded::Partial) => read_more(&mut stream, &mut buf, limits.max_size)?,
                Err(e) => break Err(e),
            }
        };
        let checked = parsed
            .and_then(|(request, len)| check_request(&request).map(|key| (request, len, key)));
        let (request, head_len, key) = match checked {
            Ok(ok) => ok,
            Err(error) => return Err(refuse(&mut stream, &error_response(&error), error)),
        };
        let upgrade = match decide(
            &request,
            &key,
            Accept::new(),
            &*self.hook,
            &self.config.deflate,
        ) {
            Decision::Upgrade(upgrade) => upgrade,
            Decision::Refuse(response, error) => return Err(refuse(&mut stream, &response, error)),
        };
        stream.write_all(&upgrade.response)?;
        stream.flush()?;
        // Bytes pipelined behind the request are the client's first frames.
        let mut ws = WebSocket::from_partially_read(
            stream,
            &buf[head_len..],
            Role::Server,
            self.config.clone(),
        );
        ws.set_subprotocol(upgrade.subprotocol);
        ws.set_deflate(upgrade.deflate);
        Ok((ws, request, upgrade.data))
    }
}

/// An accepted handshake: the 101 to send and what the connection starts with.
pub(crate) struct Upgrade<T> {
    pub(crate) response: Vec<u8>,
    pub(crate) subprotocol: Option<String>,
    pub(crate) deflate: Option<DeflateParams>,
    pub(crate) data: T,
}

/// The hook's verdict on a request that passed the checks of RFC 6455 §4.2.1.
pub(crate) enum Decision<T> {
    Upgrade(Upgrade<T>),
    /// The answer to send, and the error the handshake ends with.
    Refuse(Vec<u8>, HandshakeError),
}

/// Runs the hook and builds the answer. Whatever the hook sets is checked before a byte is
/// written: a refusal or headers outside RFC 9110's grammar and a subprotocol the client did
/// not offer become a bare 500 (the server's bug, and no response splitting).
pub(crate) fn decide<T>(
    request: &Request,
    key: &str,
    mut accept: Accept,
    hook: &Hook<T>,
    deflate: &DeflateConfig,
) -> Decision<T> {
    let data = match hook(request, &mut accept) {
        Ok(data) => data,
        Err(refusal) => {
            return match refusal.validate_refusal() {
                Ok(()) => Decision::Refuse(
                    refusal.to_bytes(),
                    HandshakeError::Rejected(refusal.status()),
                ),
                Err(error) => Decision::Refuse(server_error(), error),
            };
        }
    };
    if let Some(chosen) = &accept.subprotocol {
        if !request.subprotocols().any(|offered| offered == chosen) {
            // RFC 6455 §4.2.2: the server selects one of the client's values.
            let response = reject_response(500, &Headers::new(), b"subprotocol not offered\n");
            return Decision::Refuse(response, HandshakeError::InvalidSubprotocol);
        }
    }
    // The caller's headers: RFC 9110 fields, and none of the handshake's own (a second
    // `Sec-WebSocket-Accept`, or a `Sec-WebSocket-Protocol` skipping the check above).
    let checked = check_accept(accept.subprotocol.as_deref(), &accept.headers)
        .and_then(|()| check_caller_fields(&accept.headers));
    if let Err(error) = checked {
        return Decision::Refuse(server_error(), error);
    }
    // RFC 7692 §5.1: the first acceptable permessage-deflate offer, if the feature is built and
    // enabled; other extensions are declined by not naming them (RFC 6455 §9.1).
    let agreed = (cfg!(feature = "deflate") && deflate.enabled)
        .then(|| {
            negotiation::select_offer(request.headers.get_all("sec-websocket-extensions"), deflate)
        })
        .flatten();
    if let Some(params) = &agreed {
        accept.add_header("Sec-WebSocket-Extensions", params.to_header_value());
    }
    let response = accept_response(key, accept.subprotocol.as_deref(), &accept.headers);
    Decision::Upgrade(Upgrade {
        response,
        subprotocol: accept.subprotocol,
        deflate: agreed,
        data,
    })
}

fn refuse<S: Write>(stream: &mut S, response: &[u8], error: HandshakeError) -> Error {
    // The client may already be gone; the handshake error is what matters.
    let _ = stream.write_all(response).and_then(|()| stream.flush());
    Error::Handshake(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n";

    fn decide_with(hook: &Hook<()>) -> Decision<()> {
        let Ok(Decoded::Complete(request, _)) =
            parse_request(REQUEST, Config::default().head_limits())
        else {
            panic!("the test request parses");
        };
        let key = check_request(&request).unwrap();
        decide(
            &request,
            &key,
            Accept::new(),
            hook,
            &DeflateConfig::default(),
        )
    }

    fn refused_with_500(decision: Decision<()>) -> HandshakeError {
        match decision {
            Decision::Refuse(response, error) => {
                assert!(response.starts_with(b"HTTP/1.1 500 "));
                error
            }
            Decision::Upgrade(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_hook_header_naming_a_handshake_field_is_a_500() {
        for name in [
            "Sec-WebSocket-Protocol",
            "sec-websocket-extensions",
            "Sec-WebSocket-Accept",
            "Upgrade",
            "Transfer-Encoding",
        ] {
            let hook = move |_: &Request, accept: &mut Accept| {
                accept.add_header(name, "unoffered");
                Ok(())
            };
            let error = refused_with_500(decide_with(&hook));
            assert!(matches!(error, HandshakeError::InvalidField(_)), "{name}");
        }
    }

    #[test]
    fn a_hook_refusal_outside_3xx_to_5xx_is_a_500() {
        for status in [101, 200, 204] {
            let hook = move |_: &Request, _: &mut Accept| Err(HttpResponse::new(status));
            let error = refused_with_500(decide_with(&hook));
            assert!(matches!(error, HandshakeError::InvalidField(_)), "{status}");
        }
        let hook =
            |_: &Request, _: &mut Accept| Err(HttpResponse::new(302).header("Location", "/x"));
        match decide_with(&hook) {
            Decision::Refuse(response, HandshakeError::Rejected(302)) => {
                assert!(response.starts_with(b"HTTP/1.1 302 "));
            }
            _ => panic!("a redirect is a valid refusal"),
        }
    }
}
