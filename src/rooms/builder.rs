//! Settings of a [`Rooms`], and of one join.

#[cfg(feature = "redis")]
use super::RoomsError;
use super::hub::{Backend, Format, OnOutage, Shared, StopOnDrop};
use super::offset::Offset;
use super::{
    BrokerStatus, DEFAULT_BACKLOG_BYTES, DEFAULT_BACKLOG_MESSAGES, DEFAULT_RETAIN_COUNT, Delivery,
    Room, Rooms,
};
use crate::proto::message::Message;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default of [`RoomsBuilder::idle_rooms`]: emptied rooms kept at most.
const DEFAULT_IDLE_ROOMS: usize = 1_000;
/// Default of [`RoomsBuilder::idle_rooms`]: how long an emptied room keeps its history.
const DEFAULT_IDLE_FOR: Duration = Duration::from_secs(60);

/// Settings of a [`Rooms`]; the last call picks the engine ([`in_memory`](Self::in_memory),
/// [`redis`](Self::redis)). See each method for its default.
///
/// ```
/// use std::time::Duration;
/// use syncws::rooms::Rooms;
/// let rooms = Rooms::builder()
///     .node("node-1")
///     .retain(10_000)
///     .max_backpressure(256 * 1024)
///     .idle_rooms(100, Duration::from_secs(30))
///     .in_memory();
/// assert_eq!(rooms.node(), "node-1");
/// ```
pub struct RoomsBuilder {
    node: String,
    format: Arc<Format>,
    gap: Message,
    retain_count: usize,
    retain_age: Option<Duration>,
    max_backpressure: usize,
    backlog_messages: usize,
    backlog_bytes: usize,
    on_outage: Arc<OnOutage>,
    idle_max: usize,
    idle_for: Duration,
}

impl fmt::Debug for RoomsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoomsBuilder")
            .field("node", &self.node)
            .field("retain_count", &self.retain_count)
            .field("retain_age", &self.retain_age)
            .field("max_backpressure", &self.max_backpressure)
            .finish_non_exhaustive()
    }
}

impl Default for RoomsBuilder {
    fn default() -> RoomsBuilder {
        RoomsBuilder {
            node: "local".to_owned(),
            format: Arc::new(|d: &Delivery| d.message.clone()),
            gap: Message::text("{\"gap\":true}"),
            retain_count: DEFAULT_RETAIN_COUNT,
            retain_age: None,
            max_backpressure: Room::DEFAULT_MAX_BACKPRESSURE,
            backlog_messages: DEFAULT_BACKLOG_MESSAGES,
            backlog_bytes: DEFAULT_BACKLOG_BYTES,
            on_outage: Arc::new(|_: &BrokerStatus| {}),
            idle_max: DEFAULT_IDLE_ROOMS,
            idle_for: DEFAULT_IDLE_FOR,
        }
    }
}

impl RoomsBuilder {
    /// Every setting at its default.
    pub fn new() -> RoomsBuilder {
        RoomsBuilder::default()
    }

    /// This node's name, which deliveries carry as their origin ([`Delivery::node`]) and
    /// presence lists members under. Defaults to `local`; give each process sharing a broker
    /// its own.
    pub fn node(mut self, name: &str) -> Self {
        self.node = name.to_owned();
        self
    }

    /// Messages each room retains for replay. Defaults to [`DEFAULT_RETAIN_COUNT`]. In memory,
    /// 0 keeps no history (a join with an offset older than the last message reports a gap);
    /// Redis keeps at least one (`XADD MAXLEN ~`, so approximately: at least this many).
    pub fn retain(mut self, count: usize) -> Self {
        self.retain_count = count;
        self
    }

    /// Also drop messages older than `age` (Redis: `XTRIM MINID ~`). Defaults to none.
    pub fn retain_age(mut self, age: Duration) -> Self {
        self.retain_age = Some(age);
        self
    }

    /// The bound, in bytes, of what each member may have queued by rooms and not yet taken by
    /// its peer; over it a member is closed with 1008 (see [`Room`]). Defaults to
    /// [`Room::DEFAULT_MAX_BACKPRESSURE`].
    pub fn max_backpressure(mut self, bytes: usize) -> Self {
        self.max_backpressure = bytes;
        self
    }

    /// Bound of the broadcasts held while the broker is unreachable (bytes: of payload); beyond
    /// either bound [`Rooms::broadcast`] returns [`RoomsError::Backlog`]. The byte bound is
    /// also the largest message a broadcast takes: a larger one could never be held, and is
    /// refused at once as [`RoomsError::TooLarge`], broker up or not. Defaults to
    /// [`DEFAULT_BACKLOG_MESSAGES`] and [`DEFAULT_BACKLOG_BYTES`]. In memory nothing is held
    /// and no size is refused.
    pub fn backlog(mut self, messages: usize, bytes: usize) -> Self {
        self.backlog_messages = messages.max(1);
        self.backlog_bytes = bytes.max(1);
        self
    }

