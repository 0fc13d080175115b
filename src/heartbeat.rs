//! The one helper thread that drives the timers of all a server's connections: heartbeats, the
//! deadline for receiving a whole message, and the idle limit.
//!
//! Each connection's timers are a [`proto::watch::Watch`](crate::proto::watch); this
//! thread keeps their deadlines in a binary heap and sleeps on a condition variable until the
//! earliest. Readers never message it: they store the time bytes last arrived in an atomic, and
//! the thread reads it when a deadline comes. So a busy connection costs the thread nothing, and
//! an idle one a wake-up per interval.
//!
//! Stop path: [`HeartbeatTimer`]'s `Drop` sets the stop flag, wakes the thread and joins it.

use crate::ending::EndCause;
use crate::proto::close::CloseCode;
use crate::proto::watch::{Expired, Verdict, Watch, WatchConfig};
use crate::split::Writer;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
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

#[derive(Default)]
struct Timers {
    /// Deadlines; an entry whose connection is gone or whose deadline moved is skipped.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    entries: HashMap<u64, Entry>,
    stop: bool,
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
        let earliest = timers.heap.peek().map(|Reverse((at, _))| *at);
        timers.heap.push(Reverse((deadline, writer.id())));
        timers.entries.insert(
            writer.id(),
            Entry {
                watch,
                writer: writer.clone(),
                due: deadline,
            },
        );
        if earliest.is_none_or(|at| deadline < at) {
            self.state.wake.notify_one();
        }
    }

    /// Stops watching a connection (its heap entry is skipped when it comes up).
    pub(crate) fn remove(&self, writer: &Writer) {
        lock(&self.state.timers).entries.remove(&writer.id());
    }

    /// How many connections are watched.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.state.timers).entries.len()
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
        while let Some(Reverse((at, id))) = timers.heap.peek().copied() {
            if at > now {
                break;
            }
            timers.heap.pop();
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
                    timers.heap.push(Reverse((next, id)));
                }
            }
        }
        // The writes happen without the lock, so adding and removing connections never waits
        // for a socket; each is bounded by SHARED_THREAD_WRITE_BOUND.
        drop(timers);
        for (verdict, writer) in due.drain(..) {
            match verdict {
                Verdict::SendPing => {
                    writer.ping_from_shared_thread();
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::proto::Role;
    use crate::socket::WebSocket;
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
}
