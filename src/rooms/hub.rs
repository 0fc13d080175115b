//! Rooms with one order, offsets and presence, in one process or across many through Redis.
//!
//! A [`Hub`] is chosen at construction: [`Hub::in_memory`] keeps each room's history in this
//! process; [`Hub::redis`] (feature `redis`) keeps it in one Redis Stream per room, so members
//! connected to different processes or machines receive the same messages in the same order.
//! The calls are the same either way: [`Hub::join`] (optionally replaying from an [`Offset`]),
//! [`Hub::publish`], [`Hub::leave`], [`Hub::presence`].

use super::offset::Offset;
#[cfg(feature = "redis")]
use super::redis as broker;
use super::{local, memory};

use super::local::{LocalRoom, SharedRoom};
use crate::proto::message::Message;
use crate::split::{Enqueued, Frame, Writer};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One message as delivered to a room's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its place in the room's history; pass it back as `since` to resume after it.
    pub offset: Offset,
    /// The node (process) the message was published on.
    pub node: String,
    /// The message.
    pub text: String,
}

/// What [`Hub::join`] replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Joined {
    /// The history after `since` was incomplete (trimmed, or the room's epoch changed): the
    /// member got the gap message first, then every message still retained.
    pub gap: bool,
    /// Messages replayed before live delivery began.
    pub replayed: usize,
}

/// Who is in a room, on every node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presence {
    /// `(node, identity)` for each member, sorted.
    pub members: Vec<(String, String)>,
}

impl Presence {
    /// How many members the room has.
    pub fn count(&self) -> usize {
        self.members.len()
    }
}

/// The broker's state, as told to [`HubBuilder::on_outage`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerStatus {
    /// Redis could not be reached; publishes are held (up to the backlog bound).
    Down(String),
    /// Redis answers again; held publishes are being flushed in order.
    Up,
    /// Redis refused a message of room `room` (e.g. over its size limit, or the room's key holds
    /// another type): it was dropped so that later publishes still flow.
    Refused {
        /// The room the message was published to.
        room: String,
        /// Redis's answer.
        error: String,
    },
}

/// Why a hub call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubError {
    /// The broker is unreachable and the held backlog is full: the message was not accepted.
    Backlog {
        /// Messages held.
        messages: usize,
        /// Bytes held.
        bytes: usize,
    },
    /// The broker failed the call (unreachable, or it answered an error).
    Broker(String),
    /// The hub was stopped.
    Stopped,
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HubError::Backlog { messages, bytes } => write!(
                f,
                "broker unreachable and its backlog is full ({messages} messages, {bytes} bytes)"
            ),
            HubError::Broker(error) => write!(f, "broker error: {error}"),
            HubError::Stopped => f.write_str("the hub was stopped"),
        }
    }
}

impl std::error::Error for HubError {}

type Format = dyn Fn(&Delivery) -> Message + Send + Sync;
type OnOutage = dyn Fn(&BrokerStatus) + Send + Sync;

/// Settings of a [`Hub`]; see each method for its default.
pub struct HubBuilder {
    node: String,
    format: Arc<Format>,
    gap: Message,
    retain_count: usize,
    retain_age: Option<Duration>,
    backlog_messages: usize,
    backlog_bytes: usize,
    on_outage: Arc<OnOutage>,
}

impl fmt::Debug for HubBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubBuilder")
            .field("node", &self.node)
            .field("retain_count", &self.retain_count)
            .field("retain_age", &self.retain_age)
            .finish_non_exhaustive()
    }
}

/// Default bound of the publishes held while the broker is unreachable, in messages.
pub const DEFAULT_BACKLOG_MESSAGES: usize = 100_000;
/// Default bound of the publishes held while the broker is unreachable, in bytes of text.
pub const DEFAULT_BACKLOG_BYTES: usize = 64 * 1024 * 1024;
/// Default number of messages a room's history retains (approximately, for Redis: `MAXLEN ~`).
pub const DEFAULT_RETAIN_COUNT: usize = 100_000;

