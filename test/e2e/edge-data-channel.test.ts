/**
 * The edge data channel at scale, on loopback: addresses in 127.0.0.0/8 stand for different
 * clients, ::1 for an IPv6 one.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sha256 } from "../helpers/hash.js";
import { checkLeaks } from "../helpers/leaks.js";
import { connectData, listenOnce, RawClient, readAll } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";
import { waitFor } from "../helpers/wait.js";

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** The scale tests' passive range, reused by the collision test once their node is closed. */
let scaleRangeStart = 0;

describe("passive range at edge scale", () => {
  let server: TestServer;
  let first: number;
  let last: number;
  const payload = randomBytes(64 * 1024);
  before(async () => {
    server = await startServer({ timeouts: { login: 120, idle: 120, data: 60 }, limits: { maxConnectionsPerIp: 0 } });
    [first, last] = server.config.pasv.ports.split("-").map(Number);
    scaleRangeStart = first;
    writeFileSync(join(server.home(USER), "file.bin"), payload);
  });
  after(async () => {
    await server.close();
  });
  checkLeaks(5000);

  test("1,000 concurrent passive downloads from 12 client addresses through a 100-port range all complete", async () => {
    const addresses = Array.from({ length: 12 }, (_, i) => `127.0.0.${i + 2}`);
    const count = 1000;
    // Phase 1: every client logs in and holds a reservation at once (more than the range has ports).
    const clients = await pool(Array.from({ length: count }, (_, i) => addresses[i % addresses.length]), 100, async (ip) => {
      const client = await RawClient.connect(server.port, { localAddress: ip });
      await client.login(USER, PASSWORD);
      assert.equal((await client.command("TYPE I")).code, 200);
      const r = await client.command("EPSV");
      const port = Number(/\(\|\|\|(\d+)\|\)/.exec(r.text)?.[1]);
      assert.equal(r.code, 229, r.text);
      assert.ok(port >= first && port <= last, `advertised port ${port} is inside ${first}-${last}`);
      return { client, ip, port };
    });
    const stats = server.node.portPool.stats();
    assert.equal(stats.pendingReservations, count);
    assert.ok(stats.listeningPorts <= 100);
    assert.ok(stats.sharedPorts > 0, "ports are shared by different client addresses");
    // Phase 2: all connect and download at once.
    const results = await Promise.all(
      clients.map(async ({ client, ip, port }) => {
        const data = await connectData(port, ip);
        client.send("RETR file.bin");
        const [body, opening] = await Promise.all([readAll(data), client.reply(30_000)]);
        assert.equal(opening.code, 150);
        const done = await client.reply(30_000);
        assert.equal(done.code, 226, done.text);
        await client.command("QUIT");
        await client.closed();
        return sha256(body);
      }),
    );
    assert.equal(results.filter((h) => h === sha256(payload)).length, count);
    assert.deepEqual(server.node.portPool.stats().pendingReservations, 0);
    assert.equal(server.node.portPool.stats().idlePorts, server.node.portPool.stats().listeningPorts);
  });

  test("10,000 PASV/EPSV without transfers leak no port", async () => {
    const sessions = await Promise.all(
      ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"].map(async (ip) => {
        const client = await RawClient.connect(server.port, { localAddress: ip });
        await client.login(USER, PASSWORD);
        return client;
      }),
    );
    await Promise.all(
      sessions.map(async (client, s) => {
        for (let batch = 0; batch < 50; batch++) {
          const verbs = Array.from({ length: 50 }, (_, i) => ((s + i) % 2 ? "PASV" : "EPSV"));
          client.socket.write(verbs.map((v) => `${v}\r\n`).join(""));
          for (const verb of verbs) {
            const r = await client.reply();
            assert.equal(r.code, verb === "PASV" ? 227 : 229, r.text);
          }
        }
        // Each session holds at most its last reservation.
        assert.ok(server.node.portPool.stats().pendingReservations <= sessions.length);
        await client.command("QUIT");
        await client.closed();
      }),
    );
    const stats = server.node.portPool.stats();
    assert.equal(stats.pendingReservations, 0);
    assert.equal(stats.idlePorts, stats.listeningPorts, "nothing holds a port: every listener is idle");
  });
});

