//! Everything the shared timer watches on one connection, decided from times passed in: the
//! heartbeat ([`Heartbeat`]), a deadline for receiving one whole message, and an idle limit.
//!
//! A peer can hold a server thread in two ways a heartbeat alone does not catch: by answering
//! pings while never finishing a message (a slow-loris on frames), and by staying connected
//! without ever sending data. The message deadline and the idle limit end those.

use super::heartbeat::{Action, Heartbeat};
use std::time::{Duration, Instant};

/// The limits for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchConfig {
    /// Ping after `.0` of quiet; fail if nothing arrives within `.1` of the ping.
    pub heartbeat: Option<(Duration, Duration)>,
    /// Fail if a message is still incomplete this long after its first byte arrived.
    pub message_timeout: Option<Duration>,
    /// Fail if no data message (text or binary) has arrived for this long.
    pub idle_timeout: Option<Duration>,
}

impl WatchConfig {
    /// Whether anything is watched at all.
    #[cfg(test)]
    pub fn is_active(&self) -> bool {
        self.heartbeat.is_some() || self.message_timeout.is_some() || self.idle_timeout.is_some()
    }
}

/// What the reader last recorded about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// When any bytes last arrived.
    pub last_activity: Instant,
    /// When a data message last completed (or the connection opened).
    pub last_data: Instant,
    /// When the message now arriving began, if one is.
    pub message_started: Option<Instant>,
    /// When the peer last took bytes of a write that had to wait for it, if ever: it is
    /// reading, so it is alive, even though it sends nothing while it reads a long message.
    pub last_write_progress: Option<Instant>,
    /// How long, from `last_write_progress`, the peer still needs to read what the kernel held
    /// for it then (estimated from the rate at which it read). A ping written behind those bytes
    /// cannot be answered sooner.
    pub write_backlog: Duration,
}

/// The most [`Observed::write_backlog`] counts: past it, a peer that stopped reading right after
/// a long write is pinged and failed as any quiet peer.
pub const MAX_WRITE_BACKLOG: Duration = Duration::from_secs(10);

impl Observed {
    /// The latest time the peer is known to be alive at: bytes arrived, or it took bytes we
    /// were writing and had more of them to read (which may lie ahead of now). A ping queued
    /// behind a long write cannot be answered before the peer has read that write; the peer
    /// reading it is what keeps the connection alive meanwhile.
    pub fn last_sign_of_life(&self) -> Instant {
        let reading_until = self.last_write_progress.map(|progress| {
            progress
                .checked_add(self.write_backlog.min(MAX_WRITE_BACKLOG))
                .unwrap_or(progress)
        });
        reading_until.map_or(self.last_activity, |until| until.max(self.last_activity))
    }
}

/// Which limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// No frame arrived within the heartbeat timeout after a ping.
    Heartbeat,
    /// A message took longer than the message timeout.
    Message,
    /// No data message within the idle timeout.
    Idle,
}

/// What to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing.
    None,
    /// Send a ping.
    SendPing,
    /// Fail the connection.
    Fail(Expired),
}

/// One connection's timers. See the module docs.
#[derive(Debug, Clone)]
pub struct Watch {
    heartbeat: Option<Heartbeat>,
    message_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    failed: bool,
}

impl Watch {
    /// Starts watching at `now`.
    pub fn new(config: WatchConfig, now: Instant) -> Watch {
        Watch {
            heartbeat: config
                .heartbeat
                .map(|(interval, timeout)| Heartbeat::new(interval, timeout, now)),
            message_timeout: config.message_timeout,
            idle_timeout: config.idle_timeout,
            failed: false,
        }
    }

    /// When to look again after `now`, given what was observed; `None` once failed or with
    /// nothing to watch.
    ///
    /// Without a message in progress the message deadline is checked one timeout from now: a
    /// message that starts meanwhile is then found in progress and gets its own deadline, taken
    /// from its start.
    pub fn next_deadline(&self, now: Instant, seen: &Observed) -> Option<Instant> {
        if self.failed {
            return None;
        }
        let heartbeat = self.heartbeat.as_ref().map(Heartbeat::poll_timeout);
        let message = self
            .message_timeout
            .map(|limit| seen.message_started.unwrap_or(now) + limit);
        let idle = self.idle_timeout.map(|limit| seen.last_data + limit);
        [heartbeat, message, idle].into_iter().flatten().min()
    }