impl HubBuilder {
    /// A hub for node `node` (the name deliveries carry as their origin).
    pub fn new(node: &str) -> HubBuilder {
        HubBuilder {
            node: node.to_owned(),
            format: Arc::new(|d: &Delivery| Message::text(d.text.clone())),
            gap: Message::text("{\"gap\":true}"),
            retain_count: DEFAULT_RETAIN_COUNT,
            retain_age: None,
            backlog_messages: DEFAULT_BACKLOG_MESSAGES,
            backlog_bytes: DEFAULT_BACKLOG_BYTES,
            on_outage: Arc::new(|_: &BrokerStatus| {}),
        }
    }

    /// How a delivery becomes the frame each member receives. Defaults to the text alone.
    pub fn format(mut self, format: impl Fn(&Delivery) -> Message + Send + Sync + 'static) -> Self {
        self.format = Arc::new(format);
        self
    }

    /// What a member receives first when the history it asked for is incomplete. Defaults to
    /// the text `{"gap":true}`.
    pub fn gap_message(mut self, message: Message) -> Self {
        self.gap = message;
        self
    }

    /// Messages each room retains for replay. Defaults to [`DEFAULT_RETAIN_COUNT`].
    pub fn retain_count(mut self, count: usize) -> Self {
        self.retain_count = count.max(1);
        self
    }

    /// Also drop messages older than `age` (Redis only: `XTRIM MINID ~`). Defaults to none.
    pub fn retain_age(mut self, age: Duration) -> Self {
        self.retain_age = Some(age);
        self
    }

    /// Bound of the publishes held while the broker is unreachable; beyond either bound
    /// [`Hub::publish`] returns [`HubError::Backlog`]. Defaults to [`DEFAULT_BACKLOG_MESSAGES`]
    /// and [`DEFAULT_BACKLOG_BYTES`].
    pub fn backlog(mut self, messages: usize, bytes: usize) -> Self {
        self.backlog_messages = messages.max(1);
        self.backlog_bytes = bytes.max(1);
        self
    }

    /// Called when the broker becomes unreachable and when it is back (a line goes to stderr
    /// either way). Defaults to nothing more.
    pub fn on_outage(mut self, hook: impl Fn(&BrokerStatus) + Send + Sync + 'static) -> Self {
        self.on_outage = Arc::new(hook);
        self
    }

    /// Rooms kept in this process only.
    pub fn in_memory(self) -> Hub {
        Hub::with_backend(self, Backend::Memory)
    }

    /// Rooms kept in the Redis at `url` (e.g. `redis://127.0.0.1:6379/`). Fails when the URL is
    /// invalid; an unreachable broker is not an error here (publishes are held until it is up).
    #[cfg(feature = "redis")]
    pub fn redis(self, url: &str) -> Result<Hub, HubError> {
        let broker = broker::Broker::single(url).map_err(HubError::Broker)?;
        Ok(self.with_broker(broker))
    }

    /// Rooms kept in the Redis Cluster reached through any of `urls` (each room's keys share
    /// one hash slot). Fails when a URL is invalid or the list is empty.
    #[cfg(feature = "redis")]
    pub fn redis_cluster(self, urls: &[&str]) -> Result<Hub, HubError> {
        let broker = broker::Broker::cluster(urls).map_err(HubError::Broker)?;
        Ok(self.with_broker(broker))
    }

    #[cfg(feature = "redis")]
    fn with_broker(self, broker: broker::Broker) -> Hub {
        let hub = Hub::with_backend(self, Backend::Redis(Box::new(broker)));
        if let Backend::Redis(broker) = &hub.shared.backend {
            broker.start(&hub.shared);
        }
        hub
    }
}

pub(super) struct Shared {
    /// Set when the last [`Hub`] clone is dropped.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) stopped: Arc<AtomicBool>,
    pub(super) node: String,
    pub(super) rooms: Mutex<HashMap<String, SharedRoom>>,
    pub(super) format: Arc<Format>,
    pub(super) gap: Message,
    pub(super) retain_count: usize,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) retain_age: Option<Duration>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) backlog: (usize, usize),
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) on_outage: Arc<OnOutage>,
    pub(super) backend: Backend,
}

