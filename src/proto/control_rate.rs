//! A bound on pings and pongs per unit of time: each ping costs the receiver a pong (RFC 6455
//! §5.5.2), so a peer sending them as fast as it can would otherwise keep a connection busy
//! answering. Past the bound the connection is failed with close code 1008 (policy).
//!
//! Pure: the core has no clock, so the time is handed in (`Connection::note_time`, once per read).
//! The bucket holds `per_second` frames and refills at `per_second` frames a second, measured as
//! a "theoretical arrival time" (the instant the bucket would be full again), so each check is one
//! comparison and one addition, with no rounding drift.

use std::time::{Duration, Instant};

/// Pings and pongs accepted per second by default, and at once after a quiet second. Far above
/// any heartbeat or latency probe (one every few seconds), and far below what a flood sends.
pub(crate) const DEFAULT_CONTROL_FRAMES_PER_SECOND: u32 = 1000;

/// Counts control frames against a rate; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct ControlRate {
    /// Time one frame takes out of the bucket.
    interval: Duration,
    /// How far ahead of now the bucket may be drawn: a whole second's worth of frames.
    window: Duration,
    /// When the bucket is full again; `None` until the first frame.
    full_at: Option<Instant>,
}

impl ControlRate {
    /// A bound of `per_second` frames a second (at least 1), up to `per_second` at once.
    pub(crate) fn new(per_second: u32) -> ControlRate {
        let window = Duration::from_secs(1);
        ControlRate {
            interval: window / per_second.max(1),
            window,
            full_at: None,
        }
    }

    /// Counts one frame arriving at `now`; `false` when it is over the bound (the frame is not
    /// counted then).
    pub(crate) fn admit(&mut self, now: Instant) -> bool {
        let start = self.full_at.map_or(now, |full_at| full_at.max(now));
        let full_at = start + self.interval;
        if full_at.saturating_duration_since(now) > self.window {
            return false;
        }
        self.full_at = Some(full_at);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `count` frames at `now` are admitted.
    fn admitted(rate: &mut ControlRate, now: Instant, count: usize) -> usize {
        (0..count).filter(|_| rate.admit(now)).count()
    }

    #[test]
    fn a_second_s_worth_at_once_then_none() {
        let mut rate = ControlRate::new(1000);
        let t0 = Instant::now();
        assert_eq!(admitted(&mut rate, t0, 1500), 1000);
        assert!(!rate.admit(t0));
    }

    #[test]
    fn refills_at_the_rate() {
        let mut rate = ControlRate::new(1000);
        let t0 = Instant::now();
        assert_eq!(admitted(&mut rate, t0, 1000), 1000);
        // 10 ms later: 10 more, not 11.
        assert_eq!(admitted(&mut rate, t0 + Duration::from_millis(10), 20), 10);
        // A quiet second later: full again, and no fuller.
        assert_eq!(admitted(&mut rate, t0 + Duration::from_secs(3), 2000), 1000);
    }

    #[test]
    fn a_steady_rate_within_the_bound_is_never_refused() {
        let mut rate = ControlRate::new(10);
        let t0 = Instant::now();
        // 10 a second for a minute, each 100 ms apart.
        for i in 0..600 {
            assert!(rate.admit(t0 + Duration::from_millis(100 * i)), "frame {i}");
        }
        // Twice the rate: the burst allowance runs out, then every other one passes.
        let t1 = t0 + Duration::from_secs(120);
        let passed = (0..200)
            .filter(|i| rate.admit(t1 + Duration::from_millis(50 * i)))
            .count();
        assert!(
            (100..=111).contains(&passed),
            "{passed} of 200 at twice the rate"
        );
    }

    #[test]
    fn uneven_rates_and_zero_are_bounded() {
        let t0 = Instant::now();
        let mut rate = ControlRate::new(3);
        assert_eq!(admitted(&mut rate, t0, 10), 3);
        let mut zero = ControlRate::new(0);
        assert_eq!(admitted(&mut zero, t0, 10), 1, "read as 1 a second");
    }

    #[test]
    fn an_earlier_time_than_seen_before_does_not_refill() {
        let mut rate = ControlRate::new(2);
        let t0 = Instant::now() + Duration::from_secs(10);
        assert_eq!(admitted(&mut rate, t0, 2), 2);
        assert!(!rate.admit(t0 - Duration::from_secs(5)));
    }

    /// The bound as a connection applies it: a flood fails with 1008, a quiet peer never does.
    mod in_a_connection {
        use super::*;
        use crate::proto::config::Config;
        use crate::proto::error::{Error, ProtocolError};
        use crate::proto::frame::{Decoded, Frame, OpCode};
        use crate::proto::{Connection, Role, State};

        /// `count` masked empty pings from a client (RFC 6455 §5.5.2).
        fn pings(count: usize) -> Vec<u8> {
            [0x89, 0x80, 1, 2, 3, 4].repeat(count)
        }

        /// Decodes every buffered event; the error that ended it, if one did.
        fn drain(conn: &mut Connection) -> (usize, Option<Error>) {
            let mut events = 0;
            loop {
                match conn.next_event() {
                    Ok(Some(_)) => events += 1,
                    Ok(None) => return (events, None),
                    Err(e) => return (events, Some(e)),
                }
            }
        }

        #[test]
        fn a_flood_of_pings_fails_with_1008_after_the_burst() {
            let mut conn = Connection::new(Role::Server, &Config::default());
            conn.note_time(Instant::now());
            conn.receive_data(&pings(1500));
            let (events, error) = drain(&mut conn);
            assert_eq!(events, DEFAULT_CONTROL_FRAMES_PER_SECOND as usize);
            assert!(matches!(
                error,
                Some(Error::Protocol(ProtocolError::ControlFrameFlood))
            ));
            assert_eq!(conn.state(), State::Closed);
            // The first pongs one for one, the rest coalesced into the last (32 in all), then the
            // failing close frame with 1008 (policy).
            let mut bytes = conn.data_to_send();
            let mut frames = Vec::new();
            while let Ok(Decoded::Complete(frame, used)) = Frame::decode(bytes, 1 << 20) {
                frames.push((frame.header.opcode, frame.payload));
                bytes = &bytes[used..];
            }
            let mut expected = vec![(OpCode::Pong, vec![]); crate::proto::sender::PONGS_KEPT];
            expected.push((OpCode::Close, vec![0x03, 0xf0]));
            assert_eq!(frames, expected);
        }

        #[test]
        fn pings_spread_over_reads_within_the_rate_pass() {
            let mut conn = Connection::new(Role::Server, &Config::default());
            conn.receiver().set_control_frame_rate(Some(100));
            let t0 = Instant::now();
            // 50 a second for 10 s, 5 per read every 100 ms.
            for read in 0..100u64 {
                conn.note_time(t0 + Duration::from_millis(100 * read));
                conn.receive_data(&pings(5));
                assert_eq!(drain(&mut conn).0, 5, "read {read}");
            }
        }

        #[test]
        fn unbounded_without_a_time_or_a_rate() {
            let mut conn = Connection::new(Role::Server, &Config::default());
            conn.receive_data(&pings(5000));
            assert_eq!(drain(&mut conn).0, 5000, "no time given");
            conn.receiver().set_control_frame_rate(None);
            conn.note_time(Instant::now());
            conn.receive_data(&pings(5000));
            assert_eq!(drain(&mut conn).0, 5000, "no rate set");
        }
    }
}
