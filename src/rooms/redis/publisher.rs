//! Publishing: a bounded queue per node, drained in order by one thread that appends each
//! message to its room's stream with a script that appends a given publish id at most once.

use super::keys;
use super::{Health, connect};
use crate::proto::message::Message;
use crate::rooms::hub::{RoomsError, Shared};
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// Appends one message unless its publish id was already appended (then returns that entry's
/// id): a batch retried after an answer was lost appends nothing twice. Also creates the room's
/// epoch if the room has none, and trims by count (`MAXLEN ~`) and optionally by age (`MINID ~`).
///
/// KEYS: stream, epoch, published-marker. ARGV: epoch candidate, node, publish id, data,
/// max length, max age in ms (0: none), marker TTL in s, kind (`t`|`b`), from (`` for none).
const APPEND: &str = r"
local done = redis.call('GET', KEYS[3])
if done then return done end
redis.call('SET', KEYS[2], ARGV[1], 'NX')
local fields = {'n', ARGV[2], 'p', ARGV[3], 'd', ARGV[4], 'k', ARGV[8]}
if ARGV[9] ~= '' then
  fields[#fields + 1] = 'f'
  fields[#fields + 1] = ARGV[9]
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
local age = tonumber(ARGV[6])
if age > 0 then
  local now = redis.call('TIME')
  local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - age
  redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d', oldest))
end
redis.call('SET', KEYS[3], id, 'EX', ARGV[7])
return id
";

/// How long a publish id is remembered: a retry later than this could append twice.
const MARKER_TTL_SECS: u64 = 3600;
/// Messages sent to Redis per round trip.
const BATCH: usize = 256;

struct Pending {
    room: String,
    id: String,
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
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Queues a publish, or refuses it when the backlog bound is reached. Never waits.
    pub fn push(
        &self,
        shared: &Shared,
        room: &str,
        message: &Message,
        from: Option<(u32, u64)>,
    ) -> Result<(), RoomsError> {
        let size = message.as_bytes().len();
        let (max_messages, max_bytes) = shared.backlog;
        // A random part tells this process's ids from those of an earlier one of the same name.
        let boot = self
            .boot
            .get_or_init(|| format!("{:08x}", rand::random::<u32>()));
        let mut state = self.lock();
        if state.items.len() >= max_messages || state.bytes + size > max_bytes {
            return Err(RoomsError::Backlog {
                messages: state.items.len(),
                bytes: state.bytes,
            });
        }
        state.sequence += 1;
        let id = format!("{}:{boot}:{}", shared.node, state.sequence);
        state.bytes += size;
        state.items.push_back(Pending {
            room: room.to_owned(),
            id,
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

    /// Forgets the `count` oldest publishes (Redis acknowledged them).
    fn acknowledge(&self, count: usize) {
        let mut state = self.lock();
        for _ in 0..count {
            if let Some(item) = state.items.pop_front() {
                state.bytes -= item.message.as_bytes().len();
            }
        }
    }
}

/// The publisher thread: sends the oldest batch until Redis acknowledges it, so order holds
/// across an outage, and the same publish ids are retried.
pub(super) fn run(shared: Weak<Shared>) {
    let mut connection = None;
    let mut backoff = Duration::from_millis(50);
    // After a refused batch: how many of its messages are still to be sent one by one.
    let (mut batch, mut singles) = (BATCH, 0usize);
    loop {
        let Some(hub) = Shared::live(&shared) else {
            return;
        };
        let crate::rooms::hub::Backend::Redis(broker) = &hub.backend else {
            return;
        };
        broker.queue.wait(Duration::from_millis(500));
        let pipeline = {
            let state = broker.queue.lock();
            let mut pipeline = redis::pipe();
            let retain_age = hub.retain_age.map_or(0, |a| a.as_millis() as u64);
            for item in state.items.iter().take(batch) {
                pipeline
                    .cmd("EVAL")
                    .arg(APPEND)
                    .arg(3)
                    .arg(keys::stream(&item.room))
                    .arg(keys::epoch(&item.room))
                    .arg(keys::published(&item.room, &item.id))
                    .arg(crate::rooms::offset::new_epoch())
                    .arg(&hub.node)
                    .arg(&item.id)
                    .arg(item.message.as_bytes())
                    .arg(hub.retain_count)
                    .arg(retain_age)
                    .arg(MARKER_TTL_SECS)
                    .arg(if matches!(item.message, Message::Binary(_)) {
                        "b"
                    } else {
                        "t"
                    })
                    .arg(&item.from);
            }
            (state.items.len().min(batch), pipeline)
        };
        let (count, pipeline) = pipeline;
        if count == 0 {
            continue;
        }
        let result = match connection.as_mut() {
            Some(c) => pipeline.query::<redis::Value>(c),
            None => connect(&broker.client).and_then(|mut c| {
                let result = pipeline.query::<redis::Value>(&mut c);
                connection = Some(c);
                result
            }),
        };
        match result {
            Ok(_) => {
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
                    eprintln!("syncws rooms: Redis refused a message, dropped: {error}");
                    let room = broker.queue.lock().items.front().map(|i| i.room.clone());
                    broker.queue.acknowledge(1);
                    let (room, error) = (room.unwrap_or_default(), error.to_string());
                    (hub.on_outage)(&crate::rooms::BrokerStatus::Refused { room, error });
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
