/**
 * A stopping node (SIGTERM: EdgeNode.close) drains: it takes no new connections, says 421 at once to
 * sessions with nothing under way, lets transfers in progress finish with their 226 for up to
 * timeouts.drain, and only then aborts what is left (426), keeping no partial upload.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { sha256 } from "../helpers/hash.js";
import { checkLeaks } from "../helpers/leaks.js";
import { expectCode, RawClient, readAll } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER } from "../helpers/server.js";

const MiB = 1024 * 1024;

checkLeaks();

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

test("a stopping node lets a download in progress finish, says 421 to idle sessions at once and takes no new connection", async () => {
  // 2 MiB at 1 MiB/s: the download is under way for about 2 s after the stop.
  const server = await startServer({ timeouts: { drain: 30 } }, [{ name: "slow", password: PASSWORD, bandwidthDown: 1 * MiB }]);
  const content = randomBytes(2 * MiB);
  writeFileSync(join(server.home("slow"), "big.bin"), content);
  const idle = await RawClient.binarySession(server.port, USER, PASSWORD);
  const busy = await RawClient.binarySession(server.port, "slow", PASSWORD);
  const data = await busy.passive();
  busy.send("RETR big.bin");
  const received = readAll(data);
  expectCode(await busy.reply(), 150, "RETR");
  // Sent during the transfer: queued, and never run once the node is stopping.
  busy.send("NOOP");

  const started = performance.now();
  const closing = server.close();
  const goodbye = await idle.reply(2000);
  expectCode(goodbye, 421, "idle session");
  await idle.closed();
  assert.ok(await refused(server.port), "a new connection is refused while the node drains");

  expectCode(await busy.reply(10_000), 226, "the download let finish");
  assert.equal(sha256(await received), sha256(content));
  expectCode(await busy.reply(2000), 421, "after the transfer, instead of the NOOP's 200");
  await busy.closed();
  await closing;
  assert.ok(performance.now() - started >= 1000, "close() waited for the transfer");
});

test("the drain ends after timeouts.drain: an overwrite still under way is aborted with 426 and the previous version kept", async () => {
  const server = await startServer({ timeouts: { drain: 0.5 } }, [{ name: "slowup", password: PASSWORD, bandwidthUp: 1 * MiB }]);
  const home = server.home("slowup");
  writeFileSync(join(home, "site.bin"), "the previous version");
  const c = await RawClient.binarySession(server.port, "slowup", PASSWORD);
  const data = await c.passive();
  c.send("STOR site.bin");
  expectCode(await c.reply(), 150, "STOR");
  // 8 MiB at 1 MiB/s: far from done when the drain ends.
  data.on("error", () => {});
  data.write(randomBytes(8 * MiB));

  const closing = server.node.close();
  expectCode(await c.reply(5000), 426, "the upload cut at the end of the drain");
  expectCode(await c.reply(2000), 421, "then the goodbye");
  await c.closed();
  await closing;
  data.destroy();
  assert.equal(readFileSync(join(home, "site.bin"), "utf8"), "the previous version");
  assert.deepEqual(readdirSync(home), ["site.bin"], "no temporary file left");
  await server.close();
});

test("cutDrainShort (a second SIGTERM) aborts the transfers in progress at once", async () => {
  const server = await startServer({ timeouts: { drain: 60 } }, [{ name: "slow", password: PASSWORD, bandwidthDown: 1 * MiB }]);
  writeFileSync(join(server.home("slow"), "big.bin"), randomBytes(8 * MiB));
  const c = await RawClient.binarySession(server.port, "slow", PASSWORD);
  const data = await c.passive();
  c.send("RETR big.bin");
  const received = readAll(data);
  expectCode(await c.reply(), 150, "RETR");

  const started = performance.now();
  const closing = server.close();
  await new Promise((resolve) => setTimeout(resolve, 200));
  server.node.cutDrainShort();
  expectCode(await c.reply(5000), 426, "the download cut");
  expectCode(await c.reply(2000), 421, "then the goodbye");
  await c.closed();
  await closing;
  assert.ok((await received).length < 8 * MiB);
  assert.ok(performance.now() - started < 10_000, "not the 60 s drain");
});

test("a client that does not read its replies does not hold a stopping node for the whole drain", async () => {
  const server = await startServer({ timeouts: { drain: 30 }, limits: { commandsPerSecond: 0 } });
  const socket = connect(server.port, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.pause(); // never reads: the node's replies fill the socket buffers
  socket.write(`USER ${USER}\r\nPASS ${PASSWORD}\r\n`);
  // HELP's reply is some 600 bytes: enough of them and the node waits for this client to read.
  const burst = "HELP\r\n".repeat(1000);
  for (let i = 0; i < 100 && socket.writable; i++) {
    if (!socket.write(burst)) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => setTimeout(resolve, 500));

  const started = performance.now();
  await server.close();
  socket.destroy();
  assert.ok(performance.now() - started < 10_000, `stopped after ${Math.round(performance.now() - started)} ms, not the 30 s drain`);
});

test("a transfer announced before the stop may still make its passive data connection during the drain", async () => {
  const server = await startServer({ timeouts: { drain: 30 } });
  writeFileSync(join(server.home(USER), "late.txt"), "made it");
  const c = await RawClient.binarySession(server.port, USER, PASSWORD);
  const port = await c.epsv();
  c.send("RETR late.txt");
  expectCode(await c.reply(), 150, "RETR, its data connection not made yet");

  const closing = server.close();
  await new Promise((resolve) => setTimeout(resolve, 200));
  // The client connects only now, as a PROT P client busy with its handshake or a slow one would.
  const data = connect(port, "127.0.0.1");
  const received = readAll(data);
  expectCode(await c.reply(5000), 226, "the transfer let finish");
  assert.equal((await received).toString(), "made it");
  expectCode(await c.reply(2000), 421, "then the goodbye");
  await c.closed();
  await closing;
});