    /// Decides what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, seen: &Observed) -> Verdict {
        if self.failed {
            return Verdict::None;
        }
        if let Some(heartbeat) = self.heartbeat.as_mut() {
            heartbeat.on_activity(seen.last_sign_of_life());
        }
        let expired = |start: Option<Instant>, limit: Option<Duration>| matches!((start, limit), (Some(start), Some(limit)) if now >= start + limit);
        if expired(seen.message_started, self.message_timeout) {
            self.failed = true;
            return Verdict::Fail(Expired::Message);
        }
        if expired(Some(seen.last_data), self.idle_timeout) {
            self.failed = true;
            return Verdict::Fail(Expired::Idle);
        }
        match self.heartbeat.as_mut().map(|h| h.handle_timeout(now)) {
            Some(Action::SendPing) => Verdict::SendPing,
            Some(Action::Fail) => {
                self.failed = true;
                Verdict::Fail(Expired::Heartbeat)
            }
            _ => Verdict::None,
        }
    }
}

#[cfg(test)]
mod tests {
    //! In simulated time: no sleeping.
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn seen(t0: Instant, activity: u64, data: u64, started: Option<u64>) -> Observed {
        Observed {
            last_activity: t0 + ms(activity),
            last_data: t0 + ms(data),
            message_started: started.map(|s| t0 + ms(s)),
            last_write_progress: None,
            write_backlog: Duration::ZERO,
        }
    }

    #[test]
    fn a_peer_reading_a_long_write_is_alive_though_it_sends_nothing() {
        let t0 = Instant::now();
        let config = WatchConfig {
            heartbeat: Some((ms(300), ms(300))),
            ..Default::default()
        };
        let mut watch = Watch::new(config, t0);
        // Nothing arrives for 4 s: a 16 MiB message goes out to a peer reading 4 MB/s, and the
        // pings queue behind it. Each 50 ms the peer takes more of it.
        let mut now = t0;
        let mut pings = 0;
        while now < t0 + ms(4000) {
            now += ms(50);
            let reading = Observed {
                last_write_progress: Some(now - ms(10)),
                ..seen(t0, 0, 0, None)
            };
            match watch.handle_timeout(now, &reading) {
                Verdict::Fail(expired) => panic!("failed at {:?}: {expired:?}", now - t0),
                Verdict::SendPing => pings += 1,
                Verdict::None => {}
            }
        }
        assert!(pings < 20, "{pings} pings");
        // The write stalls for good: the peer stopped reading. Dead after a ping and its timeout.
        let stalled = Observed {
            last_write_progress: Some(now - ms(10)),
            ..seen(t0, 0, 0, None)
        };
        let mut verdicts = Vec::new();
        for step in 1..=20 {
            let verdict = watch.handle_timeout(now + ms(50 * step), &stalled);
            if verdict != Verdict::None {
                verdicts.push(verdict);
            }
        }
        assert_eq!(
            verdicts,
            [Verdict::SendPing, Verdict::Fail(Expired::Heartbeat)]
        );
    }

    #[test]
    fn the_peer_has_time_to_read_what_the_kernel_holds_after_a_long_write() {
        let t0 = Instant::now();
        let config = WatchConfig {
            heartbeat: Some((ms(300), ms(300))),
            ..Default::default()
        };
        let mut watch = Watch::new(config, t0);
        // The write ended at 4 s; the peer reads ~4 MB/s and ~4 MB are still on their way.
        let ended = Observed {
            last_write_progress: Some(t0 + ms(4000)),
            write_backlog: ms(1000),
            ..seen(t0, 0, 0, None)
        };
        let mut verdicts = Vec::new();
        for step in 81..=120 {
            let now = t0 + ms(50 * step);
            let verdict = watch.handle_timeout(now, &ended);
            if verdict != Verdict::None {
                verdicts.push((now - t0, verdict));
            }
        }
        // Pinged an interval after it should have read everything, failed a timeout later.
        assert_eq!(
            verdicts,
            [
                (ms(5300), Verdict::SendPing),
                (ms(5600), Verdict::Fail(Expired::Heartbeat))
            ]
        );
        // An absurd estimate counts for at most MAX_WRITE_BACKLOG.
        let absurd = Observed {
            write_backlog: Duration::from_secs(1 << 40),
            ..ended
        };
        assert_eq!(
            absurd.last_sign_of_life(),
            t0 + ms(4000) + MAX_WRITE_BACKLOG
        );
    }

