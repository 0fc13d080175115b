//! A hostile server against the client (issue 18 item 10), the mirror of `tests/hostile.rs`:
//! each misbehaviour ends in a typed error within a bounded time, with memory within the
//! configured limits.

mod common;

use common::DEADLINE;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use syncws::error::HandshakeError;
use syncws::error::ProtocolError;
use syncws::{ClientBuilder, Config, Error, Message, NetStream, WebSocket};

/// The handshake deadline every client here runs with.
const HANDSHAKE: Duration = Duration::from_millis(800);
/// How long any case may take before it counts as stuck: generous, the machine is loaded.
const BOUND: Duration = Duration::from_secs(10);
/// How long a trickling or flooding server keeps going if the client does not stop it: well
/// beyond `BOUND`, so a client that waits for it fails the bound.
const PERSISTENCE: Duration = Duration::from_secs(30);

fn config() -> Config {
    let mut config = Config::default();
    config.handshake_timeout = Some(HANDSHAKE);
    config
}

/// A one-connection server: reads the request head, then runs `script` with the stream and the
/// `Sec-WebSocket-Accept` a correct server would send.
fn hostile(
    script: impl FnOnce(TcpStream, String) + Send + 'static,
) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        let accept = read_request(&mut stream);
        script(stream, accept);
    });
    (addr, handle)
}

/// Reads a request head byte by byte; returns the accept key for its `Sec-WebSocket-Key`.
fn read_request(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 << 10 {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap_or_default();
    syncws::proto::handshake::accept_key(key)
}

/// Writes `chunk` again and again until the client goes away or `PERSISTENCE` passes.
fn flood(stream: &mut TcpStream, chunk: &[u8]) {
    let started = Instant::now();
    while started.elapsed() < PERSISTENCE && stream.write_all(chunk).is_ok() {}
}

/// Writes `bytes` one at a time, `gap` apart, until done, the client goes away or
/// `PERSISTENCE` passes.
fn trickle(stream: &mut impl Write, bytes: &[u8], gap: Duration) {
    let started = Instant::now();
    for byte in bytes {
        if started.elapsed() > PERSISTENCE || stream.write_all(&[*byte]).is_err() {
            return;
        }
        let _ = stream.flush();
        std::thread::sleep(gap);
    }
}

/// Connects with `builder`, asserting the whole attempt ends within `BOUND`.
fn connect_bounded(
    builder: ClientBuilder,
) -> Result<(WebSocket<NetStream>, syncws::Response), Error> {
    let started = Instant::now();
    let result = builder.no_proxy().connect();
    assert!(
        started.elapsed() < BOUND,
        "took {:?}: {:?}",
        started.elapsed(),
        result.as_ref().err()
    );
    result
}

fn client(addr: SocketAddr) -> ClientBuilder {
    ClientBuilder::new(format!("ws://{addr}/")).config(config())
}

fn handshake_error(
    result: Result<(WebSocket<NetStream>, syncws::Response), Error>,
) -> HandshakeError {
    match result {
        Err(Error::Handshake(e)) => e,
        Err(other) => panic!("not a handshake error: {other}"),
        Ok(_) => panic!("the handshake succeeded"),
    }
}

#[test]
fn an_oversized_response_head_is_head_too_large() {
    let (addr, server) = hostile(|mut stream, _| {
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nX-Big: {}",
            "a".repeat(1 << 20)
        );
        let _ = stream.write_all(head.as_bytes());
    });
    let err = handshake_error(connect_bounded(client(addr)));
    assert_eq!(err, HandshakeError::HeadTooLarge);
    server.join().unwrap();
}

#[test]
fn an_endless_response_head_is_head_too_large() {
    let (addr, server) = hostile(|mut stream, _| {
        let _ = stream.write_all(b"HTTP/1.1 101 Switching Protocols\r\nX-Endless: ");
        flood(&mut stream, &[b'a'; 4096]);
    });
    let err = handshake_error(connect_bounded(client(addr)));
    assert_eq!(err, HandshakeError::HeadTooLarge);
    server.join().unwrap();
}

#[test]
fn a_header_flood_is_too_many_headers() {
    let (addr, server) = hostile(|mut stream, _| {
        let _ = stream.write_all(b"HTTP/1.1 101 Switching Protocols\r\n");
        flood(&mut stream, b"X: 1\r\n");
    });
    let err = handshake_error(connect_bounded(client(addr)));
    assert_eq!(err, HandshakeError::TooManyHeaders);
    server.join().unwrap();
}

