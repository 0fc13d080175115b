//! Issue 21 item 6: a stalled member never stalls the room. Loopback only; every loop is bounded
//! in count and by read timeouts.

use socket2::{Domain, SockRef, Socket, Type};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use syncws::{CloseCode, Config, Message, Role, Room, WebSocket, Writer};

const DEADLINE: Duration = Duration::from_secs(20);

/// The tests that time their broadcast calls run one at a time: side by side, their hundreds of
/// members would compete for two cores and each test would time the others' load.
fn timed_test() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(feature = "native-tls")]
#[path = "common/certs.rs"]
mod certs;

/// A client socket with a small receive buffer, for a member that will not read.
fn small_buffer_connect(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

/// Accepts one connection as a server-side member of `room` (its reader runs on a thread of
/// its own, to take the peer's close reply) and returns the client's socket. A stalled member's
/// server socket gets a small send buffer too, so the kernel holds little for it.
fn member(listener: &TcpListener, room: &Room, stalled: bool) -> (TcpStream, Writer) {
    let addr = listener.local_addr().unwrap();
    let client = if stalled {
        small_buffer_connect(addr)
    } else {
        TcpStream::connect(addr).unwrap()
    };
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    let (server, _) = listener.accept().unwrap();
    if stalled {
        SockRef::from(&server).set_send_buffer_size(8192).unwrap();
    }
    // A server's default write timeout.
    server
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
        .split()
        .unwrap();
    thread::spawn(move || while reader.read().is_ok() {});
    room.join(writer.clone());
    (client, writer)
}

/// A message carrying its sequence number and when it was published (nanoseconds since
/// `epoch`), padded to `size` bytes.
fn stamped(seq: u32, epoch: Instant, size: usize) -> Message {
    let mut payload = vec![0u8; size.max(12)];
    payload[..4].copy_from_slice(&seq.to_be_bytes());
    payload[4..12].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
    Message::Binary(payload)
}

fn unstamp(message: &Message) -> (u32, Duration) {
    let data = message.as_bytes();
    let seq = u32::from_be_bytes(data[..4].try_into().unwrap());
    let nanos = u64::from_be_bytes(data[4..12].try_into().unwrap());
    (seq, Duration::from_nanos(nanos))
}

/// Reads `count` messages in order from a healthy member; returns each one's
/// publish-to-delivery latency.
fn read_all<S: Read + Write>(client: S, count: u32, epoch: Instant) -> Vec<Duration> {
    let mut ws = WebSocket::from_stream(client, Role::Client, Config::default());
    let mut latencies = Vec::with_capacity(count as usize);
    for expected in 0..count {
        let message = ws.read().expect("a healthy member reads every message");
        let (seq, published) = unstamp(&message);
        latencies.push(epoch.elapsed().saturating_sub(published));
        assert_eq!(seq, expected, "out of order");
    }
    latencies
}

/// Reads what a stalled member was given before it was dropped (whole messages, in order from
/// the first) and returns the close frame's code that follows them.
fn read_until_close(client: TcpStream, most: u32) -> (u32, Option<CloseCode>) {
    let mut ws = WebSocket::from_stream(client, Role::Client, Config::default());
    let mut next = 0;
    loop {
        match ws.read() {
            Ok(Message::Binary(ref data)) => {
                let (seq, _) = unstamp(&Message::Binary(data.clone()));
                assert_eq!(seq, next, "out of order or torn");
                next += 1;
                assert!(next <= most, "more messages than were published");
            }
            Ok(Message::Close(frame)) => return (next, frame.map(|f| f.code)),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => panic!("the stalled member got {e} after {next} messages, not a close"),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// (a) and (b): 2 members that never read and 20 that do; 2,000 broadcasts of 1 KiB, one per
/// millisecond. Every healthy member gets every message in order, with a p99
/// publish-to-delivery latency under 1 s; no broadcast call takes 200 ms; the stalled members
/// are dropped, and when they finally read they see whole messages in order, then a 1008 close.
#[test]
fn stalled_members_do_not_delay_the_healthy_ones() {
    let _one_at_a_time = timed_test();
    const HEALTHY: usize = 20;
    const STALLED: usize = 2;
    const MESSAGES: u32 = 2_000;
    const SIZE: usize = 1024;
    let epoch = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // Half a second of messages: a healthy reader starved of CPU that long on a loaded machine
    // would be dropped too.
    let room = Room::with_max_backpressure(512 * 1024);
    let mut stalled = Vec::new();
    let mut readers = Vec::new();
    for i in 0..HEALTHY + STALLED {
        // Stalled members first and last, so that every broadcast meets one before the others.
        if i == 0 || i == HEALTHY + STALLED - 1 {
            stalled.push(member(&listener, &room, true));
        } else {
            let (client, _) = member(&listener, &room, false);
            readers.push(thread::spawn(move || read_all(client, MESSAGES, epoch)));
        }
    }
    assert_eq!(room.len(), HEALTHY + STALLED);

    let mut slowest_call = Duration::ZERO;
    let mut dropped = 0;
    let mut next = Instant::now();
    for seq in 0..MESSAGES {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        next += Duration::from_millis(1);
        let started = Instant::now();
        let report = room.broadcast(&stamped(seq, epoch, SIZE), None);
        slowest_call = slowest_call.max(started.elapsed());
        dropped += report.dropped;
    }
    assert!(
        slowest_call < Duration::from_millis(200),
        "a broadcast took {slowest_call:?}"
    );
    // Only the stalled ones are dropped (healthy readers may already have hung up).
    assert_eq!(
        dropped, STALLED,
        "the stalled members are dropped, once each"
    );

    let mut latencies: Vec<Duration> = readers
        .into_iter()
        .flat_map(|reader| reader.join().unwrap())
        .collect();
    assert_eq!(latencies.len(), HEALTHY * MESSAGES as usize);
    latencies.sort();
    let p99 = percentile(&latencies, 0.99);
    eprintln!(
        "healthy members' latency: p50 {:?}, p99 {p99:?}, max {:?}; slowest broadcast call {slowest_call:?}",
        percentile(&latencies, 0.5),
        latencies[latencies.len() - 1]
    );
    assert!(p99 < Duration::from_secs(1), "p99 latency {p99:?}");

    for (client, writer) in stalled {
        let (got, code) = read_until_close(client, MESSAGES);
        assert!(got < MESSAGES, "a stalled member got everything");
        assert_eq!(code, Some(CloseCode::Policy), "after {got} messages");
        assert!(writer.end_cause().is_some());
    }
}

/// (b) with large messages: each of 200 broadcasts of 64 KiB (one per 5 ms, which the healthy
/// member keeps up with) to 4 stalled members and one healthy one returns within 200 ms, where
/// writing in turn would wait a write timeout (10 s) for each stalled member once its buffers
/// are full.
#[test]
fn a_broadcast_call_never_waits_for_a_stalled_socket() {
    let _one_at_a_time = timed_test();
    const MESSAGES: u32 = 200;
    const SIZE: usize = 64 * 1024;
    let epoch = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // 64 messages: the healthy member may fall 300 ms behind on a loaded machine.
    let room = Room::with_max_backpressure(4 << 20);
    let stalled: Vec<_> = (0..4).map(|_| member(&listener, &room, true)).collect();
    let (client, _writer) = member(&listener, &room, false);
    let reader = thread::spawn(move || read_all(client, MESSAGES, epoch));
    let started_all = Instant::now();
    let mut dropped = 0;
    let mut next = Instant::now();
    for seq in 0..MESSAGES {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        next += Duration::from_millis(5);
        let started = Instant::now();
        let report = room.broadcast(&stamped(seq, epoch, SIZE), None);
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(200),
            "broadcast {seq} took {took:?}"
        );
        dropped += report.dropped;
    }
    assert!(started_all.elapsed() < Duration::from_secs(10));
    // 64 messages of 64 KiB, plus what the kernel holds, of the 200.
    assert_eq!(dropped, 4);
    assert_eq!(reader.join().unwrap().len(), MESSAGES as usize);
    for (client, _) in stalled {
        let (_, code) = read_until_close(client, MESSAGES);
        assert_eq!(code, Some(CloseCode::Policy));
    }
}

/// A member's own messages and the room's interleave whole, each stream in its order.
#[test]
fn own_sends_and_broadcasts_interleave_whole_and_in_order() {
    const EACH: u32 = 300;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // Large enough for everything: the client reads only once all is sent.
    let room = Room::with_max_backpressure(16 << 20);
    let (client, writer) = member(&listener, &room, false);
    let (done_tx, done) = mpsc::channel();
    let own = thread::spawn(move || {
        for i in 0..EACH {
            writer.send(Message::text(format!("own {i}"))).unwrap();
        }
        let _ = done_tx.send(());
    });
    for i in 0..EACH {
        room.broadcast(&Message::Binary(vec![i as u8; 8 * 1024 + i as usize]), None);
    }
    let mut ws = WebSocket::from_stream(client, Role::Client, Config::default());
    let (mut own_next, mut room_next) = (0, 0);
    for _ in 0..2 * EACH {
        match ws.read().unwrap() {
            Message::Text(text) => {
                assert_eq!(text, format!("own {own_next}"));
                own_next += 1;
            }
            Message::Binary(data) => {
                assert_eq!(data.len(), 8 * 1024 + room_next as usize);
                assert!(data.iter().all(|&b| b == room_next as u8));
                room_next += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((own_next, room_next), (EACH, EACH));
    done.recv_timeout(DEADLINE).unwrap();
    own.join().unwrap();
}

/// A member whose own thread is blocked writing a large message to a peer that stopped reading
/// (it owns the write half until its write timeout) delays no broadcast: the room queues for
/// it, and the healthy member gets everything.
#[test]
fn a_member_blocked_in_its_own_send_delays_no_broadcast() {
    let _one_at_a_time = timed_test();
    const MESSAGES: u32 = 200;
    let epoch = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let room = Room::new();
    let (stalled_client, stalled_writer) = member(&listener, &room, true);
    let (client, _) = member(&listener, &room, false);
    let reader = thread::spawn(move || read_all(client, MESSAGES, epoch));
    let (started_tx, started) = mpsc::channel();
    let own_send = thread::spawn(move || {
        let _ = started_tx.send(());
        // 8 MiB to a peer that reads nothing: blocks until the write timeout (10 s) fails it.
        stalled_writer.send(Message::Binary(vec![0; 8 << 20]))
    });
    started.recv_timeout(DEADLINE).unwrap();
    let mut slowest = Duration::ZERO;
    let mut next = Instant::now();
    for seq in 0..MESSAGES {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        next += Duration::from_millis(5);
        let started = Instant::now();
        room.broadcast(&stamped(seq, epoch, 256), None);
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(200),
        "a broadcast took {slowest:?}"
    );
    assert_eq!(reader.join().unwrap().len(), MESSAGES as usize);
    // The blocked send ends with the connection: cut it rather than wait for its timeout.
    drop(stalled_client);
    let sent = own_send.join().unwrap();
    assert!(sent.is_err(), "8 MiB went to a peer that read nothing");
}

/// Many stalled members at once: 100 members that never read and 10 that do. A first broadcast
/// of 256 KiB fills every stalled member's buffers in the same call; 200 broadcasts of 1 KiB
/// follow, one per 2 ms, while the fan-out thread keeps trying the 100 (the bound is above what
/// they are given, so none is dropped). No broadcast call takes 200 ms and every healthy member
/// gets every message in order. A write attempt that waited for a full socket (a clock tick at
/// least, several ms) would cost the first broadcast 100 of them, and each pass of the fan-out
/// thread as much.
#[test]
fn a_hundred_stalled_members_cost_a_broadcast_nothing() {
    let _one_at_a_time = timed_test();
    const HEALTHY: usize = 10;
    const STALLED: usize = 100;
    const MESSAGES: u32 = 200;
    let epoch = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let room = Room::with_max_backpressure(4 << 20);
    let stalled: Vec<_> = (0..STALLED)
        .map(|_| member(&listener, &room, true))
        .collect();
    let readers: Vec<_> = (0..HEALTHY)
        .map(|_| {
            let (client, _) = member(&listener, &room, false);
            thread::spawn(move || read_all(client, MESSAGES + 1, epoch))
        })
        .collect();
    assert_eq!(room.len(), HEALTHY + STALLED);

    broadcast_past_stalled(&room, MESSAGES, epoch);
    for reader in readers {
        assert_eq!(reader.join().unwrap().len(), MESSAGES as usize + 1);
    }
    // Still members, still behind: each is cut when its client goes.
    for (_, writer) in &stalled {
        assert!(writer.end_cause().is_none());
    }
    drop(stalled);
}

/// The many-stalled scenario's broadcasts: one of 256 KiB that fills every stalled member's
/// buffers, then `messages` of 1 KiB, one per 2 ms. Asserts that no call took 200 ms and that
/// nobody was dropped (the room's bound must be above what is published).
fn broadcast_past_stalled(room: &Room, messages: u32, epoch: Instant) {
    let mut slowest_call = Duration::ZERO;
    let mut dropped = 0;
    let mut next = Instant::now();
    for seq in 0..=messages {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        next += Duration::from_millis(2);
        let size = if seq == 0 { 256 * 1024 } else { 1024 };
        let started = Instant::now();
        let report = room.broadcast(&stamped(seq, epoch, size), None);
        slowest_call = slowest_call.max(started.elapsed());
        dropped += report.dropped;
    }
    assert!(
        slowest_call < Duration::from_millis(200),
        "a broadcast took {slowest_call:?}"
    );
    assert_eq!(dropped, 0, "nobody went over the bound");
}

/// The same over Unix sockets (split through cloned handles): 100 stalled members with small
/// buffers cost no broadcast call 200 ms, and the healthy ones get everything in order.
#[cfg(unix)]
#[test]
fn a_hundred_stalled_unix_socket_members_cost_a_broadcast_nothing() {
    let _one_at_a_time = timed_test();
    use std::os::unix::net::UnixStream;
    const MESSAGES: u32 = 100;
    let epoch = Instant::now();
    let room = Room::with_max_backpressure(4 << 20);
    let unix_member = |stalled: bool| {
        let (server, client) = UnixStream::pair().unwrap();
        if stalled {
            SockRef::from(&server).set_send_buffer_size(8192).unwrap();
            SockRef::from(&client).set_recv_buffer_size(4096).unwrap();
        }
        client.set_read_timeout(Some(DEADLINE)).unwrap();
        server
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (mut reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
            .split()
            .unwrap();
        thread::spawn(move || while reader.read().is_ok() {});
        room.join(writer.clone());
        (client, writer)
    };
    let stalled: Vec<_> = (0..100).map(|_| unix_member(true)).collect();
    let readers: Vec<_> = (0..5)
        .map(|_| {
            let (client, _) = unix_member(false);
            thread::spawn(move || read_all(client, MESSAGES + 1, epoch))
        })
        .collect();
    broadcast_past_stalled(&room, MESSAGES, epoch);
    for reader in readers {
        assert_eq!(reader.join().unwrap().len(), MESSAGES as usize + 1);
    }
    for (_, writer) in &stalled {
        assert!(writer.end_cause().is_none());
    }
}

/// A wss:// listener whose accepted connections join a room: each member is the client's end
/// and the server's writer (its reader drained on a thread).
#[cfg(feature = "native-tls")]
struct WssMembers {
    identity: syncws::TlsIdentity,
    ca: String,
    listener: TcpListener,
}

#[cfg(feature = "native-tls")]
impl WssMembers {
    fn new() -> WssMembers {
        let pki = certs::make();
        WssMembers {
            identity: syncws::TlsIdentity::from_pem(
                pki.server.cert.as_bytes(),
                pki.server.key.as_bytes(),
            )
            .unwrap(),
            ca: pki.ca.cert.clone(),
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    /// Connects a client and joins its server end to `room`; `small_send_buffer` gives the
    /// server's socket an 8 KiB send buffer, so a client that does not read stalls it soon.
    fn join(
        &self,
        room: &Room,
        small_send_buffer: bool,
    ) -> (syncws::WebSocket<syncws::NetStream>, syncws::Writer) {
        let (ca, port) = (self.ca.clone(), self.listener.local_addr().unwrap().port());
        let client = thread::spawn(move || {
            // The whole suite runs beside this test: a TLS handshake may take long here.
            let mut config = syncws::Config::default();
            config.handshake_timeout = Some(DEADLINE);
            syncws::ClientBuilder::new(format!("wss://localhost:{port}/"))
                .root_certificate(ca.as_bytes())
                .config(config)
                .connect()
                .map(|(ws, _)| ws)
        });
        let (tcp, _) = self.listener.accept().unwrap();
        if small_send_buffer {
            SockRef::from(&tcp).set_send_buffer_size(8192).unwrap();
        }
        tcp.set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let stream = self.identity.accept(tcp, Some(DEADLINE)).unwrap();
        let (mut reader, writer) = syncws::Acceptor::new()
            .accept(stream)
            .unwrap()
            .split()
            .unwrap();
        thread::spawn(move || while reader.read().is_ok() {});
        room.join(writer.clone());
        (client.join().unwrap().unwrap(), writer)
    }
}

/// The same over wss://: 40 stalled members (TLS clients that never read) cost no broadcast
/// call 200 ms, and the healthy ones get every message whole and in order; a record the socket
/// took only part of goes on where it stopped.
#[cfg(feature = "native-tls")]
#[test]
fn forty_stalled_tls_members_cost_a_broadcast_nothing() {
    let _one_at_a_time = timed_test();
    const MESSAGES: u32 = 100;
    let epoch = Instant::now();
    let wss = WssMembers::new();
    let room = Room::with_max_backpressure(4 << 20);
    let tls_member = |stalled: bool| wss.join(&room, stalled);
    let stalled: Vec<_> = (0..40).map(|_| tls_member(true)).collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (mut ws, _) = tls_member(false);
            ws.get_ref().tcp().set_read_timeout(Some(DEADLINE)).unwrap();
            thread::spawn(move || {
                let mut latencies = Vec::new();
                for expected in 0..=MESSAGES {
                    let message = ws.read().expect("a healthy member reads every message");
                    let (seq, published) = unstamp(&message);
                    latencies.push(epoch.elapsed().saturating_sub(published));
                    assert_eq!(seq, expected, "out of order");
                }
                latencies
            })
        })
        .collect();
    broadcast_past_stalled(&room, MESSAGES, epoch);
    for reader in readers {
        assert_eq!(reader.join().unwrap().len(), MESSAGES as usize + 1);
    }
    for (_, writer) in &stalled {
        assert!(writer.end_cause().is_none());
    }
}

/// A wss:// member with a small send buffer gets 30 broadcasts of 20 KiB (more than a TLS
/// record each, so records are cut by the full socket and go on where they stopped) whole and in
/// order, then nothing more is sent: what the zero-wait attempts left must still arrive.
#[cfg(feature = "native-tls")]
#[test]
fn a_tls_member_gets_records_cut_by_a_full_socket_whole() {
    const MESSAGES: u32 = 30;
    let epoch = Instant::now();
    let room = Room::with_max_backpressure(4 << 20);
    let (mut ws, writer) = WssMembers::new().join(&room, true);
    // No heartbeat writes meanwhile: what is left must go out by itself.
    ws.get_ref()
        .tcp()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for seq in 0..MESSAGES {
        let report = room.broadcast(&stamped(seq, epoch, 20 * 1024), None);
        assert_eq!(report.dropped, 0);
    }
    for expected in 0..MESSAGES {
        let message = ws
            .read()
            .unwrap_or_else(|e| panic!("message {expected} of {MESSAGES}: {e}"));
        assert_eq!(unstamp(&message).0, expected, "out of order");
        assert_eq!(message.as_bytes().len(), 20 * 1024);
    }
    assert!(writer.end_cause().is_none());
}
