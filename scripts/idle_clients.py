#!/usr/bin/env python3
"""Opens N idle WebSocket connections to HOST:PORT and keeps them alive: answers every ping
with a pong, answers a close, and exits when the server has closed them all (or after
--max-seconds). One process, one epoll loop, so 10,000 connections cost little here.

Usage: idle_clients.py HOST PORT N [--max-seconds S]
"""
import os
import selectors
import socket
import sys
import time

REQUEST = (
    "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def masked(opcode, payload):
    # RFC 6455 §5.3: a client masks every frame; a zero key keeps this tool simple and is valid.
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload), 0, 0, 0, 0]) + payload


def frames(buf):
    """Yields (opcode, payload) of complete frames; returns the unused rest via StopIteration."""
    out = []
    while len(buf) >= 2:
        opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
        pos = 2
        if length == 126:
            if len(buf) < 4:
                break
            length, pos = int.from_bytes(buf[2:4], "big"), 4
        elif length == 127:
            if len(buf) < 10:
                break
            length, pos = int.from_bytes(buf[2:10], "big"), 10
        if len(buf) < pos + length:
            break
        out.append((opcode, bytes(buf[pos:pos + length])))
        buf = buf[pos + length:]
    return out, buf


def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    max_seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 600.0
    request = REQUEST.format(host=host).encode()
    sel = selectors.DefaultSelector()
    buffers = {}
    for i in range(count):
        s = socket.create_connection((host, port), timeout=30)
        s.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1024)
            if not chunk:
                sys.exit(f"connection {i}: closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            sys.exit(f"connection {i}: {head[:40]!r}")
        s.setblocking(False)
        buffers[s] = bytearray(head.split(b"\r\n\r\n", 1)[1])
        sel.register(s, selectors.EVENT_READ)
    print(f"connected {count}", flush=True)
    pongs = 0
    deadline = time.monotonic() + max_seconds
    while buffers and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                del buffers[s]
                continue
            got, rest = frames(buffers[s] + data)
            buffers[s] = bytearray(rest)
            for opcode, payload in got:
                try:
                    if opcode == 0x9:
                        s.send(masked(0xA, payload))
                        pongs += 1
                    elif opcode == 0x8:
                        s.send(masked(0x8, payload[:2]))
                except OSError:
                    pass
    print(f"done: pongs={pongs} open={len(buffers)}", flush=True)


if __name__ == "__main__":
    main()
