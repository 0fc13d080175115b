//! Echo throughput with and without permessage-deflate, over loopback, for compressible
//! JSON-like text of 1 KiB and 64 KiB. Prints one line per run; no timing assertions.
//!
//! Run: `cargo run --release --features deflate --example deflate_bench -- [SECONDS_PER_RUN]`
//! (default 2). For steadier ratios pin it to one core: `taskset -c 0 cargo run ...`.
//!
//! Each run: one server thread echoing, one client sending a message and reading its echo, for a
//! fixed time. Reported: round trips per second, payload MB/s (one direction), and the bytes the
//! client wrote per message (wire size after compression, with framing).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use syncws::{Acceptor, ClientBuilder, Config, Message};

/// A stream that counts the bytes written through it.
struct Counting {
    inner: TcpStream,
    written: Arc<AtomicUsize>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// JSON-like text of `size` bytes: records that repeat in shape, vary in values.
fn json_text(size: usize, seed: usize) -> String {
    let mut text = String::with_capacity(size + 128);
    let mut i = seed;
    while text.len() < size {
        text.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user{}\",\"active\":{},\"score\":{}.{},\"tags\":[\"t{}\",\"t{}\"]}},",
            i % 97,
            i % 2 == 0,
            i * 37 % 1000,
            i % 10,
            i % 5,
            i % 11
        ));
        i += 1;
    }
    text.truncate(size);
    text
}

fn config(deflate: Option<u32>) -> Config {
    let mut config = Config::default();
    config.deflate.enabled = deflate.is_some();
    config.deflate.level = deflate.unwrap_or(1);
    config
}

fn run(size: usize, deflate: Option<u32>, seconds: f64) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server_config = config(deflate);
    // Stops when the client closes (read fails), which the client does at the end of the run.
    let server = std::thread::Builder::new()
        .name("bench-echo".into())
        .spawn(move || -> Result<(), syncws::Error> {
            let (stream, _) = listener.accept()?;
            stream.set_nodelay(true)?;
            let mut ws = Acceptor::new().config(server_config).accept(stream)?;
            while let Ok(msg) = ws.read() {
                if msg.is_data() {
                    ws.send(msg)?;
                }
            }
            Ok(())
        })?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let written = Arc::new(AtomicUsize::new(0));
    let stream = Counting {
        inner: tcp,
        written: written.clone(),
    };
    let (mut ws, _) = ClientBuilder::new(format!("ws://{addr}/"))
        .config(config(deflate))
        .connect_on(stream)
        .map_err(io::Error::other)?;
    assert_eq!(ws.deflate().is_some(), deflate.is_some());
    // 1 MiB of distinct messages, cycled: more than the 32 KiB window, so no message is found
    // verbatim in the compressor's memory.
    let distinct = (1 << 20) / size;
    let messages: Vec<String> = (0..distinct)
        .map(|k| json_text(size, k * 100_000))
        .collect();
    let start_written = written.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut count = 0;
    while start.elapsed().as_secs_f64() < seconds {
        let message = Message::text(messages[count % messages.len()].clone());
        ws.send(message).map_err(io::Error::other)?;
        let echo = ws.read().map_err(io::Error::other)?;
        if echo.as_bytes().len() != size {
            return Err(io::Error::other("echo of the wrong size"));
        }
        count += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let wire_per_message = (written.load(Ordering::Relaxed) - start_written) / count.max(1);
    let _ = ws.close(syncws::CloseCode::Normal, "");
    let _ = server.join();
    let label = match deflate {
        None => "off".to_owned(),
        Some(level) => format!("level {level}"),
    };
    println!(
        "{:>6} B  deflate {:<8} {:>9.0} round trips/s {:>8.1} MB/s  {:>6} B/message on the wire",
        size,
        label,
        count as f64 / elapsed,
        (count * size) as f64 / elapsed / 1e6,
        wire_per_message
    );
    Ok(())
}

fn main() -> io::Result<()> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    if !cfg!(feature = "deflate") {
        eprintln!("built without the `deflate` feature: only the uncompressed runs");
    }
    for size in [1024, 64 * 1024] {
        run(size, None, seconds)?;
        if cfg!(feature = "deflate") {
            for level in [1, 6] {
                run(size, Some(level), seconds)?;
            }
        }
    }
    Ok(())
}
