//! Keepalive for an unsplit connection: pings sent while [`WebSocket::read`] waits, the round
//! trip of the last one ([`WebSocket::latency`]), and [`WebSocket::ping`], which waits for its
//! pong and keeps the messages that arrive meanwhile for the next `read`.
//!
//! A blocking read can only act when it wakes, so while keepalive is on the stream's read
//! timeout is a short tick (a quarter of the shorter of interval and timeout, or the caller's
//! own read timeout if shorter): each wake checks whether a ping is due or a pong is late, and
//! the caller's own timeout is kept by its deadline. A caller that is not reading sends nothing.

use super::WebSocket;
use crate::error::{Error, ProtocolError};
use crate::proto::State;
use crate::proto::close::CloseCode;
use crate::proto::message::{Event, Message};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// What holding one message costs besides its payload (the message and its queue slot), so that
/// a flood of empty messages during a ping is bounded too.
const HELD_MESSAGE_COST: usize = 64;

/// How long [`WebSocket::ping`] waits for its pong when no heartbeat timeout is set.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The keepalive state of one connection.
#[derive(Debug, Default)]
pub(super) struct Keepalive {
    /// Ping every `.0`; fail the connection when a pong takes longer than `.1`.
    heartbeat: Option<(Duration, Duration)>,
    /// The caller's read timeout, kept by deadline while the socket holds the tick.
    caller_timeout: Option<Duration>,
    /// The socket's read timeout is the tick: a timed-out read is a wake-up, not the caller's.
    ticking: bool,
    /// The tick installed as the socket's read timeout, as the stream reports it back (a
    /// socket rounds it to its clock).
    tick: Option<Duration>,
    next_ping: Option<Instant>,
    /// The ping waiting for its pong: its number (the payload) and when it was sent.
    outstanding: Option<(u64, Instant)>,
    next_id: u64,
    latency: Option<Duration>,
    /// Messages that arrived while `ping` waited, for the next reads, and their bytes.
    queued: VecDeque<Message>,
    queued_bytes: usize,
}

/// What a wake-up of the keepalive calls for.
enum Due {
    Nothing,
    Ping(Vec<u8>),
    /// The pong of the ping sent at least this long ago is missing.
    Fail(Duration),
}

impl Keepalive {
    fn due(&mut self, now: Instant) -> Due {
        let Some((interval, timeout)) = self.heartbeat else {
            return Due::Nothing;
        };
        if let Some((_, sent)) = self.outstanding {
            if now.saturating_duration_since(sent) >= timeout {
                return Due::Fail(timeout);
            }
            return Due::Nothing;
        }
        if self.next_ping.is_some_and(|at| now >= at) {
            self.next_ping = now.checked_add(interval);
            return Due::Ping(self.start(now));
        }
        Due::Nothing
    }

    /// A new ping sent at `now`: its payload, unique on this connection.
    fn start(&mut self, now: Instant) -> Vec<u8> {
        let id = self.next_id;
        self.next_id += 1;
        self.outstanding = Some((id, now));
        id.to_be_bytes().to_vec()
    }

    /// Whether `payload` answers the outstanding ping; if so its round trip is recorded.
    fn answered(&mut self, payload: &[u8]) -> bool {
        match self.outstanding {
            Some((id, sent)) if payload == id.to_be_bytes() => {
                self.latency = Some(sent.elapsed());
                self.outstanding = None;
                true
            }
            _ => false,
        }
    }

    /// When the caller's read timeout ends a read starting now, while the socket holds the tick.
    pub(super) fn read_deadline(&self) -> Option<Instant> {
        if !self.ticking {
            return None;
        }
        self.caller_timeout
            .and_then(|timeout| Instant::now().checked_add(timeout))
    }

    pub(super) fn ticking(&self) -> bool {
        self.ticking
    }

    pub(super) fn caller_timeout(&self) -> Option<Duration> {
        self.caller_timeout
    }

