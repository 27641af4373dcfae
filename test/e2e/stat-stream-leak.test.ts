/**
 * STAT of a large directory streams its reply at the client's pace; a client that stops reading and
 * goes away must not leave the listing's open directory behind in the node.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";

/** This process's descriptors open on `dir`. */
function descriptorsOn(dir: string): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === dir) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

describe("STAT streamed to a client that stops reading", () => {
  let server: TestServer;
  let dir: string;
  before(async () => {
    server = await startServer({});
    dir = join(server.home(USER), "many");
    mkdirSync(dir);
    // ~5 MB of reply (250-byte names): more than the loopback socket buffers hold while the client reads nothing.
    const long = "n".repeat(240);
    for (let i = 0; i < 20_000; i++) writeFileSync(join(dir, `${long}-${String(i).padStart(6, "0")}`), "");
  });
  after(() => server.close());

  test("the directory is closed once the client has gone", async () => {
    for (let i = 0; i < 3; i++) {
      const socket = connect({ port: server.port, host: "127.0.0.1" });
      socket.on("error", () => {});
      await new Promise((resolve) => socket.once("connect", resolve));
      socket.pause(); // never reads: the node's send buffer fills and the reply waits for 'drain'
      socket.write(`USER ${USER}\r\nPASS ${PASSWORD}\r\nSTAT /many\r\n`);
      await new Promise((resolve) => setTimeout(resolve, 500));
      socket.destroy();
    }
    const deadline = Date.now() + 3000;
    while (descriptorsOn(dir) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(descriptorsOn(dir), 0, "directory descriptors left open");
  });
});
