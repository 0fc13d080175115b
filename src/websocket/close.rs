//! The closing handshake of an unsplit connection, bounded by [`Config::close_timeout`].
//!
//! [`Config::close_timeout`]: crate::Config::close_timeout

use super::WebSocket;
use crate::error::Error;
use crate::proto::Role;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::message::{Event, Message};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// How many bytes a client discards while it waits for the server to close TCP after the closing
/// handshake; a server that keeps talking past this is cut off.
const CLOSE_DRAIN_LIMIT: usize = 64 * 1024;

/// How long a client waits, after the peer's close arrived in a `read`, for the server to close
/// TCP (RFC 6455 §7.1.1) before it leaves the closing to the drop of the connection.
pub(crate) const SERVER_CLOSE_WAIT: Duration = Duration::from_secs(2);

impl<S: Read + Write> WebSocket<S> {
    /// The closing handshake: sends a close frame with `code` and `reason`, reads until the
    /// peer's close frame arrives (data arriving meanwhile is discarded) and, as a client, until
    /// the server closes TCP (RFC 6455 §7.1.1). Returns the peer's close frame.
    ///
    /// The whole call takes at most [`Config::close_timeout`](crate::Config::close_timeout)
    /// (5 s by default) on connections from [`connect`](crate::connect), whose read timeout the
    /// driver sets. On other streams each wait is bounded only by the stream's own read timeout
    /// (a split [`Reader::close`](crate::Reader::close) is bounded on any stream).
    ///
    /// Errors: [`Error::Io`] with `TimedOut` when the peer did not answer in time (the
    /// connection is then over); [`Error::InvalidInput`] for a code that may not be sent or a
    /// reason over 123 bytes; [`Error::AlreadyClosed`] if a close frame was already sent.
    pub fn close(
        &mut self,
        code: impl Into<CloseCode>,
        reason: &str,
    ) -> Result<Option<CloseFrame>, Error> {
        self.start_close(Some(CloseFrame::new(code, reason)))?;
        let until = Instant::now().checked_add(self.config.close_timeout);
        let before = self
            .timeouts
            .and_then(|timeouts| (timeouts.get)(&self.stream).ok());
        let result = self.finish_close(until);
        if let (Some(timeouts), Some(before)) = (self.timeouts, before) {
            let _ = (timeouts.set)(&self.stream, before);
        }
        if let Err(error) = &result
            && error.is_timeout()
        {
            // The peer did not answer in time: the connection is over.
            self.conn.sender().on_transport_closed();
            self.ended = true;
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer did not answer the close within close_timeout",
            )));
        }
        result
    }

    /// Queues our close frame (checked first: nothing is queued for a code that may not be sent
    /// or a reason over 123 bytes); the start of every close, from [`close`](Self::close) and
    /// from [`send`](Self::send) of a [`Message::Close`].
    pub(super) fn start_close(&mut self, frame: Option<CloseFrame>) -> Result<(), Error> {
        self.check_config()?;
        self.conn.sender().close(frame)?;
        Ok(())
    }

    fn finish_close(&mut self, until: Option<Instant>) -> Result<Option<CloseFrame>, Error> {
        self.bound_next_read(until)?;
        self.flush_pending()?;
        loop {
            self.bound_next_read(until)?;
            // Streaming: data that arrives meanwhile is dropped in pieces, never assembled.
            match self.read_until(true, until) {
                Ok(Event::Message(Message::Close(peer))) => {
                    self.ended = true;
                    if self.role == Role::Client {
                        self.wait_for_server_close(until);
                    }
                    return Ok(peer);
                }
                Ok(_) => {}
                Err(error)
                    if error.is_timeout()
                        && self.timeouts.is_some()
                        && until.is_some_and(|until| Instant::now() < until) => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// Cuts the next wait for bytes to the time left before `until`; a timeout error once it
    /// has passed.
    fn bound_next_read(&mut self, until: Option<Instant>) -> Result<(), Error> {
        let (Some(timeouts), Some(until)) = (self.timeouts, until) else {
            return Ok(());
        };
        let left = until.saturating_duration_since(Instant::now());
        // A zero timeout means "none" to the socket: stop instead.
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut).into());
        }
        (timeouts.set)(&self.stream, Some(left))?;
        Ok(())
    }

    /// RFC 6455 §7.1.1: "the underlying TCP connection, in most normal cases, SHOULD be closed
    /// first by the server". The client waits for it, discarding at most a bounded amount, until
    /// `until` (`None`: [`SERVER_CLOSE_WAIT`] from now) where the driver can set the stream's
    /// read timeout, else as long as the stream's own read timeout allows.
    // Out of line: its scratch buffer would otherwise sit in every read's stack frame.
    #[cold]
    #[inline(never)]
    pub(super) fn wait_for_server_close(&mut self, until: Option<Instant>) {
        let deadline = until.or_else(|| Instant::now().checked_add(SERVER_CLOSE_WAIT));
        let bound = self.timeouts;
        let before = bound.and_then(|timeouts| (timeouts.get)(&self.stream).ok());
        let mut scratch = [0u8; 1024];
        let mut drained = 0;
        while drained < CLOSE_DRAIN_LIMIT {
            if let (Some(timeouts), Some(deadline)) = (bound, deadline) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                let caller = self.keepalive.as_ref().map_or(before.flatten(), |k| {
                    if k.ticking() { None } else { before.flatten() }
                });
                let left = caller.map_or(left, |caller| caller.min(left));
                if (timeouts.set)(&self.stream, Some(left)).is_err() {
                    break;
                }
            }
            match self.stream.read(&mut scratch) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
        if let (Some(timeouts), Some(before)) = (bound, before) {
            let _ = (timeouts.set)(&self.stream, before);
        }
    }
}
