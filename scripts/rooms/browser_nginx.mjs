// Chromium through nginx (issue 21): two chat nodes sharing one redis-server behind nginx; two
// pages on different nodes chat; the node of one is killed with SIGKILL; that page reconnects
// through nginx to the other node and shows the messages it missed, each once.
//
// Run through scripts/rooms/browser_nginx.sh (it builds the chat with `--features redis`,
// installs playwright-core into tests/browser and passes CHAT_BIN). Every wait is bounded.

import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(new URL("../../tests/browser/package.json", import.meta.url));
const { chromium } = require("playwright-core");
const CHAT_BIN = process.env.CHAT_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 15_000;
const children = [];
process.on("exit", () => children.forEach((c) => c.exitCode === null && c.kill("SIGTERM")));

const fail = (message) => { throw new Error(message); };
const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function start(command, args, ready) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${command} did not start`)), WAIT);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      if (!ready || out.match(ready)) { clearTimeout(timer); resolve(child); }
    });
    if (!ready) { clearTimeout(timer); resolve(child); }
  });
}

async function waitPort(port) {
  const { connect } = await import("node:net");
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => { const s = connect(port, "127.0.0.1", () => { s.end(); r(true); }); s.on("error", () => r(false)); });
    if (ok) return;
    await sleep(50);
  }
  fail(`nothing listens on ${port}`);
}

const scratch = mkdtempSync(join(tmpdir(), "syncws-browser-nginx-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));
const redisPort = await freePort();
await start("redis-server", ["--port", `${redisPort}`, "--bind", "127.0.0.1", "--dir", scratch, "--save", ""]);
await waitPort(redisPort);
const nodes = {};
for (const name of ["east", "west"]) {
  const port = await freePort();
  nodes[name] = await start(CHAT_BIN, [`127.0.0.1:${port}`, "--redis", `redis://127.0.0.1:${redisPort}/`, "--node", name], /chat on/);
  nodes[name].port = port;
}
const lbPort = await freePort();
const conf = readFileSync(new URL("nginx.conf.in", import.meta.url), "utf8")
  .replaceAll("@DIR@", scratch).replaceAll("@PORT@", `${lbPort}`)
  .replace("@UPSTREAMS@", Object.values(nodes).map((n) => `        server 127.0.0.1:${n.port};`).join("\n"));
writeFileSync(join(scratch, "nginx.conf"), conf);
await start("nginx", ["-c", join(scratch, "nginx.conf")]);
await waitPort(lbPort);
const url = `http://127.0.0.1:${lbPort}/`;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

async function enter(page, nick) {
  await page.fill("#nick", nick);
  await page.fill("#room", "lb");
  await page.click("#who button");
  await page.waitForFunction(() => document.querySelector("#state").textContent.startsWith("connected to "), null, { timeout: WAIT });
  return (await page.textContent("#state")).replace("connected to ", "");
}

const count = (page, text) => page.evaluate((t) => [...document.querySelectorAll("#log li.msg")].filter((li) => li.textContent === t).length, text);
async function sees(page, text) {
  await page.waitForFunction((t) => [...document.querySelectorAll("#log li.msg")].some((li) => li.textContent === t), text, { timeout: WAIT })
    .catch(() => fail(`"${text}" never appeared`));
}

try {
  const alice = await (await browser.newContext()).newPage();
  const bob = await (await browser.newContext()).newPage();
  await alice.goto(url);
  await bob.goto(url);
  const aliceNode = await enter(alice, "alice");
  let bobNode = await enter(bob, "bob");
  // nginx balances round robin over page loads and WebSockets alike: join again until bob is
  // on the other node.
  for (let i = 0; i < 6 && bobNode === aliceNode; i++) bobNode = await enter(bob, "bob");
  if (bobNode === aliceNode) fail("both pages stayed on one node");
  console.log(`ok: alice on ${aliceNode}, bob on ${bobNode}, both through nginx`);
  await bob.fill("#text", "hello alice");
  await bob.click("#send");
  await sees(alice, "bob:hello alice");
  console.log("ok: a line crossed nodes");

  nodes[aliceNode].kill("SIGKILL");
  await alice.waitForSelector("#dot:not(.up)", { timeout: WAIT });
  for (let k = 1; k <= 3; k++) {
    await bob.fill("#text", `while you were away ${k}`);
    await bob.click("#send");
    await sees(bob, `bob:while you were away ${k}`);
  }
  await alice.waitForFunction((n) => document.querySelector("#state").textContent === `connected to ${n}`, bobNode, { timeout: WAIT });
  for (let k = 1; k <= 3; k++) await sees(alice, `bob:while you were away ${k}`);
  await sleep(500);
  for (const text of ["bob:hello alice", ...[1, 2, 3].map((k) => `bob:while you were away ${k}`)]) {
    const n = await count(alice, text);
    if (n !== 1) fail(`alice shows "${text}" ${n} times`);
  }
  console.log(`ok: alice reconnected through nginx to ${bobNode} and shows the 3 missed lines once each`);
} finally {
  await browser.close();
}
console.log("browser through nginx test passed");
process.exit(0);
