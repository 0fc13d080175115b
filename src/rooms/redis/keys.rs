//! Key layout. Every key of a room carries the room's name as a Redis Cluster hash tag
//! (`{room}`), so all of them live in one slot and the publish script may touch them together.
//! Cluster hashes the text between the first `{` and the next `}` only when it is not empty, so
//! the name is escaped ([`tag`]): `%`, `{` and `}` become `%25`, `%7B` and `%7D`, and the empty
//! name is `%` (which no escaped name can be). Names without those characters read as they are.

/// The room's stream: one entry per message, fields `e` (the epoch it was appended under;
/// absent in entries of older versions), `n` (node), `p` (publish id), `d` (data), `k` (kind:
/// `t` text, `b` binary; absent reads as text) and, when a member is skipped, `f`
/// (`<boot hex>:<writer id>`). Expires with the epoch, some time after the last publish.
pub(super) fn stream(room: &str) -> String {
    format!("syncws:{{{}}}:stream", tag(room))
}

/// The room's epoch, set by the first publish to a room without history (restored from the
/// stream's newest entry if only this key was lost); expires with the stream.
pub(super) fn epoch(room: &str) -> String {
    format!("syncws:{{{}}}:epoch", tag(room))
}

/// The room's presence hash: process (`node:boot`) → that process's member identities, one per
/// line. It expires with the last heartbeat of any process.
pub(super) fn presence(room: &str) -> String {
    format!("syncws:{{{}}}:presence", tag(room))
}

/// A process's heartbeat for the room (`process` is `node:boot`): present while the process is
/// alive (short TTL).
pub(super) fn alive(room: &str, process: &str) -> String {
    format!("syncws:{{{}}}:alive:{process}", tag(room))
}

/// The highest sequence number publishing process `process` (`node:boot`) appended to the room,
/// so a retried publish is not appended twice: one key per room and process, whatever the rate.
pub(super) fn published(room: &str, process: &str) -> String {
    format!("syncws:{{{}}}:pub:{process}", tag(room))
}

/// The Redis Cluster slot of `key` (Redis Cluster specification, "Keys distribution model"):
/// CRC16 (XModem) of the key, or of its hash tag when it has a non-empty one, modulo 16384.
pub(super) fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match bytes.iter().position(|&b| b == b'{') {
        Some(open) => match bytes[open + 1..].iter().position(|&b| b == b'}') {
            Some(0) | None => bytes,
            Some(length) => &bytes[open + 1..open + 1 + length],
        },
        None => bytes,
    };
    crc16(hashed) % 16384
}

/// CRC16-CCITT (XModem: polynomial 0x1021, initial value 0), the checksum Redis Cluster uses.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot holding every key of room `room`.
pub(super) fn room_slot(room: &str) -> u16 {
    slot(&stream(room))
}

/// The room name inside a stream key.
pub(super) fn room_of_stream(key: &str) -> Option<String> {
    untag(key.strip_prefix("syncws:{")?.strip_suffix("}:stream")?)
}

/// The hash tag of room `room`: never empty, never holding a brace.
fn tag(room: &str) -> String {
    if room.is_empty() {
        return "%".to_owned();
    }
    let mut tag = String::with_capacity(room.len());
    for c in room.chars() {
        match c {
            '%' => tag.push_str("%25"),
            '{' => tag.push_str("%7B"),
            '}' => tag.push_str("%7D"),
            c => tag.push(c),
        }
    }
    tag
}

/// The room whose hash tag is `tag`, or `None` if no room has it.
fn untag(tag: &str) -> Option<String> {
    if tag == "%" {
        return Some(String::new());
    }
    let mut room = String::with_capacity(tag.len());
    let mut rest = tag;
    while let Some(at) = rest.find('%') {
        room.push_str(&rest[..at]);
        let escaped = rest.get(at..at + 3)?;
        room.push(match escaped {
            "%25" => '%',
            "%7B" => '{',
            "%7D" => '}',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    room.push_str(rest);
    Some(room)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis Cluster hashes the text between the first `{` and the next `}`: the same for every
    /// key of a room.
    #[test]
    fn every_key_of_a_room_has_the_same_hash_tag() {
        fn tag(key: &str) -> &str {
            let open = key.find('{').unwrap();
            let close = key[open + 1..].find('}').unwrap();
            &key[open + 1..open + 1 + close]
        }
        for room in [
            "lobby", "a:b", "x y", "}x", "", "{", "a{b}c", "%", "%7D", "}}{{",
        ] {
            let keys = [
                stream(room),
                epoch(room),
                presence(room),
                alive(room, "n1"),
                published(room, "n1:0badcafe"),
            ];
            let first = tag(&keys[0]);
            assert!(!first.is_empty(), "{keys:?}");
            assert!(keys.iter().all(|k| tag(k) == first), "{keys:?}");
            assert_eq!(room_of_stream(&stream(room)).as_deref(), Some(room));
        }
        // Every key of the room is in the room's slot.
        for room in ["lobby", "}x", "", "a{b}c"] {
            let slot = room_slot(room);
            assert!(
                [
                    epoch(room),
                    presence(room),
                    alive(room, "n"),
                    published(room, "n:1")
                ]
                .iter()
                .all(|k| super::slot(k) == slot)
            );
        }
        // Readable where nothing needs escaping.
        assert_eq!(stream("lobby"), "syncws:{lobby}:stream");
        // Distinct rooms, distinct tags.
        let names = ["", "%", "%25", "}", "%7D", "{"];
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                assert_ne!(stream(a), stream(b));
            }
        }
    }

    /// Values from `CLUSTER KEYSLOT` of redis-server 7.0.
    #[test]
    fn slots_match_redis_cluster() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("{user1000}.following"), 3443);
        assert_eq!(slot("{user1000}.followers"), 3443);
        // An empty tag hashes the whole key; only the first `{` and the next `}` count.
        assert_eq!(slot("{}foo"), 9500);
        assert_eq!(slot("foo{}{bar}"), 8363);
        assert_eq!(slot("foo{{bar}}zap"), 4015);
        assert_eq!(slot("a"), 15495);
        assert_eq!(slot("b"), 3300);
        assert_eq!(room_slot("a"), 15495);
    }
}
