//! Micro benchmarks of the protocol core's hot spots: `cargo bench --bench micro`.
//!
//! Masking is measured next to a plain copy of the same buffer (the target: masking at
//! ≥ 50 % of copy throughput); UTF-8 validation on ASCII and on mixed text, whole and in pieces;
//! frame header encode and decode; handshake parsing; the accept key; and a server's echo of one
//! message over an in-memory stream (everything but the kernel's part).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use syncws::proto::frame::{FrameHeader, OpCode};
use syncws::proto::handshake::{HeadLimits, parse_request};
use syncws::proto::utf8::Utf8Validator;

const SIZES: [usize; 4] = [16, 1 << 10, 64 << 10, 1 << 20];

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in SIZES {
        let source: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut buf = source.clone();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("apply_mask", size), &size, |b, _| {
            b.iter(|| {
                syncws::proto::mask::apply_mask(black_box(&mut buf), [1, 2, 3, 4], black_box(1))
            })
        });
        // The yardstick: copying the same bytes once.
        group.bench_with_input(BenchmarkId::new("copy", size), &size, |b, _| {
            b.iter(|| buf.copy_from_slice(black_box(&source)))
        });
    }
    group.finish();
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    let ascii: Vec<u8> = b"The quick brown fox jumps over the lazy dog. "
        .iter()
        .copied()
        .cycle()
        .take(64 << 10)
        .collect();
    let mixed: Vec<u8> = "Grüße, κόσμε, こんにちは, 𝄞! "
        .bytes()
        .cycle()
        .take(64 << 10)
        .collect();
    // Cut on a character boundary so the whole is valid.
    let mixed = &mixed[..std::str::from_utf8(&mixed).map_or_else(|e| e.valid_up_to(), |s| s.len())];
    for (name, text) in [("ascii", &ascii[..]), ("mixed", mixed)] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(BenchmarkId::new("whole", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                v.feed(black_box(text)).unwrap();
                v.finish().unwrap();
            })
        });
        // As a socket delivers it: pieces cut inside characters.
        group.bench_function(BenchmarkId::new("pieces_of_1000", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                for piece in black_box(text).chunks(1000) {
                    v.feed(piece).unwrap();
                }
                v.finish().unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("std_from_utf8", name), |b| {
            b.iter(|| std::str::from_utf8(black_box(text)).is_ok())
        });
    }
    group.finish();
}

fn frame_header(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_header");
    for (name, len, mask) in [
        ("short_masked", 16u64, Some([1, 2, 3, 4])),
        ("extended16", 1 << 10, None),
        ("extended64_masked", 1 << 20, Some([1, 2, 3, 4])),
    ] {
        let mut header = FrameHeader::new(OpCode::Binary, len);
        header.mask = mask;
        let mut out = Vec::with_capacity(16);
        group.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| {
                out.clear();
                black_box(&header).encode(&mut out);
            })
        });
        header.encode(&mut out);
        let bytes = out.clone();
        group.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| FrameHeader::decode(black_box(&bytes)).unwrap())
        });
    }
    group.finish();
}

fn handshake(c: &mut Criterion) {
    // A browser-like request: the headers Chromium sends.
    let request = b"GET /chat?room=1 HTTP/1.1\r\n\
        Host: example.com:8080\r\n\
        Connection: Upgrade\r\n\
        Pragma: no-cache\r\n\
        Cache-Control: no-cache\r\n\
        User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36\r\n\
        Upgrade: websocket\r\n\
        Origin: http://example.com:8080\r\n\
        Sec-WebSocket-Version: 13\r\n\
        Accept-Encoding: gzip, deflate, br\r\n\
        Accept-Language: en-US,en;q=0.9\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
    let limits = HeadLimits::new(8 << 10, 64);
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Bytes(request.len() as u64));
    group.bench_function("parse_request", |b| {
        b.iter(|| parse_request(black_box(request), limits).unwrap())
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("accept_key", |b| {
        b.iter(|| syncws::proto::handshake::accept_key(black_box("dGhlIHNhbXBsZSBub25jZQ==")))
    });
    group.finish();
}

/// A stream that replays one masked frame forever, in reads of at most 64 KiB (as a socket
/// delivers a large message), and discards what is written: the user-space cost of an echo.
struct Replay {
    frame: Vec<u8>,
    at: usize,
}

impl std::io::Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.frame.len() - self.at).min(64 << 10);
        buf[..n].copy_from_slice(&self.frame[self.at..self.at + n]);
        self.at = (self.at + n) % self.frame.len();
        Ok(n)
    }
}

impl std::io::Write for Replay {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        black_box(buf.first());
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        Ok(bufs.iter().map(|b| black_box(b.len())).sum())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn server_echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("server_echo");
    for size in SIZES {
        for (kind, opcode) in [("binary", OpCode::Binary), ("text", OpCode::Text)] {
            let payload: Vec<u8> = b"The quick brown fox jumps over the lazy dog. "
                .iter()
                .copied()
                .cycle()
                .take(size)
                .collect();
            let mut header = FrameHeader::new(opcode, size as u64);
            header.mask = Some([7, 3, 9, 1]);
            let mut frame = Vec::new();
            syncws::proto::frame::encode_frame(&header, &payload, &mut frame);
            let stream = Replay { frame, at: 0 };
            let mut ws = syncws::WebSocket::from_stream(
                stream,
                syncws::Role::Server,
                syncws::Config::default(),
            );
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new(kind, size), |b| {
                b.iter(|| {
                    let message = ws.read().unwrap();
                    ws.send(message).unwrap();
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, masking, utf8, frame_header, handshake, server_echo);
criterion_main!(benches);
