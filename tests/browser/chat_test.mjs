// Two headless Chromium sessions chat through `cargo run --example chat`; then the server
// restarts and both pages reconnect by themselves and chat again.
//
// Run through scripts/browser-test.sh, which builds the example, installs playwright-core and
// passes CHAT_BIN. Every wait is bounded; the script exits non-zero on the first failure.

import { spawn } from "node:child_process";
import { chromium } from "playwright-core";

const CHAT_BIN = process.env.CHAT_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 15_000;

function fail(message) {
  throw new Error(message);
}

/** Starts the chat server on `addr`; resolves with the process and its URL. */
function startServer(addr) {
  return new Promise((resolve, reject) => {
    const child = spawn(CHAT_BIN, [addr], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    const timer = setTimeout(() => reject(new Error("chat server did not start")), WAIT);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      process.stdout.write(`[server] ${chunk}`);
      const match = out.match(/chat on (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1] });
      }
    });
    child.on("exit", (code) => reject(new Error(`chat server exited with ${code}`)));
  });
}

function stopServer(child) {
  return new Promise((resolve) => {
    // Already gone (a failure after the restart step): no exit event will come.
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.removeAllListeners("exit");
    child.on("exit", resolve);
    child.kill("SIGTERM");
  });
}

async function joinRoom(page, url, nick, room) {
  await page.goto(url);
  await page.fill("#nick", nick);
  await page.fill("#room", room);
  await page.click("#who button");
  await page.waitForSelector("#dot.up", { timeout: WAIT });
}

async function say(page, line) {
  await page.fill("#text", line);
  await page.click("#send");
}

async function sees(page, who, line) {
  const text = `${who}:${line}`;
  await page.waitForFunction(
    (t) => [...document.querySelectorAll("#log li.msg")].some((li) => li.textContent === t),
    text,
    { timeout: WAIT },
  ).catch(() => fail(`${who}'s line "${line}" never appeared`));
}

let server = await startServer("127.0.0.1:0");
// However this script ends, the server ends with it.
process.on("exit", () => server.child.kill("SIGKILL"));
// Playwright starts Chromium with a fresh, temporary --user-data-dir of its own.
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  // Two separate browser contexts: two users with nothing shared.
  const alice = await (await browser.newContext()).newPage();
  const bob = await (await browser.newContext()).newPage();
  await joinRoom(alice, server.url, "alice", "test");
  await joinRoom(bob, server.url, "bob", "test");
  await alice.waitForFunction(() => document.body.innerText.includes("bob joined"), null, { timeout: WAIT });
  await alice.waitForFunction(() => document.querySelector("#members").textContent === "2 in test", null, { timeout: WAIT });

  await say(alice, "hello from alice");
  await sees(bob, "alice", "hello from alice");
  await say(bob, "hi alice, bob here ✓");
  await sees(alice, "bob", "hi alice, bob here ✓");
  console.log("ok: two Chromium pages chatted through the server");

  // Built with the `deflate` feature (CHAT_EXPECT_DEFLATE=1), the server accepts Chromium's
  // permessage-deflate offer; a line longer than the 128-byte threshold travels compressed
  // both ways.
  if (process.env.CHAT_EXPECT_DEFLATE === "1") {
    for (const page of [alice, bob]) {
      const agreed = await page.evaluate(() => socket && socket.extensions);
      if (!agreed || !agreed.startsWith("permessage-deflate")) fail(`extensions: "${agreed}"`);
    }
    const long = "compressible ".repeat(40).trim();
    await say(alice, long);
    await sees(bob, "alice", long);
    console.log("ok: permessage-deflate agreed with both pages; a 519-byte line went through");
  }

  // The server restarts on the same port; the pages notice and reconnect with backoff.
  const addr = new URL(server.url).host;
  await stopServer(server.child);
  await alice.waitForSelector("#dot:not(.up)", { timeout: WAIT });
  const state = await alice.textContent("#state");
  if (!state.includes("retrying")) fail(`indicator says "${state}"`);
  // Stopped by a signal, the server closes each page's connection with 1001 (going away).
  if (!state.includes("(1001)")) fail(`not a clean 1001 close: indicator says "${state}"`);
  console.log(`ok: indicator shows "${state}"`);
  server = await startServer(addr);
  await alice.waitForSelector("#dot.up", { timeout: WAIT });
  await bob.waitForSelector("#dot.up", { timeout: WAIT });
  await say(bob, "back again");
  await sees(alice, "bob", "back again");
  console.log("ok: both pages reconnected after the restart and chatted again");

  // Leaving sends a notice to who stays.
  await bob.close();
  await alice.waitForFunction(() => document.body.innerText.includes("bob left"), null, { timeout: WAIT });
  console.log("ok: leave notice");
} finally {
  await browser.close();
  await stopServer(server.child);
}
console.log("browser chat test passed");
