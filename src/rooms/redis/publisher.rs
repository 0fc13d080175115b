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
/// rate: a process's sequence numbers only grow, and its batches are sent in order. Trims by
/// count (`MAXLEN ~`) and optionally by age (`MINID ~`). Every key is the room's, so the script
/// runs on a Redis Cluster.
///
/// The room's epoch is written into the entry (field `e`), so a reader learns of a new epoch
/// from the entry itself. A room without an epoch key gets one: the `e` of the stream's newest
/// entry when the stream still holds entries (only the epoch key was lost: no history was, so
/// the epoch stays), else the candidate. The stream and the epoch get one expiry together,
/// refreshed by every append, so a room nobody publishes to any more leaves no key behind.
///
/// The first write is the append: a refused append (a key of another type, a state refusal)
/// leaves no key behind, not even one without an expiry.
///
/// KEYS: stream, epoch, process marker. ARGV: epoch candidate, node, publish id, data,
/// max length, max age in ms (0: none), marker TTL in s, sequence number, room TTL in s, the
/// sequence number of this process's previous message to the room still queued (0: none; the
/// message is refused with `HELD` until that one is appended, so a refusal of one message
/// never lets a later one of the room pass it), then the further entry fields as name, value pairs (`k` kind, `t`|`b`; `f` sender, when there is
/// one).
const APPEND: &str = r"
local done = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[8]) <= done then return 0 end
if tonumber(ARGV[10]) > done then
  return redis.error_reply('HELD the previous message of this process to the room is not appended')
end
local epoch = redis.call('GET', KEYS[2])
local restored = not epoch
if restored then
  epoch = ARGV[1]
  local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
  if newest then
    local fields = newest[2]
    for i = 1, #fields - 1, 2 do
      if fields[i] == 'e' then epoch = fields[i + 1] end
    end
  end
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'e', epoch, 'n', ARGV[2], 'p', ARGV[3], 'd', ARGV[4], unpack(ARGV, 11))
if restored then redis.call('SET', KEYS[2], epoch) end
local age = tonumber(ARGV[6])
if age > 0 then
  local now = redis.call('TIME')
  local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - age
  redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%d', oldest))
end
redis.call('EXPIRE', KEYS[1], ARGV[9])
redis.call('EXPIRE', KEYS[2], ARGV[9])
redis.call('SET', KEYS[3], ARGV[8], 'EX', ARGV[7])
return 1
";

/// How long a process's marker outlives its last publish to the room: a retry later than this
/// could append twice. Shorter than [`ROOM_TTL_SECS`]: one marker per process boot and room
/// would otherwise pile up for as long as the room's history.
const MARKER_TTL_SECS: u64 = 3600;
/// How long a room's stream and epoch outlive its last publish (seven days), unless the
/// retention age is longer: room names come from clients, and every name published to would
/// otherwise keep its keys forever. A room that expires lost its history: its next publish
/// starts a new epoch, and offsets of the old one get a gap.
pub(super) const ROOM_TTL_SECS: u64 = 7 * 24 * 3600;

