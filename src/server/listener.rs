//! The accept loop: takes connections, gives each a thread (or a 503 over the cap), backs off
//! when accepting fails, and wakes up when the server stops.

use super::{Context, connection, http, registry::Registry};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
#[cfg(test)]
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

/// How long the accept thread blocks in one `accept()` before it looks at the stop flag again
/// (where the OS honours a receive timeout on a listening socket, as Linux does): the bound on
/// [`ServerHandle::shutdown`]'s wait for the accept thread if waking it fails.
pub(super) const ACCEPT_POLL: Duration = Duration::from_secs(1);

/// The longest pause of the accept loop after a failed `accept()` (out of descriptors, memory):
/// the pause doubles from 10 ms up to this, so a persistent error does not burn a core.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accepts until the server stops: each connection gets a thread, or a 503 over the cap.
///
/// Waits only in `accept()`, for at most [`ACCEPT_POLL`] where the OS allows (then it looks at the
/// stop flag), and in the backoff after a failed accept (at most [`ACCEPT_BACKOFF_MAX`]).
pub(super) fn accept_loop<T: Send + 'static>(listener: &TcpListener, context: &Arc<Context<T>>) {
    let mut backoff = Backoff::default();
    loop {
        let accepted = listener.accept();
        if context.stop.is_stopping() {
            return;
        }
        context.registry.reap();
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff.reset();
                // Linux copies the listener's SO_RCVTIMEO (the accept poll) to accepted sockets.
                let _ = stream.set_read_timeout(None);
                stream
            }
            // The poll timed out, or this one connection failed before we took it: go on.
            Err(e) if is_per_connection(&e) => continue,
            // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS), or worse: retrying at once
            // would fail the same way and burn a core. Pause, longer each time.
            Err(e) => {
                backoff.pause(&e);
                continue;
            }
        };
        let mut live = context.registry.lock();
        if live.len() >= context.settings.max_connections {
            drop(live);
            refuse_over_capacity(stream, context.settings.retry_after_secs);
            continue;
        }
        // One socket shared by the registry (to wake it at shutdown) and the connection.
        let stream = Arc::new(stream);
        let id = Registry::insert(&mut live, Arc::clone(&stream));
        let thread_context = Arc::clone(context);
        let spawned = thread::Builder::new()
            .name(format!("syncws-conn-{id}"))
            .stack_size(context.settings.stack_size)
            .spawn(move || connection::run(&thread_context, stream, id));
        match spawned {
            Ok(thread) => Registry::set_thread(&mut live, id, thread),
            Err(_) => {
                // No thread for it (the OS limit): the stream was moved into the failed
                // closure and is closed; forget the slot.
                drop(live);
                context.registry.remove(id);
            }
        }
    }
}

/// Errors that concern one connection (or the poll), not the listener: retry at once.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
            | io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The accept loop's pause after failed accepts: 10 ms, doubling up to [`ACCEPT_BACKOFF_MAX`];
/// reset by the next successful accept. The first failure of a streak is logged (feature `log`).
#[derive(Default)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn pause(&mut self, error: &io::Error) {
        if self.next.is_zero() {
            #[cfg(feature = "log")]
            log::warn!(target: "syncws::server", "accept failed, backing off: {error}");
            self.next = Duration::from_millis(10);
        }
        let _ = error;
        #[cfg(test)]
        tests::ACCEPT_PAUSES.fetch_add(1, Ordering::Relaxed);
        thread::sleep(self.next);
        self.next = (self.next * 2).min(ACCEPT_BACKOFF_MAX);
    }

    fn reset(&mut self) {
        self.next = Duration::ZERO;
    }
}

/// Wakes a thread blocked in `accept()` on the listener `waker` is a handle of. On Linux,
/// shutting a listening socket down makes a blocked (and every later) `accept()` fail at once.
/// Elsewhere a connection to ourselves is tried too (bounded by 1 s); failing both, the accept
/// thread still sees the stop flag within [`ACCEPT_POLL`] where the OS honours SO_RCVTIMEO on a
/// listening socket (Linux does).
pub(super) fn wake_accept(waker: Option<&TcpStream>, local: SocketAddr) {
    if let Some(socket) = waker {
        let _ = socket.shutdown(Shutdown::Both);
    }
    if !cfg!(target_os = "linux") {
        let _ = TcpStream::connect_timeout(&wake_addr(local), Duration::from_secs(1));
    }
}

/// A second handle on the listening socket, typed as a stream for the socket calls a listener
/// lacks (`SO_RCVTIMEO`, `shutdown`). Dropping it closes only this handle.
pub(super) fn listener_as_stream(listener: &TcpListener) -> Option<TcpStream> {
    let clone = listener.try_clone().ok()?;
    #[cfg(unix)]
    return Some(TcpStream::from(std::os::fd::OwnedFd::from(clone)));
    #[cfg(windows)]
    return Some(TcpStream::from(std::os::windows::io::OwnedSocket::from(
        clone,
    )));
    #[cfg(not(any(unix, windows)))]
    {
        drop(clone);
        None
    }
}