    pub(super) fn take_queued(&mut self) -> Option<Message> {
        let message = self.queued.pop_front()?;
        self.queued_bytes -= HELD_MESSAGE_COST + message.as_bytes().len();
        Some(message)
    }

    fn ping_timeout(&self) -> Duration {
        self.heartbeat.map_or(PING_TIMEOUT, |(_, timeout)| timeout)
    }
}

impl<S: Read + Write> WebSocket<S> {
    /// Turns on keepalive pings: one every `interval` while [`read`](Self::read) waits, and the
    /// connection fails with 1011 when a pong takes longer than `timeout`. Needs a stream whose
    /// read timeout the driver can set (see `know_timeouts`); without one, nothing happens.
    pub(crate) fn set_heartbeat(
        &mut self,
        interval: Duration,
        timeout: Duration,
    ) -> io::Result<()> {
        self.keepalive_mut().heartbeat = Some((interval, timeout));
        self.keepalive_mut().next_ping = Instant::now().checked_add(interval);
        self.start_ticking(interval.min(timeout))
    }

    /// The heartbeat's interval and timeout, if one is on (a split hands it to the timer thread).
    pub(crate) fn heartbeat(&self) -> Option<(Duration, Duration)> {
        self.keepalive
            .as_ref()
            .and_then(|keepalive| keepalive.heartbeat)
    }

    fn keepalive_mut(&mut self) -> &mut Keepalive {
        self.keepalive.get_or_insert_with(Box::default)
    }

    /// Installs the tick as the socket's read timeout (once), keeping the caller's timeout.
    fn start_ticking(&mut self, shortest: Duration) -> io::Result<()> {
        let Some(timeouts) = self.timeouts else {
            return Ok(());
        };
        if self.keepalive.as_ref().is_some_and(|k| k.ticking) {
            return Ok(());
        }
        let caller = (timeouts.get)(&self.stream)?;
        let tick = (shortest / 4).max(Duration::from_millis(1));
        self.install_tick(tick, caller)
    }

    fn install_tick(&mut self, tick: Duration, caller: Option<Duration>) -> io::Result<()> {
        let Some(timeouts) = self.timeouts else {
            return Ok(());
        };
        let tick = caller.map_or(tick, |caller| caller.min(tick));
        (timeouts.set)(&self.stream, Some(tick))?;
        let reported = (timeouts.get)(&self.stream)?;
        let keepalive = self.keepalive_mut();
        keepalive.caller_timeout = caller;
        keepalive.tick = reported;
        keepalive.ticking = true;
        Ok(())
    }

    /// Whether a timed-out read was only the keepalive's wake-up (the read goes on) rather than
    /// the caller's timeout (`until`). A caller who set the stream's read timeout directly
    /// replaced the tick: the timeout is theirs, and the tick comes back under it.
    pub(super) fn woke_for_keepalive(&mut self, until: Option<Instant>) -> bool {
        let (Some(timeouts), Some(keepalive)) = (self.timeouts, self.keepalive.as_ref()) else {
            return false;
        };
        if !keepalive.ticking {
            return false;
        }
        match (timeouts.get)(&self.stream) {
            Ok(installed) if installed == keepalive.tick => {
                until.is_none_or(|until| Instant::now() < until)
            }
            Ok(set_by_caller) => {
                let wanted = keepalive
                    .heartbeat
                    .map_or(PING_TIMEOUT / 4, |(interval, timeout)| {
                        (interval.min(timeout) / 4).max(Duration::from_millis(1))
                    });
                let _ = self.install_tick(wanted, set_by_caller);
                false
            }
            Err(_) => false,
        }
    }

