// Echo server on Node's `ws`, a peer for tests/interop_peers.rs.
//
//     NODE_PATH=tests/interop/node/node_modules node echo_ws.js [--port N] [--ping-interval MS] [--max-size B]
//
// Listens on 127.0.0.1 only and prints `LISTENING <port>` once it accepts connections.
// Echoes text and binary messages as they came. Keepalive as the `ws` README recommends: a
// Ping to every client each interval; a client that has not answered the previous one by then
// is terminated (`ws.terminate()`, no close frame). Text commands, not echoed:
//     close CODE [REASON]   close the connection with CODE and REASON
//     stats                 reply `stats pongs=<n>`, keepalive pongs received on this connection
'use strict';

const { WebSocketServer } = require('ws');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const port = arg('--port', 0);
const pingInterval = arg('--ping-interval', 200);
const maxPayload = arg('--max-size', 1 << 20);

const wss = new WebSocketServer({ host: '127.0.0.1', port, maxPayload, perMessageDeflate: false });

wss.on('connection', (ws) => {
  ws.isAlive = true;
  ws.pongs = 0;
  ws.on('pong', () => {
    ws.isAlive = true;
    ws.pongs += 1;
  });
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString('utf8');
      if (text.startsWith('close ')) {
        const [, code, ...reason] = text.split(' ');
        ws.close(Number(code), reason.join(' '));
        return;
      }
      if (text === 'stats') {
        ws.send(`stats pongs=${ws.pongs}`);
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
});

const keepalive = setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.isAlive) {
      ws.terminate();
      continue;
    }
    ws.isAlive = false;
    ws.ping();
  }
}, pingInterval);

wss.on('close', () => clearInterval(keepalive));
wss.on('listening', () => {
  const version = require('ws/package.json').version;
  process.stdout.write(`LISTENING ${wss.address().port} ws ${version}\n`);
});
