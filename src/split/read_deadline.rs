//! The read timeout a split reader keeps on its socket: the caller's own, or a short window while
//! the reader holds buffers kept for large messages.
//!
//! Kept buffers make a run of large messages cheap (no allocation, no zeroing, one read per
//! message), but a blocking read cannot give back the memory it waits with. So while the reader
//! holds more than an idle connection should, it waits at most [`KEEP_WINDOW`] at a time: if no
//! byte comes in that window the connection is taken as idle, the buffers are released, and the
//! wait goes on for the rest of the caller's bound. A connection that stays busy never sees the
//! window expire and pays no extra system call; one that goes quiet pays two (`setsockopt` into
//! the window and out of it).

use super::Socket;
use std::io;
use std::time::Duration;

/// How long a quiet connection holds buffers kept for large messages.
const KEEP_WINDOW: Duration = Duration::from_millis(100);

/// The read timeout installed on the socket, and the caller's.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadDeadline {
    /// The caller's bound on each wait for bytes (`None`: wait for ever).
    caller: Option<Duration>,
    /// What the socket has now, to skip system calls that would change nothing.
    installed: Option<Duration>,
    /// The window is installed (rather than the caller's bound, which could be equal).
    window: bool,
}

impl ReadDeadline {
    /// Starts from the socket's current timeout, the caller's until told otherwise.
    pub(super) fn new(installed: Option<Duration>) -> ReadDeadline {
        ReadDeadline {
            caller: installed,
            installed,
            window: false,
        }
    }

    /// The caller's bound on each wait for bytes.
    pub(super) fn caller(&self) -> Option<Duration> {
        self.caller
    }

    /// The caller's new bound, in force at once.
    pub(super) fn set_caller(
        &mut self,
        tcp: &dyn Socket,
        bound: Option<Duration>,
    ) -> io::Result<()> {
        self.caller = bound;
        self.window = false;
        self.install(tcp, bound)
    }

    /// Waits from now on are cut to the window, unless the caller's own bound is as short (then
    /// there is no room for a window, nothing changes, and `false` says the buffers should go
    /// now).
    pub(super) fn open_window(&mut self, tcp: &dyn Socket) -> io::Result<bool> {
        if self.caller.is_some_and(|bound| bound <= KEEP_WINDOW) {
            return Ok(false);
        }
        self.window = true;
        self.install(tcp, Some(KEEP_WINDOW))?;
        Ok(true)
    }

    /// Whether a timed-out read was cut short by the window rather than the caller's bound.
    pub(super) fn in_window(&self) -> bool {
        self.window
    }

    /// The window passed without a byte: the same wait goes on for the rest of the caller's bound.
    pub(super) fn window_expired(&mut self, tcp: &dyn Socket) -> io::Result<()> {
        self.window = false;
        // The caller's bound is longer than the window (see `open_window`), so the rest is not 0.
        let rest = self.caller.map(|bound| bound - KEEP_WINDOW);
        self.install(tcp, rest)
    }

    /// Back to the caller's bound for the next wait.
    pub(super) fn close_window(&mut self, tcp: &dyn Socket) -> io::Result<()> {
        self.window = false;
        self.install(tcp, self.caller)
    }

    fn install(&mut self, tcp: &dyn Socket, timeout: Option<Duration>) -> io::Result<()> {
        if self.installed != timeout {
            tcp.set_read_timeout(timeout)?;
            self.installed = timeout;
        }
        Ok(())
    }
}
