//! The client's network paths: proxies, redirects, timeouts, address fallback.

mod common;
#[path = "common/connect_proxy.rs"]
mod connect_proxy;

use common::{DEADLINE, serve_once};
use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use syncws::{ClientBuilder, Error, HandshakeError, Message, Proxy};

/// An echo server for one connection that returns the request path it saw.
fn echo_once() -> (std::net::SocketAddr, std::thread::JoinHandle<String>) {
    serve_once(|stream| {
        let (mut ws, request, ()) = syncws::Acceptor::new().handshake(stream).unwrap();
        let path = request.target;
        while let Ok(msg) = ws.read() {
            if msg.is_data() {
                ws.send(msg).unwrap();
            }
        }
        path
    })
}

#[test]
fn through_a_connect_proxy_with_basic_auth() {
    let (server, echo) = echo_once();
    // "bob:secret" in base64.
    let (proxy_addr, proxy) = connect_proxy::start(Some("Ym9iOnNlY3JldA=="));
    let proxy_url = format!("http://bob:secret@{proxy_addr}");
    let (mut ws, _) = ClientBuilder::new(format!("ws://{server}/via-proxy"))
        .proxy(Proxy::parse(&proxy_url).unwrap())
        .connect()
        .unwrap();
    ws.send(Message::text("tunnelled")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("tunnelled"));
    drop(ws);
    assert!(
        proxy
            .join()
            .unwrap()
            .starts_with(&format!("CONNECT {server} HTTP/1.1\r\n"))
    );
    assert_eq!(echo.join().unwrap(), "/via-proxy");
}

#[test]
fn a_proxy_that_wants_credentials_is_a_clear_error() {
    let (proxy_addr, proxy) = connect_proxy::start(Some("Ym9iOnNlY3JldA=="));
    let err = ClientBuilder::new("ws://127.0.0.1:9/")
        .proxy(Proxy::parse(&format!("http://{proxy_addr}")).unwrap())
        .connect()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Proxy(msg) if msg.contains("credentials (407)")),
        "{err}"
    );
    proxy.join().unwrap();
}

/// A server that answers every handshake with `status` and `Location: location`.
fn redirector(
    status: u16,
    location: String,
) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    serve_once(move |mut stream| {
        let _ = syncws::Acceptor::new()
            .on_handshake(move |_, _| {
                Err::<(), _>(syncws::HttpResponse::new(status).header("Location", location.clone()))
            })
            .accept(&mut stream);
    })
}

#[test]
fn redirects_are_followed() {
    for status in [301, 302, 303, 307, 308] {
        let (server, echo) = echo_once();
        let (first, hop) = redirector(status, format!("ws://{server}/moved?x=1"));
        let (mut ws, response) = syncws::connect(&format!("ws://{first}/old")).unwrap();
        assert_eq!(response.status, 101);
        ws.send(Message::text("hi")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("hi"));
        drop(ws);
        hop.join().unwrap();
        assert_eq!(echo.join().unwrap(), "/moved?x=1", "{status}");
    }
}

#[test]
fn a_relative_redirect_stays_on_the_host() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (first, _) = listener.accept().unwrap();
        let _ = syncws::Acceptor::new()
            .on_handshake(move |_, _| {
                Err::<(), _>(syncws::HttpResponse::new(307).header("Location", "/new"))
            })
            .accept(first);
        let (second, _) = listener.accept().unwrap();
        let (_ws, request, ()) = syncws::Acceptor::new().handshake(second).unwrap();
        request.target
    });
    let (_ws, _) = syncws::connect(&format!("ws://{addr}/old")).unwrap();
    assert_eq!(server.join().unwrap(), "/new");
}

#[test]
fn redirects_stop_at_the_limit() {
    let (first, hop) = redirector(302, "ws://127.0.0.1:9/never".into());
    let err = ClientBuilder::new(format!("ws://{first}/"))
        .max_redirects(0)
        .connect()
        .unwrap_err();
    assert!(
        matches!(err, Error::Handshake(HandshakeError::BadRedirect(_))),
        "{err}"
    );
    hop.join().unwrap();
}

