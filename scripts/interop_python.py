"""permessage-deflate interop with python's `websockets` (a real, independent implementation).

usage: interop_python.py INTEROP_CLIENT_BIN ECHO_SERVER_BIN   (scripts/interop_python.sh runs it)

1. their server, our client: a `websockets.sync.server` echo server on 127.0.0.1:0; our
   `interop_client` example negotiates permessage-deflate with it, checks 50 echoes and that both
   directions were compressed on the wire (it counts the bytes), and exits 0.
2. our server, their client: our `echo_server` example on 127.0.0.1:0; a `websockets.sync.client`
   (which offers permessage-deflate by default) checks the agreed extension, the echoes, and that
   our replies arrived compressed (it counts the bytes its socket received).
Exit status 0 when both pass. Every wait is bounded; every process started here is stopped here.
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


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print("websockets %s" % websockets.__version__)
    results = [their_server_our_client(sys.argv[1]), our_server_their_client(sys.argv[2])]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
