//! Stopping a server: [`ServerHandle`] for a spawned one, [`ShutdownHandle`] from any thread for
//! one that [`serve`](crate::Server::serve)s, and the shutdown sequence both run.

use super::listener::{ACCEPT_POLL, listener_as_stream, wake_accept};
use super::{Context, connection};
use crate::proto::close::CloseCode;
use crate::split::Writer;
use crate::websocket::ending::EndCause;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const RUNNING: u8 = 0;
/// Stopped by a [`ShutdownHandle`]: the thread that accepted runs the shutdown sequence.
const SIGNALLED: u8 = 1;
/// Stopped by the [`ServerHandle`], which runs the sequence itself.
const OWNED: u8 = 2;

/// The accept loop's stop flag and the means to wake it, made when the server binds.
pub(super) struct StopSignal {
    state: AtomicU8,
    /// A handle on the listening socket, made at bind so that waking the accept loop needs no
    /// new descriptor (there may be none left then). It also bounds each `accept()` by
    /// [`ACCEPT_POLL`], so that the loop sees the flag even if waking fails.
    waker: Option<TcpStream>,
    local_addr: SocketAddr,
}

impl StopSignal {
    pub(super) fn new(listener: &TcpListener) -> std::io::Result<StopSignal> {
        let waker = listener_as_stream(listener);
        if let Some(waker) = &waker {
            let _ = waker.set_read_timeout(Some(ACCEPT_POLL));
        }
        Ok(StopSignal {
            state: AtomicU8::new(RUNNING),
            waker,
            local_addr: listener.local_addr()?,
        })
    }

    pub(super) fn is_stopping(&self) -> bool {
        self.state.load(Ordering::Acquire) != RUNNING
    }

    /// Whether a [`ShutdownHandle`] stopped the server (so the accepting thread shuts it down).
    pub(super) fn signalled(&self) -> bool {
        self.state.load(Ordering::Acquire) == SIGNALLED
    }

    /// Stops the accept loop; true if this call did (and not an earlier one).
    fn stop(&self, by: u8) -> bool {
        let first = self
            .state
            .compare_exchange(RUNNING, by, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if first {
            wake_accept(self.waker.as_ref(), self.local_addr);
        }
        first
    }
}

/// Stops a server from any thread: cloneable, `Send` and `Sync`. Take it with
/// [`Server::shutdown_handle`](crate::Server::shutdown_handle) before calling
/// [`serve`](crate::Server::serve), which then returns once the shutdown (as
/// [`ServerHandle::shutdown`] describes it) is complete.
///
/// ```no_run
/// let server = syncws::Server::bind("127.0.0.1:0")?;
/// let stop = server.shutdown_handle();
/// std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_secs(60));
///     stop.shutdown();
/// });
/// server.serve(|_session| {})?; // returns about a minute later
/// # Ok::<(), syncws::Error>(())
/// ```
#[derive(Clone)]
pub struct ShutdownHandle {
    signal: Arc<StopSignal>,
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("local_addr", &self.signal.local_addr)
            .field("stopping", &self.signal.is_stopping())
            .finish()
    }
}

impl ShutdownHandle {
    pub(super) fn new(signal: &Arc<StopSignal>) -> ShutdownHandle {
        ShutdownHandle {
            signal: Arc::clone(signal),
        }
    }

    /// Starts the shutdown and returns at once; the thread that accepts connections (the one in
    /// `serve`, or the spawned server's) stops accepting and shuts the connections down. Later
    /// calls, and calls after the server has stopped, do nothing. Called before `serve`, it makes
    /// `serve` return at once.
    pub fn shutdown(&self) {
        self.signal.stop(SIGNALLED);
    }
}

/// Controls a server started with [`Server::spawn`](crate::Server::spawn). Dropping it shuts the
/// server down.
pub struct ServerHandle<T: Send + 'static = ()> {
    pub(super) context: Option<Arc<Context<T>>>,
    pub(super) accept_thread: Option<JoinHandle<()>>,
    pub(super) signal: Arc<StopSignal>,
    pub(super) local_addr: SocketAddr,
}

impl<T: Send + 'static> ServerHandle<T> {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections open or in their handshake now.
    pub fn connection_count(&self) -> usize {
        self.context.as_ref().map_or(0, |c| c.registry.lock().len())
    }

    /// A handle that starts the shutdown from any thread without waiting for it.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle::new(&self.signal)
    }

    /// Stops the server: stops accepting, answers handshakes in progress with 503, sends close
    /// 1001 to every connection, waits up to the shutdown timeout for handlers to return, then
    /// closes the TCP connections that remain and waits for their handlers. When it returns,
    /// every thread the server started has ended.
    ///
    /// A handler blocked on something other than its connection (another socket, a lock) is
    /// waited for: closing TCP wakes only reads and writes on the connection.
    ///
    /// Called from a handler or from `on_end` (or the handle dropped there), it does not wait
    /// for the calling connection itself, which ends when its handler returns; every other thread
    /// has ended when it returns.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(context) = self.context.take() else {
            return;
        };
        if context.stop.stop(OWNED) {
            if let Some(thread) = self.accept_thread.take() {
                let _ = thread.join();
            }
            shut_down(&context);
        } else if !context.registry.on_connection_thread() {
            // A ShutdownHandle came first: the accept thread runs the sequence; wait for it.
            // (A handler cannot wait for it: the sequence waits for that handler's connection.)
            if let Some(thread) = self.accept_thread.take() {
                let _ = thread.join();
            }
        }
        // The last reference: dropping it stops and joins the heartbeat thread.
        drop(context);
    }
}

impl<T: Send + 'static> Drop for ServerHandle<T> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The shutdown sequence once the accept loop has stopped; see [`ServerHandle::shutdown`].
pub(super) fn shut_down<T>(context: &Context<T>) {
    // 1. Handshakes in progress get 503 (their threads wake on the read side's shutdown); open
    //    connections get 1001.
    let (handshaking, open) = context.registry.begin_shutdown();
    for stream in handshaking {
        let _ = stream.shutdown(Shutdown::Read);
    }
    //    First without waiting for any lock; then, for connections busy writing, with a little
    //    patience each, all within the shutdown timeout.
    let deadline = connection::deadline_after(context.settings.shutdown_timeout);
    let close = |writer: &Writer, patience| {
        writer.close_from_shared_thread(
            EndCause::ServerShutdown,
            CloseCode::GoingAway,
            "server shutdown",
            patience,
        )
    };
    let busy: Vec<_> = open.iter().filter(|w| !close(w, Duration::ZERO)).collect();
    for writer in busy {
        let left = deadline.saturating_duration_since(Instant::now());
        close(writer, left.min(Duration::from_millis(100)));
    }
    // 2. Wait for handlers; then cut what is left and wait for those threads too.
    if !context.registry.wait_empty(Some(deadline)) {
        let (handshaking, open) = context.registry.begin_shutdown();
        for stream in handshaking {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for writer in open {
            writer.fail(
                EndCause::ServerShutdown,
                CloseCode::GoingAway,
                "server shutdown",
            );
        }
        context.registry.wait_empty(None);
    }
    context.registry.reap();
}
