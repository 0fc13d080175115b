//! One way to talk to Redis whatever its deployment: a single server, or a Redis Cluster
//! (commands routed by key slot, pipelines split by node). Chosen when the hub is built.

use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection, ClusterPipeline};
use redis::{Client, Cmd, Connection, ConnectionLike, Pipeline, RedisResult, Value};
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
