//! Plain HTTP answers: a server's page, or the refusal of a request it cannot serve.

use crate::proto::handshake::{Headers, reject_response};

/// An HTTP response to a plain (non-upgrade) request, from the server's HTTP handler. The
/// connection closes after it (no keep-alive).
///
/// ```
/// let page = syncws::HttpResponse::new(200)
///     .header("Content-Type", "text/html; charset=utf-8")
///     .body("<h1>hello</h1>");
/// assert_eq!(page.status, 200);
/// ```
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers; `Content-Length` and `Connection: close` are added.
    pub headers: Headers,
    /// The body; `text/plain` unless a `Content-Type` header says otherwise.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with `status`, no headers and no body.
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header. The name must be an RFC 9110 token and the value a field value (no CR,
    /// LF, NUL or other control characters, no leading or trailing whitespace): a response with
    /// a header that is not is never sent, the client gets a bare 500 instead (no response
    /// splitting).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> HttpResponse {
        self.headers.push(name, value);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.body = body.into();
        self
    }

    /// The response on the wire; a bare 500 if a header breaks RFC 9110's field grammar.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        match self.headers.validate() {
            Ok(()) => reject_response(self.status, &self.headers, &self.body),
            Err(_) => reject_response(500, &Headers::new(), b"invalid response header\n"),
        }
    }
}

/// RFC 6455 §4.2.2 / RFC 9110 §15.5.22: a plain request to a WebSocket-only server gets 426 with
/// the protocol to upgrade to.
pub(crate) fn upgrade_required() -> HttpResponse {
    HttpResponse::new(426)
        .header("Upgrade", "websocket")
        .body("this server speaks WebSocket only\n")
}

/// RFC 9110 §15.6.4: over capacity or shutting down; `Retry-After` says when to come back.
pub(crate) fn unavailable(retry_after_secs: u32, why: &str) -> HttpResponse {
    HttpResponse::new(503)
        .header("Retry-After", retry_after_secs.to_string())
        .body(format!("{why}\n"))
}
