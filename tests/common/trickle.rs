//! A peer that trickles: a TCP stream whose writes can be slowed to one byte per pace, so that a
//! TLS record (or a plain request) arrives a byte at a time.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Shared with the test: how fast to write, when to stop, how far it got.
#[derive(Debug, Default)]
pub struct Control {
    /// Microseconds between bytes; 0: full speed.
    pace_micros: AtomicU64,
    /// Fail every later write (ends a trickle the test no longer needs).
    stop: AtomicBool,
    /// Bytes written one at a time so far.
    pub trickled: AtomicUsize,
}

impl Control {
    pub fn pace(&self, pace: Duration) {
        self.pace_micros
            .store(pace.as_micros() as u64, Ordering::SeqCst);
    }
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
    pub fn trickled(&self) -> usize {
        self.trickled.load(Ordering::SeqCst)
    }
}

#[derive(Debug)]
pub struct Trickle {
    pub tcp: TcpStream,
    pub control: Arc<Control>,
}

impl Trickle {
    pub fn new(tcp: TcpStream) -> (Trickle, Arc<Control>) {
        let control = Arc::new(Control::default());
        (
            Trickle {
                tcp,
                control: Arc::clone(&control),
            },
            control,
        )
    }
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.control.stop.load(Ordering::SeqCst) {
            return Err(io::Error::other("trickle stopped"));
        }
        let pace = self.control.pace_micros.load(Ordering::SeqCst);
        if pace == 0 || buf.is_empty() {
            return self.tcp.write(buf);
        }
        std::thread::sleep(Duration::from_micros(pace));
        let n = self.tcp.write(&buf[..1])?;
        self.control.trickled.fetch_add(n, Ordering::SeqCst);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}
