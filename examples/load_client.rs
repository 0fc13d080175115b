//! A load generator for `scripts/load.sh`: many concurrent echoing connections, then churn.
//!
//! `load_client URL concurrent N ROUNDS HOLD_SECS`: opens N connections (a hundred per thread),
//! echoes ROUNDS messages on each, holds them open for HOLD_SECS while answering the server's
//! heartbeat pings, echoes once more, and closes them all. `load_client URL churn CYCLES`:
//! CYCLES connect–echo–close cycles on 16 threads. Prints `key value` lines; exits 1 on any error.
//! Between phases it prints `phase NAME` and waits for a line on stdin, so the script can
//! measure the server at that moment.

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use syncws::{ClientBuilder, Message, NetStream, WebSocket};

const PER_THREAD: usize = 100;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: load_client URL concurrent N ROUNDS HOLD_SECS | URL churn CYCLES";
    let (Some(url), Some(mode)) = (args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let number = |i: usize| {
        args.get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| {
                eprintln!("{usage}");
                std::process::exit(2)
            })
    };
    let errors = match mode.as_str() {
        "concurrent" => concurrent(url, number(3) as usize, number(4), number(5)),
        "churn" => churn(url, number(3)),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2)
        }
    };
    println!("errors {errors}");
    std::process::exit(if errors == 0 { 0 } else { 1 });
}

fn connect(url: &str) -> Result<WebSocket<NetStream>, syncws::Error> {
    let (ws, _) = ClientBuilder::new(url).no_proxy().connect()?;
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(ws)
}

fn echo(ws: &mut WebSocket<NetStream>, text: &str) -> Result<(), String> {
    ws.send(Message::text(text)).map_err(|e| e.to_string())?;
    loop {
        match ws.read().map_err(|e| e.to_string())? {
            Message::Text(t) if t == text => return Ok(()),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return Err(format!("unexpected {other}")),
        }
    }
}

/// Tells the script which phase is reached and waits until it has measured.
fn checkpoint(name: &str) {
    println!("phase {name}");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

fn concurrent(url: &str, n: usize, rounds: u64, hold_secs: u64) -> u64 {
    let errors = Arc::new(AtomicU64::new(0));
    let pings = Arc::new(AtomicU64::new(0));
    let threads = n.div_ceil(PER_THREAD);
    // Each phase ends at a barrier; the main thread lets the script measure, then meets the
    // workers at a second barrier to start the next phase, so nothing runs while it measures.
    let barrier = Arc::new(Barrier::new(threads + 1));
    let phase = {
        let barrier = barrier.clone();
        move || {
            barrier.wait();
            barrier.wait();
        }
    };
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (url, errors, pings, phase) =
                (url.to_owned(), errors.clone(), pings.clone(), phase.clone());
            let count = PER_THREAD.min(n - t * PER_THREAD);
            std::thread::Builder::new()
                .name(format!("load-{t}"))
                .stack_size(256 * 1024)
                .spawn(move || {
                    let fail = |e: String| {
                        if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("load-{t}: {e}");
                        }
                    };
                    let mut conns: Vec<_> = (0..count)
                        .filter_map(|_| connect(&url).map_err(|e| fail(e.to_string())).ok())
                        .collect();
                    phase(); // connected
                    for round in 0..rounds {
                        for ws in conns.iter_mut() {
                            if let Err(e) = echo(ws, &format!("round {round}")) {
                                fail(e);
                            }
                        }
                    }
                    phase(); // echoed
                    // Hold: short reads answer the server's pings as they come.
                    let until = Instant::now() + Duration::from_secs(hold_secs);
                    for ws in conns.iter_mut() {
                        let _ = ws
                            .get_ref()
                            .set_read_timeout(Some(Duration::from_millis(2)));
                    }
                    while Instant::now() < until {
                        for ws in conns.iter_mut() {
                            match ws.read() {
                                Ok(Message::Ping(_)) => {
                                    pings.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok(other) => fail(format!("unexpected {other} while idle")),
                                Err(e) if e.is_timeout() => {}
                                Err(e) => fail(e.to_string()),
                            }
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    for ws in conns.iter_mut() {
                        let _ = ws.get_ref().set_read_timeout(Some(Duration::from_secs(30)));
                        if let Err(e) = echo(ws, "still there") {
                            fail(e);
                        }
                    }
                    phase(); // held
                    for mut ws in conns {
                        if let Err(e) = ws.close(syncws::CloseCode::Normal, "") {
                            fail(e.to_string());
                        }
                    }
                })
                .expect("spawn")
        })
        .collect();
    barrier.wait(); // all connected
    println!("connect_secs {:.2}", started.elapsed().as_secs_f64());
    checkpoint("connected");
    barrier.wait(); // go
    let echo_start = Instant::now();
    barrier.wait(); // all echoed
    let messages = n as u64 * rounds;
    println!(
        "echo_msgs_per_sec {:.0}",
        messages as f64 / echo_start.elapsed().as_secs_f64()
    );
    checkpoint("echoed");
    barrier.wait(); // go
    barrier.wait(); // all held and echoed once more
    println!("pings_answered {}", pings.load(Ordering::Relaxed));
    checkpoint("held");
    barrier.wait(); // go: close
    for worker in workers {
        let _ = worker.join();
    }
    checkpoint("closed");
    errors.load(Ordering::Relaxed)
}

fn churn(url: &str, cycles: u64) -> u64 {
    let errors = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..16)
        .map(|t| {
            let (url, errors, next) = (url.to_owned(), errors.clone(), next.clone());
            std::thread::Builder::new()
                .name(format!("churn-{t}"))
                .spawn(move || {
                    while next.fetch_add(1, Ordering::Relaxed) < cycles {
                        let result = connect(&url).map_err(|e| e.to_string()).and_then(|mut ws| {
                            echo(&mut ws, "cycle")?;
                            ws.close(syncws::CloseCode::Normal, "")
                                .map(drop)
                                .map_err(|e| e.to_string())
                        });
                        if let Err(e) = result {
                            if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                                eprintln!("churn-{t}: {e}");
                            }
                        }
                    }
                })
                .expect("spawn")
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    println!(
        "churn_cycles_per_sec {:.0}",
        cycles as f64 / started.elapsed().as_secs_f64()
    );
    checkpoint("churned");
    errors.load(Ordering::Relaxed)
}
