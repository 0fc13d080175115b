// Two headless Chromium pages chat through nginx in front of two chat nodes that share their
// rooms through Redis (scripts/nginx/cluster.sh). The node of one page is frozen (SIGSTOP), the
// other page sends messages, then the frozen node is killed (`kill -9`): the page reconnects
// through nginx, lands on the other node, resumes from its last offset and shows every message
// it missed exactly once, in order, then chats live again.
//
// Run through scripts/nginx/browser-test.sh, which builds the example with `--features redis`,
// installs playwright-core and passes NODE_BIN. Every wait is bounded; the script exits
// non-zero on the first failure.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CLUSTER = new URL("../../scripts/nginx/cluster.sh", import.meta.url).pathname;
const WAIT = 20_000;
const MISSED = 5;

function fail(message) {
  throw new Error(message);
}

/** Starts Redis, two nodes and nginx; resolves with the nodes ({name, pid}) and nginx's URL. */
function startCluster() {
  const dir = mkdtempSync(join(tmpdir(), "syncws-rooms-nginx-"));
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [CLUSTER, "--no-build", "--nodes", "2", "--dir", dir], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const cluster = { child, dir, nodes: [], url: null };
    const timer = setTimeout(() => reject(new Error("the cluster did not start")), 60_000);
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      process.stdout.write(`[cluster] ${chunk}`);
      if (!/^ready$/m.test(out)) return;
      clearTimeout(timer);
      for (const [, name, pid] of out.matchAll(/^node (\S+) (\d+) \S+$/gm)) {
        cluster.nodes.push({ name, pid: Number(pid) });
      }
      cluster.url = out.match(/^nginx (http:\/\/\S+)/m)[1];
      resolve(cluster);
    });
    child.on("exit", (code) => reject(new Error(`cluster.sh exited with ${code}`)));
  });
}

function stopCluster(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.removeAllListeners("exit");
    child.on("exit", resolve);
    child.kill("SIGTERM"); // cluster.sh stops nginx, the nodes and Redis
  });
}

async function joinRoom(page, nick, room) {
  await page.fill("#nick", nick);
  await page.fill("#room", room);
  await page.click("#who button");
  await page.waitForSelector("#dot.up", { timeout: WAIT });
  await page.waitForFunction(() => document.querySelector("#node").textContent.startsWith("via "), null, {
    timeout: WAIT,
  });
  return (await page.textContent("#node")).slice("via ".length);
}

async function say(page, line) {
  await page.fill("#text", line);
  await page.click("#send");
}

/** The page's chat lines, as shown ("nick:text"). */
const lines = (page) => page.evaluate(() => [...document.querySelectorAll("#log li.msg")].map((li) => li.textContent));

async function sees(page, who, line) {
  await page
    .waitForFunction(
      (t) => [...document.querySelectorAll("#log li.msg")].some((li) => li.textContent === t),
      `${who}:${line}`,
      { timeout: WAIT },
    )
    .catch(() => fail(`${who}'s line "${line}" never appeared`));
}

/** Fails unless each of `expected` is shown exactly once on the page, in this order. */
async function showsOnceInOrder(page, expected) {
  const shown = await lines(page);
  for (const line of expected) {
    const times = shown.filter((l) => l === line).length;
    if (times !== 1) fail(`"${line}" shown ${times} times; the page shows ${JSON.stringify(shown)}`);
  }
  const positions = expected.map((line) => shown.indexOf(line));
  if (positions.some((p, i) => i > 0 && p < positions[i - 1])) fail(`out of order: ${JSON.stringify(shown)}`);
}

/** A WebSocket handshake through nginx from source address `from`; resolves on 101. */
function handshakeFrom(from, url, headers) {
  return new Promise((resolve, reject) => {
    const request = http.request(url, {
      localAddress: from,
      timeout: WAIT,
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
        ...headers,
      },
    });
    request.on("upgrade", (_response, socket) => {
      socket.destroy();
      resolve();
    });
    request.on("response", (response) => reject(new Error(`handshake answered ${response.statusCode}`)));
    request.on("timeout", () => request.destroy(new Error("handshake timed out")));
    request.on("error", reject);
    request.end();
  });
}

