//! Rooms on a real 3-master Redis Cluster (feature `redis`): rooms whose keys hash to different
//! slots all deliver, in one order, to members on several instances; replay after an offset and
//! presence work across nodes. The cluster is started by the test (redis-server with
//! `--cluster-enabled yes`, then `redis-cli --cluster create`); a missing redis-server fails.
#![cfg(feature = "redis")]

#[path = "common/redis.rs"]
mod redis_server;
#[path = "common/room_members.rs"]
mod room_members;

use redis_server::{RedisCluster, RedisServer, wait_until};
use room_members::{member, piped, texts};
use std::time::Duration;
use syncws::Message;
use syncws::rooms::{Join, Offset, Rooms};

/// Deliveries as `offset|node|text`.
fn instance(cluster: &RedisCluster, node: &str) -> Rooms {
    let urls = cluster.urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    Rooms::builder()
        .node(node)
        .format(piped)
        .redis_cluster(&urls)
        .unwrap()
}

fn text_of(delivery: &str) -> &str {
    delivery.rsplit('|').next().unwrap()
}

#[test]
fn rooms_in_different_slots_deliver_in_one_order_to_members_on_two_instances() {
    let cluster = RedisCluster::start();
    // Three rooms, three slots (a leading `}` would give an empty hash tag unescaped).
    let rooms = ["a", "b", "}x"];
    let slots: Vec<u16> = rooms
        .iter()
        .map(|r| {
            let key = if *r == "}x" {
                "syncws:{%7Dx}:stream".to_owned()
            } else {
                format!("syncws:{{{r}}}:stream")
            };
            cluster.keyslot(&key)
        })
        .collect();
    assert!(
        slots[0] != slots[1] && slots[1] != slots[2] && slots[0] != slots[2],
        "{slots:?}"
    );
    let (a, b) = (instance(&cluster, "A"), instance(&cluster, "B"));
    let mut clients = Vec::new();
    for room in rooms {
        for (instance, who) in [(&a, "ann"), (&b, "bob")] {
            let (writer, client) = member();
            instance
                .join_with(room, writer, Join::new().identity(who))
                .unwrap();
            clients.push((room, client));
        }
    }
    const EACH: usize = 60;
    for k in 0..EACH {
        for room in rooms {
            let instance = if k % 2 == 0 { &a } else { &b };
            instance
                .broadcast(room, &Message::text(format!("{room}-{k}")), None)
                .unwrap();
        }
    }
    let mut seen_by_room: Vec<(&str, Vec<String>)> = Vec::new();
    for (room, client) in &mut clients {
        let seen = texts(client, EACH);
        let mut numbers: Vec<usize> = seen
            .iter()
            .map(|t| {
                let text = text_of(t);
                let (r, k) = text.rsplit_once('-').unwrap();
                assert_eq!(r, *room, "a message of another room: {t}");
                k.parse().unwrap()
            })
            .collect();
        numbers.sort();
        assert_eq!(numbers, (0..EACH).collect::<Vec<_>>(), "each message once");
        match seen_by_room.iter().find(|(r, _)| r == room) {
            Some((_, first)) => assert_eq!(first, &seen, "one order in room {room}"),
            None => seen_by_room.push((room, seen)),
        }
    }
    // Both instances' publishes are in each room's order.
    let (_, seen) = &seen_by_room[0];
    assert!(seen.iter().any(|t| t.contains("|A|")) && seen.iter().any(|t| t.contains("|B|")));
}

#[test]
fn replay_after_an_offset_and_presence_work_on_a_cluster() {
    let cluster = RedisCluster::start();
    let (a, b) = (instance(&cluster, "A"), instance(&cluster, "B"));
    let (writer, mut first) = member();
    a.join_with("a", writer, Join::new().identity("ann"))
        .unwrap();
    // A second room in another slot keeps the reader grouping by slot.
    let (writer, mut other) = member();
    a.join_with("b", writer, Join::new().identity("ann"))
        .unwrap();
    for k in 0..20 {
        a.broadcast("a", &Message::text(k.to_string()), None)
            .unwrap();
    }
    b.broadcast("b", &Message::text("other"), None).unwrap();
    let seen = texts(&mut first, 20);
    assert!(texts(&mut other, 1)[0].ends_with("|B|other"));
    let offset_of = |i: usize| Offset::parse(seen[i].split('|').next().unwrap()).unwrap();
    // On the other instance, after the 10th message: the last 10, no gap, then live.
    let (writer, mut late) = member();
    let joined = b
        .join_with("a", writer, Join::new().identity("bob").since(offset_of(9)))
        .unwrap();
    assert_eq!((joined.gap, joined.replayed), (false, 10));
    assert_eq!(texts(&mut late, 10), seen[10..].to_vec());
    b.broadcast("a", &Message::text("live"), None).unwrap();
    assert!(texts(&mut late, 1)[0].ends_with("|B|live"));
    assert!(texts(&mut first, 1)[0].ends_with("|B|live"));
    // An offset of another epoch: a gap, then all 21.
    let (writer, mut stale) = member();
    let joined = a
        .join_with(
            "a",
            writer,
            Join::new()
                .identity("cy")
                .since(Offset::parse("x:0-0").unwrap()),
        )
        .unwrap();
    assert_eq!((joined.gap, joined.replayed), (true, 21));
    assert_eq!(texts(&mut stale, 1), ["{\"gap\":true}"]);
    // Presence: every member of room `a`, on both instances.
    let everyone = vec![
        ("A".to_owned(), "ann".to_owned()),
        ("A".to_owned(), "cy".to_owned()),
        ("B".to_owned(), "bob".to_owned()),
    ];
    wait_until(Duration::from_secs(10), "presence never converged", || {
        a.presence("a").unwrap().members == everyone && b.presence("a").unwrap().members == everyone
    });
    assert_eq!(
        b.presence("b").unwrap().members,
        [("A".to_owned(), "ann".to_owned())]
    );
}

/// A single-server URL naming a cluster node that holds every slot: rooms in two slots both
/// deliver (the reader switches to one read per slot group after `CROSSSLOT`).
#[test]
fn a_single_server_url_to_a_one_node_cluster_delivers_rooms_in_two_slots() {
    let node = RedisServer::cluster();
    let instance = Rooms::builder()
        .node("n1")
        .format(|d| d.message.clone())
        .redis(&node.url())
        .unwrap();
    let (wa, mut ca) = member();
    let (wb, mut cb) = member();
    instance
        .join_with("a", wa, Join::new().identity("ua"))
        .unwrap();
    instance
        .join_with("b", wb, Join::new().identity("ub"))
        .unwrap();
    instance
        .broadcast("a", &Message::text("to-a"), None)
        .unwrap();
    instance
        .broadcast("b", &Message::text("to-b"), None)
        .unwrap();
    assert_eq!(texts(&mut ca, 1), ["to-a"]);
    assert_eq!(texts(&mut cb, 1), ["to-b"]);
}
