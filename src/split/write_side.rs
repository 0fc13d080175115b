//! The write owner's side of a split connection: the stream's write half and the whole frames
//! being written, each kept to its deadline from the moment its write first waits for the peer.

use super::transport::Transport;
use super::writer::Shared;
use crate::proto::Sender;
use std::io;
use std::time::{Duration, Instant};

/// The longest one write system call of a shared thread waits where the transport cannot write
/// without waiting ([`Transport::writes_now`]; its writes set `SO_SNDTIMEO` to this, then back
/// to the tick; the kernel rounds it up to a clock tick): a ping to a peer whose buffers are full
/// must cost the timer thread next to nothing, or one round over many stalled peers would delay
/// every deadline.
pub(super) const SHARED_THREAD_WRITE_ATTEMPT: Duration = Duration::from_millis(1);

/// The longest one write system call waits (the socket's `SO_SNDTIMEO` after the split). A write
/// to a slow peer comes back this often, to keep to its frame's deadline and to report the
/// progress that tells the heartbeat the peer is alive while it reads a long message.
pub(super) const WRITE_TICK: Duration = Duration::from_millis(50);

/// Output taken from the sender above this size is moved rather than copied.
const MOVE_OUTPUT_MIN: usize = 64 * 1024;

/// What the write owner holds: the stream's write half and the frames it is writing.
pub(crate) struct WriteSide {
    pub(super) stream: Box<dyn Transport>,
    /// Whole frames taken from the sender and not yet written; the first may be begun.
    pub(super) unwritten: Vec<u8>,
    /// When the frames in `unwritten` must be on the wire, once a write of them has stalled.
    pub(super) due: Option<Instant>,
    /// Some bytes of `unwritten`'s first frame are on the wire.
    pub(super) begun: bool,
    /// A write failed in the middle of a frame: nothing may follow it on the wire.
    pub(super) torn: bool,
    /// The most bytes a write got in before it first stalled: what the kernel buffers hold on
    /// the way to the peer.
    pub(super) pipe: usize,
    /// The socket's write timeout between writes (see [`WRITE_TICK`]).
    pub(super) tick: Duration,
}

/// When a write gives up: the frames' deadline fails the connection; `stop` (a shared thread's
/// patience) only leaves the rest for the next owner.
#[derive(Clone, Copy)]
pub(super) struct Until {
    pub(super) timeout: Option<Duration>,
    pub(super) stop: Option<Instant>,
}

impl WriteSide {
    /// Writes `unwritten`, then `payload` (a large message written from the caller's buffer).
    /// `Ok(false)`: `until.stop` came first, the rest of `unwritten` stays for the next owner
    /// (only without `payload`). An error fails the connection; `torn` says whether a frame was
    /// cut.
    pub(super) fn write_out(
        &mut self,
        payload: &[u8],
        until: Until,
        shared: &Shared,
    ) -> io::Result<bool> {
        // A stop further than a tick away (a close within close_timeout) is kept well enough
        // by the tick.
        if until
            .stop
            .is_none_or(|stop| stop.saturating_duration_since(Instant::now()) > self.tick)
        {
            return self.write_within(payload, until, shared, false);
        }
        // A shared thread's write. Where the transport can, it never waits: what the socket
        // does not take at once stays for the next owner.
        if payload.is_empty() && self.stream.writes_now() {
            let until = Until {
                stop: Some(Instant::now()),
                ..until
            };
            return self.write_within(payload, until, shared, true);
        }
        // Elsewhere each system call waits a moment only.
        let _ = self
            .stream
            .set_write_timeout(Some(SHARED_THREAD_WRITE_ATTEMPT));
        let result = self.write_within(payload, until, shared, false);
        let _ = self.stream.set_write_timeout(Some(self.tick));
        result
    }

