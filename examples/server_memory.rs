//! Measures a Server at rest: memory per idle connection, threads, and the heartbeat thread's CPU.
//! Driven by `scripts/memory.sh`, which opens the connections from another process.
//!
//! Run: `server_memory --expect N [--heartbeat SECS] [--window SECS] [--stack-size BYTES]`.
//! Prints `listening ADDR`, waits for N connections, then one `key=value` line per figure.

use std::time::{Duration, Instant};
use syncws::Server;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut expect = 1000usize;
    let mut heartbeat = 5u64;
    let mut window = 20u64;
    let mut stack_size = syncws::ServerBuilder::DEFAULT_STACK_SIZE;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or("missing value")?;
        match flag.as_str() {
            "--expect" => expect = value.parse()?,
            "--heartbeat" => heartbeat = value.parse()?,
            "--window" => window = value.parse()?,
            "--stack-size" => stack_size = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    let secs = Duration::from_secs(heartbeat);
    let server = Server::builder()
        .heartbeat(secs, secs)
        .max_connections(expect + 10)
        .stack_size(stack_size)
        .bind("127.0.0.1:0")?
        // An idle handler: blocks in read() until the connection ends.
        .spawn(|mut session| while session.read().is_ok() {})?;
    let before = status("VmRSS:");
    println!("listening {}", server.local_addr());
    let started = Instant::now();
    while server.connection_count() < expect {
        if started.elapsed() > Duration::from_secs(300) {
            return Err(format!("only {} connections", server.connection_count()).into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("connect_seconds={:.1}", started.elapsed().as_secs_f64());
    // Let every handler reach its blocking read.
    std::thread::sleep(Duration::from_secs(2));
    let after = status("VmRSS:");
    println!("connections={expect}");
    println!("stack_size_kib={}", stack_size / 1024);
    println!("rss_before_kib={before}");
    println!("rss_after_kib={after}");
    println!(
        "rss_per_connection_kib={:.1}",
        (after - before) as f64 / expect as f64
    );
    println!("threads={}", status("Threads:"));
    // The heartbeat thread's CPU time over a window in which every connection is pinged.
    let cpu_start = heartbeat_cpu_ticks().ok_or("no heartbeat thread")?;
    let window_start = Instant::now();
    std::thread::sleep(Duration::from_secs(window));
    let ticks = heartbeat_cpu_ticks().ok_or("no heartbeat thread")? - cpu_start;
    let elapsed = window_start.elapsed().as_secs_f64();
    let cpu = ticks as f64 / 100.0; // USER_HZ is 100 on Linux
    println!("heartbeat_interval_s={heartbeat}");
    println!("heartbeat_window_s={elapsed:.1}");
    println!(
        "heartbeat_pings_per_s={:.0}",
        expect as f64 / heartbeat as f64
    );
    println!("heartbeat_cpu_s={cpu:.2}");
    println!("heartbeat_cpu_percent={:.2}", 100.0 * cpu / elapsed);
    println!("still_connected={}", server.connection_count());
    let stop = Instant::now();
    server.shutdown();
    println!("shutdown_seconds={:.2}", stop.elapsed().as_secs_f64());
    println!("threads_after_shutdown={}", status("Threads:"));
    Ok(())
}

/// A number field of /proc/self/status, e.g. `VmRSS:` (kB) or `Threads:`.
fn status(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of the thread named `syncws-heartbeat` (comm is cut to 15 bytes).
fn heartbeat_cpu_ticks() -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).ok()?;
        if comm.trim() != "syncws-heartbea" {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        return Some(utime + stime);
    }
    None
}