/// The expiry, in seconds, of a room's stream and epoch: [`ROOM_TTL_SECS`], or the retention
/// age when that is longer (whole seconds, rounded up).
pub(super) fn room_ttl_secs(retain_age: Option<Duration>) -> u64 {
    let age = retain_age.map_or(0, |a| a.as_millis().div_ceil(1000) as u64);
    ROOM_TTL_SECS.max(age)
}

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

    /// Forgets the `count` oldest publishes but those at the batch indices `held` (Redis
    /// appended or refused the others), which stay first, in order.
    fn settle(&self, count: usize, held: &[usize]) {
        let mut state = self.lock();
        let mut kept = Vec::new();
        for index in 0..count {
            let Some(item) = state.items.pop_front() else {
                break;
            };
            if held.contains(&index) {
                kept.push(item);
            } else {
                state.bytes -= item.message.as_bytes().len();
            }
        }
        for item in kept.into_iter().rev() {
            state.items.push_front(item);
        }
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
            let room_ttl = room_ttl_secs(hub.retain_age);
            let mut previous: std::collections::HashMap<&str, u64> = Default::default();
            for item in state.items.iter().take(BATCH) {
                let before = previous.insert(&item.room, item.sequence).unwrap_or(0);
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
                    .arg(room_ttl)
                    .arg(before)
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
            (state.items.len().min(BATCH), pipeline)
        };
        let (count, pipeline) = pipeline;
        if count == 0 {
            continue;
        }
        let link = match connection.as_mut() {
            Some(link) => link,
            None => match connect(&broker.target) {
                Ok(link) => connection.insert(link),
                // Whatever the answer (refused connections, `LOADING`, a full client table),
                // no message is at fault: held.
                Err(error) => {
                    fail(&broker.health, &hub, &error, &mut backoff);
                    continue;
                }
            },
        };
        let failure = match link.pipeline(&pipeline) {
            Ok(_) => None,
            Err(error) => Some(failure_of(error)),
        };
        match failure {
            None => {
                send_script = false;
                broker.queue.acknowledge(count);
                broker.health.up(&hub);
                backoff = Duration::from_millis(50);
            }
            Some(Failure::NoScript) => send_script = true,
            // Redis refused some messages for what they are, and appended the others (each
            // command of the batch is its own script run): the refused ones are dropped rather
            // than retried forever, holding every later publish of this node behind them.
            Some(Failure::Refused(refused, held)) => {
                let rooms: Vec<(String, String)> = {
                    let state = broker.queue.lock();
                    refused
                        .into_iter()
                        .filter_map(|(index, error)| {
                            Some((state.items.get(index)?.room.clone(), error))
                        })
                        .collect()
                };
                send_script = false;
                broker.queue.settle(count, &held);
                broker.health.up(&hub);
                backoff = Duration::from_millis(50);
                for (room, error) in rooms {
                    eprintln!(
                        "syncws rooms: Redis refused a message to room {room:?}, dropped: {error}"
                    );
                    (hub.on_outage)(&BrokerStatus::Refused { room, error });
                }
            }
            Some(Failure::Outage(error)) => {
                connection = None;
                fail(&broker.health, &hub, &error, &mut backoff);
            }
        }
    }
}

/// What a batch that failed means for its messages.
#[derive(Debug, PartialEq)]
enum Failure {
    /// Redis does not know the script: send it again, then the same batch.
    NoScript,
    /// Redis refused these messages (batch index, error) for what they are, held back those
    /// that follow one of them in the same room (batch indices: sent again), and appended
    /// every other message of the batch.
    Refused(Vec<(usize, String)>, Vec<usize>),
    /// No answer, or a refusal caused by Redis's state: the whole batch is held and retried
    /// (publish ids make the retry append nothing twice; a message whose predecessor in the
    /// room was refused is itself refused with `HELD`, so none passes another).
    Outage(String),
}

fn failure_of(error: redis::RedisError) -> Failure {
    if error.is_io_error() || error.is_connection_dropped() || error.is_timeout() {
        return Failure::Outage(error.to_string());
    }
    let text = error.to_string();
    let Some(errors) = error.into_server_errors() else {
        return Failure::Outage(text);
    };
    let answers: Vec<(usize, &str, &str)> = errors
        .iter()
        .map(|(index, error)| (*index, error.code(), error.details().unwrap_or("")))
        .collect();
    classify(&answers, text)
}

/// Sorts the error answers of a batch (index, code, detail). The rule: a message is dropped
/// only when Redis refused it for what it is, which no retry changes: `WRONGTYPE` (the room's
/// key holds another type) and `ERR` (a bad argument, a script error, a message over Redis's
/// protocol limits). Every other code is about Redis's state and passes: `LOADING` (a restart
/// loading its data), `READONLY` (a replica after a failover), `MISCONF` (a failed snapshot),
/// `NOREPLICAS`, `OOM`, `BUSY`, `MASTERDOWN`, `CLUSTERDOWN`, `TRYAGAIN`, `NOPERM` (an ACL an
/// operator can fix), and codes unknown here: an outage, whose messages are held in order
/// within the backlog bound. So is an `ERR` that only wraps such a code (a script error
/// quoting it).
fn classify(answers: &[(usize, &str, &str)], text: String) -> Failure {
    if answers.iter().any(|(_, code, _)| *code == "NOSCRIPT") {
        return Failure::NoScript;
    }
    let (held, refused): (Vec<_>, Vec<_>) =
        answers.iter().partition(|(_, code, _)| *code == "HELD");
    if refused.is_empty()
        || !refused
            .iter()
            .all(|(_, code, detail)| refuses_the_message(code, detail))
    {
        return Failure::Outage(text);
    }
    Failure::Refused(
        refused
            .iter()
            .map(|(index, code, detail)| (*index, format!("{code} {detail}")))
            .collect(),
        held.iter().map(|(index, _, _)| *index).collect(),
    )
}

/// Codes of refusals caused by Redis's state (see [`classify`]), also looked for inside an
/// `ERR` answer.
const TRANSIENT: [&str; 10] = [
    "LOADING",
    "READONLY",
    "MISCONF",
    "NOREPLICAS",
    "OOM",
    "BUSY",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "max number of clients",
];

