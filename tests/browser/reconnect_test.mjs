// The classic heartbeat-and-reconnect page (reconnect_page.html: offers the subprotocol
// "echo-protocol", pings every second, reconnects after 2 s without a message) in headless
// Chromium against the echo_server example:
//   1. without --subprotocol, Chromium fails the handshake (the page never opens): the bug;
//   2. the server refuses names that are not RFC 6455 tokens, before listening;
//   3. with --subprotocol echo-protocol the page opens with that subprotocol and gets echoes;
//      the server is killed, the page notices (no message for 2 s, reconnect attempts), the
//      server restarts on the same port, the page reconnects and gets echoes again;
//   4. with several --subprotocol flags the server's first preference the client offers wins.
//
// Run through scripts/browser-test.sh, which builds the example and passes ECHO_BIN. Every wait
// is bounded; the script exits non-zero on the first failure.

import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";
import { chromium } from "playwright-core";

const ECHO_BIN = process.env.ECHO_BIN || fail("ECHO_BIN not set (run scripts/browser-test.sh)");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 15_000;
const PAGE = readFileSync(new URL("./reconnect_page.html", import.meta.url));

function fail(message) {
  throw new Error(message);
}

/** Starts echo_server on `addr` with `flags`; resolves once it listens. */
function startServer(addr, flags) {
  return new Promise((resolve, reject) => {
    const child = spawn(ECHO_BIN, [addr, ...flags], { stdio: ["ignore", "pipe", "pipe"] });
    const server = { child, addr: null, out: "" };
    let err = "";
    const timer = setTimeout(() => reject(new Error("echo_server did not start")), WAIT);
    child.stdout.on("data", (chunk) => { server.out += chunk; });
    child.stderr.on("data", (chunk) => {
      err += chunk;
      const match = err.match(/listening on ws:\/\/(\S+?)\//);
      if (match && !server.addr) {
        clearTimeout(timer);
        server.addr = match[1];
        console.log(`[server] ${[addr, ...flags].join(" ")}: listening on ${server.addr}`);
        resolve(server);
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`echo_server exited (${code ?? signal}): ${err}`));
    });
  });
}

/** Stops the server with `signal` and waits for it to be gone. */
function stopServer(server, signal = "SIGTERM") {
  return new Promise((resolve) => {
    const child = server.child;
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.removeAllListeners("exit");
    child.on("exit", resolve);
    child.kill(signal);
  });
}

/** Serves the page over HTTP on a free loopback port (a real origin, as in a deployment). */
async function servePage() {
  const pages = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(PAGE);
  });
  await new Promise((resolve) => pages.listen(0, "127.0.0.1", resolve));
  return pages;
}

const stats = (page) => page.evaluate(() => ({ ...window.stats }));

/** Waits until `predicate(window.stats, arg)` holds in the page (polled every 100 ms). */
async function until(page, what, predicate, arg) {
  await page
    .waitForFunction(
      ([source, arg]) => (0, eval)(`(${source})`)(window.stats, arg),
      [predicate.toString(), arg],
      { timeout: WAIT, polling: 100 },
    )
    .catch(async () => fail(`${what}; page stats: ${JSON.stringify(await stats(page))}`));
}

/** One socket offering `protocols`: whether it opened, the subprotocol and the echo of a text. */
function probe(page, url, protocols) {
  return page.evaluate(
    ({ url, protocols }) =>
      new Promise((resolve) => {
        const result = { opened: false, protocol: null, echo: null, code: null };
        const ws = new WebSocket(url, protocols);
        const timer = setTimeout(() => { ws.close(); resolve(result); }, 5000);
        ws.onopen = () => {
          result.opened = true;
          result.protocol = ws.protocol;
          ws.send("probe");
        };
        ws.onmessage = (event) => { result.echo = event.data; ws.close(1000); };
        ws.onclose = (event) => { clearTimeout(timer); result.code = event.code; resolve(result); };
      }),
    { url, protocols },
  );
}

const servers = new Set();
// However this script ends, no server outlives it.
process.on("exit", () => { for (const s of servers) s.child.kill("SIGKILL"); });
async function start(addr, flags) {
  const server = await startServer(addr, flags);
  servers.add(server);
  return server;
}