    /// `now`: through [`Transport::write_now`], never waiting (only without `payload`).
    fn write_within(
        &mut self,
        mut payload: &[u8],
        until: Until,
        shared: &Shared,
        now: bool,
    ) -> io::Result<bool> {
        let mut written = 0;
        // Bytes this call has put on the wire, and when and after how many it first stalled.
        let mut sent = 0;
        let mut first_stall: Option<(Instant, usize)> = None;
        let result = loop {
            let head = &self.unwritten[written..];
            // Last, the transport's own buffers (TLS): that may wait for the peer too.
            let flushing = head.is_empty() && payload.is_empty();
            let attempt = if flushing && now {
                self.stream.flush_now().map(|()| 0)
            } else if flushing {
                self.stream.flush().map(|()| 0)
            } else if now {
                self.stream.write_now(&[io::IoSlice::new(head)])
            } else if payload.is_empty() {
                self.stream.write(head)
            } else if head.is_empty() {
                self.stream.write(payload)
            } else {
                self.stream
                    .write_vectored(&[io::IoSlice::new(head), io::IoSlice::new(payload)])
            };
            let stalled = match attempt {
                Ok(_) if flushing => break Ok(true),
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let from_head = n.min(head.len());
                    written += from_head;
                    payload = &payload[n - from_head..];
                    sent += n;
                    let done = written == self.unwritten.len() && payload.is_empty();
                    if done && first_stall.is_none() {
                        continue; // the common case: no clock read
                    }
                    // The peer took bytes of a write that waits for it: it is reading.
                    let now = Instant::now();
                    let start = *first_stall.get_or_insert((now, sent));
                    self.pipe = self.pipe.max(start.1);
                    shared.progressed(now, self.backlog(start, now, sent));
                    if done {
                        continue;
                    }
                    self.begun = true;
                    now
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => {
                    let now = Instant::now();
                    first_stall.get_or_insert((now, sent));
                    now
                }
                Err(e) => break Err(e),
            };
            // The write waits on the peer. The deadline runs from the first stall, at most one
            // tick after the write began (no clock read on the common path).
            if let Some(timeout) = until.timeout {
                if self.due.is_none() {
                    // Too far to represent: no deadline.
                    self.due = stalled.checked_add(timeout);
                }
                if self.due.is_some_and(|due| stalled >= due) {
                    break Err(io::ErrorKind::TimedOut.into());
                }
            }
            if until.stop.is_some_and(|stop| stalled >= stop) && payload.is_empty() {
                break Ok(false);
            }
        };
        match result {
            Ok(true) => {
                self.unwritten.clear();
                if self.unwritten.capacity() > MOVE_OUTPUT_MIN {
                    self.unwritten = Vec::new();
                }
                self.due = None;
                self.begun = false;
            }
            Ok(false) => {
                if written == self.unwritten.len() {
                    // Only the transport's own bytes (TLS) wait: the next owner flushes them,
                    // or they would wait for the next write.
                    shared.want_flush();
                }
                self.unwritten.drain(..written);
                // A shared thread gave up, not a frame's deadline: the next owner's write gets a
                // deadline of its own, from its own first stall (a stale one would fail it at once).
                self.due = None;
            }
            Err(_) => {
                self.torn = self.begun || written > 0;
                self.unwritten = Vec::new();
                self.due = None;
                self.begun = false;
            }
        }
        result
    }
}

impl WriteSide {
    /// How long the peer will take to read what the kernel holds for it now: the bytes a write
    /// gets in before it first stalls fill the way to the peer (`pipe`), and since that stall
    /// the peer has read at the rate `sent - start.1` bytes in `now - start.0`.
    fn backlog(&self, start: (Instant, usize), now: Instant, sent: usize) -> Duration {
        let elapsed = now.saturating_duration_since(start.0);
        let read = sent.saturating_sub(start.1);
        if read == 0 || elapsed.is_zero() {
            return Duration::ZERO;
        }
        let secs = elapsed.as_secs_f64() * (self.pipe as f64 / read as f64);
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }
}

pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Moves the sender's output to the end of `into`: large output by taking its buffer, small
/// output by copying, so the sender keeps its small buffer.
pub(super) fn take_output(sender: &mut Sender, into: &mut Vec<u8>) {
    let out = sender.data_to_send();
    if into.is_empty() && out.len() >= MOVE_OUTPUT_MIN {
        *into = sender.take_data_to_send();
    } else {
        into.extend_from_slice(out);
        let n = out.len();
        sender.advance(n);
    }
}
