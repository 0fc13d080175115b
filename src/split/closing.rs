//! Putting a close frame on the wire within [`Config::close_timeout`], whoever writes now.
//!
//! The write half may be held by a [`Writer::send`] blocked on a peer that stopped reading. The
//! close frame is then queued for that thread, which writes it after its own message (frames
//! never interleave, RFC 6455 §5.4), and the caller waits only until the deadline; past it TCP
//! is cut, which wakes the blocked sender too.
//!
//! [`Config::close_timeout`]: crate::Config::close_timeout

use super::Writer;
use super::writer::Shared;
use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::websocket::ending::EndCause;
use std::io;
use std::net::Shutdown;
use std::time::{Duration, Instant};

/// The longest pause between two looks at a write half another thread holds.
const OWNER_POLL_MAX: Duration = Duration::from_millis(20);

impl Shared {
    /// Queues `frame` and sees it onto the wire by `stop` (`None`: no limit): written by this
    /// thread when the write half is free, otherwise by the thread writing now, after its own
    /// message. Past `stop` the connection is given up on: TCP is cut and `TimedOut` returned.
    /// Neither lock is waited for: another thread may hold one while it encodes or writes a
    /// large message.
    ///
    /// A `frame` of `None` sends a close frame without a code (the peer reports 1005). One that may not be
    /// sent is refused before anything is queued or written.
    pub(super) fn close_by(
        &self,
        frame: Option<CloseFrame>,
        stop: Option<Instant>,
    ) -> Result<(), Error> {
        if let Some(frame) = &frame {
            frame.check_sendable()?;
        }
        let cause = EndCause::LocalClosed(frame.clone());
        // `Some` until queued.
        let mut unqueued = Some(frame);
        let mut pause = Duration::from_millis(1);
        loop {
            if unqueued.is_some()
                && let Some(mut sender) = self.try_state()
                && let Some(frame) = unqueued.take()
            {
                sender.close(frame)?;
                drop(sender);
                self.record(cause.clone());
            }
            if unqueued.is_none()
                && let Some(mut side) = self.try_own()
            {
                let result = self.drain(&mut side, stop);
                let torn = side.torn;
                drop(side);
                match result {
                    Ok(true) => {
                        // Output queued while we owned the write half found it busy: ours too.
                        self.kick(stop);
                        return Ok(());
                    }
                    Ok(false) => break,
                    Err(e) => {
                        self.write_failed(&e, torn);
                        return Err(e.into());
                    }
                }
            }
            // Another thread encodes or writes a message; the close frame follows it.
            let now = Instant::now();
            let left = stop.map_or(pause, |stop| stop.saturating_duration_since(now));
            if left.is_zero() {
                break;
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(OWNER_POLL_MAX);
        }
        self.record(cause);
        // Cutting TCP wakes the thread writing; it marks the state closed if we cannot now.
        let _ = self.tcp.shutdown(Shutdown::Both);
        if let Some(mut sender) = self.try_state() {
            sender.on_transport_closed();
        }
        Err(Error::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "the close frame was not on the wire within close_timeout",
        )))
    }
}

impl Writer {
    /// Starts the closing handshake: sends a close frame and returns. The thread reading then
    /// sees the peer's reply as [`Message::Close`](crate::Message::Close) and its next `read`
    /// returns [`Error::ConnectionClosed`]; [`Reader::close`](crate::Reader::close) sends and
    /// waits in one call.
    ///
    /// Waits at most [`Config::close_timeout`](crate::Config::close_timeout) (5 s by default):
    /// for a message another thread is writing now (the close frame follows it), then for the
    /// peer to take the frame. A connection whose close frame is not on the wire by then is
    /// given up on: TCP is closed (a thread blocked in [`send`](Self::send) wakes with an error)
    /// and [`Error::Io`] with `TimedOut` is returned.
    ///
    /// Errors: [`Error::AlreadyClosed`] if a close frame was already sent;
    /// [`Error::InvalidInput`] for a code that may not be sent or a reason over 123 bytes;
    /// [`Error::Io`] as above or when the transport fails.
    pub fn start_close(&self, code: impl Into<CloseCode>, reason: &str) -> Result<(), Error> {
        self.close_within_timeout(Some(CloseFrame::new(code, reason)))
    }

    /// [`start_close`](Self::start_close) with any frame (`None`: no code); also what
    /// [`send`](Self::send) does with [`Message::Close`](crate::Message::Close).
    pub(super) fn close_within_timeout(&self, frame: Option<CloseFrame>) -> Result<(), Error> {
        let stop = Instant::now().checked_add(self.shared.close_timeout);
        self.shared.close_by(frame, stop)
    }

    /// [`start_close`](Self::start_close) with the caller's deadline (the whole closing
    /// handshake's).
    pub(super) fn start_close_by(
        &self,
        code: impl Into<CloseCode>,
        reason: &str,
        stop: Option<Instant>,
    ) -> Result<(), Error> {
        self.shared
            .close_by(Some(CloseFrame::new(code, reason)), stop)
    }
}
