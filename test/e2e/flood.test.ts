/**
 * A flood of connections that never log in, and of garbage, must not starve a legitimate client,
 * and the memory they took must come back once they are gone.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { describe, test } from "node:test";
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

  test("2,000 idle connections plus 300 garbage senders: a real client still logs in within 2 s; memory comes back", async () => {
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
        assert.ok(elapsed < 2000, `logged in after ${elapsed.toFixed(0)} ms`);
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
