//! The runner: starts a server process and a load process per measurement (pinned to CPU 0 with
//! `taskset` in the pinned mode), interleaves the servers, and prints Markdown tables of medians
//! and of ratios to raw TCP (the median of the ratios between back-to-back measurements).

use crate::procfs;
use crate::servers::ServerKind;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Message size and connection count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cell {
    pub size: usize,
    pub conns: usize,
}

const CELLS: [Cell; 9] = [
    Cell { size: 16, conns: 1 },
    Cell {
        size: 16,
        conns: 64,
    },
    Cell {
        size: 1 << 10,
        conns: 1,
    },
    Cell {
        size: 1 << 10,
        conns: 64,
    },
    Cell {
        size: 64 << 10,
        conns: 1,
    },
    Cell {
        size: 64 << 10,
        conns: 64,
    },
    Cell {
        size: 1 << 20,
        conns: 1,
    },
    Cell {
        size: 1 << 20,
        conns: 64,
    },
    Cell {
        size: 16,
        conns: 1000,
    },
];

/// The cell whose server memory is reported per connection.
const MEMORY_CELL: Cell = Cell {
    size: 16,
    conns: 1000,
};

#[derive(Debug, Clone)]
pub struct Options {
    pub reps: usize,
    pub duration: Duration,
    pub pinned: Vec<bool>,
    pub kinds: Vec<bool>,
    pub cells: Vec<Cell>,
    pub servers: Vec<ServerKind>,
}

impl Options {
    pub fn full() -> Options {
        Options {
            reps: 5,
            duration: Duration::from_millis(400),
            pinned: vec![true, false],
            kinds: vec![false, true],
            cells: CELLS.to_vec(),
            servers: ServerKind::DEFAULT.to_vec(),
        }
    }

    /// For CI: every cell once, briefly. Figures only; nothing is asserted.
    pub fn quick() -> Options {
        Options {
            reps: 1,
            duration: Duration::from_millis(150),
            ..Options::full()
        }
    }

    /// Applies `--reps N`, `--secs S`, `--mode pinned|unpinned`, `--kind binary|text`,
    /// `--cell SIZExCONNS` (repeatable) and `--server NAME` (repeatable).
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = if args.iter().any(|a| a == "--quick") {
            Options::quick()
        } else {
            Options::full()
        };
        let mut cells = Vec::new();
        let mut servers = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().cloned().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--quick" => {}
                "--reps" => options.reps = value()?.parse().map_err(|e| format!("--reps: {e}"))?,
                "--secs" => {
                    let secs: f64 = value()?.parse().map_err(|e| format!("--secs: {e}"))?;
                    options.duration = Duration::from_secs_f64(secs);
                }
                "--mode" => {
                    options.pinned = match value()?.as_str() {
                        "pinned" => vec![true],
                        "unpinned" => vec![false],
                        other => return Err(format!("unknown mode {other}")),
                    }
                }
                "--kind" => {
                    options.kinds = match value()?.as_str() {
                        "binary" => vec![false],
                        "text" => vec![true],
                        other => return Err(format!("unknown kind {other}")),
                    }
                }
                "--cell" => cells.push(parse_cell(&value()?)?),
                "--server" => {
                    let name = value()?;
                    servers.push(ServerKind::parse(&name).ok_or(format!("unknown server {name}"))?);
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        if !cells.is_empty() {
            options.cells = cells;
        }
        if !servers.is_empty() {
            options.servers = servers;
        }
        Ok(options)
    }
}

fn parse_cell(text: &str) -> Result<Cell, String> {
    let (size, conns) = text
        .split_once('x')
        .ok_or(format!("cell {text}: expected SIZExCONNS, e.g. 64Kx1"))?;
    let size = match size.strip_suffix(['K', 'M']) {
        Some(n) if size.ends_with('K') => n.parse::<usize>().map(|n| n << 10),
        Some(n) => n.parse::<usize>().map(|n| n << 20),
        None => size.parse(),
    }
    .map_err(|e| format!("cell {text}: {e}"))?;
    let conns = conns.parse().map_err(|e| format!("cell {text}: {e}"))?;
    Ok(Cell { size, conns })
}