fn refuses_the_message(code: &str, detail: &str) -> bool {
    match code {
        "WRONGTYPE" => true,
        "ERR" => !TRANSIENT.iter().any(|word| detail.contains(word)),
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(answers: &[(usize, &str, &str)]) -> Failure {
        classify(answers, "batch failed".to_owned())
    }

    /// Refusals caused by Redis's state hold the batch; only a message refused for what it is
    /// is dropped, and only when every refusal of the batch is of that kind.
    #[test]
    fn only_a_refusal_of_the_message_itself_drops_it() {
        for code in [
            "LOADING",
            "READONLY",
            "MISCONF",
            "NOREPLICAS",
            "OOM",
            "BUSY",
            "MASTERDOWN",
            "CLUSTERDOWN",
            "TRYAGAIN",
            "NOPERM",
            "SOMETHINGNEW",
        ] {
            assert_eq!(
                sorted(&[(0, code, "refused")]),
                Failure::Outage("batch failed".to_owned()),
                "{code}"
            );
        }
        assert_eq!(
            sorted(&[(2, "WRONGTYPE", "Operation against a key")]),
            Failure::Refused(
                vec![(2, "WRONGTYPE Operation against a key".to_owned())],
                vec![]
            )
        );
        assert_eq!(
            sorted(&[(0, "ERR", "wrong number of arguments"), (3, "ERR", "bad")]),
            Failure::Refused(
                vec![
                    (0, "ERR wrong number of arguments".to_owned()),
                    (3, "ERR bad".to_owned())
                ],
                vec![]
            )
        );
        // An ERR that wraps a state refusal (a script error quoting it) is an outage too.
        assert_eq!(
            sorted(&[(0, "ERR", "Error running script: OOM command not allowed")]),
            Failure::Outage("batch failed".to_owned())
        );
        assert_eq!(
            sorted(&[(0, "ERR", "max number of clients reached")]),
            Failure::Outage("batch failed".to_owned())
        );
        // One state refusal in the batch holds all of it (the refused message is retried and
        // dropped once Redis is writable).
        assert_eq!(
            sorted(&[(0, "WRONGTYPE", "x"), (1, "READONLY", "replica")]),
            Failure::Outage("batch failed".to_owned())
        );
        assert_eq!(
            sorted(&[(1, "NOSCRIPT", "No matching script")]),
            Failure::NoScript
        );
        assert_eq!(sorted(&[]), Failure::Outage("batch failed".to_owned()));
        // Messages held behind a refused one of their room are sent again; behind a state
        // refusal, the whole batch is.
        assert_eq!(
            sorted(&[(1, "WRONGTYPE", "x"), (4, "HELD", "previous")]),
            Failure::Refused(vec![(1, "WRONGTYPE x".to_owned())], vec![4])
        );
        assert_eq!(
            sorted(&[(1, "OOM", "x"), (4, "HELD", "previous")]),
            Failure::Outage("batch failed".to_owned())
        );
        assert_eq!(
            sorted(&[(4, "HELD", "previous")]),
            Failure::Outage("batch failed".to_owned())
        );
    }

    /// Held messages stay first, in order; the others are forgotten, bytes included.
    #[test]
    fn settling_a_batch_keeps_the_held_messages_first() {
        let queue = Queue::default();
        {
            let mut state = queue.lock();
            for sequence in 1..=5 {
                let message = Message::text(format!("m{sequence}"));
                state.bytes += message.as_bytes().len();
                state.items.push_back(Pending {
                    room: "r".to_owned(),
                    sequence,
                    message,
                    from: String::new(),
                });
            }
        }
        queue.settle(4, &[1, 3]);
        let state = queue.lock();
        let left: Vec<u64> = state.items.iter().map(|i| i.sequence).collect();
        assert_eq!(left, [2, 4, 5]);
        assert_eq!(state.bytes, 6);
    }

    /// Seven days, or the retention age when longer.
    #[test]
    fn rooms_expire_after_a_week_or_their_retention_age() {
        assert_eq!(room_ttl_secs(None), ROOM_TTL_SECS);
        assert_eq!(room_ttl_secs(Some(Duration::from_secs(60))), ROOM_TTL_SECS);
        let month = Duration::from_secs(30 * 24 * 3600);
        assert_eq!(room_ttl_secs(Some(month)), month.as_secs());
        assert_eq!(
            room_ttl_secs(Some(month + Duration::from_millis(1))),
            month.as_secs() + 1
        );
    }
}
