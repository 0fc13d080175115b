//! Real redis-server processes for the rooms tests: one server, or a 3-master Redis Cluster,
//! each on free loopback ports with its own directory, killed on drop. A missing redis-server
//! fails the test (CI installs Debian's package). Plus room members on loopback sockets.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use syncws::{Config, Message, Role, WebSocket, Writer};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free port whose cluster bus port (+10000) is free and valid too.
fn free_cluster_port() -> u16 {
    for _ in 0..200 {
        let port = free_port();
        if port <= 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair for a cluster node");
}

/// A redis-server for one test; killed on drop.
pub struct Redis {
    pub port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

impl Redis {
    /// Without persistence: a restart loses every room (a new epoch).
    pub fn start() -> Redis {
        Redis::with_args(free_port(), &[])
    }

    pub fn with_args(port: u16, extra: &[&str]) -> Redis {
        let dir = std::env::temp_dir().join(format!("syncws-redis-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Redis {
            port,
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        redis.restart();
        redis
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Runs `redis-cli` against this server; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli comes with redis-server");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three masters, no replicas, every slot assigned.
pub struct Cluster {
    pub nodes: Vec<Redis>,
}

impl Cluster {
    pub fn start() -> Cluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                Redis::with_args(
                    free_cluster_port(),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                    ],
                )
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let mut child = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli comes with redis-server");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "redis-cli --cluster create failed");
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("redis-cli --cluster create did not finish");
            }
            thread::sleep(Duration::from_millis(50));
        }
        for node in &nodes {
            while !node.cli(&["cluster", "info"]).contains("cluster_state:ok") {
                assert!(Instant::now() < deadline, "the cluster never became ok");
                thread::sleep(Duration::from_millis(50));
            }
        }
        Cluster { nodes }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Redis::url).collect()
    }

    /// The slot of `key`, as the cluster computes it.
    pub fn keyslot(&self, key: &str) -> u16 {
        let slot = self.nodes[0].cli(&["cluster", "keyslot", key]);
        slot.trim().parse().unwrap()
    }
}

/// A member: the server side's writer (given to the hub) and the client side that reads.
pub fn member() -> (Writer, WebSocket<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let (server, _) = listener.accept().unwrap();
    let (reader, writer) = WebSocket::from_stream(server, Role::Server, Config::default())
        .split()
        .unwrap();
    // The reader half must live as long as the writer is used.
    std::mem::forget(reader);
    (
        writer,
        WebSocket::from_stream(client, Role::Client, Config::default()),
    )
}

/// The next `count` text frames.
pub fn texts(socket: &mut WebSocket<TcpStream>, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| match socket.read().unwrap() {
            Message::Text(text) => text.to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// Polls `done` every 20 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        thread::sleep(Duration::from_millis(20));
    }
}
