//! The handshake deadline for `wss://`, where a read timeout alone cannot hold it.
//!
//! Over plain TCP each handshake read is one system call, given the time left before it. Under
//! TLS one read of the TLS stream can take many system calls (a record trickled a byte at a
//! time, each byte within the read timeout), so a server could hold the TLS and WebSocket
//! handshakes for as long as it liked. The watchdog ends it: at the deadline it shuts the socket
//! down, and every read and write on it fails at once.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

/// A thread that shuts a socket down at a deadline unless stopped first.
///
/// Stop path: [`Watchdog::stop`] (or dropping it) wakes the thread at once and joins it.
#[derive(Debug)]
pub(crate) struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<bool>>,
}

impl Watchdog {
    /// Watches `socket` (through a second handle to it) until `deadline`.
    #[cfg_attr(not(feature = "native-tls"), allow(dead_code))] // Only `wss://` needs it.
    pub(crate) fn start(socket: &TcpStream, deadline: Instant) -> io::Result<Watchdog> {
        let socket = socket.try_clone()?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("syncws-handshake-deadline".into())
            .spawn(move || {
                let left = deadline.saturating_duration_since(Instant::now());
                // A message or a hang-up is the stop; only the timeout fires.
                let fired = stopped.recv_timeout(left) == Err(RecvTimeoutError::Timeout);
                if fired {
                    let _ = socket.shutdown(Shutdown::Both);
                }
                fired
            })?;
        Ok(Watchdog {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the watchdog; returns whether it had already fired (the socket is then shut down,
    /// whatever the handshake made of it).
    pub(crate) fn stop(mut self) -> bool {
        self.halt()
    }

    fn halt(&mut self) -> bool {
        drop(self.stop.take());
        self.thread
            .take()
            .is_some_and(|thread| thread.join().unwrap_or(true))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.halt();
    }
}