const pages = await servePage();
const pageUrl = (server) =>
  `http://127.0.0.1:${pages.address().port}/?ws=ws://${server.addr}/`;
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  // 1. The issue: offered a subprotocol, Chromium fails a handshake that selects none.
  {
    const server = await start("127.0.0.1:0", []);
    const page = await browser.newPage();
    const console_ = [];
    page.on("console", (message) => console_.push(message.text()));
    await page.goto(pageUrl(server));
    // The second attempt comes from the lifeline: the first had 2 s to open and did not.
    await until(page, "the page never retried", (s) => s.attempts >= 2 && s.closes.length >= 1);
    const s = await stats(page);
    if (s.opens !== 0 || s.messages !== 0) fail(`opened without a subprotocol: ${JSON.stringify(s)}`);
    if (!s.closes.every((code) => code === 1006)) fail(`close codes ${s.closes}, expected 1006`);
    if (!console_.some((line) => line.includes("Sec-WebSocket-Protocol"))) {
      fail(`Chromium gave another reason: ${JSON.stringify(console_)}`);
    }
    // The same server serves a socket that offers nothing: the subprotocol is the only cause.
    const plain = await probe(page, `ws://${server.addr}/`, []);
    if (!plain.opened || plain.echo !== "probe" || plain.protocol !== "") {
      fail(`a socket without subprotocol: ${JSON.stringify(plain)}`);
    }
    await page.close();
    await stopServer(server);
    console.log("ok: without --subprotocol Chromium fails the handshake " +
      `(${s.attempts} attempts, close ${s.closes[0]}, "${console_.find((l) => l.includes("Sec-WebSocket-Protocol"))}"); ` +
      "a socket offering none is served");
  }

  // 2. Names that are not tokens (RFC 6455 §4.1) are refused before the server listens.
  for (const flags of [["--subprotocol", "echo protocol"], ["--subprotocol", "a,b"],
    ["--subprotocol", ""], ["--subprotocol", "x/1"], ["--subprotocol"]]) {
    const run = spawnSync(ECHO_BIN, ["127.0.0.1:0", ...flags], { timeout: WAIT, encoding: "utf8" });
    if (run.status === 0 || run.status === null || run.stderr.includes("listening")) {
      fail(`echo_server ${JSON.stringify(flags)}: status ${run.status}, stderr ${run.stderr}`);
    }
    const expected = flags.length === 1 ? "needs NAME" : "not a valid subprotocol name";
    if (!run.stderr.includes(expected)) fail(`echo_server ${JSON.stringify(flags)}: ${run.stderr}`);
  }
  console.log("ok: --subprotocol refuses names that are not tokens, and a missing name, before listening");

  // 3. The page through a server kill and restart.
  {
    let server = await start("127.0.0.1:0", ["--subprotocol", "echo-protocol"]);
    const page = await browser.newPage();
    await page.goto(pageUrl(server));
    await until(page, "no echoes with echo-protocol",
      (s) => s.opens >= 1 && s.protocol === "echo-protocol" && s.messages >= 2 && s.last === "ping");
    if (!server.out.includes("(subprotocol echo-protocol)")) fail(`server log: ${server.out}`);
    console.log("ok: the page opened with subprotocol echo-protocol and gets its pings echoed");

    const addr = server.addr;
    await stopServer(server, "SIGKILL");
    servers.delete(server);
    const atKill = await stats(page);
    // Nothing arrives any more: each 2 s without a message closes and reconnects, in vain.
    await until(page, "the page did not notice the dead server",
      (s, at) => s.lifelineLost >= at.lifelineLost + 2 && s.attempts >= at.attempts + 2, atKill);
    const down = await stats(page);
    if (down.opens !== atKill.opens) fail(`opened while the server was dead: ${JSON.stringify(down)}`);
    console.log(`ok: server killed; the page noticed and retried ${down.attempts - atKill.attempts} times`);

    server = await start(addr, ["--subprotocol", "echo-protocol"]);
    await until(page, "the page did not reconnect after the restart",
      (s, at) => s.opens > at.opens && s.protocol === "echo-protocol" &&
        s.messages >= at.messages + 2 && s.last === "ping", down);
    console.log("ok: server restarted on the same port; the page reconnected and gets echoes again");
    await page.close();
    await stopServer(server);
  }

  // 4. Repeated --subprotocol: the server's order of preference decides among what is offered.
  {
    const server = await start("127.0.0.1:0",
      ["--subprotocol", "chat.v2", "--subprotocol", "echo-protocol"]);
    const page = await browser.newPage();
    await page.goto(pageUrl(server));
    const url = `ws://${server.addr}/`;
    const both = await probe(page, url, ["echo-protocol", "chat.v2"]);
    const second = await probe(page, url, ["echo-protocol"]);
    const neither = await probe(page, url, ["other"]);
    if (!both.opened || both.protocol !== "chat.v2" || both.echo !== "probe") {
      fail(`offering both: ${JSON.stringify(both)}`);
    }
    if (!second.opened || second.protocol !== "echo-protocol" || second.echo !== "probe") {
      fail(`offering echo-protocol: ${JSON.stringify(second)}`);
    }
    if (neither.opened) fail(`offering another: ${JSON.stringify(neither)}`);
    await page.close();
    await stopServer(server);
    console.log("ok: with two --subprotocol flags the server's first preference the client offers is selected");
  }
} finally {
  await browser.close();
  pages.close();
  for (const server of servers) await stopServer(server);
}
console.log("browser reconnect test passed");
