"""Echo server on Python `websockets` (asyncio), a peer for tests/interop_peers.rs.

    python echo_websockets.py [--port N] [--ping-interval S] [--ping-timeout S] [--max-size B]

Listens on 127.0.0.1 only and prints `LISTENING <port>` once it accepts connections.
Echoes text and binary messages as they came, with the library's own keepalive pings
(`ping_interval` / `ping_timeout`: a client that does not answer is dropped with 1011).
Text commands, not echoed:
    close CODE [REASON]   close the connection with CODE and REASON
    stats                 reply `stats latency=<s>`, the RTT of the last keepalive ping
                          that was answered (0 while none was)
"""

import argparse
import asyncio
import sys

import websockets
from websockets.asyncio.server import serve


async def handler(ws):
    async for msg in ws:
        if isinstance(msg, str) and msg.startswith("close "):
            parts = msg.split(" ", 2)
            code = int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            await ws.close(code, reason)
            return
        if msg == "stats":
            await ws.send(f"stats latency={ws.latency:.6f}")
            continue
        await ws.send(msg)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ping-interval", type=float, default=0.2)
    p.add_argument("--ping-timeout", type=float, default=0.2)
    p.add_argument("--max-size", type=int, default=1 << 20)
    a = p.parse_args()
    async with serve(
        handler,
        "127.0.0.1",
        a.port,
        ping_interval=a.ping_interval,
        ping_timeout=a.ping_timeout,
        max_size=a.max_size,
        compression=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port} websockets {websockets.__version__}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
