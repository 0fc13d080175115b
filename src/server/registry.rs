//! The server's live connections: how many, which, and their threads, for the connection cap
//! and for shutdown.

use crate::split::Writer;
use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

/// A connection's stage.
pub(crate) enum Stage {
    /// Reading the request head; shutdown wakes it through this handle.
    Handshaking(Arc<TcpStream>),
    /// Upgraded; shutdown sends 1001 through the writer.
    Open(Writer),
}

struct Slot {
    stage: Stage,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
pub(crate) struct Live {
    slots: HashMap<u64, Slot>,
    /// Threads that have finished, to be joined (instantly) by the accept loop or shutdown.
    finished: Vec<JoinHandle<()>>,
    pub(crate) shutting_down: bool,
    next_id: u64,
}

impl Live {
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Connections other than the calling thread's own: a handler (or `on_end`) that shuts the
    /// server down cannot wait for its own connection, which ends only when it returns.
    fn others(&self) -> usize {
        let me = std::thread::current().id();
        let mine = |slot: &Slot| slot.thread.as_ref().is_some_and(|t| t.thread().id() == me);
        self.slots.values().filter(|slot| !mine(slot)).count()
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    live: Mutex<Live>,
    changed: Condvar,
}

impl Registry {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves a slot for a new connection; the caller spawns its thread with the lock held and
    /// calls [`set_thread`](Self::set_thread), so the thread cannot finish before it is known.
    pub(crate) fn insert(live: &mut Live, stream: Arc<TcpStream>) -> u64 {
        live.next_id += 1;
        let id = live.next_id;
        live.slots.insert(
            id,
            Slot {
                stage: Stage::Handshaking(stream),
                thread: None,
            },
        );
        id
    }

    pub(crate) fn set_thread(live: &mut Live, id: u64, thread: JoinHandle<()>) {
        if let Some(slot) = live.slots.get_mut(&id) {
            slot.thread = Some(thread);
        }
    }

    /// Marks a connection upgraded. Returns false if the server is shutting down.
    pub(crate) fn opened(&self, id: u64, writer: &Writer) -> bool {
        let mut live = self.lock();
        if let Some(slot) = live.slots.get_mut(&id) {
            slot.stage = Stage::Open(writer.clone());
        }
        !live.shutting_down
    }

    /// Called by a connection's thread as it ends.
    pub(crate) fn remove(&self, id: u64) {
        let mut live = self.lock();
        if let Some(slot) = live.slots.remove(&id) {
            live.finished.extend(slot.thread);
        }
        self.changed.notify_all();
    }

    /// Joins threads that have finished (each join returns at once).
    pub(crate) fn reap(&self) {
        let finished = std::mem::take(&mut self.lock().finished);
        for thread in finished {
            let _ = thread.join();
        }
    }

    /// Whether the calling thread is one of this server's connection threads.
    pub(crate) fn on_connection_thread(&self) -> bool {
        let live = self.lock();
        live.others() < live.len()
    }

    /// Marks the server shutting down and returns what to notify.
    pub(crate) fn begin_shutdown(&self) -> (Vec<Arc<TcpStream>>, Vec<Writer>) {
        let mut live = self.lock();
        live.shutting_down = true;
        let mut handshaking = Vec::new();
        let mut open = Vec::new();
        for slot in live.slots.values() {
            match &slot.stage {
                Stage::Handshaking(stream) => handshaking.push(Arc::clone(stream)),
                Stage::Open(writer) => open.push(writer.clone()),
            }
        }
        (handshaking, open)
    }

    /// Waits until no connection is left (but the caller's own, when a connection thread calls)
    /// or `deadline` passes; returns whether none is left.
    pub(crate) fn wait_empty(&self, deadline: Option<Instant>) -> bool {
        let mut live = self.lock();
        while live.others() > 0 {
            match deadline {
                None => live = self.changed.wait(live).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    live = self
                        .changed
                        .wait_timeout(live, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        true
    }
}