#[test]
fn a_trickled_response_head_is_a_timeout() {
    let (addr, server) = hostile(|mut stream, accept| {
        trickle(
            &mut stream,
            common::switching_protocols(&accept, "").as_bytes(),
            Duration::from_millis(50),
        );
    });
    let err = handshake_error(connect_bounded(client(addr)));
    assert_eq!(err, HandshakeError::Timeout);
    server.join().unwrap();
}

#[test]
fn a_trickled_refusal_body_ends_within_the_handshake_deadline() {
    // The head of a 403 arrives at once; its announced body a byte every 50 ms.
    let (addr, server) = hostile(|mut stream, _| {
        let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 8000\r\n\r\n");
        trickle(&mut stream, &[b'x'; 8000], Duration::from_millis(50));
    });
    let err = handshake_error(connect_bounded(client(addr)));
    assert!(
        matches!(&err, HandshakeError::UnexpectedResponse(r) if r.status == 403),
        "{err}"
    );
    server.join().unwrap();
}

#[test]
fn a_wrong_accept_key_is_invalid_accept() {
    let (addr, server) = hostile(|mut stream, _| {
        let wrong = syncws::proto::handshake::accept_key("AAAAAAAAAAAAAAAAAAAAAA==");
        let _ = stream.write_all(common::switching_protocols(&wrong, "").as_bytes());
        let _ = stream.read(&mut [0u8; 16]);
    });
    let err = handshake_error(connect_bounded(client(addr)));
    assert_eq!(err, HandshakeError::InvalidAccept);
    server.join().unwrap();
}

#[test]
fn a_redirect_loop_stops_at_the_limit() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done, stop) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let started = Instant::now();
        let mut served = 0;
        while stop.try_recv().is_err() && started.elapsed() < DEADLINE && served < 100 {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.set_read_timeout(Some(DEADLINE)).unwrap();
                    read_request(&mut stream);
                    let answer = format!(
                        "HTTP/1.1 302 Found\r\nLocation: ws://{addr}/loop{served}\r\nContent-Length: 0\r\n\r\n"
                    );
                    let _ = stream.write_all(answer.as_bytes());
                    served += 1;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        served
    });
    let err = handshake_error(connect_bounded(client(addr).max_redirects(3)));
    assert!(matches!(err, HandshakeError::BadRedirect(_)), "{err}");
    done.send(()).unwrap();
    assert_eq!(
        server.join().unwrap(),
        4,
        "the first request and 3 redirects"
    );
}

/// A server that upgrades properly, then runs `script`.
fn upgrading(
    extra: &'static str,
    script: impl FnOnce(TcpStream) + Send + 'static,
) -> (SocketAddr, JoinHandle<()>) {
    hostile(move |mut stream, accept| {
        if stream
            .write_all(common::switching_protocols(&accept, extra).as_bytes())
            .is_ok()
        {
            script(stream);
        }
    })
}

/// Connects to an upgrading server, with reads bounded by `DEADLINE`.
fn upgraded(addr: SocketAddr, config: Config) -> WebSocket<NetStream> {
    let (ws, _) = connect_bounded(ClientBuilder::new(format!("ws://{addr}/")).config(config))
        .expect("handshake");
    ws.get_ref().set_read_timeout(Some(DEADLINE)).unwrap();
    ws
}

/// Reads once, asserting it ends within `BOUND`.
fn read_bounded(ws: &mut WebSocket<NetStream>) -> Result<Message, Error> {
    let started = Instant::now();
    let result = ws.read();
    assert!(
        started.elapsed() < BOUND,
        "read took {:?}",
        started.elapsed()
    );
    result
}

#[test]
fn a_frame_announcing_2_pow_63_bytes_is_invalid_length() {
    let (addr, server) = upgrading("", |mut stream| {
        let _ = stream.write_all(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        let _ = stream.read_to_end(&mut Vec::new());
    });
    let mut ws = upgraded(addr, config());
    let err = read_bounded(&mut ws).unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ProtocolError::InvalidLength)),
        "{err}"
    );
    drop(ws);
    server.join().unwrap();
}

