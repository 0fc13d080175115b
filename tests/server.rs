//! The thread-per-connection Server over 127.0.0.1:0: handshake policy, plain HTTP, heartbeats,
//! split senders, rooms and the typed end causes.

mod common;

use common::{DEADLINE, raw_connect, read_to_close, status_of, upgrade_request};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use syncws::{
    CloseCode, Config, EndCause, Error, HandshakeError, HttpResponse, Message, ProtocolError, Room,
    Server, ServerHandle, Session, WebSocket,
};

type Client = WebSocket<syncws::NetStream>;

fn connect(addr: SocketAddr, target: &str) -> Client {
    let (ws, _) = syncws::connect(&format!("ws://{addr}{target}")).expect("connect");
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    ws
}

fn echo(mut session: Session) {
    while let Ok(message) = session.read() {
        if message.is_data() && session.send(message).is_err() {
            break;
        }
    }
}

/// An echo server whose end causes arrive on the returned channel.
fn echo_server(
    builder: syncws::ServerBuilder,
) -> (ServerHandle, mpsc::Receiver<(SocketAddr, EndCause)>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = builder
        .on_end(move |peer, cause| {
            let _ = tx.lock().unwrap().send((peer, cause.clone()));
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(echo)
        .unwrap();
    (server, rx)
}

/// The status of the answer to a raw `request`, without waiting for the connection to end.
fn status_line(addr: SocketAddr, request: &str) -> u16 {
    let mut stream = raw_connect(addr);
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n") && stream.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn status_and_body(error: Error) -> (u16, String) {
    match error {
        Error::Handshake(HandshakeError::UnexpectedResponse(response)) => (
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
        ),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[test]
fn echoes_and_reports_the_peers_close_with_code_and_reason() {
    let (server, ends) = echo_server(Server::builder());
    let mut ws = connect(server.local_addr(), "/echo");
    ws.send(Message::text("hello")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello"));
    let reply = ws.close(CloseCode::Other(4000), "done here").unwrap();
    assert_eq!(reply.map(|f| f.code), Some(CloseCode::Other(4000)));
    let (peer, cause) = ends.recv_timeout(DEADLINE).unwrap();
    assert_eq!(peer, ws.get_ref().local_addr().unwrap());
    match cause {
        EndCause::PeerClosed(Some(frame)) => {
            assert_eq!(
                (frame.code, frame.reason.as_str()),
                (CloseCode::Other(4000), "done here")
            );
        }
        other => panic!("{other:?}"),
    }
    server.shutdown();
}

#[test]
fn handler_sees_path_query_headers_and_cookies() {
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|session: Session| {
            let req = session.request();
            let summary = format!(
                "{} {:?} {:?} {:?}",
                req.path(),
                req.query_param("room"),
                req.header("x-client"),
                req.cookie("sid")
            );
            session.send(Message::text(summary)).unwrap();
        })
        .unwrap();
    let (mut ws, _) =
        syncws::ClientBuilder::new(format!("ws://{}/chat?room=blue", server.local_addr()))
            .header("X-Client", "test")
            .header("Cookie", "a=1; sid=abc")
            .connect()
            .unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::text(r#"/chat Some("blue") Some("test") Some("abc")"#)
    );
    // The handler returned with the connection open: the server closes with 1000.
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("{other:?}"),
    }
    server.shutdown();
}

#[test]
fn the_hook_authenticates_and_attaches_the_user() {
    let server = Server::builder()
        .on_handshake(|req, _accept| {
            let token = req.query_param("token").or_else(|| {
                req.header("authorization")
                    .and_then(|v| v.strip_prefix("Bearer "))
            });
            match token {
                Some("s3cret") => Ok("alice".to_owned()),
                Some(_) => Err(HttpResponse::new(403).body("wrong token")),
                None => Err(HttpResponse::new(401)
                    .header("WWW-Authenticate", "Bearer")
                    .body("token required")),
            }
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|session: Session<String>| {
            let user = session.data().clone();
            session
                .send(Message::text(format!("hello {user}")))
                .unwrap();
        })
        .unwrap();
    let addr = server.local_addr();
    let error = syncws::connect(&format!("ws://{addr}/")).unwrap_err();
    assert_eq!(status_and_body(error), (401, "token required".into()));
    let error = syncws::connect(&format!("ws://{addr}/?token=nope")).unwrap_err();
    assert_eq!(status_and_body(error), (403, "wrong token".into()));
    let mut ws = connect(addr, "/?token=s3cret");
    assert_eq!(ws.read().unwrap(), Message::text("hello alice"));
    let (mut ws, _) = syncws::ClientBuilder::new(format!("ws://{addr}/"))
        .header("Authorization", "Bearer s3cret")
        .connect()
        .unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello alice"));
    server.shutdown();
}

#[test]
fn origins_outside_the_list_get_403() {
    let (server, _) = echo_server(Server::builder().allowed_origins(["http://good.example"]));
    let addr = server.local_addr();
    let status = status_line(addr, &upgrade_request("Origin: http://evil.example\r\n"));
    assert_eq!(status, 403);
    let status = status_line(addr, &upgrade_request("Origin: http://good.example\r\n"));
    assert_eq!(status, 101);
    // Non-browser clients send no Origin.
    assert_eq!(status_line(addr, &upgrade_request("")), 101);
    server.shutdown();
}

#[test]
fn the_servers_preferred_subprotocol_wins() {
    let (server, _) = echo_server(Server::builder().subprotocols(["v2.chat", "v1.chat"]));
    let url = format!("ws://{}/", server.local_addr());
    let (_, response) = syncws::ClientBuilder::new(&url)
        .subprotocol("v1.chat")
        .subprotocol("v2.chat")
        .connect()
        .unwrap();
    assert_eq!(response.subprotocol(), Some("v2.chat"));
    let (_, response) = syncws::ClientBuilder::new(&url)
        .subprotocol("v1.chat")
        .connect()
        .unwrap();
    assert_eq!(response.subprotocol(), Some("v1.chat"));
    let (_, response) = syncws::ClientBuilder::new(&url).connect().unwrap();
    assert_eq!(response.subprotocol(), None);
    server.shutdown();
}

#[test]
fn plain_http_gets_the_page_handler_or_426() {
    let (server, _) = echo_server(Server::builder());
    let (status, answer) = status_of(server.local_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 426);
    assert!(answer.contains("\r\nUpgrade: websocket\r\n"), "{answer}");
    server.shutdown();

    let server = Server::builder()
        .http(|req| {
            HttpResponse::new(200)
                .header("Content-Type", "text/html")
                .body(format!("<p>{}</p>", req.path()))
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(echo)
        .unwrap();
    let (status, answer) = status_of(
        server.local_addr(),
        b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(answer.ends_with("\r\n\r\n<p>/page</p>"), "{answer}");
    // The same server still upgrades.
    let mut ws = connect(server.local_addr(), "/");
    ws.send(Message::text("x")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("x"));
    drop(ws);
    server.shutdown();
}

#[test]
fn over_the_cap_clients_get_503_with_retry_after() {
    let (server, _) = echo_server(Server::builder().max_connections(2));
    let addr = server.local_addr();
    let mut first = connect(addr, "/");
    let _second = connect(addr, "/");
    let (status, answer) = status_of(addr, upgrade_request("").as_bytes());
    assert_eq!(status, 503, "{answer}");
    assert!(answer.contains("\r\nRetry-After: "), "{answer}");
    // A slot frees when a connection ends.
    first.close(CloseCode::Normal, "").unwrap();
    drop(first);
    let deadline = Instant::now() + DEADLINE;
    while server.connection_count() >= 2 {
        assert!(Instant::now() < deadline, "the slot was never freed");
        std::thread::yield_now();
    }
    let mut third = connect(addr, "/");
    third.send(Message::text("in")).unwrap();
    assert_eq!(third.read().unwrap(), Message::text("in"));
    drop((_second, third));
    server.shutdown();
}

#[test]
fn a_slow_handshake_is_dropped_and_does_not_stall_others() {
    // Bounds are on events, generous for a loaded machine: the slow client is held 5 s, the
    // fast one must get through well before that, and the slow one be dropped well before its
    // trickled head (~10 s) would be complete.
    let mut config = Config::default();
    config.handshake_timeout = Some(Duration::from_secs(5));
    let (server, _) = echo_server(Server::builder().config(config));
    let addr = server.local_addr();
    let mut slow = raw_connect(addr);
    let started = Instant::now();
    let request = upgrade_request("");
    let (first_half, rest) = request.as_bytes().split_at(request.len() / 2);
    slow.write_all(first_half).unwrap();
    // While the slow client is mid-handshake, another one gets through.
    let mut fast = connect(addr, "/");
    fast.send(Message::text("quick")).unwrap();
    assert_eq!(fast.read().unwrap(), Message::text("quick"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stalled by the slow client"
    );
    // The rest trickles in, a byte every 100 ms: each read is quick, the whole head too slow.
    for byte in rest {
        if slow.write_all(std::slice::from_ref(byte)).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > DEADLINE {
            break;
        }
    }
    let answer = read_to_close(&mut slow);
    let took = started.elapsed();
    assert!(!answer.starts_with(b"HTTP/1.1 101"), "{answer:?}");
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "{took:?}"
    );
    drop(fast);
    server.shutdown();
}

/// Upgrades a raw TCP connection and then never reads nor answers pings: a dead peer.
fn silent_client(addr: SocketAddr) -> TcpStream {
    let mut stream = raw_connect(addr);
    stream.write_all(upgrade_request("").as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    stream
}

#[test]
fn heartbeat_fails_a_silent_peer_and_keeps_a_live_one() {
    let (tx, handler_saw) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let (server, ends) = {
        let (end_tx, ends) = mpsc::channel();
        let end_tx = std::sync::Mutex::new(end_tx);
        let server = Server::builder()
            // A generous timeout, so that the live client's thread answers in time on a loaded
            // machine.
            .heartbeat(Duration::from_millis(200), Duration::from_secs(2))
            .on_end(move |peer, cause| {
                let _ = end_tx.lock().unwrap().send((peer, cause.clone()));
            })
            .bind("127.0.0.1:0")
            .unwrap()
            .spawn(move |mut session: Session| {
                while session.read().is_ok() {}
                let _ = tx.lock().unwrap().send(session.end_cause());
            })
            .unwrap();
        (server, ends)
    };
    let addr = server.local_addr();
    // A live client: its reads answer the server's pings, on a thread of its own.
    let mut live = connect(addr, "/");
    live.get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let live_thread = std::thread::spawn(move || {
        let started = Instant::now();
        let mut pings_answered = 0;
        while started.elapsed() < Duration::from_secs(4) {
            match live.read() {
                Ok(Message::Ping(_)) => pings_answered += 1,
                Ok(other) => panic!("{other:?}"),
                Err(e) if e.is_timeout() => {}
                Err(e) => panic!("{e}"),
            }
        }
        live.send(Message::text("still here")).unwrap();
        (pings_answered, live)
    });
    // Before the handshake: the server's timers start after it, so the lower bound holds.
    let started = Instant::now();
    let mut silent = silent_client(addr);
    let silent_port = silent.local_addr().unwrap();
    let (peer, cause) = ends.recv_timeout(DEADLINE).unwrap();
    let took = started.elapsed();
    assert_eq!(peer, silent_port);
    assert_eq!(cause, EndCause::HeartbeatTimeout);
    assert_eq!(
        handler_saw.recv_timeout(DEADLINE).unwrap(),
        Some(EndCause::HeartbeatTimeout)
    );
    // Pinged after 200 ms of quiet, failed 2 s later (generous upper bound: a loaded machine).
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    // The dead peer got a ping, then 1011, then the TCP connection closed.
    let bytes = read_to_close(&mut silent);
    assert_eq!(&bytes[..2], [0x89, 0x00]);
    assert_eq!(&bytes[2..6], [0x88, 19, 0x03, 0xf3]);
    // Meanwhile the live client kept answering and is still connected.
    let (pings_answered, live) = live_thread.join().unwrap();
    assert!(pings_answered >= 2, "{pings_answered}");
    assert!(ends.try_recv().is_err(), "the live client was dropped");
    drop(live);
    server.shutdown();
}

#[test]
fn protocol_violations_are_reported_with_the_code_sent() {
    let (server, ends) = echo_server(Server::builder());
    let mut stream = silent_client(server.local_addr());
    // An unmasked frame from a client (RFC 6455 §5.1).
    stream.write_all(&[0x81, 0x02, b'h', b'i']).unwrap();
    let (_, cause) = ends.recv_timeout(DEADLINE).unwrap();
    assert_eq!(
        cause,
        EndCause::ProtocolViolation(ProtocolError::UnmaskedFrame)
    );
    assert_eq!(cause.close_code(), CloseCode::Protocol);
    assert_eq!(&read_to_close(&mut stream)[..4], [0x88, 0x02, 0x03, 0xea]);
    server.shutdown();
}

#[test]
fn a_vanished_peer_is_an_io_cause() {
    let (server, ends) = echo_server(Server::builder());
    drop(silent_client(server.local_addr()));
    let (_, cause) = ends.recv_timeout(DEADLINE).unwrap();
    assert!(
        matches!(cause, EndCause::Io(std::io::ErrorKind::UnexpectedEof, _)),
        "{cause:?}"
    );
    assert_eq!(cause.close_code(), CloseCode::Abnormal);
    server.shutdown();
}

#[test]
fn writers_on_many_threads_never_interleave_frames() {
    const THREADS: usize = 4;
    const EACH: usize = 50;
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|mut session: Session| {
            // Writers on other threads send while this thread is blocked in read().
            let senders: Vec<_> = (0..THREADS)
                .map(|t| {
                    let writer = session.writer();
                    std::thread::spawn(move || {
                        for i in 0..EACH {
                            // Large enough that each write is split by the kernel.
                            let body = format!("{t}:{i}:").repeat(20_000);
                            writer.send(Message::text(body)).unwrap();
                        }
                    })
                })
                .collect();
            let first = session.read();
            for sender in senders {
                sender.join().unwrap();
            }
            session
                .send(Message::text(format!("read {:?}", first.map(|m| m.len()))))
                .unwrap();
            while session.read().is_ok() {}
        })
        .unwrap();
    let mut config = Config::default();
    config.max_message_size = 1 << 20;
    let (mut ws, _) = syncws::ClientBuilder::new(format!("ws://{}/", server.local_addr()))
        .config(config)
        .connect()
        .unwrap();
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    let mut next = [0usize; THREADS];
    for _ in 0..THREADS * EACH {
        let text = ws.read().unwrap().as_text().unwrap().to_owned();
        let (t, rest) = text.split_once(':').unwrap();
        let (i, _) = rest.split_once(':').unwrap();
        let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[t], "messages of one sender stay in order");
        assert_eq!(text, format!("{t}:{i}:").repeat(20_000));
        next[t] += 1;
    }
    ws.send(Message::text("ok")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("read Ok(2)"));
    ws.close(CloseCode::Normal, "").unwrap();
    server.shutdown();
}

#[test]
fn pongs_go_out_through_the_writer_while_others_send() {
    let server = Server::builder()
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|mut session: Session| {
            let writer = session.writer();
            let sender = std::thread::spawn(move || {
                for i in 0..200 {
                    if writer.send(Message::text(format!("m{i}"))).is_err() {
                        break;
                    }
                }
            });
            while session.read().is_ok() {}
            sender.join().unwrap();
        })
        .unwrap();
    let mut ws = connect(server.local_addr(), "/");
    ws.send(Message::Ping(b"p1".to_vec())).unwrap();
    let (mut texts, mut pongs) = (0, 0);
    while texts < 200 || pongs < 1 {
        match ws.read().unwrap() {
            Message::Text(_) => texts += 1,
            Message::Pong(p) => {
                assert_eq!(p, b"p1");
                pongs += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    ws.close(CloseCode::Normal, "").unwrap();
    server.shutdown();
}

#[test]
fn split_client_reads_while_another_thread_sends() {
    let (server, _) = echo_server(Server::builder());
    let ws = connect(server.local_addr(), "/");
    let (mut reader, writer) = ws.split().unwrap();
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>(_: &T) {}
    assert_send_sync_clone(&writer);
    let sender = {
        let writer = writer.clone();
        std::thread::spawn(move || {
            for i in 0..100 {
                writer.send(Message::text(format!("{i}"))).unwrap();
            }
        })
    };
    for i in 0..100 {
        assert_eq!(reader.read().unwrap(), Message::text(format!("{i}")));
    }
    sender.join().unwrap();
    let reply = reader.close(CloseCode::Normal, "bye").unwrap();
    assert_eq!(reply.map(|f| f.code), Some(CloseCode::Normal));
    assert!(matches!(reader.read(), Err(Error::ConnectionClosed)));
    assert!(matches!(
        writer.send(Message::text("late")),
        Err(Error::AlreadyClosed)
    ));
    assert!(matches!(reader.end_cause(), Some(EndCause::LocalClosed(_))));
    server.shutdown();
}

#[test]
fn broadcast_reaches_members_and_drops_one_that_stopped_reading() {
    let room = Room::new();
    let (joined_tx, joined) = mpsc::channel();
    let joined_tx = std::sync::Mutex::new(joined_tx);
    let (end_tx, ends) = mpsc::channel();
    let end_tx = std::sync::Mutex::new(end_tx);
    let server_room = room.clone();
    let server = Server::builder()
        .write_timeout(Some(Duration::from_millis(300)))
        .on_end(move |peer, cause| {
            let _ = end_tx.lock().unwrap().send((peer, cause.clone()));
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(move |mut session: Session| {
            server_room.join(session.writer());
            joined_tx.lock().unwrap().send(()).unwrap();
            while let Ok(message) = session.read() {
                if message.is_data() {
                    server_room.broadcast(&message, Some(&session.writer()));
                }
            }
            server_room.leave(&session.writer());
        })
        .unwrap();
    let addr = server.local_addr();
    let mut speaker = connect(addr, "/");
    let mut listener = connect(addr, "/");
    let stalled = silent_client(addr); // joins, then never reads
    for _ in 0..3 {
        joined.recv_timeout(DEADLINE).unwrap();
    }
    assert_eq!(room.len(), 3);
    speaker.send(Message::text("hi all")).unwrap();
    assert_eq!(listener.read().unwrap(), Message::text("hi all"));
    // Fill the stalled member's buffers: once its socket takes nothing for 300 ms it is failed
    // (1008) and dropped; the listener keeps receiving throughout.
    let chunk = "x".repeat(256 * 1024);
    let started = Instant::now();
    let mut sent = 0;
    while room.len() == 3 {
        assert!(sent < 400, "the stalled member was never dropped");
        speaker.send(Message::text(chunk.clone())).unwrap();
        assert_eq!(listener.read().unwrap().len(), chunk.len());
        sent += 1;
    }
    let (peer, cause) = ends.recv_timeout(DEADLINE).unwrap();
    assert_eq!(peer, stalled.local_addr().unwrap());
    assert_eq!(cause, EndCause::WriteTimeout);
    assert_eq!(room.len(), 2);
    // One broadcast waits at most about one write timeout for the stalled member.
    assert!(started.elapsed() < DEADLINE);
    speaker.send(Message::text("after")).unwrap();
    assert_eq!(listener.read().unwrap(), Message::text("after"));
    drop((stalled, speaker, listener));
    server.shutdown();
}

#[test]
fn the_whole_echo_path_runs_on_a_32_kib_stack() {
    // The handshake, reads of every frame size, pongs, sends and the close all fit the minimum
    // stack, so the 256 KiB default leaves the handler ample room. With permessage-deflate
    // agreed (feature `deflate`), zlib's state setup needs 64 KiB in a debug build.
    let mut config = Config::default();
    config.max_message_size = 1 << 20;
    let stack = if cfg!(feature = "deflate") {
        64 * 1024
    } else {
        32 * 1024
    };
    let (server, ends) = echo_server(Server::builder().stack_size(stack).config(config));
    let mut ws = connect(server.local_addr(), "/a?b=c");
    for size in [0usize, 125, 126, 65536, 1 << 20] {
        ws.send(Message::Binary(vec![7; size])).unwrap();
        assert_eq!(ws.read().unwrap().len(), size);
        ws.send(Message::text("é".repeat(size / 2))).unwrap();
        assert_eq!(ws.read().unwrap().len(), size / 2 * 2);
    }
    ws.send(Message::Ping(b"x".to_vec())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"x".to_vec()));
    ws.close(CloseCode::Normal, "").unwrap();
    assert!(ends.recv_timeout(DEADLINE).unwrap().1.is_clean());
    server.shutdown();
}

#[test]
fn a_panicking_handler_closes_with_1011_and_the_server_carries_on() {
    let (tx, ends) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = Server::builder()
        .heartbeat(Duration::from_secs(30), Duration::from_secs(30))
        .on_end(move |_, cause| {
            let _ = tx.lock().unwrap().send(cause.clone());
        })
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|mut session: Session| {
            if let Ok(Message::Text(text)) = session.read() {
                assert_ne!(text, "panic", "the handler panics on purpose");
                session.send(Message::text(text)).unwrap();
            }
        })
        .unwrap();
    let mut ws = connect(server.local_addr(), "/");
    ws.send(Message::text("panic")).unwrap();
    match ws.read().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::InternalError),
        other => panic!("{other:?}"),
    }
    let cause = ends.recv_timeout(DEADLINE).unwrap();
    assert_eq!(cause.close_code(), CloseCode::InternalError, "{cause:?}");
    let mut ws = connect(server.local_addr(), "/");
    ws.send(Message::text("fine")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("fine"));
    drop(ws);
    server.shutdown();
}

#[test]
fn buffers_grow_for_a_large_message_and_shrink_back_when_idle() {
    let mut config = Config::default();
    config.max_message_size = 4 << 20;
    let server = Server::builder()
        .config(config)
        .bind("127.0.0.1:0")
        .unwrap()
        .spawn(|mut session: Session| {
            // After each message, what the connection holds while handling it (released by the
            // next read when idle).
            while let Ok(message) = session.read() {
                let held = session.reader().buffered_capacity();
                let reply = format!("{}:{held}", message.len());
                if session.send(Message::text(reply)).is_err() {
                    return;
                }
            }
        })
        .unwrap();
    let mut ws = connect(server.local_addr(), "/");
    // One at a time (each answered before the next is sent), so each arrives in a read of its own.
    let mut report = Vec::new();
    for message in [
        Message::text("small"),
        Message::Binary(vec![1; 3 << 20]),
        Message::text("small again"),
    ] {
        if message.len() < 100 && !report.is_empty() {
            // The scenario: a connection that stays quiet longer than the 100 ms for which
            // buffers kept for large messages are held.
            std::thread::sleep(Duration::from_millis(300));
        }
        ws.send(message).unwrap();
        report.push(ws.read().unwrap().as_text().unwrap().to_owned());
    }
    let report = report.join(" ");
    let capacities: Vec<usize> = report
        .split(' ')
        .map(|entry| entry.split_once(':').unwrap().1.parse().unwrap())
        .collect();
    // Idle, a connection holds its small input buffer only (2 KiB by default); the 3 MiB
    // message's memory is given back once it has been handled.
    eprintln!("capacity after each message: {report}");
    assert!(capacities[0] <= 8 << 10, "{report}");
    assert!(capacities[2] <= 8 << 10, "{report}");
    drop(ws);
    server.shutdown();
}

#[test]
fn a_read_timeout_is_kept_while_large_buffers_are_held_and_released() {
    // After a 64 KiB echo the session holds room for the next one, waiting at most 100 ms at a
    // time; the caller's own read timeout must still be what the caller sees, whether longer or
    // shorter than that window, and the room must be gone once the wait timed out.
    for timeout_ms in [400u64, 50] {
        let (report, reports) = mpsc::channel();
        let report = std::sync::Mutex::new(report);
        let server = Server::bind("127.0.0.1:0")
            .unwrap()
            .spawn(move |mut session: Session| {
                let timeout = Duration::from_millis(timeout_ms);
                session.reader().set_read_timeout(Some(timeout)).unwrap();
                let Ok(message) = session.read() else { return };
                session.send(message).unwrap();
                let started = Instant::now();
                let outcome = session.read();
                let waited = started.elapsed();
                let held = session.reader().buffered_capacity();
                let timed_out = matches!(&outcome, Err(e) if e.is_timeout());
                report
                    .lock()
                    .unwrap()
                    .send((timed_out, waited, held))
                    .unwrap();
                session.reader().set_read_timeout(Some(DEADLINE)).unwrap();
                let _ = session.read();
            })
            .unwrap();
        let mut ws = connect(server.local_addr(), "/");
        let payload = Message::Binary(vec![7; 64 << 10]);
        ws.send(payload.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), payload);
        let (timed_out, waited, held) = reports.recv_timeout(DEADLINE).unwrap();
        assert!(timed_out, "the read timed out ({timeout_ms} ms)");
        let timeout = Duration::from_millis(timeout_ms);
        assert!(
            waited + Duration::from_millis(20) >= timeout && waited < timeout + DEADLINE / 2,
            "waited {waited:?} for a {timeout_ms} ms read timeout"
        );
        assert!(held <= 4 << 10, "{held} bytes held after the timeout");
        ws.close(CloseCode::Normal, "").unwrap();
        server.shutdown();
    }
}
