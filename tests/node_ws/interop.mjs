// Interop with npm's `ws` (8.x), an implementation nobody here wrote, in both roles and with
// permessage-deflate in several configurations. scripts/interop_node.sh runs it:
//
//   node tests/node_ws/interop.mjs INTEROP_CHECKS_BIN ECHO_SERVER_BIN
//
// 1. Their server, our client: a `ws` server on 127.0.0.1:0 serves the paths the `interop_checks`
//    example expects (see its header), pings every connection on open, and records what only it
//    can see: the extension agreed, our pongs, our close codes. The example checks the rest.
// 2. Our server, their client: the `echo_server` example on 127.0.0.1:0; `ws` clients send every
//    length encoding as text and binary, fragmented messages, pings, invalid UTF-8, and close.
//
// Exit status 0 when every check passed. Every wait is bounded; every process started here is
// stopped here.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';

const [checksBin, echoServerBin] = process.argv.slice(2);
if (!checksBin || !echoServerBin) {
  console.error('usage: node interop.mjs INTEROP_CHECKS_BIN ECHO_SERVER_BIN');
  process.exit(2);
}
const TIMEOUT_MS = 60_000;
const PEER_PING = 'ping from the peer';

// The permessage-deflate settings tried, as `ws` options (its own defaults: threshold 1024,
// context takeover both ways, 15-bit windows). `agreed` checks the parameters `ws` agreed to
// (undefined when no extension was agreed).
const DEFLATE_SETTINGS = [
  { name: 'no deflate', options: false, agreed: (p) => p === undefined },
  { name: 'deflate, ws defaults', options: true, agreed: (p) => p !== undefined },
  {
    name: 'deflate, no context takeover, 10-bit windows, every message compressed',
    options: {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 10,
      threshold: 0,
    },
    agreed: (p) => p?.server_no_context_takeover === true && p?.client_no_context_takeover === true
      && Number(p?.server_max_window_bits) === 10 && Number(p?.client_max_window_bits) === 10,
  },
];