pub(super) enum Backend {
    Memory,
    #[cfg(feature = "redis")]
    Redis(Box<broker::Broker>),
}

impl Shared {
    pub(super) fn rooms(&self) -> MutexGuard<'_, HashMap<String, SharedRoom>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn room(&self, name: &str) -> Option<SharedRoom> {
        self.rooms().get(name).cloned()
    }

    /// This hub's threads' view of it: `None` once every [`Hub`] clone is gone.
    #[cfg(feature = "redis")]
    pub(super) fn live(weak: &std::sync::Weak<Shared>) -> Option<Arc<Shared>> {
        weak.upgrade()
            .filter(|hub| !hub.stopped.load(Ordering::SeqCst))
    }
}

/// Named rooms whose messages reach every member, on every node, once and in one order, each
/// with an [`Offset`] to resume from. Clones share the rooms.
///
/// Delivery to local members goes through [`Room::broadcast`](crate::Room::broadcast), one
/// encoded frame per message for all of them.
///
/// ```no_run
/// use syncws::hub::{Hub, Offset};
/// use syncws::{Message, Server};
/// let hub = Hub::in_memory("solo");
/// Server::bind("127.0.0.1:9002")?.serve(move |mut session| {
///     let since = None::<Offset>;
///     let writer = session.writer();
///     let _ = hub.join("lobby", writer.clone(), "anonymous", since.as_ref());
///     while let Ok(Message::Text(text)) = session.read() {
///         let _ = hub.publish("lobby", &text);
///     }
///     hub.leave("lobby", &writer);
/// })?;
/// # Ok::<(), syncws::Error>(())
/// ```
#[derive(Clone)]
pub struct Hub {
    pub(super) shared: Arc<Shared>,
    _stop: Arc<StopOnDrop>,
}