    /// Called when the broker becomes unreachable, when it is back, and when it refuses a
    /// message (a line goes to stderr either way). Defaults to nothing more.
    ///
    /// It runs on the thread that publishes to the broker, which holds every broadcast of this
    /// node while it runs: return quickly. It must not block or wait for the broker (no
    /// [`Rooms::join`] or [`Rooms::presence`] with Redis: each is a broker call); sending the
    /// status to a channel, logging, or reading [`Rooms::count`] / [`Rooms::backlog`] is fine.
    pub fn on_outage(mut self, hook: impl Fn(&BrokerStatus) + Send + Sync + 'static) -> Self {
        self.on_outage = Arc::new(hook);
        self
    }

    /// How a delivery becomes the frame each member receives (called once per message and
    /// node, not per member). Defaults to the message as broadcast.
    ///
    /// It runs while the room's lock is held, which keeps one order for every member: in
    /// memory within [`Rooms::broadcast`] (and a join's replay), with Redis on the one reader
    /// thread every room of this node shares. So it may read [`Rooms::count`],
    /// [`Rooms::names`], [`Rooms::node`] and, in memory, [`Rooms::presence`] (none of them
    /// waits for a room's lock), but it must not:
    ///
    /// - join, leave or broadcast from inside the hook (in memory a broadcast to the room it is
    ///   formatting for, or a join or leave of it, waits for the lock it holds: forever);
    /// - block or wait for the broker (no I/O that can stall, no [`Rooms::presence`] or
    ///   [`Rooms::join`] with Redis): with Redis every room's deliveries on this node wait for
    ///   it.
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

    /// In memory only: a room whose last member left keeps its history for `after` (so a
    /// client that reconnects within it resumes), and at most `max` emptied rooms are kept,
    /// the oldest removed first. A removed room's history is gone: a join with one of its
    /// offsets is told of the gap. Checked lazily on the calls, without a thread. Defaults to
    /// 1,000 rooms and 60 s.
    pub fn idle_rooms(mut self, max: usize, after: Duration) -> Self {
        self.idle_max = max;
        self.idle_for = after;
        self
    }

    /// Rooms kept in this process only.
    pub fn in_memory(self) -> Rooms {
        self.build(Backend::Memory)
    }

    /// Rooms kept in the Redis at `url` (e.g. `redis://127.0.0.1:6379/`). Fails when the URL is
    /// invalid; an unreachable broker is not an error here (broadcasts are held until it is
    /// up).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(self, url: &str) -> Result<Rooms, RoomsError> {
        let broker = super::redis::Broker::single(url).map_err(RoomsError::Broker)?;
        Ok(self.with_broker(broker))
    }

    /// Rooms kept in the Redis Cluster reachable at `urls` (any of its nodes). Every key of a
    /// room shares one hash slot, so each room lives on one shard (docs/redis-cluster.md).
    /// Fails when a URL is invalid or the list is empty.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_cluster(self, urls: &[&str]) -> Result<Rooms, RoomsError> {
        let broker = super::redis::Broker::cluster(urls).map_err(RoomsError::Broker)?;
        Ok(self.with_broker(broker))
    }

    #[cfg(feature = "redis")]
    fn with_broker(mut self, broker: super::redis::Broker) -> Rooms {
        // A stream keeps at least one entry (`MAXLEN ~ 0` would lose the resume position).
        self.retain_count = self.retain_count.max(1);
        let rooms = self.build(Backend::Redis(Box::new(broker)));
        if let Backend::Redis(broker) = &rooms.shared.backend {
            broker.start(&rooms.shared);
        }
        rooms
    }

    fn build(self, backend: Backend) -> Rooms {
        let stopped = Arc::new(AtomicBool::new(false));
        Rooms {
            _stop: Arc::new(StopOnDrop(stopped.clone())),
            shared: Arc::new(Shared {
                stopped,
                node: self.node,
                boot: rand::random(),
                rooms: Mutex::new(HashMap::new()),
                format: self.format,
                gap: self.gap,
                retain_count: self.retain_count,
                retain_age: self.retain_age,
                max_backpressure: self.max_backpressure,
                backlog: (self.backlog_messages, self.backlog_bytes),
                on_outage: self.on_outage,
                idle_max: self.idle_max,
                idle_for: self.idle_for,
                sweep: Mutex::new((Instant::now(), self.idle_max.max(16))),
                backend,
            }),
        }
    }
}

/// How one member joins: the identity presence shows, and where its replay starts.
///
/// ```
/// use syncws::rooms::{Join, Offset};
/// let since = Offset::parse("00ab:0-7");
/// let join = Join::new().identity("ann").since(since);
/// # let _ = join;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Join {
    pub(super) identity: String,
    pub(super) since: Option<Offset>,
}

impl Join {
    /// No identity (an empty one in presence), no replay.
    pub fn new() -> Join {
        Join::default()
    }

    /// The identity [`Rooms::presence`] lists the member under (e.g. a user name).
    pub fn identity(mut self, identity: &str) -> Join {
        self.identity = identity.to_owned();
        self
    }

    /// Replays every retained message after `offset` first (preceded by the gap message when
    /// that history is incomplete), then live messages, none twice. `None` replays nothing.
    pub fn since(mut self, offset: impl Into<Option<Offset>>) -> Join {
        self.since = offset.into();
        self
    }
}
