//! A client that reconnects by itself: backoff with full jitter, a hook to re-authenticate or
//! resubscribe, a bounded outbox for messages sent while disconnected (see
//! [`outbox`](super::outbox)), a retry decision by close code, and heartbeats that notice a dead
//! server.

pub use super::outbox::ReconnectingWriter;
use super::outbox::{Link, Shared, check_sendable};
use crate::client::ClientBuilder;
use crate::error::Error;
use crate::proto::close::{CloseCode, CloseFrame};
use crate::proto::message::Message;
use crate::split::{Reader, Writer};
use crate::timing::backoff::{Backoff, RetryPolicy};
use crate::timing::timer::{HeartbeatConfig, HeartbeatTimer};
use crate::websocket::ending::EndCause;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

type ConnectHook = Box<dyn FnMut(&Writer) -> Result<(), Error> + Send>;
type DisconnectHook = Box<dyn FnMut(&Disconnect) + Send>;

/// What a reconnecting client reports when a connection ends or an attempt fails.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Disconnect {
    /// Why the connection ended (or why the attempt failed, as an I/O ending).
    pub cause: EndCause,
    /// The wait before the next attempt; `None` when the client gives up.
    pub retry_in: Option<Duration>,
    /// Attempts in a row that have failed so far.
    pub attempt: u32,
}

/// Options for [`Reconnecting`]; see each setter for the default.
pub struct ReconnectBuilder {
    client: ClientBuilder,
    backoff: Backoff,
    retry: RetryPolicy,
    outbox: Option<usize>,
    heartbeat: Option<HeartbeatConfig>,
    on_connect: Option<ConnectHook>,
    on_disconnect: Option<DisconnectHook>,
}

impl std::fmt::Debug for ReconnectBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectBuilder")
            .field("client", &self.client)
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl ReconnectBuilder {
    /// The backoff schedule. Defaults to [`Backoff::default`] (0.5 s doubling to 30 s, forever).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Which close codes to retry after. Defaults to [`RetryPolicy::default`].
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Keep up to `capacity` messages sent while disconnected, and send them in order after the
    /// next connect. `0` makes such a send fail with [`Error::Disconnected`] instead. Defaults to
    /// 1,000. While connected, the outbox also holds messages waiting behind another thread's
    /// send.
    pub fn outbox(mut self, capacity: usize) -> Self {
        self.outbox = Some(capacity);
        self
    }

    /// Ping a quiet server every `interval`; if nothing arrives within `timeout`, drop the
    /// connection and reconnect. Defaults to the client's
    /// [`heartbeat`](ClientBuilder::heartbeat) (20 s / 20 s unless
    /// [`without_heartbeat`](ClientBuilder::without_heartbeat)).
    ///
    /// The pings come from a timer thread (named `syncws-heartbeat`) that this client starts at
    /// its first connect and stops when it is dropped; without a heartbeat there is none.
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat = Some(HeartbeatConfig { interval, timeout });
        self
    }

    /// Runs after every successful connect, before the outbox is flushed: re-authenticate,
    /// resubscribe. An error counts as a failed attempt.
    pub fn on_connect(
        mut self,
        hook: impl FnMut(&Writer) -> Result<(), Error> + Send + 'static,
    ) -> Self {
        self.on_connect = Some(Box::new(hook));
        self
    }

    /// Runs when a connection ends or an attempt fails, with the cause and the next wait.
    pub fn on_disconnect(mut self, hook: impl FnMut(&Disconnect) + Send + 'static) -> Self {
        self.on_disconnect = Some(Box::new(hook));
        self
    }

    /// Connects, retrying on failure as the backoff allows. Blocks until connected.
    ///
    /// Errors: [`Error::InvalidConfig`] for a heartbeat duration over a year
    /// ([`Config::MAX_TIMEOUT`](crate::Config::MAX_TIMEOUT)); the last attempt's error when
    /// attempts run out.
    pub fn connect(self) -> Result<Reconnecting, Error> {
        // The timer computes `now + interval`: one too far for the clock would panic.
        if let Some(hb) = self.heartbeat
            && hb.interval.max(hb.timeout) > crate::proto::config::Config::MAX_TIMEOUT
        {
            return Err(Error::InvalidConfig(
                "heartbeat durations over a year; use no heartbeat for none",
            ));
        }
        let heartbeat = self.heartbeat.or_else(|| {
            self.client
                .heartbeat_setting()
                .map(|(interval, timeout)| HeartbeatConfig { interval, timeout })
        });
        let mut client = Reconnecting {
            shared: Arc::new(Shared {
                state: Mutex::new(Link::default()),
                wake: Condvar::new(),
                capacity: self.outbox.unwrap_or(1000),
            }),
            reader: None,
            client: self.client,
            backoff: self.backoff,
            retry: self.retry,
            heartbeat,
            timer: None,
            on_connect: self.on_connect,
            on_disconnect: self.on_disconnect,
            attempt: 0,
            connections: 0,
            finished: false,
        };
        client.reconnect(None)?;
        Ok(client)
    }
}

