//! The heartbeat thread: every second, for each room with members here, writes this node's
//! member identities into the room's presence hash and refreshes the node's heartbeat key
//! (TTL [`PRESENCE_TTL`]); a room left by every local member loses this node's entry.

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
                .arg(&hub.node)
                .arg(lines.join("\n"))
                .ignore();
            pipeline
                .cmd("SET")
                .arg(keys::alive(name, &hub.node))
                .arg(1)
                .arg("PX")
                .arg(PRESENCE_TTL.as_millis() as u64)
                .ignore();
            now.insert(name.clone());
        }
        for gone in advertised.difference(&now) {
            pipeline
                .cmd("HDEL")
                .arg(keys::presence(gone))
                .arg(&hub.node)
                .ignore();
            pipeline
                .cmd("DEL")
                .arg(keys::alive(gone, &hub.node))
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