describe("a true collision", () => {
  // Its own block, on the scale tests' ports: their node, closed by now, kept idle listeners there.
  checkLeaks();

  test("a client pending on every port waits, then gets 425 with a clear text", async () => {
    const first = scaleRangeStart;
    const small = await startServer({ pasv: { ports: `${first}-${first + 1}`, collisionWait: 0.3 } });
    try {
      const clients = await Promise.all([1, 2, 3].map(() => RawClient.connect(small.port)));
      for (const c of clients) await c.login(USER, PASSWORD);
      assert.equal((await clients[0].command("EPSV")).code, 229);
      assert.equal((await clients[1].command("EPSV")).code, 229);
      const refused = await clients[2].command("EPSV");
      assert.equal(refused.code, 425);
      assert.match(refused.text, /passive port/i);
      // A different client address still gets a (shared) port.
      const other = await RawClient.connect(small.port, { localAddress: "127.0.0.9" });
      await other.login(USER, PASSWORD);
      assert.equal((await other.command("EPSV")).code, 229);
      for (const c of [...clients, other]) await c.close();
    } finally {
      await small.close();
    }
  });

  test("a client that leaves while its EPSV waits for a port does not keep the port it is handed later", async () => {
    const first = scaleRangeStart;
    const small = await startServer({ pasv: { ports: `${first}-${first + 1}`, collisionWait: 5 } });
    try {
      const holders = await Promise.all([1, 2].map(() => RawClient.connect(small.port)));
      for (const c of holders) {
        await c.login(USER, PASSWORD);
        assert.equal((await c.command("EPSV")).code, 229);
      }
      const leaving = await RawClient.connect(small.port);
      await leaving.login(USER, PASSWORD);
      leaving.send("EPSV"); // waits: this address is pending on both ports
      await waitFor(() => small.node.portPool.stats().waiting === 1, "the EPSV waiting for a port");
      await leaving.close();
      await waitFor(() => small.node.sessions.size === 2, "the server seeing it leave");
      await holders[0].close(); // frees a port, handed to the waiter that left
      await holders[1].close();
      await waitFor(() => small.node.portPool.stats().pendingReservations === 0, "every reservation released");
    } finally {
      await small.close();
    }
  });
});