/// Answers 503 on the accept thread without waiting for the client: reads only what has already
/// arrived (so closing does not reset the connection before the client reads the answer).
fn refuse_over_capacity(mut stream: TcpStream, retry_after_secs: u32) {
    if stream.set_nonblocking(true).is_ok() {
        let mut scratch = [0u8; 2048];
        while matches!(stream.read(&mut scratch), Ok(n) if n > 0) {}
    }
    let response = http::unavailable(retry_after_secs, "too many connections").to_bytes();
    // A fresh socket's send buffer is empty: this write does not block.
    let _ = stream.write_all(&response);
    let _ = stream.shutdown(Shutdown::Write);
}

/// Where to connect to wake our own accept(): the unspecified address is not connectable.
fn wake_addr(local: SocketAddr) -> SocketAddr {
    match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), local.port())
        }
        _ => local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Server};
    use std::process::Command;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// Pauses of the accept loop after failed accepts, in this process.
    pub(super) static ACCEPT_PAUSES: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn the_backoff_grows_to_its_bound_and_resets() {
        let mut backoff = Backoff::default();
        let error = io::Error::other("test");
        let mut pauses = Vec::new();
        for _ in 0..4 {
            backoff.pause(&error);
            pauses.push(backoff.next);
        }
        assert_eq!(pauses[0], Duration::from_millis(20));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        backoff.next = ACCEPT_BACKOFF_MAX;
        backoff.next = (backoff.next * 2).min(ACCEPT_BACKOFF_MAX);
        assert_eq!(backoff.next, ACCEPT_BACKOFF_MAX);
        backoff.reset();
        assert!(backoff.next.is_zero());
    }

    const CHILD: &str = "SYNCWS_TEST_FD_LIMITED_CHILD";
    const CHILD_TEST: &str =
        "server::listener::tests::out_of_descriptors_the_accept_loop_backs_off_and_stops";

    /// Out of file descriptors, `accept()` fails at once for as long as the shortage lasts: the
    /// loop must pause longer and longer (not retry 100 times a second), serve again once
    /// descriptors are free, and `shutdown` must return even though connecting to itself is then
    /// impossible. Runs in a child process with a low descriptor limit (`ulimit -n`).
    #[test]
    #[cfg(target_os = "linux")]
    fn out_of_descriptors_the_accept_loop_backs_off_and_stops() {
        if std::env::var_os(CHILD).is_some() {
            return fd_limited_child();
        }
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
            .arg(exe)
            .args(["--exact", CHILD_TEST, "--test-threads=1", "--nocapture"])
            .env(CHILD, "1")
            .spawn()
            .unwrap();
        let give_up = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > give_up {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the descriptor-limited child did not finish within 60 s");
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "the descriptor-limited child failed");
    }

    #[cfg(target_os = "linux")]
    fn fd_limited_child() {
        // The handshake threads must keep their descriptors for the whole test.
        let config = Config {
            handshake_timeout: Some(Duration::from_secs(60)),
            ..Config::default()
        };
        let server = Server::builder()
            .config(config)
            .bind("127.0.0.1:0")
            .unwrap()
            .spawn(|_session| {})
            .unwrap();
        let addr = server.local_addr();
        // Use up every descriptor: each client holds one here and one in the server.
        let mut clients = Vec::new();
        while clients.len() < 1_000 {
            match TcpStream::connect(addr) {
                Ok(client) => clients.push(client),
                Err(_) => break,
            }
        }
        assert!(
            clients.len() < 1_000,
            "the descriptor limit was not reached"
        );
        // Wait (bounded) until the accept loop has hit the limit, then count its pauses.
        let give_up = Instant::now() + Duration::from_secs(20);
        while ACCEPT_PAUSES.load(Ordering::Relaxed) == 0 {
            assert!(Instant::now() < give_up, "accept never failed");
            thread::sleep(Duration::from_millis(10));
        }
        let before = ACCEPT_PAUSES.load(Ordering::Relaxed);
        thread::sleep(Duration::from_secs(3));
        let during = ACCEPT_PAUSES.load(Ordering::Relaxed) - before;
        // Pauses of 10, 20, 40 … up to 1,000 ms: about 9 in 3 s, where a fixed 10 ms pause
        // would make about 300 (and no pause, millions).
        assert!(during <= 40, "{during} failed accepts in 3 s");
        // Free the descriptors: the server accepts again.
        clients.clear();
        let give_up = Instant::now() + Duration::from_secs(20);
        let served = loop {
            if let Ok(mut client) = TcpStream::connect(addr) {
                let _ = client.set_read_timeout(Some(Duration::from_secs(20)));
                let request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
                let mut status = [0u8; 12];
                if client.write_all(request.as_bytes()).is_ok()
                    && client.read_exact(&mut status).is_ok()
                {
                    break status[9..12].to_vec();
                }
            }
            assert!(Instant::now() < give_up, "never served again");
            thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(served, b"426");
        // Use every descriptor again, with the accept thread (probably) blocked in accept()
        // holding the one it reserved: a connect to ourselves cannot wake it, yet shutdown returns.
        thread::sleep(Duration::from_millis(1_500));
        let mut hoard = Vec::new();
        while let Ok(file) = std::fs::File::open("/dev/null") {
            hoard.push(file);
            if hoard.len() > 1_000 {
                break;
            }
        }
        let (done_tx, done) = std::sync::mpsc::channel();
        thread::spawn(move || {
            server.shutdown();
            let _ = done_tx.send(());
        });
        done.recv_timeout(Duration::from_secs(20))
            .expect("shutdown did not return without descriptors");
        drop(hoard);
        drop(clients);
    }
}
