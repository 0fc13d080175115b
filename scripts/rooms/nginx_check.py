"""Two room_server nodes behind nginx (issue 21, "behind a load balancer").

usage: nginx_check.py ROOM_SERVER_BINARY

Two members connect through nginx and land on different nodes (round robin). The node of the
first is killed with SIGKILL while the second keeps sending; the first reconnects through nginx
with ?since=<its last offset>, lands on the surviving node, and ends with every message once.
Exit status 0 means every check passed; every wait is bounded.
"""
import atexit, shutil, json, os, signal, socket, subprocess, sys, tempfile, time
from websockets.sync.client import connect

BIN = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
children = []


@atexit.register
def kill_children():
    # SIGTERM first: nginx's master stops its workers then (SIGKILL would orphan them).
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()


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


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


scratch = scratch_dir("syncws-nginx-")
redis_port = free_port()
children.append(subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                  "--dir", scratch, "--save", ""], stdout=subprocess.DEVNULL))
wait_port(redis_port)
nodes = []
for name in ["N1", "N2"]:
    proc = subprocess.Popen([BIN, "127.0.0.1:0", "--redis", f"redis://127.0.0.1:{redis_port}/", "--node", name],
                            stdout=subprocess.PIPE, text=True)
    children.append(proc)
    nodes.append((name, proc, proc.stdout.readline().split("ws://")[1].strip().rstrip("/")))
port = free_port()
conf = open(os.path.join(HERE, "nginx.conf.in")).read()
conf = conf.replace("@DIR@", scratch).replace("@PORT@", str(port))
conf = conf.replace("@UPSTREAMS@", "\n".join(f"        server {addr};" for _, _, addr in nodes))
with open(os.path.join(scratch, "nginx.conf"), "w") as f:
    f.write(conf)
children.append(subprocess.Popen(["nginx", "-c", os.path.join(scratch, "nginx.conf")]))
wait_port(port)

url = f"ws://127.0.0.1:{port}/rooms/lb"
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def recv(ws):
    return json.loads(ws.recv(timeout=10))


a, b = connect(url), connect(url)
time.sleep(0.3)
a.send("hello from a")
first_a, first_b = recv(a), recv(b)
check(first_a == first_b and first_a["text"] == "hello from a", "both members get the first message")
b.send("hello from b")
node_a, node_b = first_a["node"], recv(b)["node"]
check(node_a != node_b, f"nginx spread the members over both nodes ({node_a}, {node_b})")
seen = [first_a, recv(a)]
for name, proc, _ in nodes:
    if name == node_a:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
for k in range(50):
    b.send(f"missed {k}")
b_seen = [first_a, {"node": node_b}] + [recv(b) for _ in range(50)]
a = connect(f"{url}?since={seen[-1]['offset']}")
replayed = [recv(a) for _ in range(50)]
check([m["text"] for m in replayed] == [f"missed {k}" for k in range(50)],
      "the member reconnected through nginx got the 50 messages it missed, once, in order")
b.send("after")
check(recv(a)["text"] == "after" and recv(b)["text"] == "after", "live delivery goes on for both")
print("FAILED: " + "; ".join(failures) if failures else "all checks passed", flush=True)
kill_children()
remove_scratches()
os._exit(1 if failures else 0)
