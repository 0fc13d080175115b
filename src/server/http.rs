//! Plain HTTP answers: a server's page, a handshake hook's refusal, or the refusal of a request
//! the server cannot serve.

use crate::error::HandshakeError;
use crate::proto::handshake::{Headers, check_caller_fields, reject_response};

/// An HTTP response that ends the connection (no keep-alive): the answer of a server's HTTP
/// handler to a plain request, or a handshake hook's refusal of an upgrade.
///
/// Nothing is checked when it is built; before a byte is written the status must be a final
/// one (200..=599, RFC 9110 §15; a handshake refusal 300..=599) and every header an RFC 9110
/// field (§5.1, §5.5) that the library does not write itself: `Content-Length`,
/// `Transfer-Encoding`, `Connection`, `Upgrade` and `Sec-WebSocket-*` are refused. A response
/// that is not goes out as a bare 500 (no response splitting, never two framings).
///
/// ```
/// let page = syncws::HttpResponse::new(200)
///     .header("Content-Type", "text/html; charset=utf-8")
///     .body("<h1>hello</h1>");
/// assert_eq!(page.status(), 200);
/// assert_eq!(page.body_bytes(), b"<h1>hello</h1>");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpResponse {
    status: u16,
    headers: Headers,
    body: Vec<u8>,
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

    /// Adds a header. `Content-Length` and `Connection: close` are always added (a caller's
    /// framing, `Upgrade` or `Sec-WebSocket-*` header makes the response a bare 500); the body
    /// is `text/plain` unless a `Content-Type` header says otherwise.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> HttpResponse {
        self.headers.push(name, value);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> HttpResponse {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers added so far.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Whether this can go on the wire as it is: a final status (200..=599) and RFC 9110
    /// fields, none of those the library writes itself.
    ///
    /// Errors: [`HandshakeError::InvalidField`] naming what is wrong.
    pub fn validate(&self) -> Result<(), HandshakeError> {
        // RFC 9110 §15: "three-digit integer"; 1xx is informational, never the final answer.
        self.check_status(200..=599)?;
        check_caller_fields(&self.headers)
    }

    /// [`validate`](Self::validate) for a handshake hook's refusal: a 2xx would tell the client
    /// its upgrade succeeded as plain HTTP, so the status must be 3xx–5xx (RFC 6455 §4.1: any
    /// status but 101 fails the handshake; a redirect may be followed).
    pub(crate) fn validate_refusal(&self) -> Result<(), HandshakeError> {
        self.check_status(300..=599)?;
        self.validate()
    }

    fn check_status(&self, allowed: std::ops::RangeInclusive<u16>) -> Result<(), HandshakeError> {
        if allowed.contains(&self.status) {
            return Ok(());
        }
        Err(HandshakeError::InvalidField(format!(
            "status {} is not in {}..={}",
            self.status,
            allowed.start(),
            allowed.end()
        )))
    }

    /// The response on the wire; a bare 500 if it fails [`validate`](Self::validate).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        match self.validate() {
            Ok(()) => reject_response(self.status, &self.headers, &self.body),
            Err(_) => server_error(),
        }
    }
}

/// The answer when the server's own response would break HTTP's grammar.
pub(crate) fn server_error() -> Vec<u8> {
    reject_response(500, &Headers::new(), b"invalid response\n")
}

/// RFC 6455 §4.2.2 / RFC 9110 §15.5.22: a plain request to a WebSocket-only server gets 426 with
/// the protocol to upgrade to (the library's own `Upgrade`, which a caller may not set).
pub(crate) fn upgrade_required() -> Vec<u8> {
    let mut headers = Headers::new();
    headers.push("Upgrade", "websocket");
    reject_response(426, &headers, b"this server speaks WebSocket only\n")
}

