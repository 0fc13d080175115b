//! Rooms through a real redis-server (feature `redis`): one order across hubs, replay and
//! gaps, publishes held through an outage, a publish whose answer was lost appended once,
//! presence after a node stops without goodbye. Each test starts its own redis-server on a
//! free port with its own directory; a missing redis-server fails the tests (CI installs it).
#![cfg(feature = "redis")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};
use syncws::hub::{BrokerStatus, Hub, HubError, Offset};
use syncws::{Config, Message, Role, WebSocket, Writer};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A redis-server for one test; killed on drop.
struct Redis {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

impl Redis {
    /// Without persistence: a restart loses every room (a new epoch).
    fn start() -> Redis {
        Redis::with_args(&[])
    }

    /// With an append-only file synced on every write: a restart keeps every room.
    fn persistent() -> Redis {
        Redis::with_args(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    fn with_args(extra: &[&str]) -> Redis {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("syncws-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Redis { port, dir, child: None, extra: extra.iter().map(|s| s.to_string()).collect() };
        redis.restart();
        redis
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A member: the server side's writer (given to the hub) and the client side that reads.
fn member() -> (Writer, WebSocket<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (server, _) = listener.accept().unwrap();
    let (reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
        .split()
        .unwrap();
    // The reader half must live as long as the writer is used.
    std::mem::forget(reader);
    (writer, WebSocket::from_stream(client, Role::Client, Config::default()))
}

fn texts(socket: &mut WebSocket<TcpStream>, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| match socket.read().unwrap() {
            Message::Text(text) => text.to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// Deliveries as `offset|node|text`.
fn hub(redis: &Redis, node: &str) -> Hub {
    Hub::builder(node)
        .format(|d| Message::text(format!("{}|{}|{}", d.offset, d.node, d.text)))
        .redis(&redis.url())
        .unwrap()
}

#[test]
fn members_on_two_hubs_get_every_message_once_in_one_order() {
    let redis = Redis::start();
    let (a, b) = (hub(&redis, "A"), hub(&redis, "B"));
    let (writer_a, mut client_a) = member();
    let (writer_b, mut client_b) = member();
    a.join("r", writer_a, "alice", None).unwrap();
    b.join("r", writer_b, "bob", None).unwrap();
    for k in 0..200 {
        let hub = if k % 2 == 0 { &a } else { &b };
        hub.publish("r", &k.to_string()).unwrap();
    }
    let seen_a = texts(&mut client_a, 200);
    let seen_b = texts(&mut client_b, 200);
    assert_eq!(seen_a, seen_b, "both members see one order");
    let mut numbers: Vec<u32> = seen_a.iter().map(|t| t.rsplit('|').next().unwrap().parse().unwrap()).collect();
    numbers.sort();
    assert_eq!(numbers, (0..200).collect::<Vec<_>>(), "each message once");
    assert!(seen_a.iter().any(|t| t.contains("|A|")) && seen_a.iter().any(|t| t.contains("|B|")));
}

#[test]
fn a_join_since_an_offset_replays_the_rest_and_reports_trimmed_history_as_a_gap() {
    let redis = Redis::start();
    let a = Hub::builder("A")
        .format(|d| Message::text(format!("{} {}", d.offset, d.text)))
        .retain_count(10)
        .redis(&redis.url())
        .unwrap();
    for k in 0..1000 {
        a.publish("r", &k.to_string()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.backlog() > 0 {
        assert!(Instant::now() < deadline, "the publishes never reached Redis");
        thread::sleep(Duration::from_millis(20));
    }
    // An offset of another epoch: a gap, then everything retained (MAXLEN ~ keeps at least 10).
    let (writer, mut first) = member();
    let joined = a.join("r", writer, "first", Some(&Offset::parse("x:0-0").unwrap())).unwrap();
    assert!(joined.gap && joined.replayed >= 10 && joined.replayed < 1000, "{joined:?}");
    assert_eq!(texts(&mut first, 1), ["{\"gap\":true}"]);
    let retained = texts(&mut first, joined.replayed);
    let numbers: Vec<usize> = retained.iter().map(|t| t.split(' ').nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(numbers, (1000 - joined.replayed..1000).collect::<Vec<_>>());
    let offset_of = |i: usize| Offset::parse(retained[i].split(' ').next().unwrap()).unwrap();
    // After a retained offset: the rest, no gap.
    let (writer, mut late) = member();
    let joined = a.join("r", writer, "late", Some(&offset_of(joined.replayed - 5))).unwrap();
    assert_eq!((joined.gap, joined.replayed), (false, 4));
    assert_eq!(texts(&mut late, 4), retained[retained.len() - 4..].to_vec());
    // Before the oldest retained entry, same epoch: a gap.
    let mut before = offset_of(0);
    before.id.seq = 0;
    before.id.ms -= 1;
    let (writer, mut early) = member();
    assert!(a.join("r", writer, "early", Some(&before)).unwrap().gap);
    assert_eq!(texts(&mut early, 1), ["{\"gap\":true}"]);
    // Live delivery continues after a replay, once.
    a.publish("r", "live").unwrap();
    assert!(texts(&mut late, 1)[0].ends_with(" live"));
}

/// When trimming outruns a node's reader, its members get a gap: never a silent loss.
#[test]
fn entries_trimmed_before_the_reader_saw_them_are_reported_as_a_gap() {
    let redis = Redis::start();
    let a = Hub::builder("A")
        .format(|d| Message::text(d.text.clone()))
        .retain_count(1)
        .redis(&redis.url())
        .unwrap();
    let (writer, mut client) = member();
    a.join("r", writer, "c", None).unwrap();
    for k in 0..3000 {
        a.publish("r", &k.to_string()).unwrap();
    }
    a.publish("r", "end").unwrap();
    let (mut delivered, mut gaps) = (0, 0);
    loop {
        match texts(&mut client, 1)[0].as_str() {
            "{\"gap\":true}" => gaps += 1,
            "end" => break,
            _ => delivered += 1,
        }
    }
    assert!(delivered == 3000 || gaps > 0, "{delivered} delivered, no gap reported");
}

#[test]
fn publishes_during_an_outage_are_held_within_the_bound_then_delivered_in_order() {
    let mut redis = Redis::persistent();
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = events.clone();
    let a = Hub::builder("A")
        .format(|d| Message::text(d.text.clone()))
        .backlog(5, 1 << 20)
        .on_outage(move |status| log.lock().unwrap().push(status.clone()))
        .redis(&redis.url())
        .unwrap();
    let (writer, mut client) = member();
    a.join("r", writer, "c", None).unwrap();
    a.publish("r", "before").unwrap();
    assert_eq!(texts(&mut client, 1), ["before"]);
    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !events.lock().unwrap().iter().any(|e| matches!(e, BrokerStatus::Down(_))) {
        assert!(Instant::now() < deadline, "no outage reported");
        thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    for k in 0..5 {
        a.publish("r", &format!("held {k}")).unwrap();
    }
    assert!(matches!(a.publish("r", "one too many"), Err(HubError::Backlog { messages: 5, .. })));
    assert!(started.elapsed() < Duration::from_secs(1), "publishing never waits for the broker");
    redis.restart();
    let held = texts(&mut client, 5);
    assert_eq!(held, (0..5).map(|k| format!("held {k}")).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(10);
    while events.lock().unwrap().last() != Some(&BrokerStatus::Up) {
        assert!(Instant::now() < deadline, "no recovery reported");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(a.backlog(), 0);
}

/// A proxy in front of Redis that, once, forwards a connection's first `EVAL` batch and then
/// cuts that connection without relaying the answer: the publisher must retry, and the
/// message must still be appended once.
fn answer_losing_proxy(redis_port: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut = Arc::new(AtomicBool::new(false));
    thread::spawn(move || {
        for client in listener.incoming().take(50) {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", redis_port)) else { return };
            let (mut client_in, mut server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let cut = cut.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n @ 1..) = client_in.read(&mut buf) {
                    let eval = buf[..n].windows(4).any(|w| w == b"EVAL");
                    if server_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    if eval && !cut.swap(true, Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(300));
                        let _ = client_in.shutdown(std::net::Shutdown::Both);
                        let _ = server_out.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
            });
            thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
            });
        }
    });
    port
}

#[test]
fn a_publish_whose_answer_was_lost_is_appended_once() {
    let redis = Redis::start();
    let proxy = answer_losing_proxy(redis.port);
    let a = Hub::builder("A")
        .format(|d| Message::text(d.text.clone()))
        .redis(&format!("redis://127.0.0.1:{proxy}/"))
        .unwrap();
    let (writer, mut client) = member();
    a.join("r", writer, "c", None).unwrap();
    a.publish("r", "once").unwrap();
    a.publish("r", "then").unwrap();
    assert_eq!(texts(&mut client, 2), ["once", "then"]);
    let direct = hub(&redis, "B");
    let (writer, mut replay) = member();
    let origin = Offset::parse("x:0-0").unwrap();
    let joined = direct.join("r", writer, "d", Some(&origin)).unwrap();
    assert_eq!(joined.replayed, 2, "the stream holds each message once");
    assert_eq!(texts(&mut replay, 1), ["{\"gap\":true}"]);
}

#[test]
fn presence_counts_members_on_every_node_and_forgets_a_silent_node_within_its_bound() {
    let redis = Redis::start();
    let (a, b) = (hub(&redis, "A"), hub(&redis, "B"));
    let (writer_a, _client_a) = member();
    let (writer_b, _client_b) = member();
    a.join("r", writer_a, "alice", None).unwrap();
    b.join("r", writer_b, "bob", None).unwrap();
    let both = vec![("A".to_owned(), "alice".to_owned()), ("B".to_owned(), "bob".to_owned())];
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.presence("r").unwrap().members != both {
        assert!(Instant::now() < deadline, "{:?}", a.presence("r"));
        thread::sleep(Duration::from_millis(50));
    }
    // Dropping hub B stops its heartbeat without a goodbye, as a killed process would.
    drop(b);
    let (done, finished) = mpsc::channel();
    let stopped = Instant::now();
    thread::spawn(move || {
        while a.presence("r").unwrap().count() != 1 {
            thread::sleep(Duration::from_millis(50));
        }
        let _ = done.send(stopped.elapsed());
    });
    let took = finished.recv_timeout(Duration::from_secs(15)).expect("presence never converged");
    assert!(took <= syncws::hub::PRESENCE_TTL + Duration::from_secs(2), "took {took:?}");
}
