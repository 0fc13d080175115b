//! The fan-out thread: writes what rooms queued for members whose sockets did not take it at
//! once, so that no broadcaster waits for them.
//!
//! One thread for the whole process, started at the first member that falls behind, asleep on a
//! condition variable while nobody is behind. Why a thread at all: a blocking socket cannot say
//! when it has room again without an event loop, so someone must try; and why one: a try
//! never waits for the peer over TCP (elsewhere at most [`ATTEMPT`](super::ATTEMPT)), and a
//! member whose peer takes nothing is tried less and less often (from [`FIRST_RETRY`] doubling to
//! [`LAST_RETRY`], [`LAST_RETRY_CLOSING`] once it is being closed; any progress starts over), so
//! hundreds of stalled members cost the thread little and healthy members that fell behind for
//! a moment are caught up within milliseconds. Members due at once are tried in the order of
//! their pause, shortest first: those that made progress lately go before the stalled ones, whose
//! tries may each wait a clock tick where the transport cannot write without waiting.
//!
//! The thread holds members weakly: a connection that ends is forgotten. It never holds its own
//! lock while writing.

use super::Pump;
use crate::split::weak::WeakWriter;
use crate::split::writer::Writer;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The first retry after a try that left output unwritten.
const FIRST_RETRY: Duration = Duration::from_millis(1);

/// The longest pause between tries for a member whose peer takes nothing.
const LAST_RETRY: Duration = Duration::from_millis(50);

/// The same for a member being closed: nobody waits for its messages any more.
const LAST_RETRY_CLOSING: Duration = Duration::from_millis(250);

struct Member {
    writer: WeakWriter,
    /// When to try next.
    next: Instant,
    delay: Duration,
    /// The writer's last recorded write progress at the previous try.
    progress: Option<Instant>,
    /// Being closed for backpressure: cut TCP at this instant if the close is not out; each
    /// progress of the peer moves it to `grace` later.
    closing: Option<Instant>,
    grace: Duration,
    /// The close frame is out: cut TCP at this instant unless the connection ended first
    /// (RFC 6455 §7.1.1 lets the server close TCP once it has sent its close; a peer that never
    /// answers must not keep the connection's thread).
    end_by: Option<Instant>,
}

struct Drainer {
    members: Mutex<HashMap<u64, Member>>,
    wake: Condvar,
}

impl Drainer {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Member>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The thread's state, or `None` if it could not be started.
fn drainer() -> Option<&'static Drainer> {
    static DRAINER: OnceLock<Option<&'static Drainer>> = OnceLock::new();
    *DRAINER.get_or_init(|| {
        let drainer: &'static Drainer = Box::leak(Box::new(Drainer {
            members: Mutex::new(HashMap::new()),
            wake: Condvar::new(),
        }));
        thread::Builder::new()
            .name("syncws-fanout".into())
            .spawn(move || run(drainer))
            .ok()
            .map(|_| drainer)
    })
}

/// Puts `writer` on the thread's list: to write its queue, or (`closing`) to get its close frame
/// out, giving the peer that long to take something each time. Without the thread (it could not
/// start), what is queued waits for the next broadcast, and a member being closed is cut at once.
pub(in crate::split) fn watch(writer: &Writer, closing: Option<Duration>) {
    let Some(drainer) = drainer() else {
        if closing.is_some() {
            writer.abort();
        }
        return;
    };
    if closing.is_none() {
        let mut queue = writer.shared.outbox.lock();
        if queue.draining {
            return;
        }
        queue.draining = true;
    }
    let now = Instant::now();
    let mut members = drainer.lock();
    let member = members.entry(writer.id()).or_insert_with(|| Member {
        writer: writer.downgrade(),
        next: now,
        delay: FIRST_RETRY,
        progress: None,
        closing: None,
        grace: Duration::ZERO,
        end_by: None,
    });
    member.next = member.next.min(now + FIRST_RETRY);
    if let Some(grace) = closing {
        member.closing = Some(now + grace);
        member.grace = grace;
    }
    drop(members);
    drainer.wake.notify_one();
}

/// What one try left.
enum Outcome {
    /// Nothing more to do for this member.
    Finished,
    /// Try again soon (another thread was writing).
    Soon,
    /// The peer took less than offered; `progress` is its last recorded write progress.
    Behind(Option<Instant>),
    /// The close frame is on the wire: the connection must end by `end_by`.
    Closed { end_by: Instant },
    /// Nothing to do before this instant.
    WaitUntil(Instant),
}

