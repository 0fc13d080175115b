"""Interop with python's `websockets` (a real, independent implementation).

usage: interop_python.py INTEROP_CLIENT_BIN ECHO_SERVER_BIN INTEROP_CHECKS_BIN
       (scripts/interop_python.sh runs it)

1. their server, our client: a `websockets.sync.server` echo server on 127.0.0.1:0; our
   `interop_client` example negotiates permessage-deflate with it, checks 50 echoes and that both
   directions were compressed on the wire (it counts the bytes), and exits 0.
2. our server, their client: our `echo_server` example on 127.0.0.1:0; a `websockets.sync.client`
   (which offers permessage-deflate by default) checks the agreed extension, the echoes, and that
   our replies arrived compressed (it counts the bytes its socket received).
3. their server, our client, case by case: a `websockets.sync.server` serving the paths the
   `interop_checks` example expects (see its header), which pings every connection on open and
   checks what only it can see: our pongs and our close codes. Run with and without
   permessage-deflate offered.
Exit status 0 when all pass. Every wait is bounded; every process started here is stopped here.
"""

import socket
import subprocess
import sys
import threading

import websockets
from websockets.sync.client import connect
from websockets.sync.server import serve

TIMEOUT = 60


def record(i):
    return '{"id":%d,"user":"user-%d","event":"position","x":%d,"y":%d,"tags":["alpha","beta"]}' % (
        i, i % 17, i * 3 % 1000, i * 7 % 1000)


def their_server_our_client(client_bin):
    agreed = []

    def echo(ws):
        agreed.append([ext.name for ext in ws.protocol.extensions])
        for message in ws:
            ws.send(message)

    with serve(echo, "127.0.0.1", 0) as server:
        port = server.socket.getsockname()[1]
        thread = threading.Thread(target=server.serve_forever, name="websockets-server", daemon=True)
        thread.start()
        try:
            run = subprocess.run([client_bin, "ws://127.0.0.1:%d/" % port],
                                 capture_output=True, text=True, timeout=TIMEOUT)
        finally:
            server.shutdown()
            thread.join(TIMEOUT)
    sys.stdout.write(run.stdout)
    sys.stderr.write(run.stderr)
    ok = run.returncode == 0 and agreed == [["permessage-deflate"]]
    print("their server, our client: %s (server-side extensions: %s)" % ("PASS" if ok else "FAIL", agreed))
    return ok


class CountingSocket(socket.socket):
    """Counts the bytes received, to see whether the server's frames were compressed."""

    received = 0

    def recv(self, bufsize, *args):
        data = super().recv(bufsize, *args)
        self.received += len(data)
        return data


def our_server_their_client(server_bin):
    server = subprocess.Popen([server_bin, "127.0.0.1:0"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        # "echo server listening on ws://127.0.0.1:PORT/"
        line = server.stderr.readline()
        address = line.strip().rsplit("ws://", 1)[-1].rstrip("/")
        host, port = address.rsplit(":", 1)
        sock = CountingSocket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect((host, int(port)))
        payload = 0
        with connect("ws://%s/" % address, sock=sock, open_timeout=TIMEOUT) as ws:
            extensions = [ext.name for ext in ws.protocol.extensions]
            print("our server, their client: agreed extensions %s" % extensions)
            if extensions != ["permessage-deflate"]:
                return False
            start = sock.received
            for i in range(50):
                text = "".join(record(i * 40 + j) for j in range(40))
                message = text.encode() if i % 5 == 4 else text
                payload += len(text)
                ws.send(message)
                if ws.recv(timeout=TIMEOUT) != message:
                    print("echo %d differs" % i)
                    return False
            # Empty messages, twice: the server's compressor has nothing new to flush.
            for _ in range(2):
                ws.send("")
                if ws.recv(timeout=TIMEOUT) != "":
                    print("an empty message did not come back empty")
                    return False
            received = sock.received - start
        print("our server, their client: 50 echoes, %d payload bytes, %d bytes received" % (payload, received))
        ok = received * 2 < payload
        print("our server, their client: %s" % ("PASS" if ok else "FAIL (replies not compressed)"))
        return ok
    finally:
        server.kill()
        server.wait(TIMEOUT)


PEER_PING = b"ping from the peer"

# The close code the server must receive from our client on each path.
EXPECTED_CLOSE = {
    "/echo": 4000,  # ours
    "/fragmented": 1000,
    "/server-closes": 4001,  # RFC 6455 §5.5.1: we echo the code of theirs
    "/bad-utf8": 1007,  # RFC 6455 §8.1 and §7.4.1
}


def their_server_our_checks(checks_bin, offer_deflate):
    seen = []

    def handler(ws):
        path = ws.request.path
        pong = ws.ping(PEER_PING)
        try:
            serve_path(ws, path)
        except websockets.exceptions.ConnectionClosedError:
            pass  # /bad-utf8 ends this way, by design; the close code is checked below
        # The connection has closed: our pong came before our close frame, or never.
        seen.append((path, pong.is_set(), ws.close_code, [ext.name for ext in ws.protocol.extensions]))

    def serve_path(ws, path):
        if path == "/echo":
            for message in ws:
                ws.send(message)
        elif path == "/fragmented":
            for message in ws:
                text = isinstance(message, str)
                data = message.encode() if text else message
                cut = len(data) // 3
                # Cut at arbitrary bytes (inside UTF-8 characters too), sent as three frames.
                ws.send([data[:cut], data[cut:2 * cut], data[2 * cut:]], text=text)
        elif path == "/server-closes":
            ws.send("bye soon")
            ws.close(4001, "server closing")
        elif path == "/bad-utf8":
            ws.send(b"hi\xff\xfe", text=True)  # not UTF-8, sent as text all the same
            for _ in ws:
                pass

    label = "their server, our client, case by case (%s)" % (
        "permessage-deflate offered" if offer_deflate else "no permessage-deflate offered")
    with serve(handler, "127.0.0.1", 0, max_size=16 << 20) as server:
        port = server.socket.getsockname()[1]
        thread = threading.Thread(target=server.serve_forever, name="websockets-server", daemon=True)
        thread.start()
        try:
            args = [checks_bin, "ws://127.0.0.1:%d" % port] + ([] if offer_deflate else ["--no-deflate"])
            run = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
        finally:
            server.shutdown()
            thread.join(TIMEOUT)
    sys.stdout.write(run.stdout)
    sys.stderr.write(run.stderr)
    ok = run.returncode == 0
    extensions = [["permessage-deflate"]] if offer_deflate else [[]]
    for path, ponged, close_code, agreed in sorted(seen):
        good = ponged and close_code == EXPECTED_CLOSE[path] and [agreed] == extensions
        print("  %s: pong %s, close code %s, extensions %s: %s" % (
            path, ponged, close_code, agreed, "ok" if good else "WRONG"))
        ok = ok and good
    ok = ok and sorted(path for path, *_ in seen) == sorted(EXPECTED_CLOSE)
    print("%s: %s" % (label, "PASS" if ok else "FAIL"))
    return ok


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    print("websockets %s" % websockets.__version__)
    results = [their_server_our_client(sys.argv[1]), our_server_their_client(sys.argv[2]),
               their_server_our_checks(sys.argv[3], True), their_server_our_checks(sys.argv[3], False)]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
