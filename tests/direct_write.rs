//! A server writes large payloads straight from the message (header and payload in one vectored
//! write). Short writes and timeouts must still put every frame on the wire whole and in order.

use std::io::{self, IoSlice, Read, Write};
use syncws::proto::frame::{FrameHeader, encode_frame};
use syncws::{Config, Error, Message, Role, WebSocket};

/// Takes at most `limit` bytes per write and fails every third call with `WouldBlock`, as a
/// socket with a write timeout might.
struct Stingy {
    written: Vec<u8>,
    limit: usize,
    calls: usize,
}

impl Stingy {
    fn step(&mut self) -> io::Result<usize> {
        self.calls += 1;
        if self.calls % 3 == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(self.limit)
    }
}

impl Read for Stingy {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl Write for Stingy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.step()?.min(buf.len());
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut room = self.step()?;
        let mut n = 0;
        for buf in bufs {
            let take = room.min(buf.len());
            self.written.extend_from_slice(&buf[..take]);
            room -= take;
            n += take;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn frame(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    let header = FrameHeader::new(message.opcode(), message.len() as u64);
    encode_frame(&header, message.as_bytes(), &mut out);
    out
}

#[test]
fn short_writes_and_timeouts_keep_frames_whole() {
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let messages = [
        Message::Binary(big.clone()),
        Message::text("between"),
        Message::Text("é".repeat(20_000)),
        Message::Binary(big),
    ];
    for limit in [1 << 20, 65_536, 4_000, 7] {
        let stream = Stingy {
            written: Vec::new(),
            limit,
            calls: 0,
        };
        let mut ws = WebSocket::from_stream(stream, Role::Server, Config::default());
        for message in &messages {
            let mut result = ws.send(message.clone());
            // A timed-out send is finished by flush (or by the next send).
            while let Err(Error::Io(e)) = &result {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                result = ws.flush();
            }
            result.unwrap();
        }
        let expected: Vec<u8> = messages.iter().flat_map(frame).collect();
        assert!(ws.get_ref().written == expected, "limit {limit}");
    }
}