/// A member to try in this round, as its entry stood when the round began.
struct Due {
    /// Its current pause between tries: short for those that made progress lately.
    pause: Duration,
    id: u64,
    writer: WeakWriter,
    closing: Option<Instant>,
    end_by: Option<Instant>,
}

fn run(drainer: &'static Drainer) {
    let mut due: Vec<Due> = Vec::new();
    loop {
        {
            let mut members = drainer.lock();
            loop {
                let now = Instant::now();
                match members.values().map(|m| m.next).min() {
                    None => {
                        members = drainer
                            .wake
                            .wait(members)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                    Some(next) if next > now => {
                        members = drainer
                            .wake
                            .wait_timeout(members, next - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    Some(_) => break,
                }
            }
            let now = Instant::now();
            due.extend(
                members
                    .iter()
                    .filter(|(_, m)| m.next <= now)
                    .map(|(id, m)| Due {
                        pause: m.delay,
                        id: *id,
                        writer: m.writer.clone(),
                        closing: m.closing,
                        end_by: m.end_by,
                    }),
            );
        }
        // Who made progress lately first.
        due.sort_unstable_by_key(|member| member.pause);
        for Due {
            id,
            writer: weak,
            closing,
            end_by,
            ..
        } in due.drain(..)
        {
            let outcome = match weak.upgrade() {
                None => Outcome::Finished,
                // A frame hook runs inside the try: one that panics ends its own connection,
                // never this thread, which every room's slow members depend on.
                Some(writer) => {
                    panic::catch_unwind(AssertUnwindSafe(|| try_member(&writer, closing, end_by)))
                        .unwrap_or_else(|_| {
                            writer.abort();
                            Outcome::Finished
                        })
                }
            };
            let mut members = drainer.lock();
            let now = Instant::now();
            match outcome {
                Outcome::Finished => {
                    // A broadcaster may have put the member back meanwhile (its queue found
                    // not draining, then the socket full): keep it then.
                    // Likewise a member whose close began after this try.
                    let back = members.get(&id).is_some_and(|m| m.closing != closing)
                        || closing.is_none()
                            && weak
                                .upgrade()
                                .is_some_and(|w| w.shared.outbox.lock().draining);
                    if !back {
                        members.remove(&id);
                    }
                }
                Outcome::Closed { end_by } => {
                    if let Some(member) = members.get_mut(&id) {
                        member.closing = None;
                        member.end_by = Some(end_by);
                        member.next = end_by;
                    }
                }
                Outcome::WaitUntil(at) => {
                    if let Some(member) = members.get_mut(&id) {
                        member.next = at;
                    }
                }
                Outcome::Soon => {
                    if let Some(member) = members.get_mut(&id) {
                        member.next = now + FIRST_RETRY;
                    }
                }
                Outcome::Behind(progress) => {
                    if let Some(member) = members.get_mut(&id) {
                        member.delay = if progress != member.progress {
                            if let Some(deadline) = &mut member.closing {
                                *deadline = (*deadline).max(now + member.grace);
                            }
                            FIRST_RETRY
                        } else {
                            let last = if member.closing.is_some() {
                                LAST_RETRY_CLOSING
                            } else {
                                LAST_RETRY
                            };
                            (member.delay * 2).min(last)
                        };
                        member.progress = progress;
                        member.next = now + member.delay;
                    }
                }
            }
        }
    }
}

fn try_member(writer: &Writer, closing: Option<Instant>, end_by: Option<Instant>) -> Outcome {
    if let Some(end_by) = end_by {
        if Instant::now() < end_by {
            return Outcome::WaitUntil(end_by);
        }
        // Still alive when the peer had its time to answer: only a cut wakes its reader.
        writer.abort();
        return Outcome::Finished;
    }
    if let Some(deadline) = closing {
        return if writer.push_close(deadline) {
            match Instant::now().checked_add(writer.shared.close_timeout) {
                Some(end_by) => Outcome::Closed { end_by },
                None => Outcome::Finished,
            }
        } else {
            Outcome::Behind(writer.observed().last_write_progress)
        };
    }
    match writer.pump() {
        Pump::Done | Pump::Gone => Outcome::Finished,
        Pump::Busy => Outcome::Soon,
        Pump::Stalled => Outcome::Behind(writer.observed().last_write_progress),
    }
}
