//! One direction of the relay: bytes copied as they come, frames found on the way.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use syncws::proto::scanner::FrameScanner;
use syncws::proto::{Direction, FrameObserver};

/// Copies `from` to `to`, showing every frame to `hook`, until `from` ends; then ends `to`'s
/// writing side so the other end sees the close, as it would without the inspector.
pub fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    direction: Direction,
    hook: Option<FrameObserver>,
    already_read: &[u8],
) -> io::Result<()> {
    let mut scanner = hook.map(|hook| FrameScanner::new(direction, hook));
    let mut buf = vec![0u8; 64 << 10];
    let mut pending = already_read.len();
    buf[..pending].copy_from_slice(already_read);
    let result = loop {
        let n = match std::mem::take(&mut pending) {
            0 => match from.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            },
            n => n,
        };
        // Dissect first, forward second: the output shows a frame before the peer reacts to it.
        if let Some(s) = scanner.as_mut() {
            if s.feed(&buf[..n]).is_err() {
                scanner = None; // unframeable from here on; keep relaying
            }
        }
        if let Err(e) = to.write_all(&buf[..n]) {
            break Err(e);
        }
    };
    match &result {
        Ok(()) => drop(to.shutdown(Shutdown::Write)),
        // A broken side ends both directions: the other pump's read returns at once.
        Err(_) => {
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        }
    }
    result
}
