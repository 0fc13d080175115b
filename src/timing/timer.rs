//! The one helper thread that drives the timers of all a server's connections: heartbeats, the
//! deadline for receiving a whole message, and the idle limit.
//!
//! Each connection's timers are a [`Watch`](crate::timing::watch::Watch); this
//! thread keeps their deadlines in a binary heap and sleeps on a condition variable until the
//! earliest. Readers never message it: they store the time bytes last arrived in an atomic, and
//! the thread reads it when a deadline comes. So a busy connection costs the thread nothing, and
//! an idle one a wake-up per interval.
//!
//! The same thread also enforces one-shot deadlines on sockets ([`HeartbeatTimer::cut_at`]): at
//! the deadline it shuts the socket down, which wakes any read or write blocked on it. That is how
//! the server bounds a whole HTTP answer or the close wait by one total deadline, whatever the
//! peer does per system call.
//!
//! What the thread itself waits for: the condition variable (until the earliest deadline or a
//! change), the timers' mutex (held only for map and heap updates, never across I/O), and the
//! writes of a ping or a failing close frame, which never wait for a writer's lock: a ping is
//! one write attempt of at most a millisecond, and what the peer could not take then is tried
//! again every 100 ms (`Key::Retry`) until it goes out or the pong deadline fails the peer; a
//! failing close frame is bounded by `SHARED_THREAD_WRITE_BOUND`. A `shutdown` of a socket does
//! not wait.
//!
//! Removing a connection or a cut-off drops its entry at once; its deadline in the heap is left
//! to be skipped, and the heap is rebuilt whenever such stale deadlines outnumber the live ones,
//! so churn under long timeouts cannot make it grow.
//!
//! Stop path: [`HeartbeatTimer`]'s `Drop` sets the stop flag, wakes the thread and joins it.

use crate::proto::close::CloseCode;
use crate::split::Writer;
use crate::timing::watch::{Expired, Verdict, Watch, WatchConfig};
use crate::websocket::ending::EndCause;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Heartbeat settings: ping a connection quiet for `interval`; fail it if nothing arrives within
/// `timeout` of the ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Quiet time before a ping.
    pub interval: Duration,
    /// How long to wait for any frame after the ping.
    pub timeout: Duration,
}

struct Entry {
    watch: Watch,
    writer: Writer,
    /// The deadline last put in the heap for this entry; others are stale.
    due: Instant,
}

impl From<HeartbeatConfig> for WatchConfig {
    fn from(config: HeartbeatConfig) -> WatchConfig {
        WatchConfig {
            heartbeat: Some((config.interval, config.timeout)),
            ..WatchConfig::default()
        }
    }
}

/// What a deadline in the heap is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    /// A watched connection, by writer id.
    Watch(u64),
    /// A one-shot cut-off, by its own id.
    Cut(u64),
    /// Another try at output a ping left unowned (the peer took none of it then), by writer id.
    Retry(u64),
}

/// How soon a ping the peer could not take is tried again: until it goes out or the pong
/// deadline fails the peer, so a peer that was only briefly not reading still gets its ping.
const STRANDED_RETRY: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Timers {
    /// Deadlines; one whose entry is gone or whose deadline moved is stale and skipped.
    heap: BinaryHeap<Reverse<(Instant, Key)>>,
    entries: HashMap<u64, Entry>,
    /// Sockets to shut down at their deadline.
    cuts: HashMap<u64, Arc<TcpStream>>,
    next_cut: u64,
    stop: bool,
}

impl Timers {
    fn is_live(&self, at: Instant, key: Key) -> bool {
        match key {
            Key::Watch(id) => self.entries.get(&id).is_some_and(|e| e.due == at),
            Key::Cut(id) => self.cuts.contains_key(&id),
            Key::Retry(id) => self.entries.contains_key(&id),
        }
    }

    /// Drops stale deadlines once they outnumber the live ones (amortised: each rebuild follows
    /// at least as many removals as it keeps).
    fn compact(&mut self) {
        let live = self.entries.len() + self.cuts.len();
        if self.heap.len() <= 2 * live + 64 {
            return;
        }
        let mut heap = std::mem::take(&mut self.heap);
        heap.retain(|Reverse((at, key))| self.is_live(*at, *key));
        self.heap = heap;
    }

    /// Pushes a deadline; returns whether it is now the earliest (the thread must wake).
    fn push(&mut self, at: Instant, key: Key) -> bool {
        let earliest = self.heap.peek().map(|Reverse((first, _))| *first);
        self.heap.push(Reverse((at, key)));
        earliest.is_none_or(|first| at < first)
    }
}

