//! The reconnecting client's heartbeat thread: none without a heartbeat, and it ends with the
//! client (issue 17, item 7). Alone in its test binary: it counts the process's threads.

mod common;

use common::DEADLINE;
use std::net::TcpListener;
use std::thread;
use std::time::Duration;
use syncws::{ClientBuilder, Reconnecting};

/// Threads of this process named `syncws-heartbeat` (Linux shows the first 15 bytes).
#[cfg(target_os = "linux")]
fn heartbeat_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("syncws-heartbe"))
        .count()
}

/// The count once it reaches `want`, or whatever it is after [`DEADLINE`]: a thread names
/// itself, and leaves the task list, a moment after `spawn` and `join` return.
#[cfg(target_os = "linux")]
fn settled_count(want: usize) -> usize {
    let started = std::time::Instant::now();
    loop {
        let count = heartbeat_threads();
        if count == want || started.elapsed() > DEADLINE {
            return count;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_heartbeat_thread_runs_only_with_a_heartbeat_and_ends_with_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        for _ in 0..2 {
            let (stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(DEADLINE)).unwrap();
            thread::spawn(move || {
                if let Ok(mut ws) = syncws::accept(stream) {
                    while ws.read().is_ok() {}
                }
            });
        }
    });
    let url = format!("ws://{addr}/");
    assert_eq!(heartbeat_threads(), 0);

    let ws = Reconnecting::builder(ClientBuilder::new(&url).without_heartbeat())
        .connect()
        .unwrap();
    assert_eq!(heartbeat_threads(), 0, "started without a heartbeat");
    drop(ws);
    assert_eq!(
        heartbeat_threads(),
        0,
        "started by dropping a client without a heartbeat"
    );

    let ws = Reconnecting::builder(ClientBuilder::new(&url))
        .heartbeat(Duration::from_secs(1), Duration::from_secs(1))
        .connect()
        .unwrap();
    assert_eq!(settled_count(1), 1);
    drop(ws);
    assert_eq!(settled_count(0), 0, "outlived the client");
    server.join().unwrap();
}
