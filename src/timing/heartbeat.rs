//! Heartbeat timing without a clock: when to ping a quiet peer and when to give up on it.
//!
//! The caller passes `now` in, asks [`Heartbeat::poll_timeout`] when to come back, and calls
//! [`Heartbeat::handle_timeout`] then. Nothing here sleeps or reads the time, so the schedule is
//! tested in simulated time.
//!
//! ```text
//! use std::time::{Duration, Instant};
//! use crate::timing::heartbeat::{Action, Heartbeat};
//! let start = Instant::now();
//! let secs = Duration::from_secs;
//! let mut hb = Heartbeat::new(secs(20), secs(10), start);
//! assert_eq!(hb.poll_timeout(), start + secs(20));
//! assert_eq!(hb.handle_timeout(start + secs(20)), Action::SendPing);
//! // Nothing arrives within the timeout: fail the connection.
//! assert_eq!(hb.handle_timeout(start + secs(30)), Action::Fail);
//! ```

use std::time::{Duration, Instant};

/// What the caller must do after [`Heartbeat::handle_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing yet; call again at [`Heartbeat::poll_timeout`].
    None,
    /// The peer has been quiet for the interval: send a ping.
    SendPing,
    /// Nothing arrived within the timeout after the ping: fail the connection.
    Fail,
}

/// The ping schedule and pong deadline of one connection. Any frame received counts as life, so
/// a busy connection is never pinged.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    last_activity: Instant,
    ping_sent: Option<Instant>,
    failed: bool,
}

impl Heartbeat {
    /// Pings after `interval` of quiet and fails if nothing arrives within `timeout` of the ping;
    /// `now` is when the connection opened.
    pub fn new(interval: Duration, timeout: Duration, now: Instant) -> Heartbeat {
        Heartbeat {
            interval,
            timeout,
            last_activity: now,
            ping_sent: None,
            failed: false,
        }
    }

    /// Something arrived from the peer at `at`. Reports older than what is known change nothing,
    /// so the caller may report lazily (e.g. a timestamp read when a timer fires).
    pub fn on_activity(&mut self, at: Instant) {
        if at <= self.last_activity {
            return;
        }
        self.last_activity = at;
        if self.ping_sent.is_some_and(|sent| at >= sent) {
            self.ping_sent = None;
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Instant {
        match self.ping_sent {
            Some(sent) => sent + self.timeout,
            None => self.last_activity + self.interval,
        }
    }

    /// Advances the schedule to `now` and says what to do. After [`Action::Fail`] it returns
    /// [`Action::None`] for ever.
    pub fn handle_timeout(&mut self, now: Instant) -> Action {
        if self.failed || now < self.poll_timeout() {
            return Action::None;
        }
        if self.ping_sent.is_some() {
            self.failed = true;
            return Action::Fail;
        }
        self.ping_sent = Some(now);
        Action::SendPing
    }

    /// Whether the connection was failed.
    #[cfg(test)]
    pub fn has_failed(&self) -> bool {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn quiet_peer_is_pinged_then_failed() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(secs(20), secs(10), t0);
        assert_eq!(hb.handle_timeout(t0 + secs(19)), Action::None);
        assert_eq!(hb.handle_timeout(t0 + secs(20)), Action::SendPing);
        assert_eq!(hb.poll_timeout(), t0 + secs(30));
        assert_eq!(hb.handle_timeout(t0 + secs(29)), Action::None);
        assert_eq!(hb.handle_timeout(t0 + secs(30)), Action::Fail);
        assert!(hb.has_failed());
        assert_eq!(hb.handle_timeout(t0 + secs(100)), Action::None);
    }

    #[test]
    fn any_frame_after_the_ping_counts_as_life() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(secs(20), secs(10), t0);
        assert_eq!(hb.handle_timeout(t0 + secs(20)), Action::SendPing);
        hb.on_activity(t0 + secs(25));
        assert_eq!(hb.handle_timeout(t0 + secs(30)), Action::None);
        // The next ping is due a full interval after the last frame.
        assert_eq!(hb.poll_timeout(), t0 + secs(45));
        assert_eq!(hb.handle_timeout(t0 + secs(45)), Action::SendPing);
    }

    #[test]
    fn activity_before_the_ping_does_not_answer_it() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(secs(20), secs(10), t0);
        hb.on_activity(t0 + secs(5));
        assert_eq!(hb.handle_timeout(t0 + secs(25)), Action::SendPing);
        // A late report of the frame at 5 s is old news.
        hb.on_activity(t0 + secs(5));
        assert_eq!(hb.handle_timeout(t0 + secs(35)), Action::Fail);
    }

    #[test]
    fn a_busy_peer_is_never_pinged() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(secs(20), secs(10), t0);
        for s in (1..1000).step_by(7) {
            hb.on_activity(t0 + secs(s));
            assert_eq!(hb.handle_timeout(t0 + secs(s)), Action::None);
        }
    }

    #[test]
    fn late_wakeups_still_ping_first() {
        // A timer thread that wakes long after the deadline pings before failing.
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(secs(1), secs(1), t0);
        assert_eq!(hb.handle_timeout(t0 + secs(500)), Action::SendPing);
        assert_eq!(hb.handle_timeout(t0 + secs(500)), Action::None);
        assert_eq!(hb.handle_timeout(t0 + secs(501)), Action::Fail);
    }
}