    #[test]
    fn write_progress_before_the_ping_does_not_answer_it() {
        let t0 = Instant::now();
        let config = WatchConfig {
            heartbeat: Some((ms(100), ms(100))),
            ..Default::default()
        };
        let mut watch = Watch::new(config, t0);
        let old = Observed {
            last_write_progress: Some(t0 + ms(50)),
            ..seen(t0, 0, 0, None)
        };
        assert_eq!(watch.handle_timeout(t0 + ms(150), &old), Verdict::SendPing);
        assert_eq!(
            watch.handle_timeout(t0 + ms(250), &old),
            Verdict::Fail(Expired::Heartbeat)
        );
    }

    #[test]
    fn a_message_dribbled_forever_is_failed_at_its_deadline() {
        let t0 = Instant::now();
        let config = WatchConfig {
            message_timeout: Some(ms(1000)),
            heartbeat: Some((ms(300), ms(300))),
            ..Default::default()
        };
        let mut watch = Watch::new(config, t0);
        // The peer answers pings and sends a byte of the message now and then: it looks alive.
        let dribbling = seen(t0, 900, 0, Some(100));
        assert_eq!(
            watch.handle_timeout(t0 + ms(1000), &dribbling),
            Verdict::None
        );
        assert_eq!(
            watch.next_deadline(t0 + ms(1000), &dribbling),
            Some(t0 + ms(1100))
        );
        let still = seen(t0, 1099, 0, Some(100));
        assert_eq!(
            watch.handle_timeout(t0 + ms(1100), &still),
            Verdict::Fail(Expired::Message)
        );
        assert_eq!(watch.next_deadline(t0 + ms(1100), &still), None);
    }

    #[test]
    fn a_message_that_starts_later_gets_its_own_deadline() {
        let t0 = Instant::now();
        let config = WatchConfig {
            message_timeout: Some(ms(1000)),
            ..Default::default()
        };
        let mut watch = Watch::new(config, t0);
        let quiet = seen(t0, 0, 0, None);
        assert_eq!(watch.next_deadline(t0, &quiet), Some(t0 + ms(1000)));
        let started = seen(t0, 600, 0, Some(500));
        assert_eq!(watch.handle_timeout(t0 + ms(1000), &started), Verdict::None);
        assert_eq!(
            watch.next_deadline(t0 + ms(1000), &started),
            Some(t0 + ms(1500))
        );
        // It completed in time: nothing in progress, nothing to fail.
        let done = seen(t0, 1400, 1400, None);
        assert_eq!(watch.handle_timeout(t0 + ms(1500), &done), Verdict::None);
    }

    #[test]
    fn idle_means_no_data_even_with_pongs() {
        let t0 = Instant::now();
        let config = WatchConfig {
            idle_timeout: Some(ms(5000)),
            heartbeat: Some((ms(1000), ms(1000))),
            ..Default::default()
        };
        let mut watch = Watch::new(config, t0);
        let pongs_only = seen(t0, 4900, 0, None);
        assert_eq!(
            watch.handle_timeout(t0 + ms(5000), &pongs_only),
            Verdict::Fail(Expired::Idle)
        );
    }

    #[test]
    fn the_heartbeat_still_works_alone() {
        let t0 = Instant::now();
        let config = WatchConfig {
            heartbeat: Some((ms(100), ms(100))),
            ..Default::default()
        };
        let mut watch = Watch::new(config, t0);
        let silent = seen(t0, 0, 0, None);
        assert_eq!(
            watch.handle_timeout(t0 + ms(100), &silent),
            Verdict::SendPing
        );
        assert_eq!(
            watch.handle_timeout(t0 + ms(200), &silent),
            Verdict::Fail(Expired::Heartbeat)
        );
        assert!(!WatchConfig::default().is_active());
    }
}