    /// Sends a due keepalive ping, or fails the connection when a pong is late.
    pub(super) fn keep_alive(&mut self) -> Result<(), Error> {
        if self.conn.state() != State::Open {
            return Ok(());
        }
        let Some(keepalive) = self.keepalive.as_mut() else {
            return Ok(());
        };
        match keepalive.due(Instant::now()) {
            Due::Nothing => Ok(()),
            Due::Ping(payload) => {
                self.conn.send(&Message::Ping(payload))?;
                self.flush_pending()
            }
            Due::Fail(timeout) => {
                self.fail(CloseCode::InternalError, "keepalive ping timeout");
                Err(Error::Io(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    format!(
                        "no pong within the keepalive timeout ({timeout:?}); the connection was failed with 1011"
                    ),
                )))
            }
        }
    }

    /// Whether `payload` answers our outstanding ping (then the caller does not see the pong).
    pub(super) fn is_our_pong(&mut self, payload: &[u8]) -> bool {
        self.keepalive
            .as_mut()
            .is_some_and(|keepalive| keepalive.answered(payload))
    }

    /// The round trip of the last ping answered (a keepalive ping or [`ping`](Self::ping)), or
    /// `None` before the first answer.
    pub fn latency(&self) -> Option<Duration> {
        self.keepalive
            .as_ref()
            .and_then(|keepalive| keepalive.latency)
    }

    /// Sends a ping and reads until its pong arrives; returns the round trip.
    ///
    /// Messages that arrive meanwhile are kept, in order, for the next [`read`](Self::read)s
    /// (at most [`Config::max_message_size`](crate::Config::max_message_size) bytes of them in
    /// all; past that the connection fails with 1009). Pings are answered as usual. The wait is
    /// bounded by the heartbeat timeout, 20 s without one, where the driver can set the
    /// stream's read timeout (connections from [`connect`](crate::connect)); on other streams by
    /// the stream's own read timeout.
    ///
    /// Errors: [`Error::Io`] with `TimedOut` when no pong came in time (the connection stays
    /// open); [`Error::ConnectionClosed`] when the peer closed meanwhile (its close is returned
    /// by the next `read`); [`Error::AlreadyClosed`]; [`Error::InvalidInput`] in the middle of a
    /// message read with [`read_event`](Self::read_event); errors of `read`.
    pub fn ping(&mut self) -> Result<Duration, Error> {
        self.check_config()?;
        if self.ended || self.conn.state() != State::Open {
            return Err(Error::AlreadyClosed);
        }
        if self.conn.receiver().is_mid_stream() {
            return Err(Error::InvalidInput(
                "ping() in the middle of a message being read with read_event()",
            ));
        }
        let timeout = self.keepalive_mut().ping_timeout();
        self.start_ticking(timeout)?;
        let now = Instant::now();
        let payload = self.keepalive_mut().start(now);
        self.send(Message::Ping(payload))?;
        let until = now.checked_add(timeout);
        loop {
            let event = match self.read_until(false, until) {
                Err(error)
                    if error.is_timeout() && until.is_some_and(|until| Instant::now() >= until) =>
                {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no pong within {timeout:?}"),
                    )));
                }
                other => other?,
            };
            let message = match event {
                Event::Message(Message::Pong(payload)) if self.is_our_pong(&payload) => {
                    return Ok(self.latency().unwrap_or_default());
                }
                Event::Message(message) => message,
                Event::Chunk(_) => {
                    return Err(Error::InvalidInput(
                        "a chunk arrived outside streaming mode",
                    ));
                }
            };
            let closed = matches!(message, Message::Close(_));
            let max = self.config.max_message_size;
            let cost = HELD_MESSAGE_COST + message.as_bytes().len();
            let keepalive = self.keepalive_mut();
            if keepalive.queued_bytes + cost > max {
                self.fail(
                    CloseCode::TooBig,
                    "messages held during a ping over the limit",
                );
                return Err(Error::Protocol(ProtocolError::MessageTooLarge));
            }
            keepalive.queued_bytes += cost;
            keepalive.queued.push_back(message);
            if closed {
                return Err(Error::ConnectionClosed);
            }
        }
    }
}
