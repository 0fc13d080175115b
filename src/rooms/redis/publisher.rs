//! Publishing: a bounded queue per node, drained in order by one thread that appends each
//! message to its room's stream with a script that appends a given publish id at most once.

use super::keys;
use super::{Health, connect};
use crate::proto::message::Message;
use crate::rooms::hub::{BrokerStatus, RoomsError, Shared};
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// Appends one message unless this publishing process already appended it to the room (its
/// sequence number is at most the highest one recorded for the process): a batch retried after
/// an answer was lost appends nothing twice. One marker per room and process, whatever the
/// rate: a process's sequence numbers only grow, and its batches are sent in order. Also creates
/// the room's epoch if the room has none, and trims by count (`MAXLEN ~`) and optionally by age
/// (`MINID ~`). Every key is the room's, so the script runs on a Redis Cluster.
///
/// KEYS: stream, epoch, process marker. ARGV: epoch candidate, node, publish id, data,
/// max length, max age in ms (0: none), marker TTL in s, sequence number, then the further
/// entry fields as name, value pairs (`k` kind, `t`|`b`; `f` sender, when there is one).
const APPEND: &str = r"
local done = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[8]) <= done then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'NX')
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'n', ARGV[2], 'p', ARGV[3], 'd', ARGV[4], unpack(ARGV, 9))
local age = tonumber(ARGV[6])
if age > 0 then
  local now = redis.call('TIME')
  local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - age
  redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d', oldest))
end
redis.call('SET', KEYS[3], ARGV[8], 'EX', ARGV[7])
return 1
";

/// How long a process's marker outlives its last publish to the room: a retry later than this
/// could append twice.
const MARKER_TTL_SECS: u64 = 3600;
/// Messages sent to Redis per round trip.
const BATCH: usize = 256;

struct Pending {
    room: String,
    sequence: u64,
    message: Message,
    /// The `f` field: `<boot hex>:<writer id>`, empty when every member gets it.
    from: String,
}

#[derive(Default)]
struct State {
    items: VecDeque<Pending>,
    bytes: usize,
    sequence: u64,
}

