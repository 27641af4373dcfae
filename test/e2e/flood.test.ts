/**
 * A flood of connections that never log in, and of garbage, must not starve a legitimate client,
 * and the memory they took must come back once they are gone.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { checkLeaks } from "../helpers/leaks.js";
import { RawClient } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER } from "../helpers/server.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Opens a connection from one of 40 loopback addresses and waits for the greeting. */
function idleConnection(port: number, i: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1", localAddress: `127.0.1.${(i % 40) + 1}` });
    socket.once("error", reject);
    socket.once("data", () => resolve(socket));
  });
}

describe("connection flood", () => {
  checkLeaks(10_000);

  test("2,000 idle connections plus 300 garbage senders: a real client still logs in within 10 s; memory comes back", async () => {
    const server = await startServer({ limits: { maxConnectionsPerIp: 0, commandsPerSecond: 50 } as never });
    try {
      const baseline = heapAfterGc();
      const idle: Socket[] = [];
      for (let i = 0; i < 2000; i += 100) {
        idle.push(...(await Promise.all(Array.from({ length: 100 }, (_, j) => idleConnection(server.port, i + j)))));
      }
      const garbage = await Promise.all(Array.from({ length: 300 }, (_, i) => idleConnection(server.port, i)));
      for (const s of [...idle, ...garbage]) s.on("error", () => {});
      const spray = setInterval(() => {
        for (const s of garbage) if (!s.destroyed) s.write(randomBytes(512));
      }, 50);
      try {
        assert.equal(server.node.sessions.size, 2300);
        const started = performance.now();
        const client = await RawClient.connect(server.port);
        await client.login(USER, PASSWORD);
        assert.equal((await client.command("PWD")).code, 257);
        const elapsed = performance.now() - started;
        // Starved, it would wait for the login timeout (60 s); served, it takes milliseconds. The
        // bound sits far from both, so a loaded machine does not make it fail.
        assert.ok(elapsed < 10_000, `logged in after ${elapsed.toFixed(0)} ms`);
        await client.close();
      } finally {
        clearInterval(spray);
      }
      const during = heapAfterGc();
      await Promise.all(
        [...idle, ...garbage].map((s) => new Promise<void>((resolve) => (s.destroyed ? resolve() : (s.once("close", () => resolve()), s.destroy())))),
      );
      for (let i = 0; i < 100 && server.node.sessions.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(server.node.sessions.size, 0);
      const afterClose = heapAfterGc();
      // What 2,300 sessions held is released: back within 25 % of what they took (plus 8 MiB slack).
      const held = during - baseline;
      assert.ok(afterClose - baseline < held * 0.25 + 8 * 1024 * 1024, `baseline ${baseline}, during ${during}, after ${afterClose}`);
    } finally {
      await server.close();
    }
  });
});

describe("a client that does not read its replies", () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server.close();
  });
  checkLeaks();

  /** The server's session for a client socket. */
  function sessionOf(client: Socket) {
    const session = [...server.node.sessions].find((s) => s.socket.remotePort === client.localPort);
    assert.ok(session, "the client's session");
    return session;
  }

  test("gets no more replies once its own are unread: 20,000 pipelined HELPs before login leave a bounded amount buffered", async () => {
    const client = await idleConnection(server.port, 0);
    client.on("error", () => {});
    try {
      client.pause(); // never read: the replies pile up in the kernel, then (without a limit) in the server
      client.write("HELP\r\n".repeat(20_000));
      const session = sessionOf(client);
      await new Promise((r) => setTimeout(r, 1500));
      // A reply or two beyond the socket's high-water mark, not the thousands of replies of 20,000 HELPs.
      assert.ok(session.socket.writableLength < 256 * 1024, `${session.socket.writableLength} bytes of replies buffered`);
    } finally {
      client.destroy();
    }
  });

  test("a wildcard whose matching would cost name × pattern for every entry is refused with 501, before any data", async () => {
    const c = await RawClient.connect(server.port);
    try {
      await c.login(USER, PASSWORD);
      const dir = join(server.home(USER), "long-names");
      mkdirSync(dir);
      for (let i = 0; i < 2000; i++) writeFileSync(join(dir, `${"a".repeat(240)}${String(i).padStart(6, "0")}`), "");
      const costly = `long-names/*${"a".repeat(120)}b*`;
      assert.equal((await c.command(`STAT ${costly}`)).code, 501);
      const data = await c.passive();
      data.on("error", () => {});
      const list = await c.command(`NLST ${costly}`);
      assert.equal(list.code, 501, list.text);
      data.destroy();
      // An ordinary pattern over the same directory is answered.
      assert.equal((await c.command(`STAT long-names/*000123`)).code, 213);
    } finally {
      await c.close();
    }
  });

  test("STATs flooded during a transfer are answered one at a time: the rest wait in the queue and are answered, in order, after the transfer", async () => {
    const c = await RawClient.connect(server.port);
    try {
      await c.login(USER, PASSWORD);
      assert.equal((await c.command("TYPE I")).code, 200);
      writeFileSync(join(server.home(USER), "held.bin"), Buffer.alloc(64 * 1024 * 1024));
      const data = await c.passive();
      data.pause(); // the transfer stalls until the client reads
      assert.equal((await c.command("RETR held.bin")).code, 150);
      const count = 2000;
      c.socket.write("STAT\r\n".repeat(count));
      await new Promise((r) => setTimeout(r, 300));
      data.resume();
      data.on("data", () => {});
      // Out of band: one STAT (or the few read before the next one came in), not all of them.
      let early = 0;
      for (let reply = await c.reply(30_000); reply.code !== 226; reply = await c.reply(30_000)) {
        assert.equal(reply.code, 211);
        early++;
      }
      assert.ok(early >= 1 && early < 10, `${early} STAT replies before the transfer's 226`);
      for (let i = 0; i < count - early; i++) assert.equal((await c.reply(10_000)).code, 211);
      assert.equal((await c.command("NOOP")).code, 200);
      data.destroy();
    } finally {
      await c.close();
    }
  });
});