/// RFC 9110 §15.6.4: over capacity or shutting down; `Retry-After` says when to come back.
pub(crate) fn unavailable(retry_after_secs: u32, why: &str) -> HttpResponse {
    HttpResponse::new(503)
        .header("Retry-After", retry_after_secs.to_string())
        .body(format!("{why}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_line(response: &HttpResponse) -> String {
        let bytes = response.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        text.lines().next().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_status_outside_200_to_599_goes_out_as_a_bare_500() {
        for status in [0, 42, 99, 100, 101, 199, 600, 1000, u16::MAX] {
            let response = HttpResponse::new(status).body("secret");
            assert!(response.validate().is_err(), "{status}");
            assert_eq!(status_line(&response), "HTTP/1.1 500 Internal Server Error");
            assert!(!String::from_utf8_lossy(&response.to_bytes()).contains("secret"));
        }
        for status in [200, 204, 302, 404, 599] {
            let response = HttpResponse::new(status);
            assert!(response.validate().is_ok(), "{status}");
            assert!(status_line(&response).starts_with(&format!("HTTP/1.1 {status}")));
        }
    }

    #[test]
    fn a_refusal_is_3xx_to_5xx_a_page_2xx_to_5xx() {
        for status in [101, 200, 204, 299] {
            assert!(
                HttpResponse::new(status).validate_refusal().is_err(),
                "{status}"
            );
        }
        for status in [300, 302, 401, 426, 503, 599] {
            assert!(
                HttpResponse::new(status).validate_refusal().is_ok(),
                "{status}"
            );
        }
    }

    #[test]
    fn a_header_the_library_writes_itself_goes_out_as_a_bare_500() {
        for name in [
            "Content-Length",
            "content-length",
            "Transfer-Encoding",
            "CONNECTION",
            "Upgrade",
            "Sec-WebSocket-Accept",
            "sec-websocket-protocol",
            "Sec-WebSocket-Extensions",
        ] {
            let response = HttpResponse::new(401).header(name, "1").body("secret");
            assert!(
                matches!(response.validate(), Err(HandshakeError::InvalidField(_))),
                "{name}"
            );
            let wire = String::from_utf8_lossy(&response.to_bytes()).into_owned();
            assert!(wire.starts_with("HTTP/1.1 500 "), "{wire}");
            assert_eq!(wire.matches("Content-Length").count(), 1, "{wire}");
        }
        // Names that only start like one are the caller's.
        let fine = HttpResponse::new(200)
            .header("Sec-WebSocket", "x")
            .header("Upgrade-Insecure-Requests", "1")
            .header("Content-Type", "text/plain");
        assert!(fine.validate().is_ok());
    }

    #[test]
    fn the_426_of_a_websocket_only_server_names_the_protocol() {
        let wire = String::from_utf8(upgrade_required()).unwrap();
        assert!(wire.starts_with("HTTP/1.1 426 "), "{wire}");
        assert!(wire.contains("\r\nUpgrade: websocket\r\n"), "{wire}");
    }

    #[test]
    fn a_header_outside_rfc_9110_grammar_goes_out_as_a_bare_500() {
        let bad = [
            ("Set-Cookie", "a=1\r\nX-Injected: yes"),
            ("Bad Name", "v"),
            ("", "v"),
            ("X-Nul", "a\0b"),
            ("X-Space", " padded"),
        ];
        for (name, value) in bad {
            let response = HttpResponse::new(401).header(name, value);
            assert!(
                matches!(response.validate(), Err(HandshakeError::InvalidField(_))),
                "{name:?}: {value:?}"
            );
            let wire = String::from_utf8_lossy(&response.to_bytes()).into_owned();
            assert!(wire.starts_with("HTTP/1.1 500 "), "{wire}");
            assert!(!wire.contains("Injected"), "{wire}");
        }
        let good = HttpResponse::new(401).header("WWW-Authenticate", "Bearer realm=\"x\"");
        assert!(good.validate().is_ok());
        assert!(String::from_utf8_lossy(&good.to_bytes()).contains("WWW-Authenticate: Bearer"));
    }
}
