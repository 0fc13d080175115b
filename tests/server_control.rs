//! The server's control surface over 127.0.0.1:0: the handshake hook of `Acceptor` and `Server`
//! (one shape), stopping a served server from other threads, and client addresses through
//! trusted proxies.

mod common;

use common::{DEADLINE, serve_once, status_of, upgrade_request};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use syncws::error::HandshakeError;
use syncws::{
    Acceptor, ClientBuilder, CloseCode, Error, HttpResponse, Message, Server, Session, WebSocket,
};

type Client = WebSocket<syncws::NetStream>;

fn client(builder: ClientBuilder) -> Client {
    let (ws, _) = builder.connect().expect("connect");
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    ws
}

// --- the hook ---------------------------------------------------------------------------------

#[test]
fn the_acceptor_returns_the_request_and_what_the_hook_returned() {
    let acceptor = Acceptor::new().on_handshake(|req, accept| {
        assert_eq!(accept.subprotocol(), None);
        let Some(user) = req.query_param("user") else {
            return Err(HttpResponse::new(401).body("who are you?"));
        };
        if req.subprotocols().any(|p| p == "chat") {
            accept.set_subprotocol(Some("chat"));
        }
        accept.add_header("X-User", user);
        Ok(user.to_owned())
    });
    let shared = acceptor.clone();
    let (addr, server) = serve_once(move |stream| {
        let (ws, request, user) = shared.handshake(stream).unwrap();
        (ws.subprotocol().map(String::from), request.target, user)
    });
    let (_ws, response) = ClientBuilder::new(format!("ws://{addr}/?user=ann"))
        .subprotocol("other")
        .subprotocol("chat")
        .connect()
        .unwrap();
    assert_eq!(response.header("x-user"), Some("ann"));
    assert_eq!(response.subprotocol(), Some("chat"));
    let (subprotocol, target, user) = server.join().unwrap();
    assert_eq!(subprotocol.as_deref(), Some("chat"));
    assert_eq!(target, "/?user=ann");
    assert_eq!(user, "ann");

    // The same acceptor refuses without a user: the client sees the status and body.
    let (addr, server) = serve_once(move |stream| acceptor.handshake(stream).err());
    match syncws::connect(&format!("ws://{addr}/")) {
        Err(Error::Handshake(HandshakeError::UnexpectedResponse(response))) => {
            assert_eq!(response.status, 401);
            assert_eq!(response.body, b"who are you?");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    assert!(matches!(
        server.join().unwrap(),
        Some(Error::Handshake(HandshakeError::Rejected(401)))
    ));
}

#[test]
fn the_server_hook_sees_the_preferred_subprotocol_and_may_change_it() {
    let server = Server::builder()
        .subprotocols(["v1", "v2"])
        .on_handshake(|req, accept| {
            let preselected = accept.subprotocol().map(String::from);
            if req.path() == "/v2" {
                accept.set_subprotocol(Some("v2"));
            }
            Ok(preselected)
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|session: Session<Option<String>>| {
            let seen = format!("{:?} {:?}", session.data(), session.subprotocol());
            let _ = session.send(Message::text(seen));
        })
        .unwrap();
    let addr = server.local_addr();
    for (path, expected) in [
        ("/", "Some(\"v1\") Some(\"v1\")"),
        ("/v2", "Some(\"v1\") Some(\"v2\")"),
    ] {
        let mut ws = client(
            ClientBuilder::new(format!("ws://{addr}{path}"))
                .subprotocol("v2")
                .subprotocol("v1"),
        );
        assert_eq!(ws.read().unwrap(), Message::text(expected), "{path}");
    }
    server.shutdown();
}

#[test]
fn a_server_hook_refusal_with_an_invalid_status_is_a_bare_500() {
    let server = Server::builder()
        .on_handshake(|_, _| Err::<(), _>(HttpResponse::new(42).body("not sent")))
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|_| {})
        .unwrap();
    let (status, answer) = status_of(server.local_addr(), upgrade_request("").as_bytes());
    assert_eq!(status, 500, "{answer}");
    assert!(!answer.contains("not sent"), "{answer}");
    server.shutdown();
}

// --- stopping a served server -----------------------------------------------------------------

/// Serves on a thread of its own; the receiver gets `serve`'s result.
fn serve_on_thread(
    server: Server,
    handler: impl Fn(Session) + Send + Sync + 'static,
) -> mpsc::Receiver<Result<(), Error>> {
    let (done_tx, done) = mpsc::channel();
    thread::spawn(move || {
        let _ = done_tx.send(server.serve(handler));
    });
    done
}

#[test]
fn a_served_server_stops_from_another_thread() {
    let server = Server::builder()
        .shutdown_timeout(Duration::from_secs(5))
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let done = serve_on_thread(server, common::echo_session);
    let mut ws = client(ClientBuilder::new(format!("ws://{addr}/")));
    ws.send(Message::text("before")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("before"));

    let started = Instant::now();
    let stopper = stop.clone();
    thread::spawn(move || stopper.shutdown()).join().unwrap();
    // The open connection is told the server is going away, and answers.
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::GoingAway),
        other => panic!("expected close 1001, got {other:?}"),
    }
    drop(ws);
    let result = done
        .recv_timeout(DEADLINE)
        .expect("serve did not return after shutdown");
    assert!(result.is_ok(), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Nothing listens any more, and a second shutdown is harmless.
    assert!(std::net::TcpStream::connect(addr).is_err());
    stop.shutdown();
}

#[test]
fn a_handler_stops_the_served_server() {
    let server = Server::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    let done = serve_on_thread(server, move |mut session| {
        while let Ok(message) = session.read() {
            if message == Message::text("stop") {
                stop.shutdown();
            }
        }
    });
    let mut other = client(ClientBuilder::new(format!("ws://{addr}/")));
    let mut ws = client(ClientBuilder::new(format!("ws://{addr}/")));
    ws.send(Message::text("stop")).unwrap();
    for ws in [&mut ws, &mut other] {
        match ws.read().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::GoingAway),
            other => panic!("expected close 1001, got {other:?}"),
        }
    }
    drop((ws, other));
    let result = done.recv_timeout(DEADLINE).expect("serve did not return");
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_shutdown_before_serve_makes_serve_return_at_once() {
    let server = Server::bind("127.0.0.1:0").unwrap();
    server.shutdown_handle().shutdown();
    let done = serve_on_thread(server, |_| {});
    let result = done.recv_timeout(DEADLINE).expect("serve did not return");
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_shutdown_handle_stops_a_spawned_server() {
    let (ended_tx, ended) = mpsc::channel();
    let server = Server::builder()
        .on_end(move |_, cause| {
            let _ = ended_tx.send(cause.clone());
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(common::echo_session)
        .unwrap();
    let addr = server.local_addr();
    let mut ws = client(ClientBuilder::new(format!("ws://{addr}/")));
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hi"));
    server.shutdown_handle().shutdown();
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::GoingAway),
        other => panic!("expected close 1001, got {other:?}"),
    }
    drop(ws);
    let cause = ended
        .recv_timeout(DEADLINE)
        .expect("the connection did not end");
    assert_eq!(cause, syncws::EndCause::ServerShutdown);
    // The handle's own shutdown then finds the server stopped and returns.
    let (done_tx, done) = mpsc::channel();
    thread::spawn(move || {
        server.shutdown();
        let _ = done_tx.send(());
    });
    done.recv_timeout(DEADLINE)
        .expect("shutdown did not return");
}

// --- client addresses through trusted proxies -------------------------------------------------

/// A server that trusts `proxies` and answers each connection with its client and peer
/// addresses; `on_end` reports the address it sees on the returned receiver.
fn address_server(proxies: &[&str]) -> (syncws::ServerHandle, mpsc::Receiver<SocketAddr>) {
    let (ended_tx, ended) = mpsc::channel();
    let server = Server::builder()
        .trusted_proxies(proxies.iter().copied())
        .on_end(move |addr, _| {
            let _ = ended_tx.send(addr);
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|mut session| {
            let seen = format!("{} {}", session.client_addr(), session.peer_addr());
            let _ = session.send(Message::text(seen));
            while session.read().is_ok() {}
        })
        .unwrap();
    (server, ended)
}

/// Connects with `headers` and returns (client_addr, peer_addr, the address on_end saw).
fn addresses_seen(
    server: &syncws::ServerHandle,
    ended: &mpsc::Receiver<SocketAddr>,
    headers: &[(&str, &str)],
) -> (String, SocketAddr, SocketAddr) {
    let mut builder = ClientBuilder::new(format!("ws://{}/", server.local_addr()));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut ws = client(builder);
    let local = ws.get_ref().local_addr().unwrap();
    let message = ws.read().unwrap();
    let text = message.as_text().unwrap().to_owned();
    let _ = ws.close(CloseCode::Normal, "");
    let (client_addr, peer_addr) = text.split_once(' ').unwrap();
    let on_end = ended.recv_timeout(DEADLINE).expect("on_end was not called");
    assert_eq!(peer_addr.parse::<SocketAddr>().unwrap(), local);
    (client_addr.to_owned(), local, on_end)
}

#[test]
fn a_trusted_proxy_names_the_client_in_x_forwarded_for() {
    let (server, ended) = address_server(&["127.0.0.0/8"]);
    // The client claimed 1.1.1.1; the proxy appended what it saw.
    let headers = [("X-Forwarded-For", "1.1.1.1, 198.51.100.7")];
    let (client_addr, _, on_end) = addresses_seen(&server, &ended, &headers);
    assert_eq!(client_addr, "198.51.100.7:0");
    assert_eq!(on_end, "198.51.100.7:0".parse().unwrap());
    server.shutdown();
}

#[test]
fn a_trusted_proxy_names_the_client_in_forwarded() {
    let (server, ended) = address_server(&["127.0.0.1"]);
    let headers = [(
        "Forwarded",
        "for=192.0.2.1, for=\"[2001:db8::17]:4711\";proto=http",
    )];
    let (client_addr, _, on_end) = addresses_seen(&server, &ended, &headers);
    assert_eq!(client_addr, "[2001:db8::17]:4711");
    assert_eq!(on_end, "[2001:db8::17]:4711".parse().unwrap());
    let headers = [("Forwarded", "for=\"[::1]:4711\"")];
    let (client_addr, _, _) = addresses_seen(&server, &ended, &headers);
    assert_eq!(client_addr, "[::1]:4711");
    server.shutdown();
}

#[test]
fn headers_from_an_untrusted_peer_or_garbage_give_the_tcp_peer() {
    let (server, ended) = address_server(&["10.0.0.0/8"]);
    let headers = [
        ("X-Forwarded-For", "198.51.100.7"),
        ("Forwarded", "for=192.0.2.1"),
    ];
    let (client_addr, local, on_end) = addresses_seen(&server, &ended, &headers);
    assert_eq!(client_addr, local.to_string());
    assert_eq!(on_end, local);
    server.shutdown();

    let (server, ended) = address_server(&["127.0.0.1"]);
    for garbage in [
        "for=\"unterminated",
        "for=unknown",
        "by=10.0.0.1",
        "for=[::1]:80",
    ] {
        let headers = [("Forwarded", garbage)];
        let (client_addr, local, on_end) = addresses_seen(&server, &ended, &headers);
        assert_eq!(client_addr, local.to_string(), "{garbage}");
        assert_eq!(on_end, local, "{garbage}");
    }
    server.shutdown();
}

#[test]
fn trusted_proxies_are_checked_at_bind() {
    for bad in ["10.0.0.0/33", "localhost", "10.0.0.1/x", ""] {
        let result = Server::builder().trusted_proxies([bad]).bind("127.0.0.1:0");
        assert!(
            matches!(result, Err(Error::InvalidConfig(_))),
            "{bad}: {:?}",
            result.err()
        );
    }
}

#[test]
fn subprotocol_names_are_checked_at_bind() {
    for bad in ["echo protocol", "a,b", "", "x\r\ny", "x/1"] {
        let result = Server::builder().subprotocols([bad]).bind("127.0.0.1:0");
        assert!(
            matches!(result, Err(Error::InvalidConfig(_))),
            "{bad:?}: {:?}",
            result.err()
        );
    }
    let good = Server::builder()
        .subprotocols(["echo-protocol", "chat.v2"])
        .bind("127.0.0.1:0");
    assert!(good.is_ok());
}

// --- Session::close -----------------------------------------------------------------------------

#[test]
fn session_close_returns_the_peers_frame_and_is_bounded_when_none_comes() {
    let (result_tx, results) = mpsc::channel();
    let server = Server::builder()
        .without_heartbeat()
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |mut session| {
            let started = Instant::now();
            let result = session.close(CloseCode::GoingAway, "bye");
            let _ = result_tx.send((result.map_err(|e| e.to_string()), started.elapsed()));
        })
        .unwrap();
    let addr = server.local_addr();
    // A client that answers: close returns its frame.
    let mut ws = client(ClientBuilder::new(format!("ws://{addr}/")));
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.reason, "bye"),
        other => panic!("expected a close, got {other:?}"),
    }
    let (result, _) = results
        .recv_timeout(DEADLINE)
        .expect("close did not return");
    let frame = result.unwrap().expect("the peer's close frame");
    assert_eq!(frame.code, CloseCode::GoingAway);
    // A client that never answers: close still returns, within the close timeout.
    let _silent = common::upgraded(addr);
    let (_, elapsed) = results
        .recv_timeout(DEADLINE)
        .expect("close did not return");
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    server.shutdown();
}