describe("a session pipelining commands the disk answers at once", () => {
  checkLeaks();

  test("takes turns with the other sessions: another session's NOOP is answered long before the last of 3,000 SIZEs", async () => {
    const server = await startServer();
    const flooder = await RawClient.connect(server.port);
    const other = await RawClient.connect(server.port);
    try {
      writeFileSync(join(server.home(USER), "f.txt"), "x");
      await flooder.login(USER, PASSWORD);
      await other.login(USER, PASSWORD);
      // The order in which the node answers, seen at the sessions themselves (a client's reads can
      // come in any order): how many SIZEs it had answered when it answered the NOOP.
      const sessionOf = (c: RawClient) => [...server.node.sessions].find((s) => s.socket.remotePort === c.socket.localPort)!;
      let sizes = 0;
      let atNoop = -1;
      const flooding = sessionOf(flooder);
      const flooderReply = flooding.reply.bind(flooding);
      flooding.reply = (code, text) => (code === 213 && sizes++, flooderReply(code, text));
      const waiting = sessionOf(other);
      const otherReply = waiting.reply.bind(waiting);
      waiting.reply = (code, text) => (code === 200 && atNoop < 0 && (atNoop = sizes), otherReply(code, text));
      const count = 3000;
      // Small replies: the flooder's socket never fills, so nothing but the turns lets the NOOP in.
      flooder.socket.write("SIZE /f.txt\r\n".repeat(count));
      for (let i = 0; i < 1000 && sizes === 0; i++) await new Promise((r) => setImmediate(r));
      assert.equal((await other.command("NOOP")).code, 200);
      // Run to completion, a session answered every queued command before any other's; it now
      // takes turns of about a millisecond.
      assert.ok(atNoop >= 0 && atNoop < count / 2, `${atNoop} of ${count} SIZEs answered before the other session's NOOP`);
      for (let i = 0; i < count; i++) assert.equal((await flooder.reply(30_000)).code, 213);
    } finally {
      await Promise.all([flooder.close(), other.close()]);
      await server.close();
    }
  });
});