#[cfg(feature = "native-tls")]
#[test]
fn wss_is_never_downgraded_to_ws() {
    #[path = "common/certs.rs"]
    mod certs;
    let pki = certs::make();
    let identity =
        native_tls::Identity::from_pkcs8(pki.server.cert.as_bytes(), pki.server.key.as_bytes())
            .unwrap();
    let acceptor = native_tls::TlsAcceptor::new(identity).unwrap();
    let (addr, server) = serve_once(move |tcp| {
        let tls = acceptor.accept(tcp).unwrap();
        let _ = syncws::Acceptor::new()
            .on_handshake(move |_, _| {
                Err::<(), _>(
                    syncws::HttpResponse::new(301).header("Location", "ws://127.0.0.1:9/plain"),
                )
            })
            .accept(tls);
    });
    let err = ClientBuilder::new(format!("wss://localhost:{}/", addr.port()))
        .root_certificate(pki.ca.cert.as_bytes())
        .connect()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Handshake(HandshakeError::BadRedirect(why)) if why.contains("unencrypted")),
        "{err}"
    );
    server.join().unwrap();
}

#[test]
fn a_silent_server_hits_the_handshake_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = syncws::Config::default();
    config.handshake_timeout = Some(Duration::from_millis(300));
    let started = Instant::now();
    let err = ClientBuilder::new(format!("ws://{addr}/"))
        .config(config)
        .connect()
        .unwrap_err();
    assert!(
        matches!(err, Error::Handshake(HandshakeError::Timeout)),
        "{err}"
    );
    assert!(started.elapsed() < DEADLINE);
    drop(listener);
}

#[test]
fn every_resolved_address_is_tried() {
    // "localhost" resolves to ::1 and 127.0.0.1 here; only the IPv4 one listens.
    let (server, echo) = echo_once();
    let (mut ws, _) = ClientBuilder::new(format!("ws://localhost:{}/both", server.port()))
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .unwrap();
    ws.send(Message::text("found")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("found"));
    drop(ws);
    assert_eq!(echo.join().unwrap(), "/both");
}

#[test]
fn a_timed_out_read_keeps_the_partial_frame() {
    let (go_on, wait) = std::sync::mpsc::channel::<()>();
    let (addr, server) = serve_once(move |stream| {
        let mut ws = syncws::accept(stream).unwrap();
        ws.get_mut().write_all(&[0x82, 0x04, 1, 2]).unwrap();
        wait.recv_timeout(DEADLINE).unwrap();
        ws.get_mut().write_all(&[3, 4]).unwrap();
        ws.read().ok()
    });
    let (mut ws, _) = ClientBuilder::new(format!("ws://{addr}/"))
        .read_timeout(Some(Duration::from_millis(50)))
        .connect()
        .unwrap();
    for _ in 0..3 {
        assert!(ws.read().unwrap_err().is_timeout());
    }
    go_on.send(()).unwrap();
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Binary(vec![1, 2, 3, 4]));
    drop(ws);
    server.join().unwrap();
}

/// Issue 18 item 9: a server that answers `302` to `location` after recording the request head.
fn recording_redirector(
    bind: &str,
    location: impl Fn(std::net::SocketAddr) -> String + Send + 'static,
) -> (
    std::net::SocketAddr,
    std::thread::JoinHandle<syncws::Headers>,
) {
    let listener = TcpListener::bind(bind).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let (seen_tx, seen) = std::sync::mpsc::channel();
        let target = location(addr);
        let _ = syncws::Acceptor::new()
            .on_handshake(move |req, _| {
                let _ = seen_tx.send(req.headers.clone());
                Err::<(), _>(syncws::HttpResponse::new(302).header("Location", target.clone()))
            })
            .accept(stream);
        seen.try_recv().unwrap_or_default()
    });
    (addr, server)
}