// The permessage-deflate parameters a `ws` connection agreed to, or undefined.
function deflateParams(ws) {
  return ws._extensions['permessage-deflate']?.params ?? undefined;
}

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? 'PASS' : 'FAIL'}: ${what}`);
  if (!ok) failures++;
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---- 1. their server, our client -------------------------------------------------------------

// Sends `data` back in three fragments, cut at arbitrary bytes (inside UTF-8 characters too).
function sendFragmented(ws, data, isBinary) {
  const cuts = [0, Math.floor(data.length / 3), Math.floor((2 * data.length) / 3), data.length];
  for (let i = 0; i < 3; i++) {
    ws.send(data.subarray(cuts[i], cuts[i + 1]), { binary: isBinary, fin: i === 2 });
  }
}

function startTheirServer(perMessageDeflate) {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate, maxPayload: 16 << 20 });
  const connections = [];
  server.on('connection', (ws, req) => {
    const seen = { path: req.url, params: deflateParams(ws), pongs: [], close: null };
    connections.push(seen);
    ws.on('pong', (data) => seen.pongs.push(data.toString()));
    ws.on('close', (code, reason) => { seen.close = { code, reason: reason.toString() }; });
    ws.on('error', (e) => { seen.error = e.message; });
    ws.ping(PEER_PING);
    switch (req.url) {
      case '/echo':
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
        break;
      case '/fragmented':
        ws.on('message', (data, isBinary) => sendFragmented(ws, data, isBinary));
        break;
      case '/server-closes':
        ws.send('bye soon');
        ws.close(4001, 'server closing');
        break;
      case '/bad-utf8':
        // `ws` sends a Buffer as it is, so a text frame can carry bytes that are not UTF-8.
        ws.send(Buffer.from([0x68, 0x69, 0xff, 0xfe]), { binary: false });
        break;
      default:
        ws.close(4004, 'no such path');
    }
  });
  return { server, connections };
}

function run(bin, args) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  return withTimeout(
    once(child, 'exit').then(([code]) => ({ code, output })),
    `${bin} ${args.join(' ')}`,
  ).catch((e) => { child.kill('SIGKILL'); throw e; });
}

async function theirServerOurClient(setting, clientArgs) {
  const { server, connections } = startTheirServer(setting.options);
  await once(server, 'listening');
  const { port } = server.address();
  const offered = !clientArgs.includes('--no-deflate');
  const label = `their server (${setting.name}), our client${offered ? '' : ' (no deflate offered)'}`;
  try {
    const { code, output } = await run(checksBin, [`ws://127.0.0.1:${port}`, ...clientArgs]);
    process.stdout.write(output.replace(/^/gm, '    '));
    check(code === 0, `${label}: interop_checks passed every case`);
    // Wait for the server to see every close (our client returns once its close is answered).
    await withTimeout(waitFor(() => connections.length === 4 && connections.every((c) => c.close)), 'closes');
    const byPath = Object.fromEntries(connections.map((c) => [c.path, c]));
    for (const c of connections) {
      const agreed = offered ? setting.agreed(c.params) : c.params === undefined;
      check(agreed, `${label}: ${c.path}: permessage-deflate agreed: ${JSON.stringify(c.params)}`);
    }
    for (const path of ['/echo', '/fragmented', '/server-closes']) {
      check(JSON.stringify(byPath[path]?.pongs) === JSON.stringify([PEER_PING]),
        `${label}: ${path}: our pong echoed the ping's payload (${JSON.stringify(byPath[path]?.pongs)})`);
    }
    const closes = {
      '/echo': 4000, // ours, with its reason
      '/fragmented': 1000,
      '/server-closes': 4001, // RFC 6455 §5.5.1: we echo the code of theirs
      '/bad-utf8': 1007, // RFC 6455 §8.1 and §7.4.1
    };
    for (const [path, code] of Object.entries(closes)) {
      check(byPath[path]?.close?.code === code,
        `${label}: ${path}: our close code ${code} (got ${JSON.stringify(byPath[path]?.close)})`);
    }
    check(byPath['/echo']?.close?.reason === 'bye from syncws', `${label}: /echo: our close reason arrived`);
  } finally {
    server.close();
  }
}

function waitFor(condition) {
  return new Promise((resolve) => {
    const poll = () => (condition() ? resolve() : setTimeout(poll, 10));
    poll();
  });
}

// ---- 2. our server, their client -------------------------------------------------------------

// Text of at most `len` bytes mixing 1- to 4-byte characters, so that any cut into pieces falls
// inside characters too.
function mixedText(len) {
  const chars = [...'syncws ĥéłłø wörld — κόσμε, мир, 世界 🌍🚀 '];
  let text = '';
  let bytes = 0;
  for (let i = 0; ; i++) {
    const c = chars[i % chars.length];
    const n = Buffer.byteLength(c);
    if (bytes + n > len) return text;
    text += c;
    bytes += n;
  }
}

// Incompressible bytes (xorshift), so deflate cannot hide a length bug.
function noise(len) {
  const out = Buffer.alloc(len);
  let state = 0x2545f491 ^ len;
  for (let i = 0; i < len; i++) {
    state ^= state << 13; state ^= state >>> 17; state ^= state << 5;
    out[i] = state & 0xff;
  }
  return out;
}

// One `ws` client connection with a queue of what arrives.
async function openClient(url, perMessageDeflate) {
  const ws = new WebSocket(url, { perMessageDeflate, maxPayload: 16 << 20 });
  const inbox = [];
  const waiters = [];
  const deliver = (item) => (waiters.length ? waiters.shift()(item) : inbox.push(item));
  ws.on('message', (data, isBinary) => deliver({ kind: 'message', data, isBinary }));
  ws.on('pong', (data) => deliver({ kind: 'pong', data }));
  ws.on('close', (code, reason) => deliver({ kind: 'close', code, reason: reason.toString() }));
  ws.on('error', (e) => deliver({ kind: 'error', error: e.message }));
  await withTimeout(once(ws, 'open'), `open ${url}`);
  const next = () => withTimeout(
    new Promise((resolve) => (inbox.length ? resolve(inbox.shift()) : waiters.push(resolve))),
    `reply on ${url}`,
  );
  return { ws, next };
}

