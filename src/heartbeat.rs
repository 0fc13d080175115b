//! The one helper thread that drives the heartbeats of all a server's connections.
//!
//! Each connection's schedule is a [`proto::heartbeat::Heartbeat`](crate::proto::heartbeat); this
//! thread keeps their deadlines in a binary heap and sleeps on a condition variable until the
//! earliest. Readers never message it: they store the time bytes last arrived in an atomic, and
//! the thread reads it when a deadline comes. So a busy connection costs the thread nothing, and
//! an idle one a wake-up per interval.
//!
//! Stop path: [`HeartbeatTimer`]'s `Drop` sets the stop flag, wakes the thread and joins it.

use crate::ending::EndCause;
use crate::proto::close::CloseCode;
use crate::proto::heartbeat::{Action, Heartbeat};
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
    schedule: Heartbeat,
    writer: Writer,
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
    config: HeartbeatConfig,
    thread: Option<JoinHandle<()>>,
}

impl HeartbeatTimer {
    /// Starts the thread, named `syncws-heartbeat`.
    pub(crate) fn start(config: HeartbeatConfig) -> std::io::Result<HeartbeatTimer> {
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
    pub(crate) fn add_with(&self, writer: &Writer, config: HeartbeatConfig) {
        let now = Instant::now();
        let schedule = Heartbeat::new(config.interval, config.timeout, now);
        let deadline = schedule.poll_timeout();
        let mut timers = lock(&self.state.timers);
        let earliest = timers.heap.peek().map(|Reverse((at, _))| *at);
        timers.heap.push(Reverse((deadline, writer.id())));
        timers.entries.insert(
            writer.id(),
            Entry {
                schedule,
                writer: writer.clone(),
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
    let mut due: Vec<(Action, Writer)> = Vec::new();
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
            if entry.schedule.poll_timeout() != at {
                continue; // a stale deadline
            }
            entry.schedule.on_activity(entry.writer.last_activity());
            let action = entry.schedule.handle_timeout(now);
            let next = entry.schedule.poll_timeout();
            match action {
                Action::Fail => {
                    let entry = timers.entries.remove(&id).expect("present");
                    due.push((action, entry.writer));
                }
                Action::SendPing => {
                    due.push((action, entry.writer.clone()));
                    timers.heap.push(Reverse((next, id)));
                }
                Action::None => timers.heap.push(Reverse((next, id))),
            }
        }
        // The writes happen without the lock, so adding and removing connections never waits
        // for a socket; each is bounded by SHARED_THREAD_WRITE_BOUND.
        drop(timers);
        for (action, writer) in due.drain(..) {
            match action {
                Action::SendPing => {
                    writer.ping_from_shared_thread();
                }
                Action::Fail => writer.fail(
                    EndCause::HeartbeatTimeout,
                    CloseCode::InternalError,
                    "heartbeat timeout",
                ),
                Action::None => {}
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