/// A WebSocket server that records the request head of its one connection.
fn recording_server(
    bind: &str,
) -> (
    std::net::SocketAddr,
    std::thread::JoinHandle<syncws::Headers>,
) {
    let listener = TcpListener::bind(bind).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        syncws::Acceptor::new()
            .handshake(stream)
            .map(|(_, request, ())| request.headers)
            .unwrap_or_default()
    });
    (addr, server)
}

fn with_credentials(url: String) -> ClientBuilder {
    ClientBuilder::new(url)
        .no_proxy()
        .header("Authorization", "Bearer secret-a")
        .header("Cookie", "session=secret-a")
        .header("Proxy-Authorization", "Basic c2VjcmV0")
        .header("X-Trace", "kept")
}

#[test]
fn a_redirect_to_another_host_drops_the_credentials() {
    // Linux routes all of 127.0.0.0/8 to the loopback interface: two hosts on one machine.
    let (b, second) = recording_server("127.0.0.2:0");
    let (a, first) = recording_redirector("127.0.0.1:0", move |_| format!("ws://{b}/next"));
    let (ws, _) = with_credentials(format!("ws://user:pw@{a}/start"))
        .connect()
        .unwrap();
    drop(ws);
    let at_a = first.join().unwrap();
    assert_eq!(at_a.get("authorization"), Some("Bearer secret-a"));
    assert_eq!(at_a.get("cookie"), Some("session=secret-a"));
    let at_b = second.join().unwrap();
    for name in ["authorization", "cookie", "proxy-authorization"] {
        assert_eq!(
            at_b.get(name),
            None,
            "{name} reached the other host: {at_b:?}"
        );
    }
    assert_eq!(at_b.get("x-trace"), Some("kept"));
}

#[test]
fn a_redirect_to_another_port_drops_the_credentials() {
    let (b, second) = recording_server("127.0.0.1:0");
    let (a, first) = recording_redirector("127.0.0.1:0", move |_| format!("ws://{b}/next"));
    let (ws, _) = with_credentials(format!("ws://{a}/start"))
        .connect()
        .unwrap();
    drop(ws);
    first.join().unwrap();
    let at_b = second.join().unwrap();
    assert_eq!(at_b.get("authorization"), None, "{at_b:?}");
    assert_eq!(at_b.get("cookie"), None, "{at_b:?}");
}

#[test]
fn a_redirect_on_the_same_origin_keeps_the_credentials() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (first, _) = listener.accept().unwrap();
        let _ = syncws::Acceptor::new()
            .on_handshake(move |_, _| {
                Err::<(), _>(syncws::HttpResponse::new(307).header("Location", "/new"))
            })
            .accept(first);
        let (second, _) = listener.accept().unwrap();
        syncws::Acceptor::new()
            .handshake(second)
            .map(|(_, request, ())| request.headers)
            .unwrap_or_default()
    });
    let (_ws, _) = with_credentials(format!("ws://{addr}/old"))
        .connect()
        .unwrap();
    let seen = server.join().unwrap();
    assert_eq!(seen.get("authorization"), Some("Bearer secret-a"));
    assert_eq!(seen.get("cookie"), Some("session=secret-a"));
}

#[test]
fn a_callers_host_header_replaces_the_urls() {
    let (addr, server) = recording_server("127.0.0.1:0");
    let (ws, _) = ClientBuilder::new(format!("ws://{addr}/"))
        .no_proxy()
        .header("Host", "chat.example")
        .connect()
        .unwrap();
    drop(ws);
    let seen = server.join().unwrap();
    assert_eq!(seen.get_all("host").collect::<Vec<_>>(), ["chat.example"]);
}

#[test]
fn the_clients_own_headers_cannot_be_given_twice() {
    for (name, value) in [
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ] {
        let err = ClientBuilder::new("ws://127.0.0.1:9/")
            .no_proxy()
            .header(name, value)
            .connect()
            .unwrap_err();
        assert!(
            matches!(err, Error::Handshake(HandshakeError::InvalidField(_))),
            "{name}: {err}"
        );
    }
}
