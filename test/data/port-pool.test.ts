import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, Server, type Socket } from "node:net";
import { Writable } from "node:stream";
import { PassivePortPool, PortPoolExhaustedError, type PassiveReservation } from "../../src/data/port-pool.js";
import { createLogger } from "../../src/observe/logger.js";
import { checkLeaks } from "../helpers/leaks.js";
import { connectData, drainToClose } from "../helpers/raw-client.js";
import { within } from "../helpers/wait.js";

const HOST = "127.0.0.1";
const A = "127.0.0.1";
const B = "127.0.0.2";
const C = "127.0.0.3";
const SIZE = 5;
const logger = createLogger("silent");

/** Whether every port of [first, first+SIZE) can be bound on HOST right now. */
async function rangeIsFree(first: number): Promise<boolean> {
  for (let port = first; port < first + SIZE; port++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen({ host: HOST, port }, () => s.close(() => resolve(true)));
    });
    if (!ok) return false;
  }
  return true;
}

/** A random 5-port range in 39000-39999 that is free at the moment (bounded attempts). */
async function pickRange(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const first = 39000 + Math.floor(Math.random() * (1000 - SIZE));
    if (await rangeIsFree(first)) return first;
  }
  throw new Error("no free 5-port range found in 39000-39999");
}

/** Reads exactly `n` bytes from `socket`. */
function readBytes(socket: Socket, n: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= n) {
        socket.off("data", onData);
        resolve(got.subarray(0, n).toString());
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
    // Delivered sockets are paused (pauseOnConnect): reading starts only when asked for.
    socket.resume();
  });
}

/** Polls `cond` every 5 ms for at most `ms`. */
async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Sends a marker both ways between the server-side and client-side sockets. */
async function assertPaired(server: Socket, client: Socket, marker: string): Promise<void> {
  const atServer = readBytes(server, marker.length);
  client.write(marker);
  assert.equal(await within(atServer, 2000, "client→server"), marker);
  const atClient = readBytes(client, marker.length + 1);
  server.write(marker + "!");
  assert.equal(await within(atClient, 2000, "server→client"), marker + "!");
}