/// One measurement.
#[derive(Debug, Clone, Copy)]
struct Sample {
    messages_per_sec: f64,
    /// Messages per second of CPU time used by both processes: what the pinned rate would be on
    /// a CPU nobody else uses, so it is steadier than the rate while others load the machine.
    messages_per_cpu_sec: f64,
    /// Server RSS before any connection, with the connections idle, and under load.
    rss_base: u64,
    rss_idle: u64,
    rss_load: u64,
    threads_load: u64,
    /// The load client's share of the CPU time both processes used during the run.
    client_cpu_share: f64,
}

type Key = (bool, Cell, bool, ServerKind);

pub fn run(options: &Options) -> io::Result<()> {
    let exe = std::env::current_exe()?;
    let total = options.pinned.len()
        * options.cells.len()
        * options.kinds.len()
        * options.reps
        * options.servers.len();
    let started = Instant::now();
    let mut samples: BTreeMap<Key, Vec<Sample>> = BTreeMap::new();
    let mut done = 0;
    for &pinned in &options.pinned {
        for &cell in &options.cells {
            for &text in &options.kinds {
                for rep in 0..options.reps {
                    // Interleave: each repetition starts with a different server.
                    let mut order = options.servers.clone();
                    let turn = rep % order.len();
                    order.rotate_left(turn);
                    for server in order {
                        let sample = measure(&exe, server, cell, text, pinned, options.duration)
                            .map_err(|e| {
                                io::Error::other(format!(
                                    "{} {} {}: {e}",
                                    server.name(),
                                    cell_label(cell),
                                    kind_label(text)
                                ))
                            })?;
                        samples
                            .entry((pinned, cell, text, server))
                            .or_default()
                            .push(sample);
                        done += 1;
                        eprint!("\r{done}/{total} measurements");
                    }
                }
            }
        }
    }
    eprintln!(" in {:.0} s", started.elapsed().as_secs_f64());
    report(options, &samples);
    Ok(())
}

fn measure(
    exe: &PathBuf,
    server: ServerKind,
    cell: Cell,
    text: bool,
    pinned: bool,
    duration: Duration,
) -> io::Result<Sample> {
    let mut server_proc = Spawned::new(exe, pinned, &["server", server.name()])?;
    let port_line = server_proc.read_line()?;
    let port = port_line
        .strip_prefix("port ")
        .ok_or_else(|| io::Error::other(format!("server said {port_line:?}")))?
        .to_owned();
    let server_pid = server_proc.child.id();
    let (rss_base, _) = procfs::memory_and_threads(server_pid).unwrap_or_default();

    let load_args = [
        "load".to_owned(),
        port,
        server.name().to_owned(),
        cell.size.to_string(),
        cell.conns.to_string(),
        kind_label(text).to_owned(),
        duration.as_secs_f64().to_string(),
    ];
    let load_args: Vec<&str> = load_args.iter().map(String::as_str).collect();
    let mut load = Spawned::new(exe, pinned, &load_args)?;
    let ready = load.read_line()?;
    if ready != "ready" {
        return Err(io::Error::other(format!("load client said {ready:?}")));
    }
    let (rss_idle, _) = procfs::memory_and_threads(server_pid).unwrap_or_default();
    let server_cpu_before = procfs::cpu_seconds(server_pid).unwrap_or(0.0);
    load.write_line("go")?;
    thread::sleep(duration / 2);
    let (rss_load, threads_load) = procfs::memory_and_threads(server_pid).unwrap_or_default();
    let result = load.read_line()?;
    let server_cpu = procfs::cpu_seconds(server_pid).unwrap_or(0.0) - server_cpu_before;
    let fields: Vec<f64> = result
        .strip_prefix("result ")
        .ok_or_else(|| io::Error::other(format!("load client said {result:?}")))?
        .split(' ')
        .map(|f| f.parse().map_err(io::Error::other))
        .collect::<io::Result<_>>()?;
    let [messages, seconds, client_cpu] = fields[..] else {
        return Err(io::Error::other(format!("load client said {result:?}")));
    };
    load.finish()?;
    server_proc.finish()?;
    Ok(Sample {
        messages_per_sec: messages / seconds,
        messages_per_cpu_sec: messages / (client_cpu + server_cpu),
        rss_base,
        rss_idle,
        rss_load,
        threads_load,
        client_cpu_share: client_cpu / (client_cpu + server_cpu).max(f64::EPSILON),
    })
}

