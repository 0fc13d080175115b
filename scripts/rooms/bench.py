"""Rooms benchmark (issue 21): deliveries per second and publish-to-delivery latency.

usage: bench.py ROOM_SERVER_BINARY [--quick]

Loads, each over three room_server nodes sharing one redis-server and over one node with
in-memory rooms, side by side:
  - one room of 300 members, 100 messages (30,000 deliveries);
  - 100 rooms of 10 members, 10 messages each (10,000 deliveries).
Every member is an asyncio websockets client in this one Python process, so the figures are
bounded by the client as much as by the servers: compare the two setups, not absolute values.
Then memory per node (VmRSS) while redis-server is stopped for 10 s under load.
"""
import asyncio, atexit, os, shutil, signal, socket, subprocess, sys, tempfile, time
from websockets.asyncio.client import connect

BIN = sys.argv[1]
QUICK = "--quick" in sys.argv
children = []


scratches = []  # scratch folders made here, removed at exit


def scratch_dir(prefix):
    path = tempfile.mkdtemp(prefix=prefix)
    scratches.append(path)
    return path


@atexit.register
def remove_scratches():
    for path in scratches:
        shutil.rmtree(path, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis():
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir",
                             scratch_dir("syncws-bench-"), "--save", "", "--appendonly", "yes"],
                            stdout=subprocess.DEVNULL)
    children.append(proc)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def start_node(name, redis_port):
    args = [BIN, "127.0.0.1:0", "--node", name]
    if redis_port:
        args += ["--redis", f"redis://127.0.0.1:{redis_port}/"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    children.append(proc)
    return proc, proc.stdout.readline().split("ws://")[1].strip().rstrip("/")


def rss_kib(proc):
    with open(f"/proc/{proc.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


async def load(addrs, rooms, members, messages):
    """Members spread over `addrs`; member 0 of each room publishes `messages`."""
    sockets = {}
    for r in range(rooms):
        for m in range(members):
            addr = addrs[(r * members + m) % len(addrs)]
            sockets[(r, m)] = await connect(f"ws://{addr}/rooms/bench{r}", max_size=None, compression=None)
    await asyncio.sleep(0.5)
    latencies = []
    expected = messages

    async def read(ws):
        for _ in range(expected):
            text = await asyncio.wait_for(ws.recv(), 60)
            sent = float(text.split('"text":"', 1)[1].split(" ", 1)[0])
            latencies.append(time.time() - sent)

    readers = [asyncio.create_task(read(ws)) for ws in sockets.values()]
    started = time.monotonic()
    for k in range(messages):
        for r in range(rooms):
            await sockets[(r, 0)].send(f"{time.time():.6f} {k}")
        await asyncio.sleep(0.001)
    await asyncio.gather(*readers)
    elapsed = time.monotonic() - started
    for ws in sockets.values():
        await ws.close()
    latencies.sort()
    pick = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000
    return len(latencies) / elapsed, pick(0.5), pick(0.99)


def run(label, addrs, rooms, members, messages):
    rate, p50, p99 = asyncio.run(load(addrs, rooms, members, messages))
    print(f"| {label} | {rooms} x {members} | {rate:,.0f} | {p50:.1f} | {p99:.1f} |", flush=True)


def main():
    scale = 0.2 if QUICK else 1
    redis, redis_port = start_redis()
    cluster = [start_node(f"N{i + 1}", redis_port) for i in range(3)]
    solo = start_node("solo", None)
    print("| setup | rooms x members | deliveries/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for rooms, members, messages in [(1, 300, int(100 * scale) or 1), (100, 10, int(10 * scale) or 1)]:
        run("3 nodes + Redis", [a for _, a in cluster], rooms, members, messages)
        run("1 node, in memory", [solo[1]], rooms, members, messages)
    # Memory while Redis is unreachable: publish at a steady rate for 10 s with redis-server stopped.
    async def publish_for(seconds):
        async with connect(f"ws://{cluster[0][1]}/rooms/outage", compression=None) as ws:
            await asyncio.sleep(0.5)  # joined while Redis answers
            before.extend(rss_kib(p) for p, _ in cluster)
            redis.send_signal(signal.SIGSTOP)
            end, sent = time.monotonic() + seconds, 0
            while time.monotonic() < end:
                await ws.send(f"{time.time():.6f} " + "x" * 200)
                sent += 1
                await asyncio.sleep(0.001)
            return sent

    before = []
    sent = asyncio.run(publish_for(3 if QUICK else 10))
    during = [rss_kib(p) for p, _ in cluster]
    redis.send_signal(signal.SIGCONT)
    time.sleep(3)
    after = [rss_kib(p) for p, _ in cluster]
    print(f"\nRedis stopped (SIGSTOP) while node N1 got {sent} messages of 200 bytes:")
    for i in range(3):
        print(f"  N{i + 1}: VmRSS {before[i]} KiB before, {during[i]} KiB at the end of the outage, {after[i]} KiB 3 s after")


try:
    main()
finally:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGCONT)
            child.kill()
