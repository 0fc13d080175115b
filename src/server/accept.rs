//! The server side of the opening handshake.

use crate::client::read_more;
use crate::error::{Error, HandshakeError};
use crate::proto::Role;
use crate::proto::config::Config;
use crate::proto::deflate::negotiation;
use crate::proto::frame::Decoded;
use crate::proto::handshake::{
    Headers, Request, accept_response, check_accept, check_request, error_response, parse_request,
    reject_response,
};
use crate::websocket::WebSocket;
use std::io::{Read, Write};

/// Accepts a WebSocket connection on `stream`: reads the upgrade request, checks it, answers 101.
///
/// A bad request gets its status (400, 405, 426, 431, 505) and a short reason, and the error is
/// returned; [`check_request`](crate::proto::handshake::check_request) lists what is refused. Bytes the client sent right behind its request are kept for the WebSocket.
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

/// Like [`accept`], with a hook that sees the request and accepts (choosing a subprotocol and
/// extra headers) or rejects (with any status, headers and body).
///
/// ```no_run
/// use syncws::{Accept, Reject};
/// # let stream = std::net::TcpStream::connect("127.0.0.1:9001")?;
/// let ws = syncws::accept_with(stream, |req| {
///     if req.query_param("token") != Some("secret") {
///         return Err(Reject::new(401).body("missing or wrong token"));
///     }
///     let chat = req.subprotocols().find(|p| *p == "chat").map(String::from);
///     Ok(Accept::default().subprotocol(chat))
/// })?;
/// # Ok::<(), syncws::Error>(())
/// ```
pub fn accept_with<S, F>(stream: S, hook: F) -> Result<WebSocket<S>, Error>
where
    S: Read + Write,
    F: FnOnce(&Request) -> Result<Accept, Reject>,
{
    Acceptor::new().accept_with(stream, hook)
}

/// The hook's consent: an optional subprotocol and extra response headers.
#[derive(Debug, Clone, Default)]
pub struct Accept {
    /// The subprotocol to select; it must be one the client offered.
    pub subprotocol: Option<String>,
    /// Extra headers for the 101 response (e.g. `Set-Cookie`).
    pub headers: Headers,
}

impl Accept {
    /// Selects a subprotocol (or none).
    pub fn subprotocol(mut self, protocol: Option<String>) -> Accept {
        self.subprotocol = protocol;
        self
    }

    /// Adds a response header. A name that is not an RFC 9110 token or a value with a control
    /// character (CR, LF, NUL...) or surrounding whitespace is never sent: the handshake answers
    /// 500 and fails with [`HandshakeError::InvalidField`].
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Accept {
        self.headers.push(name, value);
        self
    }
}

/// The hook's refusal: an HTTP status, headers and a body.
#[derive(Debug, Clone)]
pub struct Reject {
    /// The status, e.g. 401 or 403.
    pub status: u16,
    /// Extra headers (e.g. `WWW-Authenticate`).
    pub headers: Headers,
    /// The body, sent as `text/plain` unless a `Content-Type` header says otherwise.
    pub body: Vec<u8>,
}

impl Reject {
    /// A refusal with `status` and no body.
    pub fn new(status: u16) -> Reject {
        Reject {
            status,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reject {
        self.body = body.into();
        self
    }

    /// Adds a header. As for [`Accept::header`], a header that breaks RFC 9110's field grammar
    /// is never sent: the client gets a bare 500 instead, and the handshake fails with
    /// [`HandshakeError::InvalidField`].
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reject {
        self.headers.push(name, value);
        self
    }
}

/// Server handshakes with a chosen [`Config`].
#[derive(Debug, Clone, Default)]
pub struct Acceptor {
    config: Config,
}

impl Acceptor {
    /// An acceptor with default settings.
    pub fn new() -> Acceptor {
        Acceptor::default()
    }

    /// Sets limits and buffers. Defaults to [`Config::default`].
    pub fn config(mut self, config: Config) -> Acceptor {
        self.config = config;
        self
    }

    /// See [`accept`].
    pub fn accept<S: Read + Write>(&self, stream: S) -> Result<WebSocket<S>, Error> {
        self.accept_with(stream, |_| Ok(Accept::default()))
    }

    /// See [`accept_with`].
    pub fn accept_with<S, F>(&self, stream: S, hook: F) -> Result<WebSocket<S>, Error>
    where
        S: Read + Write,
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
        self.handshake(stream, hook).map(|(ws, _)| ws)
    }

    /// Performs the handshake and also returns the request, for servers that keep it.
    pub fn handshake<S, F>(&self, mut stream: S, hook: F) -> Result<(WebSocket<S>, Request), Error>
    where
        S: Read + Write,
        F: FnOnce(&Request) -> Result<Accept, Reject>,
    {
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
        let accept = match hook(&request) {
            Ok(accept) => accept,
            Err(reject) => {
                if let Err(error) = reject.headers.validate() {
                    return Err(refuse(&mut stream, &server_error(), error));
                }
                let response = reject_response(reject.status, &reject.headers, &reject.body);
                return Err(refuse(
                    &mut stream,
                    &response,
                    HandshakeError::Rejected(reject.status),
                ));
            }
        };
        if let Err(error) = check_accept(accept.subprotocol.as_deref(), &accept.headers) {
            // The hook's mistake: nothing of it reaches the client (no response splitting).
            return Err(refuse(&mut stream, &server_error(), error));
        }
        if let Some(chosen) = &accept.subprotocol {
            if !request.subprotocols().any(|p| p == chosen) {
                // A server bug, not the client's: refuse rather than break the client's handshake.
                let error = HandshakeError::InvalidSubprotocol;
                return Err(refuse(
                    &mut stream,
                    &reject_response(500, &Headers::new(), b"subprotocol not offered\n"),
                    error,
                ));
            }
        }
        // RFC 7692 §5.1: the first acceptable permessage-deflate offer, or none.
        let deflate = &self.config.deflate;
        let agreed = if deflate.enabled {
            negotiation::select_offer(request.headers.get_all("sec-websocket-extensions"), deflate)
        } else {
            None
        };
        let mut headers = accept.headers;
        if let Some(params) = &agreed {
            headers.push("Sec-WebSocket-Extensions", params.to_header_value());
        }
        stream.write_all(&accept_response(
            &key,
            accept.subprotocol.as_deref(),
            &headers,
        ))?;
        stream.flush()?;
        // Bytes pipelined behind the request are the client's first frames.
        let mut ws = WebSocket::from_partially_read(
            stream,
            &buf[head_len..],
            Role::Server,
            self.config.clone(),
        );
        ws.set_subprotocol(accept.subprotocol);
        ws.set_deflate(agreed);
        Ok((ws, request))
    }
}

/// The answer when the server's own response would break HTTP's grammar.
fn server_error() -> Vec<u8> {
    reject_response(500, &Headers::new(), b"invalid response header\n")
}

fn refuse<S: Write>(stream: &mut S, response: &[u8], error: HandshakeError) -> Error {
    // The client may already be gone; the handshake error is what matters.
    let _ = stream.write_all(response).and_then(|()| stream.flush());
    Error::Handshake(error)
}
