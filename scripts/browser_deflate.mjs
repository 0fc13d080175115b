// Headless Chromium against our echo_server built with `deflate`: the browser must negotiate
// permessage-deflate (`WebSocket.extensions`), get every echo back intact, and a byte-counting
// TCP relay between the two must see fewer bytes than the payload in each direction, which only
// compression in both directions explains.
//
// usage: node scripts/browser_deflate.mjs HOST:PORT   (scripts/browser_deflate.sh runs it)
import net from 'node:net';
import { chromium } from 'playwright-core';

const [host, port] = process.argv[2].split(':');
const counts = { toServer: 0, toBrowser: 0 };

// The relay: browser -> 127.0.0.1:relayPort -> our server, counting bytes each way.
const relay = net.createServer((browser) => {
  const server = net.connect(Number(port), host);
  browser.on('data', (d) => { counts.toServer += d.length; server.write(d); });
  server.on('data', (d) => { counts.toBrowser += d.length; browser.write(d); });
  browser.on('close', () => server.destroy());
  server.on('close', () => browser.destroy());
  browser.on('error', () => server.destroy());
  server.on('error', () => browser.destroy());
});
await new Promise((resolve) => relay.listen(0, '127.0.0.1', resolve));
const url = `ws://127.0.0.1:${relay.address().port}/`;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: 60000,
});
let failed = false;
try {
  const page = await browser.newPage();
  const result = await page.evaluate(async (url) => {
    const record = (i) => JSON.stringify({ id: i, user: `user-${i % 17}`, event: 'position',
      x: (i * 3) % 1000, y: (i * 7) % 1000, tags: ['alpha', 'beta'] });
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
    const texts = [];
    for (let i = 0; i < 50; i++) {
      texts.push(Array.from({ length: 40 }, (_, j) => record(i * 40 + j)).join(''));
    }
    let payload = 0;
    let mismatches = 0;
    for (const text of texts) {
      const echo = new Promise((resolve) => { ws.onmessage = (e) => resolve(e.data); });
      ws.send(text);
      payload += text.length;
      if ((await echo) !== text) mismatches++;
    }
    const extensions = ws.extensions;
    ws.close(1000, 'done');
    await new Promise((resolve) => { ws.onclose = resolve; });
    return { extensions, payload, mismatches };
  }, url);
  console.log(`chromium: extensions ${JSON.stringify(result.extensions)}, 50 echoes, ` +
    `${result.mismatches} mismatched, ${result.payload} payload bytes each way; on the wire ` +
    `${counts.toServer} bytes to the server, ${counts.toBrowser} to the browser`);
  if (!result.extensions.startsWith('permessage-deflate')) { console.log('FAIL: not negotiated'); failed = true; }
  if (result.mismatches) { console.log('FAIL: echoes differ'); failed = true; }
  if (counts.toServer * 2 > result.payload) { console.log('FAIL: browser did not compress'); failed = true; }
  if (counts.toBrowser * 2 > result.payload) { console.log('FAIL: our server did not compress'); failed = true; }
} finally {
  await browser.close();
  relay.close();
}
console.log(failed ? 'browser deflate: FAIL' : 'browser deflate: PASS');
process.exit(failed ? 1 : 0);