/// A child process that talks over pipes; killed if dropped unfinished.
struct Spawned {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Spawned {
    fn new(exe: &PathBuf, pinned: bool, args: &[&str]) -> io::Result<Spawned> {
        let mut command = if pinned {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Spawned {
            child,
            stdin,
            stdout,
        })
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(io::Error::other("the process ended early (see its stderr)"));
        }
        Ok(line.trim_end().to_owned())
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        let stdin = self.stdin.as_mut().expect("open until finish");
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    /// Closes stdin (a server exits on that; a load client has already finished) and reaps it.
    fn finish(mut self) -> io::Result<()> {
        self.stdin = None;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn cell_label(cell: Cell) -> String {
    let size = match cell.size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    };
    format!("{size} × {}", cell.conns)
}

fn kind_label(text: bool) -> &'static str {
    if text { "text" } else { "binary" }
}

fn report(options: &Options, samples: &BTreeMap<Key, Vec<Sample>>) {
    let get = |key: &Key, f: fn(&Sample) -> f64| -> Option<f64> {
        samples.get(key).map(|s| median(s.iter().map(f).collect()))
    };
    // Repetition i of every server ran back to back, so the ratio of their i-th samples compares
    // them under the same background load; the median of those ratios is steadier than the ratio
    // of the medians on a shared machine.
    let paired_ratio = |key: &Key, base: &Key, f: fn(&Sample) -> f64| -> Option<f64> {
        let (ours, theirs) = (samples.get(key)?, samples.get(base)?);
        let ratios = ours.iter().zip(theirs).map(|(a, b)| f(a) / f(b)).collect();
        Some(median(ratios))
    };
    for &pinned in &options.pinned {
        let mode = if pinned {
            "pinned: server and load client on CPU 0"
        } else {
            "unpinned"
        };
        let runs = format!(
            "median of {} × {:.2} s; in brackets the median ratio to raw TCP measured in the same \
             repetition",
            options.reps,
            options.duration.as_secs_f64()
        );
        rate_table(
            options,
            &get,
            &paired_ratio,
            pinned,
            &format!("Messages/s, {mode}, {runs}"),
            |s| s.messages_per_sec,
        );
        rate_table(
            options,
            &get,
            &paired_ratio,
            pinned,
            &format!(
                "Messages per CPU-second of server + load client, {mode}, {runs} \
                 (steadier than messages/s while other work shares the machine)"
            ),
            |s| s.messages_per_cpu_sec,
        );
        if options.reps > 1 {
            range_table(options, samples, pinned);
        }
        if options.cells.contains(&MEMORY_CELL) {
            println!();
            println!(
                "Server memory at {} connections ({} binary, {}): RSS per connection = (RSS − RSS before any connection) / connections",
                MEMORY_CELL.conns,
                cell_label(MEMORY_CELL),
                if pinned { "pinned" } else { "unpinned" }
            );
            println!();
            println!("| server | RSS/conn idle | RSS/conn under load | threads |");
            println!("|---|---:|---:|---:|");
            for &server in &options.servers {
                let key = (pinned, MEMORY_CELL, false, server);
                let per_conn = |f: fn(&Sample) -> f64| {
                    get(&key, f).map_or("–".to_owned(), |bytes| {
                        format!("{:.1} KiB", bytes / MEMORY_CELL.conns as f64 / 1024.0)
                    })
                };
                let idle = per_conn(|s| s.rss_idle as f64 - s.rss_base as f64);
                let load = per_conn(|s| s.rss_load as f64 - s.rss_base as f64);
                let threads = get(&key, |s| s.threads_load as f64).unwrap_or(f64::NAN);
                println!("| {} | {idle} | {load} | {threads:.0} |", server.name());
            }
        }
    }
}

type Getter<'a> = dyn Fn(&Key, fn(&Sample) -> f64) -> Option<f64> + 'a;
type RatioGetter<'a> = dyn Fn(&Key, &Key, fn(&Sample) -> f64) -> Option<f64> + 'a;

/// One Markdown table of a rate for every cell, kind and server, with ratios to raw TCP.
fn rate_table(
    options: &Options,
    get: &Getter<'_>,
    paired_ratio: &RatioGetter<'_>,
    pinned: bool,
    title: &str,
    metric: fn(&Sample) -> f64,
) {
    println!("\n{title}\n");
    print_header(options, &["load client CPU share"]);
    for &cell in &options.cells {
        for &text in &options.kinds {
            let raw = (pinned, cell, text, ServerKind::RawTcp);
            let mut row = format!("| {} | {} |", cell_label(cell), kind_label(text));
            for &server in &options.servers {
                let key = (pinned, cell, text, server);
                let Some(rate) = get(&key, metric) else {
                    row.push_str(" – |");
                    continue;
                };
                match paired_ratio(&key, &raw, metric) {
                    Some(ratio) if server != ServerKind::RawTcp => {
                        row.push_str(&format!(" {} ({ratio:.2}) |", thousands(rate)))
                    }
                    _ => row.push_str(&format!(" {} |", thousands(rate))),
                }
            }
            let share: Vec<f64> = options
                .servers
                .iter()
                .filter_map(|&s| get(&(pinned, cell, text, s), |s| s.client_cpu_share))
                .collect();
            row.push_str(&format!(" {:.0} % |", median(share) * 100.0));
            println!("{row}");
        }
    }
}

/// The lowest and highest messages/s of each server's repetitions. Where ranges are wide and the
/// servers' overlap (1 MiB × 1 flips between two rates from one connection to the next, for raw
/// TCP too), compare servers by their ranges, not by the median ratio of the table above.
fn range_table(options: &Options, samples: &BTreeMap<Key, Vec<Sample>>, pinned: bool) {
    println!(
        "\nLowest–highest messages/s of the {} repetitions, {}\n",
        options.reps,
        if pinned { "pinned" } else { "unpinned" }
    );
    print_header(options, &[]);
    for &cell in &options.cells {
        for &text in &options.kinds {
            let mut row = format!("| {} | {} |", cell_label(cell), kind_label(text));
            for &server in &options.servers {
                let rates = samples
                    .get(&(pinned, cell, text, server))
                    .map(|s| s.iter().map(|s| s.messages_per_sec));
                let (low, high) = rates
                    .into_iter()
                    .flatten()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), rate| {
                        (low.min(rate), high.max(rate))
                    });
                if low <= high {
                    row.push_str(&format!(" {}–{} |", thousands(low), thousands(high)));
                } else {
                    row.push_str(" – |");
                }
            }
            println!("{row}");
        }
    }
}

/// A table's header row and rule: cell, kind, one column per server, then `extra` columns.
fn print_header(options: &Options, extra: &[&str]) {
    let mut header = String::from("| cell | kind |");
    let mut rule = String::from("|---|---|");
    let servers = options.servers.iter().map(|s| s.name());
    for name in servers.chain(extra.iter().copied()) {
        header.push_str(&format!(" {name} |"));
        rule.push_str("---:|");
    }
    println!("{header}\n{rule}");
}

/// 1234567 → "1,234,567".
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
