//! Round trips of a split connection's pings: the heartbeat thread's and [`Writer::ping`]'s.
//!
//! The writer side records when a ping went out and with which payload; the reader, which sees
//! the pong, records the round trip and wakes a [`Writer::ping`] waiting for it. Each pong is
//! matched to its own ping by payload; a pong also answers earlier pings still waiting, since a
//! peer may answer a burst of pings for the latest one only (RFC 6455 §5.5.3).

use super::Writer;
use crate::error::Error;
use crate::proto::message::Message;
use std::collections::VecDeque;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long [`Writer::ping`] waits for its pong when no heartbeat timeout is set.
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// How many pings awaiting their pong are remembered; older ones are still answered by a later
/// pong (see [`Pings::pong`]).
const OUTSTANDING_MAX: usize = 16;

/// How many pong arrivals are remembered for waiters that have not yet woken to read theirs.
const ARRIVALS_MAX: usize = 32;

#[derive(Debug, Default)]
pub(crate) struct Pings {
    state: Mutex<PingState>,
    answered: Condvar,
}

#[derive(Debug, Default)]
struct PingState {
    /// Pings awaiting their pong, oldest first: number, payload, when each went out.
    outstanding: VecDeque<(u64, Vec<u8>, Instant)>,
    next_id: u64,
    /// Pongs that answered our pings, oldest first: the number answered and when it arrived.
    arrivals: VecDeque<(u64, Instant)>,
    /// The latest answered ping's round trip.
    last_rtt: Option<Duration>,
    /// The heartbeat timeout, if a heartbeat watches this connection: bounds `Writer::ping`.
    timeout: Option<Duration>,
    /// The connection ended: waiters stop.
    ended: bool,
}

impl Pings {
    fn lock(&self) -> MutexGuard<'_, PingState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A ping is about to go out: its number, payload (empty for the heartbeat's pings, the
    /// number for [`Writer::ping`]'s, so that each finds its own pong) and when it went out.
    pub(crate) fn sent(&self, numbered: bool) -> (u64, Vec<u8>, Instant) {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let payload = if numbered {
            id.to_be_bytes().to_vec()
        } else {
            Vec::new()
        };
        let at = Instant::now();
        if state.outstanding.len() == OUTSTANDING_MAX {
            state.outstanding.pop_front();
        }
        state.outstanding.push_back((id, payload.clone(), at));
        (id, payload, at)
    }

    /// The reader saw a pong with `payload`: whether it answers one of our pings (then it is
    /// ours, not the caller's). A pong answers its own ping and every earlier one still
    /// waiting: a peer may answer a burst of pings for the latest only (RFC 6455 §5.5.3), and it
    /// answers in order.
    pub(crate) fn pong(&self, payload: &[u8]) -> bool {
        let mut state = self.lock();
        // The latest with this payload (the heartbeat's pings all have the same, empty one).
        let Some(index) = state
            .outstanding
            .iter()
            .rposition(|(_, expected, _)| expected.as_slice() == payload)
        else {
            return false;
        };
        let now = Instant::now();
        let (id, _, sent) = state.outstanding[index];
        state.outstanding.drain(..=index);
        state.last_rtt = Some(now.saturating_duration_since(sent));
        if state.arrivals.len() == ARRIVALS_MAX {
            state.arrivals.pop_front();
        }
        state.arrivals.push_back((id, now));
        drop(state);
        self.answered.notify_all();
        true
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
        self.lock().last_rtt
    }

    /// Waits until ping `id`, sent at `sent`, is answered, the connection ends, or `timeout`.
    /// Its round trip runs from `sent` to the first pong that answers it: its own, or one for a
    /// later ping when the peer answered only that (never a later ping's own round trip).
    fn wait(&self, id: u64, sent: Instant, timeout: Duration) -> Result<Duration, Error> {
        let until = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        loop {
            // Arrivals are in order of the numbers they answer: the first at or past ours.
            if let Some((_, at)) = state.arrivals.iter().find(|(answered, _)| *answered >= id) {
                return Ok(at.saturating_duration_since(sent));
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
    /// round trip of this ping: from when it was queued to when its pong arrived (or the pong
    /// of a later ping, if the peer answered only that one, RFC 6455 §5.5.3), whatever other
    /// pings (the heartbeat's, another thread's) are in flight. The reader must be reading meanwhile (on its own thread): the pong reaches
    /// this call through it. Waits at most the heartbeat timeout, 20 s without a heartbeat.
    ///
    /// Errors: [`Error::Io`] with `TimedOut` when no pong came in time (the connection stays
    /// open); [`Error::AlreadyClosed`] when the connection ended; errors of
    /// [`send`](Self::send).
    pub fn ping(&self) -> Result<Duration, Error> {
        let pings = &self.shared.pings;
        let (id, payload, sent) = pings.sent(true);
        self.send(Message::Ping(payload))?;
        let timeout = pings.lock().timeout.unwrap_or(PING_TIMEOUT);
        pings.wait(id, sent, timeout)
    }

    /// The round trip of the last ping answered (heartbeat or [`ping`](Self::ping)), or `None`
    /// before the first answer.
    pub fn latency(&self) -> Option<Duration> {
        self.shared.pings.latency()
    }
}

#[cfg(test)]
mod tests {
    use super::Pings;
    use std::time::Duration;

    const GAP: Duration = Duration::from_millis(60);

    #[test]
    fn each_ping_gets_its_own_round_trip_not_a_later_pings() {
        let pings = Pings::default();
        let (first, first_payload, first_sent) = pings.sent(true);
        std::thread::sleep(GAP);
        let (second, second_payload, second_sent) = pings.sent(true);
        assert!(pings.pong(&first_payload));
        assert!(pings.pong(&second_payload));
        let wait = Duration::from_secs(5);
        let first_rtt = pings.wait(first, first_sent, wait).unwrap();
        let second_rtt = pings.wait(second, second_sent, wait).unwrap();
        assert!(first_rtt >= GAP, "first {first_rtt:?}");
        assert!(
            second_rtt < first_rtt,
            "second {second_rtt:?} first {first_rtt:?}"
        );
    }

    #[test]
    fn a_heartbeat_pong_answers_the_heartbeat_and_earlier_pings_only() {
        let pings = Pings::default();
        let (user, _, user_sent) = pings.sent(true);
        std::thread::sleep(GAP);
        let (_, heartbeat_payload, _) = pings.sent(false);
        let (later, later_payload, later_sent) = pings.sent(true);
        // The peer answered only the heartbeat's ping (RFC 6455 §5.5.3): it answers the ping
        // before it too, timed from that ping's own send.
        assert!(pings.pong(&heartbeat_payload));
        let user_rtt = pings.wait(user, user_sent, Duration::from_secs(5)).unwrap();
        assert!(user_rtt >= GAP, "{user_rtt:?}");
        // The later ping still waits for its own pong.
        let waited = pings.wait(later, later_sent, Duration::from_millis(20));
        assert!(matches!(waited, Err(crate::Error::Io(_))), "{waited:?}");
        assert!(pings.pong(&later_payload));
        assert!(
            pings
                .wait(later, later_sent, Duration::from_secs(5))
                .is_ok()
        );
        // A pong nobody asked for is the caller's.
        assert!(!pings.pong(b"unknown"));
    }
}
