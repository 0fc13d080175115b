//! One way to talk to Redis whatever its deployment: a single server, or a Redis Cluster
//! (commands routed by key slot, pipelines split by node). Chosen when the hub is built.

use crate::rooms::hub::RoomsError;
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection, ClusterPipeline};
use redis::{Client, Cmd, Connection, ConnectionLike, Pipeline, RedisResult, Value};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Where the broker lives.
pub(in crate::rooms) enum Target {
    Single(Client),
    Cluster(ClusterClient),
}

impl Target {
    /// A single server at `url` (e.g. `redis://127.0.0.1:6379/`).
    pub fn single(url: &str) -> Result<Target, String> {
        Client::open(url)
            .map(Target::Single)
            .map_err(|e| e.to_string())
    }

    /// A Redis Cluster reached first through any of `urls` (the others are found from it).
    pub fn cluster(urls: &[&str], timeout: Duration) -> Result<Target, String> {
        if urls.is_empty() {
            return Err("a Redis Cluster needs at least one node URL".to_owned());
        }
        ClusterClientBuilder::new(urls.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            // Redirections after a resharding are retried; an unreachable node fails the call
            // soon, so the caller's own backoff and outage report take over.
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(200)
            .build()
            .map(Target::Cluster)
            .map_err(|e| e.to_string())
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }

    /// A new connection whose every call is bounded by `timeout`.
    pub fn connect(&self, timeout: Duration) -> RedisResult<Link> {
        match self {
            Target::Single(client) => {
                let connection = client.get_connection_with_timeout(timeout)?;
                connection.set_read_timeout(Some(timeout))?;
                connection.set_write_timeout(Some(timeout))?;
                Ok(Link::Single(connection))
            }
            Target::Cluster(client) => {
                let connection = client.get_connection()?;
                connection.set_read_timeout(Some(timeout))?;
                connection.set_write_timeout(Some(timeout))?;
                Ok(Link::Cluster(Box::new(connection)))
            }
        }
    }
}

/// A connection to a single server, or to every node of a cluster (one each, opened as needed).
pub(in crate::rooms) enum Link {
    Single(Connection),
    Cluster(Box<ClusterConnection>),
}

impl Link {
    /// Runs `pipeline` in one round trip per server involved, answers in command order (on a
    /// cluster, ignored commands' answers are kept: callers that read answers ignore none). On a
    /// cluster the commands are grouped by the node serving their keys; each command must touch
    /// keys of one slot only (one room's keys share a slot).
    pub fn pipeline(&mut self, pipeline: &Pipeline) -> RedisResult<Vec<Value>> {
        match self {
            Link::Single(connection) => pipeline.query(connection),
            Link::Cluster(connection) => {
                let mut cluster = ClusterPipeline::new();
                for command in pipeline.cmd_iter() {
                    cluster.add_command(command.clone());
                }
                cluster.query(connection)
            }
        }
    }
}

impl ConnectionLike for Link {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Link::Single(c) => c.req_packed_commands(cmd, offset, count),
            Link::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Link::Single(c) => c.req_command(cmd),
            Link::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            Link::Single(c) => c.supports_pipelining(),
            Link::Cluster(c) => c.supports_pipelining(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Link::Single(c) => c.check_connection(),
            Link::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Link::Single(c) => c.is_open(),
            Link::Cluster(c) => c.is_open(),
        }
    }
}

/// At most this many control connections (joins, replays, presence queries) are open at once,
/// busy or idle: past it a caller waits for one to come back, at most [`Pool::call`]'s
/// `timeout`, then fails with [`RoomsError::Broker`]. So a broker that stops answering costs
/// each caller one call's bound (plus at most one such wait), never the sum of everyone's, and
/// HTTP clients asking for presence cannot open connections to Redis without bound.
pub(in crate::rooms) const MAX_CONTROL_LINKS: usize = 8;

/// Control connections, each checked out for one call: no lock is held while Redis answers.
/// A connection goes back after a successful call and is dropped after a failed one.
#[derive(Default)]
pub(in crate::rooms) struct Pool {
    state: Mutex<PoolState>,
    returned: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Link>,
    /// Connections checked out (or being opened) by callers.
    busy: usize,
}

