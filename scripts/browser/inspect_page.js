// Drives headless Chromium through the inspector: a tiny page opens a WebSocket to the
// inspector's address, sends text, JSON, a 16-bit-length binary and a 64-bit-length binary
// message, checks every echo, and closes with 1000 "bye". Prints the page's result as JSON.
// Usage: node inspect_page.js ws://127.0.0.1:PORT/
const { chromium } = require('playwright-core');

const page_html = `<!doctype html><title>syncws inspector check</title><script>
window.run = (url) => new Promise((resolve) => {
  const log = [];
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const sends = [
    'hello from chromium',
    JSON.stringify({ userId: 10001, code: 1001, data: {} }, null, 4),
    new Uint8Array(300).map((_, i) => i % 256),
    new Uint8Array(70000).map((_, i) => (i * 7) % 256),
  ];
  let next = 0;
  const same = (a, b) => typeof a === 'string' ? a === b
    : b instanceof ArrayBuffer && a.length === b.byteLength && new Uint8Array(b).every((x, i) => x === a[i]);
  ws.onopen = () => { log.push('open ' + ws.extensions); ws.send(sends[next]); };
  ws.onmessage = (e) => {
    log.push('echo ' + next + ' ' + (same(sends[next], e.data) ? 'ok' : 'MISMATCH'));
    next += 1;
    if (next < sends.length) ws.send(sends[next]); else ws.close(1000, 'bye');
  };
  ws.onerror = () => log.push('error');
  ws.onclose = (e) => { log.push('close ' + e.code + ' ' + e.wasClean); resolve(log); };
});
</script>`;

(async () => {
  const url = process.argv[2];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    await page.setContent(page_html);
    const log = await page.evaluate((u) => window.run(u), url);
    console.log(JSON.stringify(log));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