/// A pending [`HeartbeatTimer::cut_at`]; dropping it cancels the cut-off.
pub(crate) struct Cutoff<'a> {
    timer: &'a HeartbeatTimer,
    id: u64,
}

impl Drop for Cutoff<'_> {
    fn drop(&mut self) {
        let mut timers = lock(&self.timer.state.timers);
        timers.cuts.remove(&self.id);
        timers.compact();
    }
}

struct State {
    timers: Mutex<Timers>,
    wake: Condvar,
}

/// Owns the heartbeat thread.
pub(crate) struct HeartbeatTimer {
    state: Arc<State>,
    config: WatchConfig,
    thread: Option<JoinHandle<()>>,
}

impl HeartbeatTimer {
    /// Starts the thread, named `syncws-heartbeat`.
    pub(crate) fn start(config: impl Into<WatchConfig>) -> std::io::Result<HeartbeatTimer> {
        let config = config.into();
        let state = Arc::new(State {
            timers: Mutex::new(Timers::default()),
            wake: Condvar::new(),
        });
        let thread_state = Arc::clone(&state);
        let thread = thread::Builder::new()
            .name("syncws-heartbeat".into())
            .stack_size(64 * 1024)
            .spawn(move || run(&thread_state))?;
        Ok(HeartbeatTimer {
            state,
            config,
            thread: Some(thread),
        })
    }

    /// The process-wide timer for client connections, started on first use. Its thread, named
    /// `syncws-heartbeat`, sleeps while no connection is watched and lives until the process exits.
    // Unused since `Reconnecting` owns its timer (issue 17.7); kept for other callers.
    #[allow(dead_code)]
    pub(crate) fn shared() -> std::io::Result<&'static HeartbeatTimer> {
        static SHARED: std::sync::OnceLock<HeartbeatTimer> = std::sync::OnceLock::new();
        if let Some(timer) = SHARED.get() {
            return Ok(timer);
        }
        let idle = HeartbeatConfig {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
        };
        let timer = HeartbeatTimer::start(idle)?;
        // A race between two first users starts two threads; the loser's is stopped on drop.
        Ok(SHARED.get_or_init(|| timer))
    }

    /// Starts watching a connection with the timer's own settings.
    pub(crate) fn add(&self, writer: &Writer) {
        self.add_with(writer, self.config);
    }

    /// Starts watching a connection with its own settings.
    pub(crate) fn add_with(&self, writer: &Writer, config: impl Into<WatchConfig>) {
        let now = Instant::now();
        let watch = Watch::new(config.into(), now);
        let Some(deadline) = watch.next_deadline(now, &writer.observed()) else {
            return;
        };
        let mut timers = lock(&self.state.timers);
        timers.entries.insert(
            writer.id(),
            Entry {
                watch,
                writer: writer.clone(),
                due: deadline,
            },
        );
        if timers.push(deadline, Key::Watch(writer.id())) {
            self.state.wake.notify_one();
        }
    }

    /// Stops watching a connection: its entry (and the writer it holds) goes at once.
    pub(crate) fn remove(&self, writer: &Writer) {
        let mut timers = lock(&self.state.timers);
        timers.entries.remove(&writer.id());
        timers.compact();
    }

    /// Shuts `socket` down (both directions) at `at`, unless the returned guard is dropped
    /// first: one total deadline for a sequence of reads and writes, each of which would
    /// otherwise only have a per-call timeout. A blocked read or write on it wakes with an error
    /// (over TLS too: the TLS stream reads and writes this socket).
    pub(crate) fn cut_at(&self, socket: &Arc<TcpStream>, at: Instant) -> Cutoff<'_> {
        let mut timers = lock(&self.state.timers);
        timers.next_cut += 1;
        let id = timers.next_cut;
        timers.cuts.insert(id, Arc::clone(socket));
        if timers.push(at, Key::Cut(id)) {
            self.state.wake.notify_one();
        }
        Cutoff { timer: self, id }
    }

    /// How many connections are watched.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.state.timers).entries.len()
    }

    /// How many deadlines the heap holds, stale ones included.
    #[cfg(test)]
    pub(crate) fn heap_len(&self) -> usize {
        lock(&self.state.timers).heap.len()
    }
}