impl Pool {
    /// Runs `call` on an idle connection, or on a new one if fewer than [`MAX_CONTROL_LINKS`]
    /// exist. A call that fails with an I/O error on a connection left over from before an
    /// outage is tried once more on a fresh one.
    pub fn call<T>(
        &self,
        target: &Target,
        timeout: Duration,
        mut call: impl FnMut(&mut Link) -> RedisResult<T>,
    ) -> Result<T, RoomsError> {
        let reused = self.check_out(timeout)?;
        let fresh = reused.is_none();
        let mut attempt = |link: Option<Link>| -> (RedisResult<T>, Option<Link>) {
            let mut link = match link {
                Some(link) => link,
                None => match target.connect(timeout) {
                    Ok(link) => link,
                    Err(error) => return (Err(error), None),
                },
            };
            match call(&mut link) {
                Ok(value) => (Ok(value), Some(link)),
                Err(error) => (Err(error), None),
            }
        };
        let (mut result, mut link) = attempt(reused);
        if let Err(error) = &result {
            if !fresh && (error.is_io_error() || error.is_connection_dropped()) {
                (result, link) = attempt(None);
            }
        }
        self.check_in(link);
        result.map_err(|e| RoomsError::Broker(e.to_string()))
    }

    /// An idle connection, or `None` with the right to open one; waits at most `timeout` while
    /// every connection is busy.
    fn check_out(&self, timeout: Duration) -> Result<Option<Link>, RoomsError> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (mut state, _) = self
            .returned
            .wait_timeout_while(state, timeout, |s| {
                s.idle.is_empty() && s.busy >= MAX_CONTROL_LINKS
            })
            .unwrap_or_else(|e| e.into_inner());
        if state.idle.is_empty() && state.busy >= MAX_CONTROL_LINKS {
            return Err(RoomsError::Broker(format!(
                "all {MAX_CONTROL_LINKS} connections to Redis are busy"
            )));
        }
        state.busy += 1;
        Ok(state.idle.pop())
    }

    /// Ends a checkout; `link` (`None` after a failure) becomes idle.
    fn check_in(&self, link: Option<Link>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.busy -= 1;
        state.idle.extend(link);
        drop(state);
        self.returned.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_CONTROL_LINKS, Pool, Target};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// Against a server that accepts and never answers: at most [`MAX_CONTROL_LINKS`]
    /// connections are opened, the other callers wait and fail, and nobody waits for the sum
    /// of the others' timeouts.
    #[test]
    fn a_stalled_broker_costs_each_caller_its_own_bound_with_bounded_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let target =
            Target::single(&format!("redis://{}/", listener.local_addr().unwrap())).unwrap();
        let accepted = &AtomicUsize::new(0);
        let listener = &listener;
        let (stop, stopped) = mpsc::channel::<()>();
        let pool = Pool::default();
        let timeout = Duration::from_millis(1000);
        let callers = 2 * MAX_CONTROL_LINKS;
        let (outcomes, accepted_early) = std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut held = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline && stopped.try_recv().is_err() {
                    match listener.accept() {
                        Ok((socket, _)) => {
                            held.push(socket);
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            });
            let handles: Vec<_> = (0..callers)
                .map(|_| {
                    scope.spawn(|| {
                        let started = Instant::now();
                        let result =
                            pool.call(&target, timeout, |c| redis::cmd("PING").query::<String>(c));
                        (started.elapsed(), result.is_err())
                    })
                })
                .collect();
            // Well before any call's bound: every slot is connected, nobody else is.
            std::thread::sleep(timeout / 2);
            let accepted_early = accepted.load(Ordering::SeqCst);
            let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let _ = stop.send(());
            (outcomes, accepted_early)
        });
        assert_eq!(accepted_early, MAX_CONTROL_LINKS);
        assert!(outcomes.iter().all(|(_, failed)| *failed));
        let slowest = outcomes.iter().map(|(took, _)| *took).max().unwrap();
        assert!(slowest < timeout * 5, "slowest call took {slowest:?}");
    }
}
