//! The heartbeat thread: every second, for each room with members here, writes this process's
//! member identities into the room's presence hash and refreshes the process's heartbeat key
//! (TTL [`PRESENCE_TTL`]); a room left by every local member loses this process's entry.
//! Entries are keyed by process (`node:boot`, [`process`]), not by node name alone, so two
//! processes started under one name (the default `local`, a listen address shared by the
//! machines behind a load balancer) both show. The hash itself expires [`PRESENCE_TTL`] after
//! the last heartbeat of any process, so a room whose every process died leaves no key.

use super::connect;
use super::keys;
use super::publisher::fail;
use crate::rooms::hub::{PRESENCE_TTL, Shared};
use std::collections::HashSet;
use std::sync::Weak;
use std::time::Duration;

const INTERVAL: Duration = Duration::from_secs(1);

pub(super) fn run(shared: Weak<Shared>) {
    let mut connection: Option<super::link::Link> = None;
    let mut advertised: HashSet<String> = HashSet::new();
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(hub) = Shared::live(&shared) else {
            return;
        };
        let crate::rooms::hub::Backend::Redis(broker) = &hub.backend else {
            return;
        };
        // Every second, or at once after a join or leave here.
        broker.wait_presence_change(INTERVAL);
        let rooms: Vec<(String, Vec<String>)> = hub
            .rooms()
            .iter()
            .map(|(name, room)| (name.clone(), room.identities()))
            .collect();
        let process = process(&hub);
        let ttl = PRESENCE_TTL.as_millis() as u64;
        let mut pipeline = redis::pipe();
        let mut now = HashSet::new();
        for (name, identities) in &rooms {
            if identities.is_empty() {
                continue;
            }
            let lines: Vec<String> = identities
                .iter()
                .map(|i| i.replace(['\n', '\r'], " "))
                .collect();
            pipeline
                .cmd("HSET")
                .arg(keys::presence(name))
                .arg(&process)
                .arg(lines.join("\n"))
                .ignore();
            pipeline
                .cmd("PEXPIRE")
                .arg(keys::presence(name))
                .arg(ttl)
                .ignore();
            pipeline
                .cmd("SET")
                .arg(keys::alive(name, &process))
                .arg(1)
                .arg("PX")
                .arg(ttl)
                .ignore();
            now.insert(name.clone());
        }
        for gone in advertised.difference(&now) {
            pipeline
                .cmd("HDEL")
                .arg(keys::presence(gone))
                .arg(&process)
                .ignore();
            pipeline
                .cmd("DEL")
                .arg(keys::alive(gone, &process))
                .ignore();
        }
        if now.is_empty() && advertised.is_empty() {
            continue;
        }
        let result = match connection.as_mut() {
            Some(c) => c.pipeline(&pipeline),
            None => connect(&broker.target).and_then(|mut c| {
                let result = c.pipeline(&pipeline);
                connection = Some(c);
                result
            }),
        };
        match result {
            Ok(_) => {
                advertised = now;
                backoff = Duration::from_millis(50);
            }
            Err(error) => {
                connection = None;
                fail(&broker.health, &hub, &error, &mut backoff);
            }
        }
    }
}

/// This process's field in presence hashes and heartbeat keys: `node:boot` (boot in hex).
pub(super) fn process(shared: &Shared) -> String {
    format!("{}:{:08x}", shared.node, shared.boot)
}

/// The node name of a presence field written by [`process`].
pub(super) fn node_of(field: &str) -> &str {
    field.rsplit_once(':').map_or(field, |(node, _)| node)
}

#[cfg(test)]
mod tests {
    use super::node_of;

    #[test]
    fn a_presence_field_names_its_node_even_with_colons_in_it() {
        assert_eq!(node_of("0.0.0.0:9002:0badf00d"), "0.0.0.0:9002");
        assert_eq!(node_of("local:00000001"), "local");
        assert_eq!(node_of("bare"), "bare");
    }
}