impl Drop for HeartbeatTimer {
    fn drop(&mut self) {
        lock(&self.state.timers).stop = true;
        self.state.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(timers: &Mutex<Timers>) -> std::sync::MutexGuard<'_, Timers> {
    timers.lock().unwrap_or_else(|e| e.into_inner())
}

/// The thread: wait for the earliest deadline, act on every due connection, repeat.
fn run(state: &State) {
    let mut due: Vec<(Verdict, Writer)> = Vec::new();
    let mut cut: Vec<Arc<TcpStream>> = Vec::new();
    let mut retry: Vec<Writer> = Vec::new();
    let mut stranded: Vec<u64> = Vec::new();
    let mut timers = lock(&state.timers);
    loop {
        if timers.stop {
            return;
        }
        let now = Instant::now();
        match timers.heap.peek() {
            None => {
                timers = state.wake.wait(timers).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            Some(Reverse((at, _))) if *at > now => {
                let wait = *at - now;
                timers = state
                    .wake
                    .wait_timeout(timers, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            Some(_) => {}
        }
        // Everything due now.
        while let Some(Reverse((at, key))) = timers.heap.peek().copied() {
            if at > now {
                break;
            }
            timers.heap.pop();
            let id = match key {
                Key::Watch(id) => id,
                Key::Cut(id) => {
                    cut.extend(timers.cuts.remove(&id));
                    continue;
                }
                Key::Retry(id) => {
                    if let Some(entry) = timers.entries.get(&id) {
                        retry.push(entry.writer.clone());
                    }
                    continue;
                }
            };
            let Some(entry) = timers.entries.get_mut(&id) else {
                continue; // connection gone
            };
            if entry.due != at {
                continue; // a stale deadline
            }
            let seen = entry.writer.observed();
            let verdict = entry.watch.handle_timeout(now, &seen);
            let next = entry.watch.next_deadline(now, &seen);
            match (verdict, next) {
                (Verdict::Fail(_), _) | (_, None) => {
                    let entry = timers.entries.remove(&id).expect("present");
                    if verdict != Verdict::None {
                        due.push((verdict, entry.writer));
                    }
                }
                (_, Some(next)) => {
                    entry.due = next;
                    if verdict == Verdict::SendPing {
                        due.push((verdict, entry.writer.clone()));
                    }
                    timers.heap.push(Reverse((next, Key::Watch(id))));
                }
            }
        }
        // The writes happen without the lock, so adding and removing connections never waits
        // for a socket; each is bounded by SHARED_THREAD_WRITE_BOUND.
        drop(timers);
        for socket in cut.drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        for writer in retry.drain(..) {
            if writer.retry_stranded() {
                stranded.push(writer.id());
            }
        }
        for (verdict, writer) in due.drain(..) {
            match verdict {
                Verdict::SendPing => {
                    if !writer.ping_from_shared_thread() && writer.is_stranded() {
                        stranded.push(writer.id());
                    }
                }
                Verdict::Fail(Expired::Heartbeat) => writer.fail(
                    EndCause::HeartbeatTimeout,
                    CloseCode::InternalError,
                    "heartbeat timeout",
                ),
                Verdict::Fail(Expired::Message) => writer.fail(
                    EndCause::MessageTimeout,
                    CloseCode::Policy,
                    "message took too long",
                ),
                Verdict::Fail(Expired::Idle) => {
                    writer.fail(EndCause::IdleTimeout, CloseCode::GoingAway, "idle timeout")
                }
                Verdict::None => {}
            }
        }
        timers = lock(&state.timers);
        let again = Instant::now() + STRANDED_RETRY;
        for id in stranded.drain(..) {
            if timers.entries.contains_key(&id) {
                timers.heap.push(Reverse((again, Key::Retry(id))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Role;
    use crate::proto::config::Config;
    use crate::websocket::WebSocket;
    use std::net::{TcpListener, TcpStream};

    /// One thread watches many connections: the ones whose peers answer stay, the silent ones
    /// are failed with the typed cause and forgotten.
    #[test]
    fn one_thread_keeps_live_connections_and_fails_silent_ones() {
        const PAIRS: usize = 12;
        let timer = HeartbeatTimer::start(HeartbeatConfig {
            interval: Duration::from_millis(100),
            // Generous, so that a live peer's thread answers in time on a loaded machine.
            timeout: Duration::from_secs(1),
        })
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut writers = Vec::new();
        let mut threads = Vec::new();
        let mut silent_peers = Vec::new();
        for i in 0..PAIRS {
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            let (mut reader, writer) =
                WebSocket::from_stream(server, Role::Server, Config::default())
                    .split()
                    .unwrap();
            timer.add(&writer);
            writers.push(writer);
            // The server side reads, so whatever arrives counts as life.
            threads.push(thread::spawn(move || while reader.read().is_ok() {}));
            if i % 2 == 0 {
                // A live peer: its reads answer pings, until the test is over.
                let mut ws = WebSocket::from_stream(client, Role::Client, Config::default());
                ws.get_ref()
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                threads.push(thread::spawn(move || while ws.read().is_ok() {}));
            } else {
                silent_peers.push(client);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while timer.len() > PAIRS / 2 {
            assert!(Instant::now() < deadline, "silent peers were never failed");
            thread::sleep(Duration::from_millis(20));
        }
        // Three more intervals: the live ones are pinged and answer.
        thread::sleep(Duration::from_millis(300));
        assert_eq!(timer.len(), PAIRS / 2);
        for (i, writer) in writers.iter().enumerate() {
            let expected = (i % 2 == 1).then_some(EndCause::HeartbeatTimeout);
            assert_eq!(writer.end_cause(), expected, "connection {i}");
        }
        for writer in &writers {
            writer.abort();
        }
        for thread in threads {
            thread.join().unwrap();
        }
        drop(timer);
    }

    /// Pings to peers whose send buffers are full must not hold the timer thread: with each
    /// ping waiting up to 50 ms, 160 of them made one round last 8 s, and every other deadline
    /// (heartbeats, cut-offs) waited behind it.
    #[test]
    fn pings_to_stalled_peers_do_not_delay_other_deadlines() {
        use socket2::SockRef;
        use std::io::{ErrorKind, Read, Write};
        const STALLED: usize = 160;
        let timer = HeartbeatTimer::start(HeartbeatConfig {
            interval: Duration::from_millis(200),
            timeout: Duration::from_secs(60),
        })
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut kept = Vec::new();
        for _ in 0..STALLED {
            let client = TcpStream::connect(addr).unwrap();
            let (server, _) = listener.accept().unwrap();
            SockRef::from(&client).set_recv_buffer_size(4096).unwrap();
            SockRef::from(&server).set_send_buffer_size(4096).unwrap();
            // Fill the path to the peer, which never reads, until nothing more goes in even
            // after the loopback has moved what it could: the next write blocks.
            server.set_nonblocking(true).unwrap();
            let chunk = [0u8; 16 * 1024];
            for _ in 0..100 {
                let mut wrote = 0;
                loop {
                    match (&server).write(&chunk) {
                        Ok(n) => wrote += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{e}"),
                    }
                }
                if wrote == 0 {
                    break;
                }
                thread::sleep(Duration::from_millis(2));
            }
            server.set_nonblocking(false).unwrap();
            let (reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
                .split()
                .unwrap();
            kept.push((client, reader, writer));
        }
        // All due together, 200 ms from now.
        for (_, _, writer) in &kept {
            timer.add(writer);
        }
        thread::sleep(Duration::from_millis(400));
        // A deadline due at once, while the pings are (or would be) under way.
        let (mut probe_client, probe_server) = {
            let client = TcpStream::connect(addr).unwrap();
            let (server, _) = listener.accept().unwrap();
            (client, Arc::new(server))
        };
        probe_client
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let asked = Instant::now();
        let _cut = timer.cut_at(&probe_server, asked);
        let mut byte = [0u8];
        assert_eq!(probe_client.read(&mut byte).unwrap(), 0);
        let took = asked.elapsed();
        assert!(
            took < Duration::from_secs(4),
            "a due deadline waited {took:?}"
        );
        for (_, _, writer) in &kept {
            writer.abort();
        }
    }

    /// Connections that come and go long before their deadlines leave nothing behind: neither
    /// entries nor heap deadlines grow with churn.
    #[test]
    fn churn_under_long_timeouts_leaves_no_deadlines_behind() {
        let timer = HeartbeatTimer::start(HeartbeatConfig {
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
        })
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        for _ in 0..2_000 {
            // Each split is a new connection to the timer (a new writer id).
            let (_reader, writer) = WebSocket::from_stream(
                server.try_clone().unwrap(),
                Role::Server,
                Config::default(),
            )
            .split()
            .unwrap();
            timer.add(&writer);
            timer.remove(&writer);
        }
        assert_eq!(timer.len(), 0);
        assert!(
            timer.heap_len() <= 100,
            "{} deadlines kept",
            timer.heap_len()
        );
    }
}
