//! Key layout. Every key of a room carries the room's name as a Redis Cluster hash tag
//! (`{room}`), so all of them live in one slot and the publish script may touch them together.

/// The room's stream: one entry per message, fields `n` (node), `p` (publish id), `d` (text).
pub(super) fn stream(room: &str) -> String {
    format!("syncws:{{{room}}}:stream")
}

/// The room's epoch, set once with `SET NX` (gone with the stream when Redis loses its data).
pub(super) fn epoch(room: &str) -> String {
    format!("syncws:{{{room}}}:epoch")
}

/// The room's presence hash: node name → that node's member identities, one per line.
pub(super) fn presence(room: &str) -> String {
    format!("syncws:{{{room}}}:presence")
}

/// A node's heartbeat for the room: present while the node is alive (short TTL).
pub(super) fn alive(room: &str, node: &str) -> String {
    format!("syncws:{{{room}}}:alive:{node}")
}

/// Marks a publish id as appended (the entry id as value), so a retried publish is not
/// appended twice.
pub(super) fn published(room: &str, publish_id: &str) -> String {
    format!("syncws:{{{room}}}:pub:{publish_id}")
}

/// The room name inside a stream key.
pub(super) fn room_of_stream(key: &str) -> Option<&str> {
    key.strip_prefix("syncws:{")?.strip_suffix("}:stream")
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
        for room in ["lobby", "a:b", "x y"] {
            let keys = [stream(room), epoch(room), presence(room), alive(room, "n1"), published(room, "n1:7")];
            assert!(keys.iter().all(|k| tag(k) == room), "{keys:?}");
            assert_eq!(room_of_stream(&stream(room)), Some(room));
        }
    }
}
