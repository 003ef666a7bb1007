#!/usr/bin/env node
// Node `ws` peer for the wsbeat benchmark (bench/README.md).
//
// usage: node_ws.js version
//        node_ws.js idle|detect URL PING_INTERVAL - LIFETIME
//        node_ws.js echo URL - - LIFETIME COUNT
//
// idle/detect: the heartbeat pattern of the ws README ("How to detect and close broken
// connections?"), run on the client: every PING_INTERVAL seconds, terminate() if no pong came
// since the last tick, else ping(). Prints CONNECTED on open, DISCONNECTED ... when it gives the
// link up, then exits. echo: send 32-byte text, wait for the echo, COUNT times, prints
// "ECHO COUNT SECONDS". Exits by itself after LIFETIME seconds at most.
'use strict';
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'node_modules', 'ws'));

const [mode, url, intervalS, , lifetimeS, countS] = process.argv.slice(2);
const out = (line) => process.stdout.write(line + '\n');

if (mode === 'version') {
  out(require(path.join(__dirname, '..', 'node_modules', 'ws', 'package.json')).version);
  process.exit(0);
}
setTimeout(() => process.exit(3), Number(lifetimeS) * 1000);

const ws = new WebSocket(url);
ws.on('error', (e) => out(`DISCONNECTED error ${e.message}`));

if (mode === 'echo') {
  const count = Number(countS);
  const warm = Math.max(10, Math.min(200, Math.floor(count / 50)));
  const payload = 'x'.repeat(32);
  let n = 0;
  let t0 = 0n;
  ws.on('open', () => ws.send(payload));
  ws.on('message', () => {
    n += 1;
    if (n === warm) t0 = process.hrtime.bigint();
    if (n === warm + count) {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      out(`ECHO ${count} ${secs.toFixed(6)}`);
      process.exit(0);
    }
    ws.send(payload);
  });
} else {
  let isAlive = true;
  let timer = null;
  ws.on('open', () => {
    out('CONNECTED');
    timer = setInterval(() => {
      if (!isAlive) {
        out('DISCONNECTED heartbeat: no pong since the last ping');
        ws.terminate();
        process.exit(0);
      }
      isAlive = false;
      ws.ping();
    }, Number(intervalS) * 1000);
  });
  ws.on('pong', () => {
    isAlive = true;
  });
  ws.on('close', () => {
    clearInterval(timer);
    out('DISCONNECTED close');
    process.exit(0);
  });
}
