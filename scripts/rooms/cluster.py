"""Rooms across processes (issue 21), end to end with a real redis-server.

usage: cluster.py ROOM_SERVER_BINARY [--messages N] [--pad BYTES]

Phase 0: one node without --redis: 100 messages in order, ?since= replays what follows, an
offset of another epoch gets {"gap": true} first.

Phase 1 (redis-server with appendonly, fsync always): three room_server nodes, two members on
each plus two members that never read (tiny receive buffers); the members on nodes 1 and 2
send N messages (default 10,000) into one room. Mid-stream node 3 is killed with SIGKILL: its
members reconnect to node 1 with ?since=<last offset>. Later redis-server itself is killed and
restarted on the same files. Checked: every member ends with the same sequence of N messages,
each once, no gap frame; presence on node 1 drops node 3 within its bound; the p99
publish-to-delivery latency of the reading members stays under 1 s.

Phase 2 (redis-server without persistence): a member holds an offset, redis-server restarts
empty; the live member gets {"gap": true} and a reconnect with ?since=that offset starts with
{"gap": true}.

Every wait is bounded; exit status 0 means every check passed.
"""
import atexit, shutil, json, os, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request
from websockets.sync.client import connect

BIN = sys.argv[1]
def option(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


MESSAGES = option("--messages", 10_000)
# Padding makes each delivery big enough that the stalled members' socket buffers fill early.
PAD = "x" * option("--pad", 512)
DEADLINE = time.monotonic() + 600
PRESENCE_BOUND = 3.0 + 2.0  # PRESENCE_TTL plus one heartbeat period and the query
failures = []
children = []  # every process started here, killed at exit whatever happens


@atexit.register
def kill_children():
    for child in children:
        if child.poll() is None:
            child.kill()


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


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


class Redis:
    def __init__(self, persistent):
        self.port = free_port()
        self.dir = scratch_dir("syncws-redis-")
        self.args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", ""]
        if persistent:
            self.args += ["--appendonly", "yes", "--appendfsync", "always"]
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        children.append(self.proc)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("redis-server did not start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def url(self):
        return f"redis://127.0.0.1:{self.port}/"


class Node:
    def __init__(self, name, redis_url):
        self.name = name
        redis = ["--redis", redis_url] if redis_url else []
        self.proc = subprocess.Popen([BIN, "127.0.0.1:0", *redis, "--node", name],
                                     stdout=subprocess.PIPE, text=True)
        children.append(self.proc)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on ws://"), line
        self.addr = line.split("ws://")[1].strip().rstrip("/")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


class Member:
    """Reads deliveries on its own thread; reconnects with ?since= to `fallback` if its node dies."""

    def __init__(self, name, node, room, fallback=None):
        self.name, self.room, self.fallback = name, room, fallback
        self.deliveries, self.latencies, self.gaps, self.reconnects = [], [], 0, 0
        self.lock = threading.Lock()
        self.ws = connect(f"ws://{node.addr}/rooms/{room}", max_size=None)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def last_offset(self):
        return self.deliveries[-1][0] if self.deliveries else None

    def run(self):
        while time.monotonic() < DEADLINE:
            try:
                frame = json.loads(self.ws.recv(timeout=60))
            except Exception:
                if self.fallback is None:
                    return
                since = self.last_offset()
                query = f"?since={since}" if since else ""
                with self.lock:
                    self.ws = connect(f"ws://{self.fallback.addr}/rooms/{self.room}{query}", max_size=None)
                self.reconnects += 1
                self.fallback = None
                continue
            if frame.get("gap"):
                self.gaps += 1
                continue
            now = time.time()
            sent_at = float(frame["text"].split(" ", 1)[0])
            self.latencies.append(now - sent_at)
            self.deliveries.append((frame["offset"], frame["text"]))

    def send(self, text):
        with self.lock:
            self.ws.send(text)


def stalled_member(node, room):
    """A member that never reads, with a small receive buffer: it stalls as soon as it fills."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = node.addr.rsplit(":", 1)
    s.connect((host, int(port)))
    s.sendall((f"GET /rooms/{room} HTTP/1.1\r\nHost: {node.addr}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    return s


def presence(node, room):
    with urllib.request.urlopen(f"http://{node.addr}/presence/{room}", timeout=5) as r:
        return json.loads(r.read())


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def phase_zero():
    print("phase 0: one node without --redis: the same offsets, replay and gaps in memory")
    node = Node("mem", None)
    member = Member("m", node, "solo")
    for k in range(100):
        member.send(f"{time.time():.6f} {k}")
    end = time.monotonic() + 20
    while time.monotonic() < end and len(member.deliveries) < 100:
        time.sleep(0.05)
    check([t.split()[1] for _, t in member.deliveries] == [str(k) for k in range(100)], "100 messages, in order, once")
    with connect(f"ws://{node.addr}/rooms/solo?since={member.deliveries[49][0]}") as ws:
        replay = [json.loads(ws.recv(timeout=10)) for _ in range(50)]
        check([(f["offset"], f["text"]) for f in replay] == member.deliveries[50:], "?since= replays the 50 after it")
        check({f["node"] for f in replay} == {"mem"}, "deliveries name the node")
    epoch = member.deliveries[0][0].rsplit(":", 1)[0]
    with connect(f"ws://{node.addr}/rooms/solo?since={epoch}0:0-1") as ws:
        check(json.loads(ws.recv(timeout=10)) == {"gap": True}, "an offset of another epoch starts with a gap")
    node.kill()


def watch_presence(node, room, since, converged):
    """Polls node's presence until node N3 is gone from it; appends the seconds since `since`.
    Redis restarts meanwhile in phase 1, so a failed query is retried."""
    while time.monotonic() - since < PRESENCE_BOUND + 5:
        try:
            if not any(n == "N3" for n, _ in presence(node, room)["members"]):
                converged.append(time.monotonic() - since)
                return
        except Exception:
            pass
        time.sleep(0.1)


def phase_one():
    print(f"phase 1: 3 nodes, {MESSAGES} messages, kill -9 of a node, redis-server restart (appendonly)")
    redis = Redis(persistent=True)
    nodes = [Node(f"N{i + 1}", redis.url()) for i in range(3)]
    room = "big"
    members = []
    for i, node in enumerate(nodes):
        for j in range(2):
            members.append(Member(f"m{i}{j}", node, room, fallback=nodes[0] if i == 2 else None))
    stalled = [stalled_member(nodes[0], room), stalled_member(nodes[1], room)]
    expected, end = len(members) + len(stalled), time.monotonic() + PRESENCE_BOUND
    while presence(nodes[0], room)["count"] != expected and time.monotonic() < end:
        time.sleep(0.1)  # other nodes' heartbeats write their members once a second
    count = presence(nodes[0], room)["count"]
    check(count == expected, f"presence counts every member on every node ({count} of {expected})")
    senders = members[:4]
    killed_at, redis_at = MESSAGES * 3 // 10, MESSAGES * 6 // 10
    dead_since, converged, watcher = None, [], None
    for k in range(MESSAGES):
        senders[k % len(senders)].send(f"{time.time():.6f} {k} {PAD}")
        if k % 200 == 199:
            time.sleep(0.05)  # keep the stream going over a few seconds
        if k == killed_at:
            nodes[2].kill()
            dead_since = time.monotonic()
            # Watched from the kill on, beside the sending: the loop below runs for seconds.
            watcher = threading.Thread(target=watch_presence, args=(nodes[0], room, dead_since, converged))
            watcher.start()
        if k == redis_at:
            redis.kill()
            time.sleep(0.5)
            redis.start()
    # Presence: node 3's members are gone from node 1's answer within the bound.
    watcher.join(timeout=PRESENCE_BOUND + 10)
    took = converged[0] if converged else None
    check(took is not None and took <= PRESENCE_BOUND,
          f"presence drops the killed node within {PRESENCE_BOUND} s (took {took})")
    end = time.monotonic() + 120
    while time.monotonic() < end and any(len(m.deliveries) < MESSAGES for m in members):
        time.sleep(0.2)
    reference = members[0].deliveries
    check(len(reference) == MESSAGES, f"member on node 1 got {len(reference)} of {MESSAGES}")
    check(sorted(int(t.split()[1]) for _, t in reference) == list(range(MESSAGES)), "each message exactly once")
    for m in members:
        check(m.deliveries == reference, f"{m.name} has the same sequence ({len(m.deliveries)} deliveries, {m.reconnects} reconnects)")
        check(m.gaps == 0, f"{m.name} saw no gap")
    check(all(m.reconnects == 1 for m in members[4:]), "the killed node's members reconnected once")
    latencies = [x for m in members[:4] for x in m.latencies]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"     publish-to-delivery over {len(latencies)} deliveries: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms (2 stalled members in the room)")
    check(p99 < 1.0, "p99 publish-to-delivery under 1 s with stalled members")
    for s in stalled:
        s.close()
    for n in nodes[:2]:
        n.kill()
    redis.kill()


def phase_two():
    print("phase 2: redis-server without persistence restarts: the epoch change is a gap")
    redis = Redis(persistent=False)
    node = Node("solo", redis.url())
    member = Member("m", node, "small")
    time.sleep(0.3)
    for k in range(20):
        member.send(f"{time.time():.6f} {k}")
    end = time.monotonic() + 20
    while time.monotonic() < end and len(member.deliveries) < 20:
        time.sleep(0.05)
    offset = member.last_offset()
    check(len(member.deliveries) == 20 and offset is not None, "20 messages delivered before the restart")
    redis.kill()
    redis.start()
    end = time.monotonic() + 20
    while time.monotonic() < end and member.gaps == 0:
        time.sleep(0.05)
    check(member.gaps == 1, "the live member got {\"gap\": true} after the restart")
    with connect(f"ws://{node.addr}/rooms/small?since={offset}") as ws:
        check(json.loads(ws.recv(timeout=10)) == {"gap": True}, "a reconnect with ?since= starts with {\"gap\": true}")
    node.kill()
    redis.kill()


try:
    phase_zero()
    phase_one()
    phase_two()
except Exception as error:
    failures.append(f"{type(error).__name__}: {error}")
print("FAILED: " + "; ".join(failures) if failures else "all checks passed", flush=True)
kill_children()
remove_scratches()
os._exit(1 if failures else 0)
