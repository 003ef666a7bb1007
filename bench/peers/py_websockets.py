#!/usr/bin/env python3
"""websockets (asyncio client) peer for the wsbeat benchmark (bench/README.md).

usage: py_websockets.py version
       py_websockets.py idle|detect URL PING_INTERVAL PING_TIMEOUT LIFETIME
       py_websockets.py echo URL - - LIFETIME COUNT

idle/detect: websockets.asyncio.client.connect(ping_interval=..., ping_timeout=...), the
library's keepalive, close_timeout left at its default. Prints CONNECTED once open and
DISCONNECTED ... when iterating the connection ends (that is when the application learns),
then exits. echo: send 32-byte text, recv, COUNT times, prints "ECHO COUNT SECONDS".
Exits by itself after LIFETIME seconds at most.
"""
import asyncio
import os
import sys
import time

import websockets
from websockets.asyncio.client import connect


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def echo(url, count):
    async with connect(url, ping_interval=None) as ws:
        payload = "x" * 32
        for _ in range(max(10, min(200, count // 50))):
            await ws.send(payload)
            await ws.recv()
        t0 = time.perf_counter()
        for _ in range(count):
            await ws.send(payload)
            await ws.recv()
        out(f"ECHO {count} {time.perf_counter() - t0:.6f}")
    os._exit(0)


async def keepalive(url, interval, timeout):
    async with connect(url, ping_interval=interval, ping_timeout=timeout) as ws:
        out("CONNECTED")
        try:
            async for _ in ws:
                pass
            out("DISCONNECTED closed")
        except websockets.ConnectionClosed as e:
            out(f"DISCONNECTED {e}")
        os._exit(0)


def main():
    mode = sys.argv[1]
    if mode == "version":
        out(websockets.__version__)
        return
    url, lifetime = sys.argv[2], float(sys.argv[5])
    loop = asyncio.new_event_loop()
    loop.call_later(lifetime, os._exit, 3)
    if mode == "echo":
        loop.run_until_complete(echo(url, int(sys.argv[6])))
    else:
        loop.run_until_complete(keepalive(url, float(sys.argv[3]), float(sys.argv[4])))
    out("DISCONNECTED ended")
    os._exit(0)


if __name__ == "__main__":
    main()
