//! Memory per connection with permessage-deflate, measured: the growth of this process's resident
//! set (VmRSS, Linux) while 500 server-side connections are alive, each having received and sent a
//! 256 KiB compressed message (so the compressor's and decompressor's windows are fully used).
//! A run with the extension off gives the baseline of the connection itself.
//!
//! Run: `cargo run --release --features deflate --example deflate_memory`

use syncws::proto::{Connection, Role};
use syncws::{Config, DeflateConfig, DeflateParams, Event, Message};

const CONNECTIONS: usize = 500;

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Varied text that deflate cannot shrink to nothing: every window byte gets used.
fn text(size: usize) -> String {
    let mut s = String::with_capacity(size + 64);
    let mut x: u32 = 12345;
    while s.len() < size {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        s.push_str(&format!("{{\"k\":{},\"v\":\"{:x}\"}},", x >> 20, x));
    }
    s.truncate(size);
    s
}

fn measure(label: &str, params: Option<DeflateParams>, server: DeflateConfig) -> Option<usize> {
    let message = Message::text(text(256 << 10));
    // One client produces the compressed bytes every server connection receives.
    let mut client = Connection::new(Role::Client, &Config::default());
    let mut client_config = DeflateConfig::default();
    client_config.threshold = 0;
    if let Some(params) = &params {
        client.set_deflate(params, &client_config);
    }
    client.send(&message).ok()?;
    let wire = client.data_to_send().to_vec();

    let before = rss_bytes();
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let mut conn = Connection::new(Role::Server, &Config::default());
        if let Some(params) = &params {
            conn.set_deflate(params, &server);
        }
        conn.receive_data(&wire);
        match conn.next_event() {
            Ok(Some(Event::Message(m))) if m == message => {}
            other => panic!("{label}: unexpected {other:?}"),
        }
        conn.send(&message).ok()?;
        let n = conn.data_to_send().len();
        conn.advance(n);
        conn.receiver().shrink();
        connections.push(conn);
    }
    let per_connection = rss_bytes().saturating_sub(before) / CONNECTIONS;
    drop(connections);
    Some(per_connection)
}

fn main() {
    if !cfg!(feature = "deflate") {
        eprintln!("build with --features deflate");
        std::process::exit(2);
    }
    let full = DeflateConfig::default();
    let mut receive_only = DeflateConfig::default();
    receive_only.receive_only = true;
    let params = |server_bits, client_bits| DeflateParams {
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
        ..DeflateParams::default()
    };
    let runs: [(&str, Option<DeflateParams>, DeflateConfig); 6] = [
        ("deflate off (baseline)", None, full.clone()),
        ("deflate, windows 15/15", Some(params(15, 15)), full.clone()),
        ("deflate, windows 12/12", Some(params(12, 12)), full.clone()),
        ("deflate, windows 9/9", Some(params(9, 9)), full.clone()),
        (
            "receive-only, window 15",
            Some(params(15, 15)),
            receive_only.clone(),
        ),
        ("receive-only, window 9", Some(params(15, 9)), receive_only),
    ];
    // Each run in a fresh process: memory freed by one run would otherwise be reused by the next
    // and hide its growth.
    if let Some(index) = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<usize>().ok())
    {
        let (label, params, config) = runs[index].clone();
        match measure(label, params, config) {
            Some(bytes) => println!("{bytes}"),
            None => std::process::exit(1),
        }
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    println!("{CONNECTIONS} server connections, each after one 256 KiB message each way:");
    let mut baseline = 0;
    for (index, (label, params, _)) in runs.iter().enumerate() {
        let output = std::process::Command::new(&exe)
            .arg(index.to_string())
            .output()
            .expect("run a measurement");
        let Some(bytes) = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse::<usize>()
            .ok()
        else {
            eprintln!("{label}: measurement failed");
            std::process::exit(1);
        };
        if params.is_none() {
            baseline = bytes;
        }
        println!(
            "  {label:<26} {:>7.1} KiB per connection, {:>7.1} KiB over the baseline",
            bytes as f64 / 1024.0,
            bytes.saturating_sub(baseline) as f64 / 1024.0
        );
    }
}
