//! Round trips of a split connection's pings: the heartbeat thread's and [`Writer::ping`]'s.
//!
//! The writer side records when a ping went out and with which payload; the reader, which sees
//! the pong, records the round trip and wakes a [`Writer::ping`] waiting for it. Only the latest
//! ping is matched: a peer answers a burst of pings for the latest one only (RFC 6455 §5.5.3).

use super::Writer;
use crate::error::Error;
use crate::proto::message::Message;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long [`Writer::ping`] waits for its pong when no heartbeat timeout is set.
const PING_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
pub(crate) struct Pings {
    state: Mutex<PingState>,
    answered: Condvar,
}

#[derive(Debug, Default)]
struct PingState {
    /// The latest ping: its number, payload and when it went out.
    outstanding: Option<(u64, Vec<u8>, Instant)>,
    next_id: u64,
    /// The latest answered ping: its number and round trip.
    last_answer: Option<(u64, Duration)>,
    /// The heartbeat timeout, if a heartbeat watches this connection: bounds `Writer::ping`.
    timeout: Option<Duration>,
    /// The connection ended: waiters stop.
    ended: bool,
}

impl Pings {
    fn lock(&self) -> MutexGuard<'_, PingState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A ping is about to go out: its number and payload (empty for the heartbeat's pings, the
    /// number for [`Writer::ping`]'s, so that each finds its own pong).
    pub(crate) fn sent(&self, numbered: bool) -> (u64, Vec<u8>) {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let payload = if numbered {
            id.to_be_bytes().to_vec()
        } else {
            Vec::new()
        };
        state.outstanding = Some((id, payload.clone(), Instant::now()));
        (id, payload)
    }

    /// The reader saw a pong with `payload`: whether it answers our latest ping (then it is
    /// ours, not the caller's).
    pub(crate) fn pong(&self, payload: &[u8]) -> bool {
        let mut state = self.lock();
        if let Some((id, expected, sent)) = &state.outstanding
            && expected.as_slice() == payload
        {
            state.last_answer = Some((*id, sent.elapsed()));
            state.outstanding = None;
            drop(state);
            self.answered.notify_all();
            return true;
        }
        false
    }

    /// The connection ended: a waiting [`Writer::ping`] returns.
    pub(crate) fn end(&self) {
        self.lock().ended = true;
        self.answered.notify_all();
    }

    pub(crate) fn set_timeout(&self, timeout: Duration) {
        self.lock().timeout = Some(timeout);
    }

    /// The round trip of the latest answered ping.
    pub(crate) fn latency(&self) -> Option<Duration> {
        self.lock().last_answer.map(|(_, rtt)| rtt)
    }

    /// Waits until ping `id` (or a later one) is answered, the connection ends, or `timeout`.
    fn wait(&self, id: u64, timeout: Duration) -> Result<Duration, Error> {
        let until = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        loop {
            if let Some((answered, rtt)) = state.last_answer
                && answered >= id
            {
                return Ok(rtt);
            }
            if state.ended {
                return Err(Error::AlreadyClosed);
            }
            let left = until.map_or(Duration::from_secs(3600), |until| {
                until.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no pong within {timeout:?}"),
                )));
            }
            state = self
                .answered
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Writer {
    /// Sends a ping and waits until the [`Reader`](crate::Reader) sees its pong; returns the
    /// round trip. The reader must be reading meanwhile (on its own thread): the pong reaches
    /// this call through it. Waits at most the heartbeat timeout, 20 s without a heartbeat.
    ///
    /// Errors: [`Error::Io`] with `TimedOut` when no pong came in time (the connection stays
    /// open); [`Error::AlreadyClosed`] when the connection ended; errors of
    /// [`send`](Self::send).
    pub fn ping(&self) -> Result<Duration, Error> {
        let pings = &self.shared.pings;
        let (id, payload) = pings.sent(true);
        self.send(Message::Ping(payload))?;
        let timeout = pings.lock().timeout.unwrap_or(PING_TIMEOUT);
        pings.wait(id, timeout)
    }

    /// The round trip of the last ping answered (heartbeat or [`ping`](Self::ping)), or `None`
    /// before the first answer.
    pub fn latency(&self) -> Option<Duration> {
        self.shared.pings.latency()
    }
}