function sameMessage(got, data, isBinary) {
  if (got.kind !== 'message' || got.isBinary !== isBinary) return false;
  const sent = typeof data === 'string' ? Buffer.from(data) : data;
  return Buffer.compare(Buffer.from(got.data), sent) === 0;
}

async function ourServerTheirClient(setting, url) {
  const label = `our server, their client (${setting.name})`;
  const { ws, next } = await openClient(url, setting.options);
  const params = deflateParams(ws);
  check(setting.agreed(params), `${label}: permessage-deflate agreed: ${JSON.stringify(params)}`);

  let echoes = 0;
  const wrong = [];
  for (const len of [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20]) {
    for (const [data, isBinary] of [[mixedText(len), false], [noise(len), true]]) {
      ws.send(data, { binary: isBinary });
      if (sameMessage(await next(), data, isBinary)) echoes++;
      else wrong.push(`${isBinary ? 'binary' : 'text'} ${len}`);
    }
  }
  check(wrong.length === 0, `${label}: ${echoes} echoes of every length encoding${wrong.length ? `; wrong: ${wrong}` : ''}`);

  // A compressible megabyte: with permessage-deflate our echo must arrive much smaller.
  const json = '{"event":"position","x":1} '.repeat(40_000);
  const before = ws._socket.bytesRead;
  ws.send(json);
  const ok = sameMessage(await next(), json, false);
  const received = ws._socket.bytesRead - before;
  check(ok && (params === undefined || received < 1 << 18),
    `${label}: a 1 MiB compressible text came back in ${received} bytes`);

  // Fragments cut inside characters: the server reassembles and validates across them.
  const text = mixedText(10_000);
  sendFragmented(ws, Buffer.from(text), false);
  const bin = noise(100_000);
  sendFragmented(ws, bin, true);
  check(sameMessage(await next(), text, false) && sameMessage(await next(), bin, true),
    `${label}: fragmented text and binary came back whole`);

  ws.ping('ping from ws');
  const pong = await next();
  check(pong.kind === 'pong' && pong.data.toString() === 'ping from ws', `${label}: pong carries the ping's payload`);

  ws.close(4000, 'bye from ws');
  const closed = await next();
  check(closed.kind === 'close' && closed.code === 4000, `${label}: our server echoed close code 4000 (got ${JSON.stringify(closed)})`);

  // RFC 6455 §8.1: invalid UTF-8 in a text message fails the connection with 1007.
  const bad = await openClient(url, setting.options);
  bad.ws.send(Buffer.from([0x68, 0x69, 0xff, 0xfe]), { binary: false });
  let event = await bad.next();
  while (event.kind === 'error') event = await bad.next();
  check(event.kind === 'close' && event.code === 1007, `${label}: invalid UTF-8 closed with 1007 (got ${JSON.stringify(event)})`);
}

async function startOurServer() {
  const child = spawn(echoServerBin, ['127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const url = await withTimeout(new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/listening on (ws:\/\/\S+)\n/); // the whole line, not a cut chunk
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`echo_server exited with ${code}: ${err}`)));
  }), 'echo_server start');
  return { child, url };
}

// ---- main -----------------------------------------------------------------------------------

const { version } = JSON.parse(
  await import('node:fs').then((fs) => fs.promises.readFile(new URL('./node_modules/ws/package.json', import.meta.url))),
);
console.log(`ws ${version}, node ${process.version}`);
try {
  for (const setting of DEFLATE_SETTINGS) {
    await theirServerOurClient(setting, []);
  }
  await theirServerOurClient(DEFLATE_SETTINGS[1], ['--no-deflate']);

  const ours = await startOurServer();
  try {
    for (const setting of DEFLATE_SETTINGS) {
      await ourServerTheirClient(setting, ours.url);
    }
  } finally {
    ours.child.kill('SIGKILL');
  }
} catch (e) {
  check(false, e.stack || String(e));
}
console.log(failures === 0 ? 'node ws interop: all checks passed' : `node ws interop: ${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