#[test]
fn a_frame_announcing_2_pow_63_minus_1_bytes_is_frame_too_large() {
    let (addr, server) = upgrading("", |mut stream| {
        let _ = stream.write_all(&[0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let _ = stream.read_to_end(&mut Vec::new());
    });
    let mut ws = upgraded(addr, config());
    let err = read_bounded(&mut ws).unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ProtocolError::FrameTooLarge)),
        "{err}"
    );
    drop(ws);
    server.join().unwrap();
}

#[test]
fn an_announced_length_costs_nothing_until_its_bytes_arrive() {
    // A header announcing 16 MiB - 1 (within max_frame_size), then nothing.
    let (go, wait) = mpsc::channel::<()>();
    let (addr, server) = upgrading("", move |mut stream| {
        let _ = stream.write_all(&[0x82, 0x7f, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
        let _ = wait.recv_timeout(DEADLINE);
    });
    let config = config();
    let mut ws = upgraded(addr, config.clone());
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(read_bounded(&mut ws).unwrap_err().is_timeout());
    let held = ws.buffered_capacity();
    // The input buffer and the 10-byte header, not room for the announced payload.
    assert!(
        held <= 2 * config.read_buffer_size.max(4096),
        "{held} bytes held for a payload not yet sent"
    );
    go.send(()).unwrap();
    drop(ws);
    server.join().unwrap();
}

#[test]
fn a_server_that_keeps_sending_after_its_close_is_left_behind() {
    let (addr, server) = upgrading("", |mut stream| {
        let _ = stream.write_all(&[0x88, 0x02, 0x03, 0xe8]);
        // Then data, endlessly: a client that read it all would never return.
        let mut frame = vec![0x82, 0x7e, 0x10, 0x00];
        frame.extend_from_slice(&[0u8; 4096]);
        flood(&mut stream, &frame);
    });
    let mut ws = upgraded(addr, config());
    assert!(matches!(read_bounded(&mut ws), Ok(Message::Close(_))));
    assert!(matches!(
        read_bounded(&mut ws),
        Err(Error::ConnectionClosed)
    ));
    drop(ws);
    server.join().unwrap();
}

#[test]
fn a_server_that_never_closes_tcp_does_not_hold_a_client_with_a_read_timeout() {
    // RFC 6455 §7.1.1: the server closes TCP first; this one completes the closing handshake
    // and then holds the connection open.
    let (go, wait) = mpsc::channel::<()>();
    let (addr, server) = upgrading("", move |mut stream| {
        let _ = stream.write_all(&[0x88, 0x02, 0x03, 0xe8]);
        let _ = stream.read(&mut [0u8; 64]);
        let _ = wait.recv_timeout(DEADLINE);
    });
    let (mut ws, _) = connect_bounded(
        ClientBuilder::new(format!("ws://{addr}/"))
            .config(config())
            .read_timeout(Some(Duration::from_secs(1))),
    )
    .unwrap();
    assert!(matches!(read_bounded(&mut ws), Ok(Message::Close(_))));
    assert!(matches!(
        read_bounded(&mut ws),
        Err(Error::ConnectionClosed)
    ));
    go.send(()).unwrap();
    drop(ws);
    server.join().unwrap();
}

#[cfg(feature = "deflate")]
#[test]
fn a_compression_bomb_stops_at_max_message_size() {
    use flate2::{Compress, Compression, FlushCompress};
    // 1 GiB of zeros, about 1 MiB compressed: 1 MiB compressed once, then the same again
    // (back-references only) repeated.
    let mut deflate = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut first = Vec::with_capacity(4096);
    deflate
        .compress_vec(&zeros, &mut first, FlushCompress::Sync)
        .unwrap();
    let mut repeat = Vec::with_capacity(4096);
    deflate
        .compress_vec(&zeros, &mut repeat, FlushCompress::Sync)
        .unwrap();
    let mut bomb = first;
    for _ in 1..1024 {
        bomb.extend_from_slice(&repeat);
    }
    let (addr, server) = upgrading(
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        move |mut stream| {
            // One compressed binary message (RSV1) in 64 KiB frames, each within every limit.
            let pieces: Vec<&[u8]> = bomb.chunks(64 << 10).collect();
            for (i, piece) in pieces.iter().enumerate() {
                let fin = if i + 1 == pieces.len() { 0x80 } else { 0 };
                let opcode = if i == 0 { 0x42 } else { 0x00 };
                let mut frame = vec![fin | opcode, 127];
                frame.extend_from_slice(&(piece.len() as u64).to_be_bytes());
                frame.extend_from_slice(piece);
                if stream.write_all(&frame).is_err() {
                    return;
                }
            }
        },
    );
    let mut config = config();
    config.deflate.enabled = true;
    config.max_message_size = 1 << 20;
    let mut ws = upgraded(addr, config);
    assert!(ws.deflate().is_some());
    let err = read_bounded(&mut ws).unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ProtocolError::MessageTooLarge)),
        "{err}"
    );
    let held = ws.buffered_capacity();
    assert!(held <= (1 << 20) + 1 + (64 << 10), "{held} bytes held");
    drop(ws);
    server.join().unwrap();
}

