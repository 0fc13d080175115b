//! Rooms through a real redis-server (feature `redis`): the scenarios every engine passes
//! (tests/common/room_scenarios.rs, also run in memory), one order across nodes, replay and
//! gaps, broadcasts held through an outage, a publish whose answer was lost appended once,
//! presence after a node stops without goodbye. Each test starts its own redis-server
//! (tests/common/redis.rs); a missing redis-server fails the tests (CI installs it).
#![cfg(feature = "redis")]

#[path = "common/redis.rs"]
mod redis_server;
#[path = "common/room_members.rs"]
mod room_members;
#[path = "common/room_scenarios.rs"]
mod room_scenarios;

use redis_server::RedisServer;
use room_members::{body, member, piped, texts};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};
use syncws::Message;
use syncws::rooms::{BrokerStatus, Join, Offset, Rooms, RoomsBuilder, RoomsError};

/// Node `node` on `redis`, deliveries as `offset|node|text`.
fn node(redis: &RedisServer, node: &str) -> Rooms {
    Rooms::builder()
        .node(node)
        .format(piped)
        .redis(&redis.url())
        .unwrap()
}

/// Broadcasts `text` to every member of `room`.
fn say(rooms: &Rooms, room: &str, text: &str) -> Result<(), RoomsError> {
    rooms
        .broadcast(room, &Message::text(text), None)
        .map(|report| assert!(report.relayed))
}

/// Runs a scenario on a fresh redis-server.
fn on_redis(scenario: fn(room_scenarios::Engine)) {
    let redis = RedisServer::start();
    let url = redis.url();
    scenario(&|builder: RoomsBuilder| builder.redis(&url).unwrap());
}

#[test]
fn binary_broadcast_with_except_through_redis() {
    on_redis(room_scenarios::binary_broadcast_skips_the_sender);
}

#[test]
fn control_messages_are_refused_through_redis() {
    on_redis(room_scenarios::control_messages_are_refused);
}

#[test]
fn join_builder_through_redis() {
    on_redis(room_scenarios::join_builder_sets_identity_and_replay);
}

#[test]
fn max_backpressure_through_redis() {
    on_redis(room_scenarios::max_backpressure_bounds_each_member);
}

#[test]
fn format_through_redis() {
    on_redis(room_scenarios::format_sees_the_message_as_broadcast);
}

/// `except` names a member of the sender's node only: on another node the same room's members
/// all get the message (writer ids are per process, so another node never skips one).
#[test]
fn except_skips_the_sender_only_on_its_own_node() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "A"), node(&redis, "B"));
    let (sender, mut sender_client) = member();
    let (neighbour, mut neighbour_client) = member();
    let (remote, mut remote_client) = member();
    a.join("r", sender.clone()).unwrap();
    a.join("r", neighbour).unwrap();
    b.join("r", remote).unwrap();
    a.broadcast("r", &Message::binary(*b"bin"), Some(&sender))
        .unwrap();
    // Once a member has it, it is in the stream, before what B broadcasts next.
    assert!(texts(&mut neighbour_client, 1)[0].ends_with("|A|bin"));
    say(&b, "r", "last").unwrap();
    assert!(texts(&mut neighbour_client, 1)[0].ends_with("|B|last"));
    let seen = texts(&mut remote_client, 2);
    assert!(
        seen[0].ends_with("|A|bin") && seen[1].ends_with("|B|last"),
        "{seen:?}"
    );
    assert!(texts(&mut sender_client, 1)[0].ends_with("|B|last"));
}

#[test]
fn members_on_two_nodes_get_every_message_once_in_one_order() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "A"), node(&redis, "B"));
    let (writer_a, mut client_a) = member();
    let (writer_b, mut client_b) = member();
    a.join_with("r", writer_a, Join::new().identity("alice"))
        .unwrap();
    b.join_with("r", writer_b, Join::new().identity("bob"))
        .unwrap();
    for k in 0..200 {
        let rooms = if k % 2 == 0 { &a } else { &b };
        say(rooms, "r", &k.to_string()).unwrap();
    }
    let seen_a = texts(&mut client_a, 200);
    let seen_b = texts(&mut client_b, 200);
    assert_eq!(seen_a, seen_b, "both members see one order");
    let mut numbers: Vec<u32> = seen_a
        .iter()
        .map(|t| t.rsplit('|').next().unwrap().parse().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (0..200).collect::<Vec<_>>(), "each message once");
    assert!(seen_a.iter().any(|t| t.contains("|A|")) && seen_a.iter().any(|t| t.contains("|B|")));
}