/// Held by every clone of a [`Hub`]: when the last one goes, the hub's threads stop (they hold
/// the hub only weakly, but several of them could otherwise keep upgrading it in turn).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("node", &self.shared.node)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Rooms kept in this process, with default settings; see [`HubBuilder`].
    pub fn in_memory(node: &str) -> Hub {
        HubBuilder::new(node).in_memory()
    }

    /// Rooms kept in the Redis at `url`, with default settings; see [`HubBuilder::redis`].
    #[cfg(feature = "redis")]
    pub fn redis(url: &str, node: &str) -> Result<Hub, HubError> {
        HubBuilder::new(node).redis(url)
    }

    /// Settings for a hub of node `node`.
    pub fn builder(node: &str) -> HubBuilder {
        HubBuilder::new(node)
    }

    fn with_backend(builder: HubBuilder, backend: Backend) -> Hub {
        let stopped = Arc::new(AtomicBool::new(false));
        Hub {
            _stop: Arc::new(StopOnDrop(stopped.clone())),
            shared: Arc::new(Shared {
                stopped,
                node: builder.node,
                rooms: Mutex::new(HashMap::new()),
                format: builder.format,
                gap: builder.gap,
                retain_count: builder.retain_count,
                retain_age: builder.retain_age,
                backlog: (builder.backlog_messages, builder.backlog_bytes),
                on_outage: builder.on_outage,
                backend,
            }),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    /// Adds `writer` to room `name` under `identity` (shown by [`Hub::presence`]). With
    /// `since`, first sends it every retained message after that offset, in order (preceded by
    /// the gap message when that history is incomplete), then live messages, none twice.
    pub fn join(
        &self,
        name: &str,
        writer: Writer,
        identity: &str,
        since: Option<&Offset>,
    ) -> Result<Joined, HubError> {
        match &self.shared.backend {
            Backend::Memory => Ok(memory::join(&self.shared, name, writer, identity, since)),
            #[cfg(feature = "redis")]
            Backend::Redis(broker) => broker.join(&self.shared, name, writer, identity, since),
        }
    }

    /// Removes `writer` from room `name`; returns whether it was a member here.
    pub fn leave(&self, name: &str, writer: &Writer) -> bool {
        let left = self
            .shared
            .room(name)
            .is_some_and(|room| local::lock(&room).remove(writer));
        #[cfg(feature = "redis")]
        if let Backend::Redis(broker) = &self.shared.backend {
            broker.presence_changed();
        }
        left
    }

    /// Publishes `text` to every member of room `name` on every node, this one included. Never
    /// waits for a member's socket, nor (with Redis) for the broker: the message is queued and
    /// sent in order; while Redis is unreachable up to the backlog bound is held, beyond it this
    /// returns [`HubError::Backlog`].
    pub fn publish(&self, name: &str, text: &str) -> Result<(), HubError> {
        match &self.shared.backend {
            Backend::Memory => {
                memory::publish(&self.shared, name, text);
                Ok(())
            }
            #[cfg(feature = "redis")]
            Backend::Redis(broker) => broker.publish(&self.shared, name, text),
        }
    }

    /// Who is in room `name` on every node. With Redis, a node that died without leaving drops
    /// out when its heartbeat key expires: [`PRESENCE_TTL`] after its last refresh, plus Redis's
    /// expiry lag (within 5 s in `scripts/rooms/cluster.sh`).
    pub fn presence(&self, name: &str) -> Result<Presence, HubError> {
        match &self.shared.backend {
            Backend::Memory => {
                let mut members: Vec<(String, String)> = match self.shared.room(name) {
                    Some(room) => local::lock(&room)
                        .identities()
                        .into_iter()
                        .map(|id| (self.shared.node.clone(), id))
                        .collect(),
                    None => Vec::new(),
                };
                members.sort();
                Ok(Presence { members })
            }
            #[cfg(feature = "redis")]
            Backend::Redis(broker) => broker.presence(&self.shared, name),
        }
    }

    /// Publishes waiting to reach the broker (always 0 for in-memory rooms).
    pub fn backlog(&self) -> usize {
        match &self.shared.backend {
            Backend::Memory => 0,
            #[cfg(feature = "redis")]
            Backend::Redis(broker) => broker.backlog(),
        }
    }
}

/// How long a node's presence outlives its last heartbeat (a heartbeat is sent every second):
/// after `kill -9`, its members leave every other node's [`Hub::presence`] once this has passed
/// and Redis has expired the key.
pub const PRESENCE_TTL: Duration = Duration::from_secs(3);

/// Hands `entry` to the room's local members, once: entries at or before the last one delivered
/// are skipped, and so is a member whose own replay already reached `entry`.
pub(super) fn deliver(shared: &Shared, room: &mut LocalRoom, entry: &local::Entry) {
    if entry.id <= room.last {
        return;
    }
    room.last = entry.id;
    room.admit_before(entry.id);
    let message = formatted(shared, &room.epoch, entry);
    room.room.broadcast(&message, None);
}

/// The frame members receive for `entry`.
pub(super) fn formatted(shared: &Shared, epoch: &str, entry: &local::Entry) -> Message {
    let delivery = Delivery {
        offset: Offset {
            epoch: epoch.to_owned(),
            id: entry.id,
        },
        node: entry.node.clone(),
        text: entry.text.clone(),
    };
    (shared.format)(&delivery)
}

/// Sends one replayed entry to a joining member (blocking: only without a room lock).
pub(super) fn replay_one(shared: &Shared, epoch: &str, writer: &Writer, entry: &local::Entry) {
    let _ = writer.send(formatted(shared, epoch, entry));
}

/// Hands `message` to a joining member through its bounded room queue, as live fan-out does,
/// never waiting for its socket (safe under a room lock); `false` when the member went over
/// `bound` and is being closed with 1008 (policy violation, RFC 6455 §7.4.1).
pub(super) fn queue_to(writer: &Writer, message: Message, bound: usize) -> bool {
    !matches!(
        writer.enqueue(Frame::Message(message), bound),
        Enqueued::Dropped
    )
}