/// A client connection that comes back by itself. [`read`](Self::read) reconnects as needed;
/// [`writer`](Self::writer) gives handles that send from any thread.
///
/// ```no_run
/// use std::time::Duration;
/// let mut ws = syncws::Reconnecting::builder(syncws::ClientBuilder::new("ws://127.0.0.1:9001/"))
///     .heartbeat(Duration::from_secs(10), Duration::from_secs(5))
///     .on_connect(|writer| writer.send(syncws::Message::text("subscribe news")))
///     .connect()?;
/// loop {
///     println!("{}", ws.read()?);
/// }
/// # Ok::<(), syncws::Error>(())
/// ```
pub struct Reconnecting {
    shared: Arc<Shared>,
    reader: Option<Reader>,
    client: ClientBuilder,
    backoff: Backoff,
    retry: RetryPolicy,
    heartbeat: Option<HeartbeatConfig>,
    /// This client's heartbeat thread, started at the first connect when heartbeats are on and
    /// stopped (joined) on drop.
    timer: Option<HeartbeatTimer>,
    on_connect: Option<ConnectHook>,
    on_disconnect: Option<DisconnectHook>,
    attempt: u32,
    connections: u64,
    finished: bool,
}

impl std::fmt::Debug for Reconnecting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconnecting")
            .field("connections", &self.connections)
            .finish()
    }
}

impl Reconnecting {
    /// Options for a reconnecting client of `client`'s URL and settings.
    pub fn builder(client: ClientBuilder) -> ReconnectBuilder {
        ReconnectBuilder {
            client,
            backoff: Backoff::default(),
            retry: RetryPolicy::default(),
            outbox: None,
            heartbeat: None,
            on_connect: None,
            on_disconnect: None,
        }
    }