/// A stream that sends what it is given one byte at a time, `gap` apart: TLS records trickled.
#[cfg(feature = "native-tls")]
#[derive(Debug)]
struct Trickling {
    tcp: TcpStream,
    started: Instant,
}

#[cfg(feature = "native-tls")]
impl Read for Trickling {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.read(buf)
    }
}

#[cfg(feature = "native-tls")]
impl Write for Trickling {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.started.elapsed() > PERSISTENCE {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        std::thread::sleep(Duration::from_millis(20));
        self.tcp.write(&buf[..buf.len().min(1)])
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

#[cfg(feature = "native-tls")]
#[test]
fn trickled_tls_records_end_at_the_handshake_deadline() {
    #[path = "common/certs.rs"]
    mod certs;
    let pki = certs::make();
    let identity =
        native_tls::Identity::from_pkcs8(pki.server.cert.as_bytes(), pki.server.key.as_bytes())
            .unwrap();
    let acceptor = native_tls::TlsAcceptor::new(identity).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        tcp.set_write_timeout(Some(DEADLINE)).unwrap();
        // The server's certificate flight, about 1.5 KB, takes ~30 s at 20 ms a byte.
        let stream = Trickling {
            tcp,
            started: Instant::now(),
        };
        let _ = acceptor.accept(stream);
    });
    let builder = ClientBuilder::new(format!("wss://localhost:{}/", addr.port()))
        .config(config())
        .root_certificate(pki.ca.cert.as_bytes());
    let err = handshake_error(connect_bounded(builder));
    assert_eq!(err, HandshakeError::Timeout);
    server.join().unwrap();
}

#[test]
fn a_proxy_trickling_its_answer_ends_at_the_handshake_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let proxy = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        read_request(&mut stream);
        let answer = format!("HTTP/1.1 200 OK\r\nX-Slow: {}\r\n\r\n", "a".repeat(4000));
        trickle(&mut stream, answer.as_bytes(), Duration::from_millis(50));
    });
    let builder = ClientBuilder::new("ws://127.0.0.1:9/")
        .config(config())
        .proxy(syncws::Proxy::parse(&format!("http://{proxy_addr}")).unwrap());
    let started = Instant::now();
    let err = handshake_error(builder.connect());
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    assert_eq!(err, HandshakeError::Timeout);
    proxy.join().unwrap();
}

#[test]
fn a_server_that_never_closes_tcp_does_not_hold_a_client_with_default_settings() {
    // As above, but the client has no read timeout: its wait for the server's TCP close
    // (RFC 6455 §7.1.1) is bounded in bytes only today.
    let (go, wait) = mpsc::channel::<()>();
    let (addr, server) = upgrading("", move |mut stream| {
        let _ = stream.write_all(&[0x88, 0x02, 0x03, 0xe8]);
        let _ = stream.read(&mut [0u8; 64]);
        let _ = wait.recv_timeout(DEADLINE);
    });
    let (mut ws, _) = connect_bounded(client(addr)).unwrap();
    let (done, result) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let close = ws.read();
        let end = ws.read();
        let _ = done.send((close.is_ok(), end));
    });
    let outcome = result.recv_timeout(BOUND);
    go.send(()).unwrap();
    server.join().unwrap();
    reader.join().unwrap();
    let (closed, end) = outcome.expect("the client still waits for the server's TCP close");
    assert!(closed);
    assert!(matches!(end, Err(Error::ConnectionClosed)), "{end:?}");
}