describe("active mode and address families", () => {
  checkLeaks();

  test("PORT from several clients at once connects from port 20 when it may bind it", async () => {
    const server = await startServer({ active: { port: 20 } });
    const isRoot = process.getuid?.() === 0;
    writeFileSync(join(server.home(USER), "a.txt"), "active data\n");
    try {
      const runs = ["127.0.0.1", "127.0.0.2", "127.0.0.3"].map(async (ip) => {
        const client = await RawClient.connect(server.port, { localAddress: ip });
        await client.login(USER, PASSWORD);
        await client.command("TYPE I");
        const listener = await listenOnce(ip);
        const { port, accepted } = listener;
        const reply = await client.command(`PORT ${ip.split(".").join(",")},${port >> 8},${port & 255}`);
        assert.equal(reply.code, 200, reply.text);
        client.send("RETR a.txt");
        const data = await accepted;
        const sourcePort = data.remotePort;
        const body = await readAll(data);
        assert.equal((await client.reply()).code, 150);
        assert.equal((await client.reply()).code, 226);
        listener.close();
        await client.command("QUIT");
        await client.closed();
        assert.equal(body.toString(), "active data\n");
        return sourcePort;
      });
      const sourcePorts = await Promise.all(runs);
      if (isRoot) assert.deepEqual(sourcePorts, [20, 20, 20]);
      else for (const p of sourcePorts) assert.ok(p !== 20 && p! >= 1024, "falls back to an ephemeral port");
    } finally {
      await server.close();
    }
  });

  test("a dual-stack node serves IPv4 PASV and IPv6 EPSV/EPRT; PASV over IPv6 gets 522", async () => {
    const server = await startServer({ host: "::" });
    writeFileSync(join(server.home(USER), "v6.bin"), "six");
    try {
      const v4 = await RawClient.connect(server.port, { host: "127.0.0.1" });
      await v4.login(USER, PASSWORD);
      const pasv = await v4.command("PASV");
      assert.equal(pasv.code, 227);
      assert.match(pasv.text, /\(127,0,0,1,\d+,\d+\)/);
      await v4.close();

      const v6 = await RawClient.connect(server.port, { host: "::1" });
      await v6.login(USER, PASSWORD);
      assert.equal((await v6.command("PASV")).code, 522);
      assert.equal((await v6.command("EPSV 1")).code, 522);
      assert.equal((await v6.command("PORT 127,0,0,1,4,1")).code, 522);
      const epsv = await v6.command("EPSV 2");
      assert.equal(epsv.code, 229);
      const data = await connectData(Number(/\|\|\|(\d+)\|/.exec(epsv.text)![1]), undefined, "::1");
      v6.send("RETR v6.bin");
      assert.equal((await readAll(data)).toString(), "six");
      assert.equal((await v6.reply()).code, 150);
      assert.equal((await v6.reply()).code, 226);

      const listener = await listenOnce("::1");
      const { port, accepted } = listener;
      assert.equal((await v6.command(`EPRT |2|::1|${port}|`)).code, 200);
      assert.equal((await v6.command(`EPRT |1|127.0.0.1|${port}|`)).code, 522);
      assert.equal((await v6.command(`EPRT |2|::1|${port}|`)).code, 200);
      v6.send("RETR v6.bin");
      assert.equal((await readAll(await accepted)).toString(), "six");
      assert.equal((await v6.reply()).code, 150);
      assert.equal((await v6.reply()).code, 226);
      listener.close();
      await v6.close();
    } finally {
      await server.close();
    }
  });
  test("a client reaching a dual-stack node at an IPv4-mapped address may EPRT |2| with that address (as vsftpd; curl does)", async () => {
    const server = await startServer({ host: "::" });
    writeFileSync(join(server.home(USER), "mapped.bin"), "four");
    const listener = await listenOnce("127.0.0.1");
    try {
      const c = await RawClient.connect(server.port, { host: "::ffff:127.0.0.1" });
      await c.login(USER, PASSWORD);
      assert.equal((await c.command(`EPRT |2|::ffff:127.0.0.1|${listener.port}|`)).code, 200);
      c.send("RETR mapped.bin");
      assert.equal((await readAll(await listener.accepted)).toString(), "four");
      assert.equal((await c.reply()).code, 150);
      assert.equal((await c.reply()).code, 226);
      // Still the client's own address only.
      assert.equal((await c.command(`EPRT |2|::ffff:127.0.0.2|${listener.port}|`)).code, 500);
      await c.close();
    } finally {
      listener.close();
      await server.close();
    }
  });
});

describe("NAT-correct PASV addresses", () => {
  checkLeaks();

  test("advertises the configured public address, and the override for matching client networks", async () => {
    const server = await startServer({ pasv: { address: "203.0.113.7", addressOverrides: "127.0.0.2/32=10.1.2.3" } });
    try {
      const outside = await RawClient.connect(server.port, { localAddress: "127.0.0.1" });
      await outside.login(USER, PASSWORD);
      assert.match((await outside.command("PASV")).text, /\(203,0,113,7,\d+,\d+\)/);
      const inside = await RawClient.connect(server.port, { localAddress: "127.0.0.2" });
      await inside.login(USER, PASSWORD);
      assert.match((await inside.command("PASV")).text, /\(10,1,2,3,\d+,\d+\)/);
      await outside.close();
      await inside.close();
    } finally {
      await server.close();
    }
  });

  test("resolves a hostname given as the public address", async () => {
    const server = await startServer({ pasv: { address: "localhost" } });
    try {
      const client = await RawClient.connect(server.port);
      await client.login(USER, PASSWORD);
      assert.match((await client.command("PASV")).text, /\(127,0,0,1,\d+,\d+\)/);
      await client.close();
    } finally {
      await server.close();
    }
  });
});