/** Waits until a node's log has a line containing `text`; returns that line. */
async function nodeLogLine(dir, text) {
  const until = Date.now() + WAIT;
  while (Date.now() < until) {
    for (const name of readdirSync(dir).filter((f) => /^node\d+\.log$/.test(f))) {
      const line = readFileSync(join(dir, name), "utf8").split("\n").find((l) => l.includes(text));
      if (line) return line;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  fail(`no node logged "${text}"`);
}

const cluster = await startCluster();
// However this script ends, the cluster ends with it.
process.on("exit", () => cluster.child.kill("SIGTERM"));
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  // nginx connects to the nodes from 127.0.0.1 (a trusted proxy for the chat nodes); this client
  // connects to nginx from 127.0.0.2 and claims another address in both forwarding headers.
  // nginx appends the real one, and the node logs it: the right-most untrusted address.
  const forged = "203.0.113.9";
  await handshakeFrom("127.0.0.2", `${cluster.url}ws?room=proxied&nick=carol`, {
    "X-Forwarded-For": forged,
    Forwarded: `for=${forged}`,
  });
  const logged = await nodeLogLine(cluster.dir, "joined proxied as carol");
  if (!logged.startsWith("127.0.0.2:")) fail(`the node logged "${logged}", not the client's 127.0.0.2`);
  console.log(`ok: behind nginx the node logs the client's address, not nginx's nor a forged one: "${logged}"`);

  const alice = await (await browser.newContext()).newPage();
  const bob = await (await browser.newContext()).newPage();
  await alice.goto(cluster.url);
  await bob.goto(cluster.url);
  const aliceNode = await joinRoom(alice, "alice", "nginx");
  let bobNode = await joinRoom(bob, "bob", "nginx");
  // nginx picks the node; joining again gives another connection until bob is on the other one.
  for (let tries = 0; bobNode === aliceNode; tries++) {
    if (tries === 10) fail(`nginx put bob on ${bobNode} ${tries} times in a row`);
    await bob.waitForSelector("#dot.up", { timeout: WAIT });
    bobNode = await joinRoom(bob, "bob", "nginx");
  }
  console.log(`ok: through nginx, alice is on ${aliceNode} and bob on ${bobNode}`);

  await say(alice, "hello from alice");
  await sees(bob, "alice", "hello from alice");
  await say(bob, "hi alice, bob here");
  await sees(alice, "bob", "hi alice, bob here");
  console.log("ok: the two pages chatted across nodes through Redis");

  // Alice's node stops delivering (frozen), bob's messages go to Redis meanwhile.
  const victim = cluster.nodes.find((n) => n.name === aliceNode) || fail(`no node ${aliceNode}`);
  process.kill(victim.pid, "SIGSTOP");
  const missed = Array.from({ length: MISSED }, (_, i) => `missed ${i + 1}`);
  for (const line of missed) await say(bob, line);
  await sees(bob, "bob", missed.at(-1));
  if ((await lines(alice)).some((l) => l.startsWith("bob:missed"))) fail("the frozen node delivered");
  // Killed without a goodbye: nginx closes alice's connection, her page reconnects through
  // nginx, which skips the dead node.
  process.kill(victim.pid, "SIGKILL");
  await alice.waitForSelector("#dot:not(.up)", { timeout: WAIT });
  console.log(`ok: ${aliceNode} killed; alice's page says "${await alice.textContent("#state")}"`);
  await alice.waitForSelector("#dot.up", { timeout: WAIT });
  await alice.waitForFunction(
    (dead) => {
      const node = document.querySelector("#node").textContent;
      return node.startsWith("via ") && node !== `via ${dead}`;
    },
    aliceNode,
    { timeout: WAIT },
  );
  console.log(`ok: alice reconnected through nginx, now ${await alice.textContent("#node")}`);

  for (const line of missed) await sees(alice, "bob", line);
  await showsOnceInOrder(alice, [
    "alice:hello from alice",
    "bob:hi alice, bob here",
    ...missed.map((l) => `bob:${l}`),
  ]);
  console.log(`ok: alice's page shows the ${MISSED} messages she missed, once each, in order`);

  // The page's own guard: a delivery at or before the last offset shown (as a replay that
  // overlaps live delivery would bring) is not shown again.
  const again = await alice.evaluate(() => {
    const before = stats.duplicates;
    socket.onmessage({ data: JSON.stringify({ offset: last.offset, node: "x", text: "msg\tbob\tmissed 5" }) });
    return stats.duplicates - before;
  });
  if (again !== 1) fail(`a repeated offset was not recognised (${again})`);
  await showsOnceInOrder(alice, missed.map((l) => `bob:${l}`));
  console.log("ok: a delivery repeated at an offset already shown is dropped by the page");

  await say(bob, "still there?");
  await sees(alice, "bob", "still there?");
  await say(alice, "yes, via another node");
  await sees(bob, "alice", "yes, via another node");
  await showsOnceInOrder(alice, [...missed.map((l) => `bob:${l}`), "bob:still there?", "alice:yes, via another node"]);
  await showsOnceInOrder(bob, ["alice:hello from alice", ...missed.map((l) => `bob:${l}`), "alice:yes, via another node"]);
  const stats = await alice.evaluate(() => stats);
  if (stats.gaps !== 0) fail(`alice's page was told of a gap: ${JSON.stringify(stats)}`);
  if (stats.duplicates !== 1) fail(`the server sent alice something twice: ${JSON.stringify(stats)}`);
  console.log(`ok: live again after the reconnect; alice's page: ${JSON.stringify(stats)}`);
} finally {
  await browser.close();
  await stopCluster(cluster.child);
}
console.log("browser rooms-through-nginx test passed");
