#!/usr/bin/env python3
"""websocket-client peer for the wsbeat benchmark (bench/README.md).

usage: py_websocket_client.py version
       py_websocket_client.py idle|detect URL PING_INTERVAL PING_TIMEOUT LIFETIME
       py_websocket_client.py echo URL - - LIFETIME COUNT

idle/detect: WebSocketApp.run_forever(ping_interval=..., ping_timeout=...), the library's own
keepalive. Prints CONNECTED on open and DISCONNECTED ... when the library reports the link
lost (on_error / on_close), then exits. echo: create_connection(), send 32-byte text, recv,
COUNT times, prints "ECHO COUNT SECONDS". Exits by itself after LIFETIME seconds at most.
"""
import os
import sys
import threading
import time

import websocket


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    mode = sys.argv[1]
    if mode == "version":
        out(websocket.__version__)
        return
    url, lifetime = sys.argv[2], float(sys.argv[5])
    timer = threading.Timer(lifetime, lambda: os._exit(3))
    timer.daemon = True
    timer.start()
    if mode == "echo":
        count = int(sys.argv[6])
        ws = websocket.create_connection(url)
        payload = "x" * 32
        for _ in range(max(10, min(200, count // 50))):
            ws.send(payload)
            ws.recv()
        t0 = time.perf_counter()
        for _ in range(count):
            ws.send(payload)
            ws.recv()
        out(f"ECHO {count} {time.perf_counter() - t0:.6f}")
        ws.close()
        os._exit(0)
    interval, timeout = float(sys.argv[3]), float(sys.argv[4])

    def on_open(_ws):
        out("CONNECTED")

    def on_error(_ws, err):
        out(f"DISCONNECTED error {err!r}")

    def on_close(_ws, code, _msg):
        out(f"DISCONNECTED close {code}")

    app = websocket.WebSocketApp(url, on_open=on_open, on_error=on_error, on_close=on_close)
    app.run_forever(ping_interval=interval, ping_timeout=timeout)
    out("DISCONNECTED run_forever returned")
    os._exit(0)


if __name__ == "__main__":
    main()