#[test]
fn a_join_since_an_offset_replays_the_rest_and_reports_trimmed_history_as_a_gap() {
    let redis = RedisServer::start();
    let a = Rooms::builder()
        .node("A")
        .format(|d| Message::text(format!("{} {}", d.offset, body(d))))
        .retain(10)
        .redis(&redis.url())
        .unwrap();
    for k in 0..1000 {
        say(&a, "r", &k.to_string()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.backlog() > 0 {
        assert!(
            Instant::now() < deadline,
            "the publishes never reached Redis"
        );
        thread::sleep(Duration::from_millis(20));
    }
    // An offset of another epoch: a gap, then everything retained (MAXLEN ~ keeps at least 10).
    let (writer, mut first) = member();
    let joined = a
        .join_with("r", writer, Join::new().since(Offset::parse("x:0-0")))
        .unwrap();
    assert!(
        joined.gap && joined.replayed >= 10 && joined.replayed < 1000,
        "{joined:?}"
    );
    assert_eq!(texts(&mut first, 1), ["{\"gap\":true}"]);
    let retained = texts(&mut first, joined.replayed);
    let numbers: Vec<usize> = retained
        .iter()
        .map(|t| t.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers, (1000 - joined.replayed..1000).collect::<Vec<_>>());
    let offset_of = |i: usize| Offset::parse(retained[i].split(' ').next().unwrap()).unwrap();
    // After a retained offset: the rest, no gap.
    let (writer, mut late) = member();
    let joined = a
        .join_with(
            "r",
            writer,
            Join::new().since(offset_of(joined.replayed - 5)),
        )
        .unwrap();
    assert_eq!((joined.gap, joined.replayed), (false, 4));
    assert_eq!(texts(&mut late, 4), retained[retained.len() - 4..].to_vec());
    // Before the oldest retained entry, same epoch: a gap.
    let mut before = offset_of(0);
    before.id.seq = 0;
    before.id.ms -= 1;
    let (writer, mut early) = member();
    assert!(
        a.join_with("r", writer, Join::new().since(before))
            .unwrap()
            .gap
    );
    assert_eq!(texts(&mut early, 1), ["{\"gap\":true}"]);
    // Live delivery continues after a replay, once.
    say(&a, "r", "live").unwrap();
    assert!(texts(&mut late, 1)[0].ends_with(" live"));
}

/// When trimming outruns a node's reader, its members get a gap: never a silent loss.
#[test]
fn entries_trimmed_before_the_reader_saw_them_are_reported_as_a_gap() {
    let redis = RedisServer::start();
    let a = Rooms::builder().retain(1).redis(&redis.url()).unwrap();
    let (writer, mut client) = member();
    a.join("r", writer).unwrap();
    for k in 0..3000 {
        say(&a, "r", &k.to_string()).unwrap();
    }
    say(&a, "r", "end").unwrap();
    let (mut delivered, mut gaps) = (0, 0);
    loop {
        match texts(&mut client, 1)[0].as_str() {
            "{\"gap\":true}" => gaps += 1,
            "end" => break,
            _ => delivered += 1,
        }
    }
    assert!(
        delivered == 3000 || gaps > 0,
        "{delivered} delivered, no gap reported"
    );
}

#[test]
fn broadcasts_during_an_outage_are_held_within_the_bound_then_delivered_in_order() {
    let mut redis = RedisServer::persistent();
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = events.clone();
    let a = Rooms::builder()
        .backlog(5, 1 << 20)
        .on_outage(move |status| log.lock().unwrap().push(status.clone()))
        .redis(&redis.url())
        .unwrap();
    let (writer, mut client) = member();
    a.join("r", writer).unwrap();
    say(&a, "r", "before").unwrap();
    assert_eq!(texts(&mut client, 1), ["before"]);
    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, BrokerStatus::Down(_)))
    {
        assert!(Instant::now() < deadline, "no outage reported");
        thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    for k in 0..4 {
        say(&a, "r", &format!("held {k}")).unwrap();
    }
    // Binary counts as text does, in messages and payload bytes.
    a.broadcast("r", &Message::binary(*b"held 4"), None)
        .unwrap();
    assert_eq!(
        say(&a, "r", "one too many"),
        Err(RoomsError::Backlog {
            messages: 5,
            bytes: 30
        })
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "publishing never waits for the broker"
    );
    redis.restart();
    let held = texts(&mut client, 4);
    assert_eq!(
        held,
        (0..4).map(|k| format!("held {k}")).collect::<Vec<_>>()
    );
    assert_eq!(client.read().unwrap(), Message::binary(*b"held 4"));
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
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", redis_port)) else {
                return;
            };
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let cut = cut.clone();
            // Set before the batch goes to Redis: its answer is never relayed.
            let muted = Arc::new(AtomicBool::new(false));
            let mute = muted.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n @ 1..) = client_in.read(&mut buf) {
                    let eval = buf[..n].windows(4).any(|w| w == b"EVAL");
                    let cutting = eval && !cut.swap(true, Ordering::SeqCst);
                    if cutting {
                        mute.store(true, Ordering::SeqCst);
                    }
                    if server_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    if cutting {
                        // Let Redis run the batch, then drop the link without its answer.
                        thread::sleep(Duration::from_millis(300));
                        let _ = client_in.shutdown(std::net::Shutdown::Both);
                        let _ = server_out.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                }
            });
            thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n @ 1..) = server.read(&mut buf) {
                    if muted.load(Ordering::SeqCst) {
                        continue;
                    }
                    if client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn a_publish_whose_answer_was_lost_is_appended_once() {
    let redis = RedisServer::start();
    let proxy = answer_losing_proxy(redis.port);
    let outages = Arc::new(Mutex::new(0));
    let count = outages.clone();
    let a = Rooms::builder()
        .on_outage(move |status| {
            if matches!(status, BrokerStatus::Down(_)) {
                *count.lock().unwrap() += 1;
            }
        })
        .redis(&format!("redis://127.0.0.1:{proxy}/"))
        .unwrap();
    let (writer, mut client) = member();
    a.join("r", writer).unwrap();
    say(&a, "r", "once").unwrap();
    say(&a, "r", "then").unwrap();
    assert_eq!(texts(&mut client, 2), ["once", "then"]);
    // The publisher lost the batch's answer, reconnected and sent it again.
    let deadline = Instant::now() + Duration::from_secs(15);
    while a.backlog() > 0 {
        assert!(
            Instant::now() < deadline,
            "the batch was never acknowledged"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(*outages.lock().unwrap(), 1, "the answer was not lost");
    let direct = node(&redis, "B");
    let (writer, mut replay) = member();
    let origin = Offset::parse("x:0-0");
    let joined = direct
        .join_with("r", writer, Join::new().since(origin))
        .unwrap();
    assert_eq!(joined.replayed, 2, "the stream holds each message once");
    assert_eq!(texts(&mut replay, 1), ["{\"gap\":true}"]);
    // And the member saw nothing more.
    say(&a, "r", "last").unwrap();
    assert_eq!(texts(&mut client, 1), ["last"]);
}

#[test]
fn presence_counts_members_on_every_node_and_forgets_a_silent_node_within_its_bound() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "A"), node(&redis, "B"));
    let (writer_a, _client_a) = member();
    let (writer_b, _client_b) = member();
    a.join_with("r", writer_a, Join::new().identity("alice"))
        .unwrap();
    b.join_with("r", writer_b, Join::new().identity("bob"))
        .unwrap();
    let both = vec![
        ("A".to_owned(), "alice".to_owned()),
        ("B".to_owned(), "bob".to_owned()),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.presence("r").unwrap().members != both {
        assert!(Instant::now() < deadline, "{:?}", a.presence("r"));
        thread::sleep(Duration::from_millis(50));
    }
    // Dropping node B's rooms stops its heartbeat without a goodbye, as a killed process would.
    drop(b);
    let (done, finished) = mpsc::channel();
    let stopped = Instant::now();
    thread::spawn(move || {
        while a.presence("r").unwrap().count() != 1 {
            thread::sleep(Duration::from_millis(50));
        }
        let _ = done.send(stopped.elapsed());
    });
    let took = finished
        .recv_timeout(Duration::from_secs(15))
        .expect("presence never converged");
    assert!(
        took <= syncws::rooms::PRESENCE_TTL + Duration::from_secs(2),
        "took {took:?}"
    );
}

/// A message Redis refuses (here: the room's stream key holds a string) is dropped with a log
/// line and reported as `BrokerStatus::Refused` (with Redis's error, and no outage); the node's
/// later publishes, to other rooms, still go through.
#[test]
fn a_message_redis_refuses_does_not_hold_up_later_ones() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "syncws:{bad}:stream", "not a stream"]);
    let refused = Arc::new(Mutex::new(Vec::new()));
    let log = refused.clone();
    let a = Rooms::builder()
        .node("A")
        .format(piped)
        .on_outage(move |status| log.lock().unwrap().push(status.clone()))
        .redis(&redis.url())
        .unwrap();
    let (writer, mut client) = member();
    a.join("good", writer).unwrap();
    say(&a, "good", "first").unwrap();
    say(&a, "bad", "refused").unwrap();
    say(&a, "good", "second").unwrap();
    let seen = texts(&mut client, 2);
    assert!(
        seen[0].ends_with("|first") && seen[1].ends_with("|second"),
        "{seen:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.backlog() > 0 {
        assert!(
            Instant::now() < deadline,
            "the refused message is still queued"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let statuses = refused.lock().unwrap();
    assert!(
        matches!(&statuses[..], [BrokerStatus::Refused { room, error }]
            if room == "bad" && error.contains("WRONGTYPE")),
        "the application heard of it, and of no outage: {statuses:?}"
    );
}

/// Entries written before binary messages (no `k` field) read as text.
#[test]
fn an_entry_without_a_kind_reads_as_text() {
    let redis = RedisServer::start();
    let a = node(&redis, "A");
    let (writer, mut client) = member();
    a.join("old", writer).unwrap();
    redis.cli(&[
        "XADD",
        "syncws:{old}:stream",
        "*",
        "n",
        "X",
        "p",
        "X:1:1",
        "d",
        "legacy",
    ]);
    assert!(texts(&mut client, 1)[0].ends_with("|X|legacy"));
}

/// A message over the backlog's byte bound could never be held: it is refused as `TooLarge`
/// (not as a full backlog) with the broker up and nothing held, and one at the bound goes
/// through. In memory nothing is held, so the same message is delivered.
#[test]
fn a_message_over_the_backlog_byte_bound_is_too_large_and_one_at_it_goes_through() {
    let redis = RedisServer::start();
    let rooms = Rooms::builder()
        .node("A")
        .backlog(100, 1024)
        .redis(&redis.url())
        .unwrap();
    let (writer, mut client) = member();
    rooms.join("r", writer).unwrap();
    let over = Message::text("x".repeat(1025));
    let result = rooms.broadcast("r", &over, None);
    assert_eq!(
        result,
        Err(RoomsError::TooLarge {
            size: 1025,
            limit: 1024
        })
    );
    assert!(result.unwrap_err().to_string().contains("larger than"));
    assert_eq!(rooms.backlog(), 0, "nothing was held");
    let at = "y".repeat(1024);
    rooms
        .broadcast("r", &Message::text(at.clone()), None)
        .unwrap();
    assert_eq!(
        room_members::first_text(&mut client).as_deref(),
        Some(at.as_str())
    );

    let memory = Rooms::builder().backlog(100, 1024).in_memory();
    let (writer, mut client) = member();
    memory.join("r", writer).unwrap();
    memory.broadcast("r", &over, None).unwrap();
    assert_eq!(
        room_members::first_text(&mut client).map(|t| t.len()),
        Some(1025)
    );
}

/// With Redis, `format` runs on the node's reader thread under the room's lock: a format that
/// reads `count` and `names` (which never wait for a room's lock) does not stall delivery, and
/// a join arriving meanwhile (which looks the room up) gets through too.
#[test]
fn a_format_may_read_count_and_names_through_redis() {
    let redis = RedisServer::start();
    let handle: Arc<std::sync::OnceLock<Rooms>> = Arc::default();
    let seen = handle.clone();
    let rooms = Rooms::builder()
        .node("A")
        .format(move |delivery| {
            let (count, names) = seen
                .get()
                .map_or((0, 0), |rooms| (rooms.count("r"), rooms.names().len()));
            Message::text(format!("{count} {names} {}", body(delivery)))
        })
        .redis(&redis.url())
        .unwrap();
    let _ = handle.set(rooms.clone());
    let (writer, mut client) = member();
    rooms.join("r", writer).unwrap();
    rooms.broadcast("r", &Message::text("one"), None).unwrap();
    assert_eq!(texts(&mut client, 1), ["1 1 one"]);
    let (second, mut second_client) = member();
    rooms.join("r", second).unwrap();
    rooms.broadcast("r", &Message::text("two"), None).unwrap();
    assert_eq!(texts(&mut client, 1), ["2 1 two"]);
    assert_eq!(texts(&mut second_client, 1), ["2 1 two"]);
}
