"""python-websockets' sync echo server with its defaults (compression="deflate": windows 12/12,
memLevel 5), for scripts/deflate_memory.sh. Prints its address, then serves until killed."""

import sys

from websockets.sync.server import serve


def echo(ws):
    for message in ws:
        ws.send(message)


def main():
    with serve(echo, "127.0.0.1", 0, max_size=None) as server:
        host, port = server.socket.getsockname()[:2]
        print(f"{host}:{port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