describe("PassivePortPool", () => {
  let first = 0;
  let last = 0;
  const pools: PassivePortPool[] = [];
  const sockets: Socket[] = [];

  function pool(collisionWaitMs = 200, allowForeignAddress = false, log = logger): PassivePortPool {
    const p = new PassivePortPool({ first, last, allowForeignAddress, collisionWaitMs, logger: log });
    pools.push(p);
    return p;
  }
  function track(s: Socket): Socket {
    s.on("error", () => {});
    sockets.push(s);
    return s;
  }
  async function cleanup(): Promise<void> {
    for (const s of sockets.splice(0)) s.destroy();
    for (const p of pools.splice(0)) p.close();
  }
  /** Runs a test body and always closes what it opened, before the leak check looks. */
  async function clean(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } finally {
      await cleanup();
    }
  }

  before(async () => {
    first = await pickRange();
    last = first + SIZE - 1;
  });
  after(cleanup);
  checkLeaks();

  test("reservations get distinct ports inside the range; release brings stats back to zero", () =>
    clean(async () => {
      const p = pool();
      const held: PassiveReservation[] = [];
      for (let i = 0; i < SIZE; i++) held.push(await p.reserve(HOST, A));
      const ports = held.map((r) => r.port);
      for (const port of ports) assert.ok(port >= first && port <= last, `port ${port} outside ${first}-${last}`);
      assert.equal(new Set(ports).size, SIZE, "one client IP never shares a port with itself");
      assert.deepEqual(
        { ...p.stats() },
        { pendingReservations: SIZE, listeningPorts: SIZE, idlePorts: 0, sharedPorts: 0, refusals: 0, strangersRefused: 0, waiting: 0 },
      );
      // Every reserved port is really listening.
      for (const port of ports) {
        const s = track(await connectData(port, C));
        await within(drainToClose(s), 2000, "stranger close");
      }
      held[0].release();
      held[0].release(); // idempotent
      assert.equal(p.stats().pendingReservations, SIZE - 1);
      assert.equal(p.stats().listeningPorts, SIZE - 1);
      for (const r of held) r.release();
      assert.equal(p.stats().pendingReservations, 0);
      assert.equal(p.stats().listeningPorts, 0);
      // The port really stopped listening.
      await assert.rejects(connectData(ports[0], A), /ECONNREFUSED/);
    }));

  test("a connection from the client's IP is delivered, whether it comes before or after connection()", () =>
    clean(async () => {
      const p = pool();
      // Waiting first, then the client connects.
      const r1 = await p.reserve(HOST, A);
      const waiting = r1.connection(2000);
      const c1 = track(await connectData(r1.port, A));
      const s1 = track(await within(waiting, 3000, "delivery"));
      // Nothing is read before the transfer decides how (plain or TLS): the socket comes paused.
      assert.equal(s1.readableFlowing, false);
      assert.equal(s1.remoteAddress, A);
      assert.equal(s1.remotePort, c1.localPort);
      await assertPaired(s1, c1, "one");
      assert.equal(p.stats().pendingReservations, 0);
      assert.equal(p.stats().listeningPorts, 0, "a listener with nothing pending is closed");

      // The client connects before the transfer command: the socket is held for connection().
      const r2 = await p.reserve(HOST, A);
      const c2 = track(await connectData(r2.port, A));
      // Bytes the client sends before the transfer command (a TLS ClientHello) must not be lost.
      c2.write("early");
      await until(() => p.stats().pendingReservations === 0);
      await new Promise((r) => setTimeout(r, 20));
      const s2 = track(await within(r2.connection(2000), 3000, "held delivery"));
      assert.equal(s2.remotePort, c2.localPort);
      assert.equal(await within(readBytes(s2, 5), 2000, "early bytes"), "early");
      await assertPaired(s2, c2, "two");
      // Single use.
      await assert.rejects(r2.connection(100));
    }));

  test("a connection from another IP (127.0.0.2) is refused; the reservation stays for the right client", () =>
    clean(async () => {
      const p = pool();
      const r = await p.reserve(HOST, A);
      const waiting = r.connection(5000);
      let delivered = false;
      void waiting.then(() => (delivered = true), () => {});

      const thief = track(await connectData(r.port, B));
      const stolen = await within(drainToClose(thief), 3000, "thief closed");
      assert.equal(stolen.length, 0, "nothing was sent to the stranger");
      assert.equal(p.stats().strangersRefused, 1);
      assert.equal(p.stats().pendingReservations, 1, "the reservation is still pending");
      assert.equal(p.stats().listeningPorts, 1);
      assert.equal(delivered, false);

      const good = track(await connectData(r.port, A));
      const server = track(await within(waiting, 3000, "right client delivered"));
      assert.equal(server.remoteAddress, A);
      await assertPaired(server, good, "mine");
      assert.equal(p.stats().pendingReservations, 0);
    }));

  test("a flood of strangers is counted in full but logged once per interval, without the pending clients' addresses", () =>
    clean(async () => {
      const lines: Array<Record<string, unknown>> = [];
      const sink = new Writable({
        write(chunk, _encoding, done) {
          for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
          done();
        },
      });
      const p = pool(200, false, createLogger("info", sink));
      const r = await p.reserve(HOST, A);
      void r.connection(5000).catch(() => {});
      for (let i = 0; i < 20; i++) await within(drainToClose(track(await connectData(r.port, B))), 3000, "stranger closed");
      await new Promise((resolve) => setImmediate(resolve)); // pino writes on the next turn
      assert.equal(p.stats().strangersRefused, 20);
      const refused = lines.filter((l) => String(l.msg).includes("no pending reservation"));
      assert.equal(refused.length, 1, JSON.stringify(lines));
      assert.equal(refused[0].peer, B);
      assert.equal(refused[0].pending, 1);
      assert.ok(!JSON.stringify(refused[0]).includes(A), "the pending client's address is not logged");
      assert.equal(p.stats().pendingReservations, 1, "the reservation is still pending");
    }));

  test("a port whose listener closed while a transfer it accepted goes on is reserved again at once", () =>
    clean(async () => {
      const p = pool();
      const first = await p.reserve(HOST, A);
      const waiting = first.connection(3000);
      track(await connectData(first.port, A));
      track(await within(waiting, 3000, "delivery")); // the transfer's socket: left open
      assert.equal(p.stats().listeningPorts, 0, "its listener closed, nothing pending on it");
      // Every port of the range for A, that one included, while the transfer goes on.
      const again: PassiveReservation[] = [];
      for (let i = 0; i < SIZE; i++) again.push(await within(p.reserve(HOST, A), 2000, `reservation ${i + 1}`));
      assert.ok(again.some((r) => r.port === first.port), "the port of the transfer in progress was bound again");
      for (const r of again) r.release();
    }));

  test("allowForeignAddress: a connection from another IP gets the port's reservation only when it is the port's only one", () =>
    clean(async () => {
      const p = pool(200, true);
      // One reservation on the port (a client behind a proxy): whoever connects gets it.
      const lone = await p.reserve(HOST, A);
      const waiting = lone.connection(3000);
      const viaProxy = track(await connectData(lone.port, B));
      const delivered = track(await within(waiting, 3000, "foreign delivery"));
      assert.equal(delivered.remoteAddress, B);
      await assertPaired(delivered, viaProxy, "proxied");

      // Two reservations share every port (A has one on each, C one): a third address cannot be
      // routed to either, so it is refused like any stranger.
      const forA: PassiveReservation[] = [];
      for (let i = 0; i < SIZE; i++) forA.push(await p.reserve(HOST, A));
      const rC = await p.reserve(HOST, C);
      const stranger = track(await connectData(rC.port, B));
      assert.equal((await within(drainToClose(stranger), 3000, "stranger closed")).length, 0);
      assert.equal(p.stats().strangersRefused, 1);
      assert.equal(p.stats().pendingReservations, SIZE + 1, "both reservations on that port stay for their clients");
      for (const r of [...forA, rC]) r.release();
    }));

  test("with every port listening, another client IP shares a port and connections are routed by peer IP", () =>
    clean(async () => {
      const p = pool();
      const forA: PassiveReservation[] = [];
      for (let i = 0; i < SIZE; i++) forA.push(await p.reserve(HOST, A));
      const rB = await p.reserve(HOST, B);
      assert.ok(forA.some((r) => r.port === rB.port), "B got one of the listening ports");
      assert.deepEqual(
        { listening: p.stats().listeningPorts, pending: p.stats().pendingReservations, shared: p.stats().sharedPorts },
        { listening: SIZE, pending: SIZE + 1, shared: 1 },
      );
      const rA = forA.find((r) => r.port === rB.port)!;
      const waitA = rA.connection(5000);
      const waitB = rB.connection(5000);

      // B connects first: it must get B's reservation, and A's must stay pending.
      const cB = track(await connectData(rB.port, B));
      const sB = track(await within(waitB, 3000, "B delivered"));
      assert.equal(sB.remoteAddress, B);
      assert.equal(sB.remotePort, cB.localPort);
      assert.equal(p.stats().pendingReservations, SIZE);
      assert.equal(p.stats().sharedPorts, 0);
      assert.equal(p.stats().listeningPorts, SIZE, "A is still pending on the shared port");

      const cA = track(await connectData(rA.port, A));
      const sA = track(await within(waitA, 3000, "A delivered"));
      assert.equal(sA.remoteAddress, A);
      assert.equal(sA.remotePort, cA.localPort);
      await assertPaired(sB, cB, "bee");
      await assertPaired(sA, cA, "ay");

      // A third IP on a port with A pending is a stranger.
      const other = forA.find((r) => r !== rA)!;
      const cC = track(await connectData(other.port, C));
      await within(drainToClose(cC), 3000, "C refused");
      assert.equal(p.stats().strangersRefused, 1);
      for (const r of forA) r.release();
      assert.equal(p.stats().pendingReservations, 0);
      assert.equal(p.stats().listeningPorts, 0);
    }));

  test("the same IP pending on every port: reserve() rejects with PortPoolExhaustedError", () =>
    clean(async () => {
      const p = pool(150);
      const held: PassiveReservation[] = [];
      for (let i = 0; i < SIZE; i++) held.push(await p.reserve(HOST, A));
      await assert.rejects(p.reserve(HOST, A), PortPoolExhaustedError);
      assert.equal(p.stats().refusals, 1);
      assert.equal(p.stats().pendingReservations, SIZE, "the failed attempt left nothing behind");
      // Another IP is not blocked by A's exhaustion.
      const rB = await p.reserve(HOST, B);
      assert.equal(p.stats().sharedPorts, 1);
      rB.release();
      for (const r of held) r.release();
      assert.deepEqual([p.stats().pendingReservations, p.stats().listeningPorts], [0, 0]);
    }));

  test("a bind that fails for want of descriptors (EMFILE) refuses at once and cools no port: the range serves again as soon as they are back", () =>
    clean(async () => {
      const p = pool(150);
      const listen = Server.prototype.listen;
      // What the kernel answers a process at its open-file limit, for every port alike.
      Server.prototype.listen = function (this: Server) {
        process.nextTick(() => this.emit("error", Object.assign(new Error("listen EMFILE: too many open files"), { code: "EMFILE" })));
        return this;
      } as typeof listen;
      try {
        await assert.rejects(p.reserve(HOST, A), PortPoolExhaustedError);
      } finally {
        Server.prototype.listen = listen;
      }
      assert.equal(p.stats().refusals, 1);
      // Every port of the range, the one that failed included.
      const held: PassiveReservation[] = [];
      for (let i = 0; i < SIZE; i++) held.push(await p.reserve(HOST, A));
      assert.equal(new Set(held.map((r) => r.port)).size, SIZE);
      for (const r of held) r.release();
    }));

  test("reserve() waiting on exhaustion succeeds when a slot is released during the wait", () =>
    clean(async () => {
      const p = pool(10_000);
      const held: PassiveReservation[] = [];
      for (let i = 0; i < SIZE; i++) held.push(await p.reserve(HOST, A));
      const waiting = p.reserve(HOST, A);
      let settled = false;
      void waiting.then(() => (settled = true), () => (settled = true));
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(settled, false, "reserve() waits while the IP is pending everywhere");
      const freed = held.shift()!;
      freed.release();
      const got = await within(waiting, 5000, "reserve after release");
      assert.equal(got.port, freed.port);
      assert.equal(p.stats().refusals, 0);
      assert.equal(p.stats().pendingReservations, SIZE);
      got.release();
      for (const r of held) r.release();
      assert.deepEqual([p.stats().pendingReservations, p.stats().listeningPorts], [0, 0]);
    }));

  test("reserve() waiting on exhaustion also wakes when a client connects and frees its slot", () =>
    clean(async () => {
      const p = pool(10_000);
      const held: PassiveReservation[] = [];
      for (let i = 0; i < SIZE; i++) held.push(await p.reserve(HOST, A));
      const waiting = p.reserve(HOST, A);
      const used = held[2];
      const delivered = used.connection(5000);
      const client = track(await connectData(used.port, A));
      track(await within(delivered, 3000, "delivered"));
      const got = await within(waiting, 5000, "reserve after connect");
      assert.equal(got.port, used.port, "the freed port is reused while its transfer connection lives on");
      // The old connection still works although its port listens again.
      assert.equal(client.destroyed, false);
      got.release();
      for (const r of held) r.release();
      assert.deepEqual([p.stats().pendingReservations, p.stats().listeningPorts], [0, 0]);
    }));

  test("connection() rejects on release, on abort and on timeout, freeing the port", () =>
    clean(async () => {
      const p = pool();
      const r1 = await p.reserve(HOST, A);
      const w1 = r1.connection(5000);
      r1.release();
      await assert.rejects(w1, /released/);

      const r2 = await p.reserve(HOST, A);
      const ac = new AbortController();
      const w2 = r2.connection(5000, ac.signal);
      ac.abort();
      await assert.rejects(w2);
      assert.equal(p.stats().pendingReservations, 0);

      const r3 = await p.reserve(HOST, A);
      await assert.rejects(r3.connection(50), /timed out/);
      assert.deepEqual([p.stats().pendingReservations, p.stats().listeningPorts], [0, 0]);

      // A client connecting after the release finds nothing listening.
      await assert.rejects(connectData(r3.port, A), /ECONNREFUSED/);
    }));

  test("a connection held for a reservation that is then released is closed", () =>
    clean(async () => {
      const p = pool();
      const r = await p.reserve(HOST, A);
      const c = track(await connectData(r.port, A));
      const closed = drainToClose(c);
      await until(() => p.stats().pendingReservations === 0);
      r.release();
      await within(closed, 3000, "held socket closed on release");
      await assert.rejects(r.connection(100));
    }));

  test("close() releases every reservation and listener", () =>
    clean(async () => {
      const p = pool();
      const rs = [await p.reserve(HOST, A), await p.reserve(HOST, B), await p.reserve(HOST, A)];
      const waits = rs.map((r) => r.connection(5000));
      p.close();
      for (const w of waits) await assert.rejects(w);
      assert.deepEqual([p.stats().pendingReservations, p.stats().listeningPorts], [0, 0]);
    }));

  test("2,000 reserve/release iterations leave no listening port", () =>
    clean(async () => {
      const p = pool();
      for (let i = 0; i < 2000; i++) {
        const r = await p.reserve(HOST, i % 2 ? A : B);
        r.release();
      }
      assert.equal(p.stats().listeningPorts, 0);
      assert.equal(p.stats().pendingReservations, 0);
      assert.equal(p.stats().refusals, 0);
    }));

  test("2,000 seeded random reserve/release steps keep the stats exact", () =>
    clean(async () => {
      const p = pool();
      let seed = 0x5eed;
      const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
      const ips = [A, B, C];
      const held: PassiveReservation[] = [];
      for (let i = 0; i < 2000; i++) {
        // At most 4 held, so one IP is never pending on all 5 ports: reserve() never waits.
        if (held.length < 4 && (held.length === 0 || rand() < 0.5)) {
          held.push(await p.reserve(HOST, ips[Math.floor(rand() * ips.length)]));
        } else {
          held.splice(Math.floor(rand() * held.length), 1)[0].release();
        }
        if (i % 100 === 0) {
          assert.equal(p.stats().pendingReservations, held.length, `step ${i}`);
          const ports = new Set(held.map((r) => r.port));
          assert.equal(p.stats().listeningPorts, ports.size, `step ${i}`);
        }
      }
      for (const r of held.splice(0)) r.release();
      assert.deepEqual([p.stats().pendingReservations, p.stats().listeningPorts, p.stats().refusals], [0, 0, 0]);
    }));
});