    /// A handle to send (and close) from any thread.
    pub fn writer(&self) -> ReconnectingWriter {
        ReconnectingWriter {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Sends now if connected, else queues; see [`ReconnectingWriter::send`].
    pub fn send(&self, message: Message) -> Result<(), Error> {
        self.shared.send(message)
    }

    /// How many times a connection has been established (1 after the first connect).
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// Reads the next message, reconnecting (with backoff) whenever the connection ends in a way
    /// the retry policy retries. Pings are answered as usual.
    ///
    /// A close the policy does not retry is returned as [`Message::Close`]; after it, and after
    /// [`close`](Self::close), `read` returns [`Error::ConnectionClosed`]. When attempts run out
    /// it returns the last attempt's error; a protocol violation by the server is returned too.
    pub fn read(&mut self) -> Result<Message, Error> {
        loop {
            if self.finished {
                return Err(Error::ConnectionClosed);
            }
            let Some(reader) = self.reader.as_mut() else {
                self.reconnect(None)?;
                continue;
            };
            match reader.read() {
                Ok(Message::Close(frame)) => {
                    let cause = reader
                        .end_cause()
                        .unwrap_or(EndCause::PeerClosed(frame.clone()));
                    if self.shared.lock().closing || !self.retry.should_retry(cause.close_code()) {
                        self.end(&cause, None);
                        return Ok(Message::Close(frame));
                    }
                    self.reconnect(Some(cause))?;
                }
                Ok(message) => return Ok(message),
                Err(e) if e.is_timeout() => return Err(e),
                Err(error) => {
                    let cause = reader.end_cause().unwrap_or_else(|| match &error {
                        Error::Io(io) => EndCause::io(io),
                        Error::Protocol(violation) => EndCause::ProtocolViolation(*violation),
                        _ => EndCause::Io(std::io::ErrorKind::Other, error.to_string()),
                    });
                    if self.shared.lock().closing {
                        self.end(&cause, None);
                        return Err(Error::ConnectionClosed);
                    }
                    if !self.retry.should_retry(cause.close_code()) {
                        self.end(&cause, None);
                        return Err(error);
                    }
                    self.reconnect(Some(cause))?;
                }
            }
        }
    }

    /// Closes for good: stops reconnecting and runs the closing handshake on the current
    /// connection (see [`Reader::close`]), bounded by the client's
    /// [`Config::close_timeout`](crate::Config::close_timeout) (5 s by default). Returns the
    /// server's close frame; `None` when no connection was up.
    pub fn close(
        &mut self,
        code: impl Into<CloseCode>,
        reason: &str,
    ) -> Result<Option<CloseFrame>, Error> {
        let frame = CloseFrame::new(code, reason);
        check_sendable(&Message::Close(Some(frame.clone())))?;
        let Some(writer) = self.shared.stop_reconnecting(Some(frame.clone())) else {
            self.finished = true;
            return Ok(None);
        };
        let result = match self.reader.as_mut() {
            Some(reader) => reader.close(frame.code, &frame.reason),
            None => writer.start_close(frame.code, &frame.reason).map(|()| None),
        };
        writer.abort();
        self.finished = true;
        result
    }

    /// Tears down the current connection and reports why.
    fn end(&mut self, cause: &EndCause, retry_in: Option<Duration>) {
        let writer = {
            let mut link = self.shared.lock();
            link.usable = false;
            link.writer.take()
        };
        if let (Some(writer), Some(timer)) = (writer, self.timer.as_ref()) {
            timer.remove(&writer);
        }
        self.reader = None;
        if retry_in.is_none() {
            self.finished = true;
        }
        if let Some(hook) = self.on_disconnect.as_mut() {
            hook(&Disconnect {
                cause: cause.clone(),
                retry_in,
                attempt: self.attempt,
            });
        }
    }

    /// Waits as the backoff says, then connects; repeats until connected or out of attempts.
    fn reconnect(&mut self, ended: Option<EndCause>) -> Result<(), Error> {
        let mut last_cause = ended;
        loop {
            if let Some(cause) = last_cause.take() {
                let Some(delay) = self.backoff.delay(self.attempt, rand::random::<f64>()) else {
                    self.end(&cause, None);
                    return Err(Error::Disconnected);
                };
                self.end(&cause, Some(delay));
                self.finished = false;
                if !self.wait(delay) {
                    self.finished = true;
                    return Err(Error::ConnectionClosed);
                }
            }
            match self.open() {
                Ok(()) => {
                    self.attempt = 0;
                    self.connections += 1;
                    return Ok(());
                }
                // Closed for good during the attempt.
                Err(Error::ConnectionClosed) if self.shared.lock().closing => {
                    self.finished = true;
                    return Err(Error::ConnectionClosed);
                }
                Err(error) => {
                    if matches!(error, Error::Url(_) | Error::InvalidConfig(_)) {
                        return Err(error);
                    }
                    self.attempt += 1;
                    let cause = match &error {
                        Error::Io(io) => EndCause::io(io),
                        other => EndCause::Io(std::io::ErrorKind::Other, other.to_string()),
                    };
                    if self
                        .backoff
                        .max_attempts
                        .is_some_and(|max| self.attempt >= max)
                    {
                        self.end(&cause, None);
                        return Err(error);
                    }
                    last_cause = Some(cause);
                }
            }
        }
    }

    /// Sleeps for `delay` unless the client is closed meanwhile; `false` if it was. A delay too
    /// long for the clock (e.g. `Duration::MAX`) waits until the client is closed.
    fn wait(&self, delay: Duration) -> bool {
        let until = Instant::now().checked_add(delay);
        let mut link = self.shared.lock();
        while !link.closing {
            // Without a representable end, wake now and then to look again.
            let left = until.map_or(Duration::from_secs(3600), |until| {
                until.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return true;
            }
            link = self
                .shared
                .wake
                .wait_timeout(link, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        false
    }

    /// One attempt: connect, split, run the hook, flush the outbox, start heartbeats.
    fn open(&mut self) -> Result<(), Error> {
        // The heartbeat runs on this client's own timer, not the process-wide one.
        let (ws, _response) = self.client.clone().without_heartbeat().connect()?;
        let (reader, writer) = ws.split()?;
        if let Some(hook) = self.on_connect.as_mut() {
            hook(&writer)?;
        }
        if let Some(config) = self.heartbeat {
            if self.timer.is_none() {
                self.timer = Some(HeartbeatTimer::start(config)?);
            }
            if let Some(timer) = self.timer.as_ref() {
                timer.add(&writer);
            }
        }
        let mut link = self.shared.lock();
        link.writer = Some(writer.clone());
        link.generation += 1;
        if link.closing {
            // Closed for good while this attempt was under way: the close goes out on this
            // connection as a courtesy, and the connection ends at once (nothing waits for a
            // reply that an attempt the caller gave up on may never bring).
            // As asked (`Close(None)` stays without a code); 1000 when no close was asked for.
            let frame = link
                .pending_close
                .take()
                .unwrap_or_else(|| Some(CloseFrame::new(CloseCode::Normal, "")));
            drop(link);
            let _ = writer.send(Message::Close(frame));
            writer.abort();
            if let Some(timer) = self.timer.as_ref() {
                timer.remove(&writer);
            }
            return Err(Error::ConnectionClosed);
        }
        link.usable = true;
        // A sender already draining goes on with this connection; else this thread drains.
        let drained = if link.draining {
            drop(link);
            true
        } else {
            self.shared.drain(link, None).is_ok() && self.shared.lock().usable
        };
        if !drained {
            if let Some(timer) = self.timer.as_ref() {
                timer.remove(&writer);
            }
            let error = match writer.end_cause() {
                Some(cause) => {
                    std::io::Error::other(format!("the outbox could not be sent: {cause:?}"))
                }
                None => std::io::Error::other("the outbox could not be sent"),
            };
            return Err(Error::Io(error));
        }
        self.reader = Some(reader);
        Ok(())
    }
}

impl Drop for Reconnecting {
    fn drop(&mut self) {
        let writer = self.shared.lock().writer.take();
        if let Some(writer) = writer {
            if let Some(timer) = self.timer.as_ref() {
                timer.remove(&writer);
            }
            writer.abort();
        }
        // Dropping the timer stops its thread.
        self.timer = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unconnected() -> Reconnecting {
        let builder = Reconnecting::builder(ClientBuilder::new("ws://127.0.0.1:9/"));
        Reconnecting {
            shared: Arc::new(Shared {
                state: Mutex::new(Link::default()),
                wake: Condvar::new(),
                capacity: 2,
            }),
            reader: None,
            client: builder.client,
            backoff: builder.backoff,
            retry: builder.retry,
            heartbeat: None,
            timer: None,
            on_connect: None,
            on_disconnect: None,
            attempt: 0,
            connections: 0,
            finished: false,
        }
    }

    #[test]
    fn a_wait_longer_than_the_clock_can_count_ends_when_closed_without_panicking() {
        let client = unconnected();
        let closer = client.writer();
        let waiter = std::thread::spawn(move || client.wait(Duration::MAX));
        closer.start_close(CloseCode::Normal, "").unwrap();
        assert!(!waiter.join().expect("wait panicked"));
    }

    #[test]
    fn sends_while_disconnected_queue_in_order_up_to_the_bound() {
        let client = unconnected();
        client.send(Message::text("1")).unwrap();
        client.send(Message::text("2")).unwrap();
        assert!(matches!(
            client.send(Message::text("3")),
            Err(Error::Disconnected)
        ));
        assert!(matches!(
            client.send(Message::Ping(vec![0; 126])),
            Err(Error::InvalidInput(_))
        ));
        let link = client.shared.lock();
        let queued: Vec<_> = link.outbox.iter().cloned().collect();
        assert_eq!(queued, [Message::text("1"), Message::text("2")]);
    }
}