/// Publishes not yet acknowledged by Redis, oldest first.
#[derive(Default)]
pub(in crate::rooms) struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    boot: std::sync::OnceLock<String>,
    /// The SHA1 of [`APPEND`], sent instead of the script once Redis knows it.
    script: std::sync::OnceLock<String>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Queues a publish, or refuses it when the backlog bound is reached (or the message alone
    /// is over the byte bound: [`RoomsError::TooLarge`], it could never be held). Never waits.
    pub fn push(
        &self,
        shared: &Shared,
        room: &str,
        message: &Message,
        from: Option<(u32, u64)>,
    ) -> Result<(), RoomsError> {
        let size = message.as_bytes().len();
        let (max_messages, max_bytes) = shared.backlog;
        if size > max_bytes {
            return Err(RoomsError::TooLarge {
                size,
                limit: max_bytes,
            });
        }
        let mut state = self.lock();
        if state.items.len() >= max_messages || state.bytes + size > max_bytes {
            return Err(RoomsError::Backlog {
                messages: state.items.len(),
                bytes: state.bytes,
            });
        }
        state.sequence += 1;
        let sequence = state.sequence;
        state.bytes += size;
        state.items.push_back(Pending {
            room: room.to_owned(),
            sequence,
            message: message.clone(),
            from: from.map_or(String::new(), |(boot, writer)| {
                format!("{boot:08x}:{writer}")
            }),
        });
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Waits (up to `timeout`) for something to send.
    fn wait(&self, timeout: Duration) {
        let state = self.lock();
        if state.items.is_empty() {
            let _ = self.ready.wait_timeout(state, timeout);
        }
    }

    /// Forgets the `count` oldest publishes (Redis acknowledged them); returns the room of the
    /// last one.
    fn acknowledge(&self, count: usize) -> Option<String> {
        let mut state = self.lock();
        let mut room = None;
        for _ in 0..count {
            if let Some(item) = state.items.pop_front() {
                state.bytes -= item.message.as_bytes().len();
                room = Some(item.room);
            }
        }
        room
    }

    /// This process's name in publish ids and markers: `node:boot`.
    fn process(&self, node: &str) -> String {
        let boot = self
            .boot
            .get_or_init(|| format!("{:08x}", rand::random::<u32>()));
        format!("{node}:{boot}")
    }
}

/// The publisher thread: sends the oldest batch until Redis acknowledges it, so order holds
/// across an outage, and the same publish ids are retried.
pub(super) fn run(shared: Weak<Shared>) {
    let mut connection: Option<super::link::Link> = None;
    let mut backoff = Duration::from_millis(50);
    // After a refused batch: how many of its messages are still to be sent one by one.
    let (mut batch, mut singles) = (BATCH, 0usize);
    // Whether to send the script itself: at first, and after Redis forgot it (a restart, a
    // `SCRIPT FLUSH`, a cluster node that never saw it). `EVAL` also caches it for `EVALSHA`.
    let mut send_script = true;
    loop {
        let Some(hub) = Shared::live(&shared) else {
            return;
        };
        let crate::rooms::hub::Backend::Redis(broker) = &hub.backend else {
            return;
        };
        broker.queue.wait(Duration::from_millis(500));
        let pipeline = {
            let process = broker.queue.process(&hub.node);
            let sha = broker
                .queue
                .script
                .get_or_init(|| redis::Script::new(APPEND).get_hash().to_owned());
            let state = broker.queue.lock();
            let mut pipeline = redis::pipe();
            let retain_age = hub.retain_age.map_or(0, |a| a.as_millis() as u64);
            for item in state.items.iter().take(batch) {
                if send_script {
                    pipeline.cmd("EVAL").arg(APPEND);
                } else {
                    pipeline.cmd("EVALSHA").arg(sha);
                }
                pipeline
                    .arg(3)
                    .arg(keys::stream(&item.room))
                    .arg(keys::epoch(&item.room))
                    .arg(keys::published(&item.room, &process))
                    .arg(crate::rooms::offset::new_epoch())
                    .arg(&hub.node)
                    .arg(format!("{process}:{}", item.sequence))
                    .arg(item.message.as_bytes())
                    .arg(hub.retain_count)
                    .arg(retain_age)
                    .arg(MARKER_TTL_SECS)
                    .arg(item.sequence)
                    .arg("k")
                    .arg(if matches!(item.message, Message::Binary(_)) {
                        "b"
                    } else {
                        "t"
                    });
                if !item.from.is_empty() {
                    pipeline.arg("f").arg(&item.from);
                }
            }
            (state.items.len().min(batch), pipeline)
        };
        let (count, pipeline) = pipeline;
        if count == 0 {
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
            Err(error) if error.code() == Some("NOSCRIPT") => send_script = true,
            Ok(_) => {
                send_script = false;
                broker.queue.acknowledge(count);
                broker.health.up(&hub);
                backoff = Duration::from_millis(50);
                singles = singles.saturating_sub(count);
                batch = if singles > 0 { 1 } else { BATCH };
            }
            // Redis answered but refused a command (a message over its size limit, a key of
            // another type): find it one message at a time and drop it, rather than retry it
            // forever and hold every later publish of this node behind it.
            Err(error)
                if !error.is_io_error()
                    && !error.is_connection_dropped()
                    && !error.is_timeout() =>
            {
                if count == 1 {
                    let room = broker.queue.acknowledge(1).unwrap_or_default();
                    eprintln!(
                        "syncws rooms: Redis refused a message to room {room:?}, dropped: {error}"
                    );
                    (hub.on_outage)(&BrokerStatus::Refused {
                        room,
                        error: error.to_string(),
                    });
                    singles = singles.saturating_sub(1);
                } else {
                    singles = count;
                }
                batch = if singles > 0 { 1 } else { BATCH };
            }
            Err(error) => {
                connection = None;
                fail(&broker.health, &hub, &error, &mut backoff);
            }
        }
    }
}

/// Reports an outage and waits before the next attempt (doubling, up to one second).
pub(super) fn fail(
    health: &Health,
    hub: &Shared,
    error: &dyn std::fmt::Display,
    backoff: &mut Duration,
) {
    health.down(hub, error);
    std::thread::sleep(*backoff);
    *backoff = (*backoff * 2).min(Duration::from_secs(1));
}
