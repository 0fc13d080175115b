//! End-to-end echo benchmark: syncws next to tungstenite and a raw TCP echo, all thread per
//! connection, driven by the same hand-framed load client. Run it with `scripts/bench.sh`.
//!
//! The one binary plays three parts, so the runner can start the others as processes (each pinned
//! with `taskset` when asked):
//!
//! - `e2e [run] [--quick] [options]`: the runner (see `runner::Options::parse`);
//! - `e2e server raw|tungstenite|syncws`: an echo server;
//! - `e2e load PORT SERVER SIZE CONNS binary|text SECONDS`: the load client.

mod load;
mod procfs;
mod runner;
mod servers;

use servers::ServerKind;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    // `cargo bench` appends `--bench`; it means nothing here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let result = match args.first().map(String::as_str) {
        Some("server") => server(&args[1..]),
        Some("load") => load(&args[1..]),
        Some("run") => run(&args[1..]),
        _ => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("e2e: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let options = runner::Options::parse(args)?;
    runner::run(&options).map_err(|e| e.to_string())
}

fn server(args: &[String]) -> Result<(), String> {
    let name = args.first().ok_or("server: which one?")?;
    let kind = ServerKind::parse(name).ok_or(format!("unknown server {name}"))?;
    servers::serve(kind).map_err(|e| e.to_string())
}

fn load(args: &[String]) -> Result<(), String> {
    let [port, server, size, conns, kind, secs] = args else {
        return Err("load PORT SERVER SIZE CONNS binary|text SECONDS".into());
    };
    let number = |what: &str, text: &str| -> Result<f64, String> {
        text.parse().map_err(|e| format!("{what}: {e}"))
    };
    let spec = load::LoadSpec {
        port: number("port", port)? as u16,
        server: ServerKind::parse(server).ok_or(format!("unknown server {server}"))?,
        size: number("size", size)? as usize,
        conns: number("conns", conns)? as usize,
        text: kind == "text",
        duration: Duration::from_secs_f64(number("seconds", secs)?),
    };
    load::run(&spec).map_err(|e| e.to_string())
}
