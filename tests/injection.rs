//! Issue 18 item 8: a caller's CR/LF never reaches the wire as extra header lines, on either
//! side. The client refuses before it connects; the server answers 500 instead of the response
//! a hook or page handler asked for.

mod common;

use common::{serve_once, status_of, upgrade_request};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use syncws::{
    Accept, Acceptor, ClientBuilder, Config, Error, HandshakeError, HttpResponse, Server, UrlError,
};

const INJECTED: &str = "a\r\nInjected: yes";

/// A listener standing in for a server: after the client gave up, whether it connected at all,
/// and what it sent if so.
struct Recorder {
    listener: TcpListener,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    /// Everything received on the connection the client made, or `None` if it made none.
    fn received(&self) -> Option<String> {
        self.listener.set_nonblocking(true).unwrap();
        let (mut stream, _) = match self.listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => panic!("accept: {e}"),
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A client config that gives up quickly on a recorder that never answers (the code before
/// the fix connected and waited for the 101).
fn quick() -> Config {
    let mut config = Config::default();
    config.handshake_timeout = Some(Duration::from_millis(500));
    config
}

fn assert_invalid_field(err: &Error) {
    assert!(
        matches!(err, Error::Handshake(HandshakeError::InvalidField(_))),
        "{err}"
    );
}

#[test]
fn a_header_value_with_crlf_is_refused_before_connecting() {
    let recorder = Recorder::new();
    let err = ClientBuilder::new(format!("ws://{}/", recorder.addr()))
        .config(quick())
        .no_proxy()
        .header("X-Test", INJECTED)
        .connect()
        .unwrap_err();
    assert_invalid_field(&err);
    // The value (it may be a secret) is not echoed in the error.
    assert!(!err.to_string().contains("Injected"), "{err}");
    assert_eq!(recorder.received(), None);
}

#[test]
fn a_header_name_that_is_not_a_token_is_refused_before_connecting() {
    for name in ["X-Test: a\r\nInjected", "X Test", ""] {
        let recorder = Recorder::new();
        let err = ClientBuilder::new(format!("ws://{}/", recorder.addr()))
            .config(quick())
            .no_proxy()
            .header(name, "v")
            .connect()
            .unwrap_err();
        assert_invalid_field(&err);
        assert_eq!(recorder.received(), None, "{name:?}");
    }
}

#[test]
fn a_subprotocol_that_is_not_a_token_is_refused_before_connecting() {
    let recorder = Recorder::new();
    let err = ClientBuilder::new(format!("ws://{}/", recorder.addr()))
        .config(quick())
        .no_proxy()
        .subprotocol("chat\r\nInjected: yes")
        .connect()
        .unwrap_err();
    assert_invalid_field(&err);
    assert_eq!(recorder.received(), None);
}

#[test]
fn a_path_with_crlf_is_refused_before_connecting() {
    let recorder = Recorder::new();
    let url = format!(
        "ws://{}/p HTTP/1.1\r\nSmuggled: yes\r\nX: /",
        recorder.addr()
    );
    let err = ClientBuilder::new(url)
        .config(quick())
        .no_proxy()
        .connect()
        .unwrap_err();
    assert!(matches!(err, Error::Url(UrlError::InvalidTarget)), "{err}");
    assert_eq!(recorder.received(), None);
}

#[test]
fn connect_on_a_callers_stream_writes_nothing_for_bad_input() {
    // `client` over a stream the caller connected: the refusal comes before the first write.
    let mut written = Vec::new();
    let stream = Duplex {
        written: &mut written,
    };
    let err = ClientBuilder::new("ws://example.com/")
        .header("Cookie", INJECTED)
        .connect_on(stream)
        .unwrap_err();
    assert_invalid_field(&err);
    assert!(written.is_empty());
}

/// A stream that records writes and has nothing to read.
#[derive(Debug)]
struct Duplex<'a> {
    written: &'a mut Vec<u8>,
}

impl Read for Duplex<'_> {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl Write for Duplex<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_path_with_spaces_and_unicode_is_percent_encoded() {
    let (addr, server) = serve_once(|stream| {
        Acceptor::new()
            .handshake(stream)
            .map(|(_, request, ())| request.target)
            .unwrap_or_default()
    });
    let (ws, _) = ClientBuilder::new(format!("ws://{addr}/a b/caf\u{e9}?q=<x>"))
        .no_proxy()
        .connect()
        .unwrap();
    drop(ws);
    assert_eq!(server.join().unwrap(), "/a%20b/caf%C3%A9?q=%3Cx%3E");
}

/// The answer must be a 500 that carries no line of the injected text.
fn assert_no_split(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 500 "), "{answer}");
    assert!(!answer.contains("Injected"), "{answer}");
}

#[test]
fn a_server_page_with_crlf_in_a_header_is_a_bare_500() {
    let server = Server::builder()
        .http(|_| syncws::HttpResponse::new(200).header("X-Test", INJECTED))
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap();
    let (_, answer) = status_of(server.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_no_split(&answer);
    server.shutdown();
}

#[test]
fn a_server_hook_with_crlf_in_an_accept_or_reject_header_is_a_bare_500() {
    let server = Server::builder()
        .on_handshake(|req, accept| {
            if req.path() == "/reject" {
                return Err(HttpResponse::new(401).header("WWW-Authenticate", INJECTED));
            }
            accept.add_header("Set-Cookie", INJECTED);
            Ok(())
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap();
    let addr = server.local_addr();
    let (_, answer) = status_of(addr, upgrade_request("").as_bytes());
    assert_no_split(&answer);
    let reject = upgrade_request("").replacen("/chat", "/reject", 1);
    let (_, answer) = status_of(addr, reject.as_bytes());
    assert_no_split(&answer);
    server.shutdown();
}

#[test]
fn the_acceptor_refuses_a_hook_header_with_crlf() {
    type Hook = fn(&syncws::Request, &mut Accept) -> Result<(), HttpResponse>;
    let hooks: [Hook; 4] = [
        |_, accept| {
            accept.add_header("Set-Cookie", INJECTED);
            Ok(())
        },
        |_, _| Err(HttpResponse::new(403).header("X-Why", INJECTED)),
        |_, accept| {
            accept.add_header("Bad Name", "v");
            Ok(())
        },
        |_, _| Err(HttpResponse::new(1000).body(INJECTED)),
    ];
    for hook in hooks {
        let acceptor = Acceptor::new().on_handshake(hook);
        let (addr, server) = serve_once(move |stream| acceptor.accept(stream).err());
        let (_, answer) = status_of(addr, upgrade_request("").as_bytes());
        assert_no_split(&answer);
        let err = server.join().unwrap().expect("the handshake should fail");
        assert_invalid_field(&err);
    }
}
