/**
 * Zero-copy transfers end to end: which transfers the kernel moves by itself (binary, plain,
 * unthrottled, no byte quota, transfers.zeroCopy on) and which go through streams, that both
 * deliver the same bytes in passive and active mode and from a REST offset, and that ABOR, STAT,
 * the stall timeout and a client's reset behave on the kernel path as they do on streams.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { kernelCopyAvailable } from "../../src/data/kernel-copy.js";
import { sha256 } from "../helpers/hash.js";
import { checkLeaks } from "../helpers/leaks.js";
import { drainToClose, expectCode, listenOnce, readAll, type RawClient } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER, type ConfigOverrides, type TestServer } from "../helpers/server.js";
import { TestConnections } from "../helpers/test-connections.js";
import { sleep, waitFor, within } from "../helpers/wait.js";

const MiB = 1024 * 1024;

/** The node's "transfer complete" log lines, parsed. */
class TransferLog extends Writable {
  readonly transfers: Array<{ transfer: string; zeroCopy: boolean; bytesIn: number; bytesOut: number }> = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString().split("\n")) {
      if (!line.includes('"transfer complete"')) continue;
      this.transfers.push(JSON.parse(line));
    }
    done();
  }
  /** The zeroCopy flag of the last logged transfer of `path`. */
  zeroCopyOf(path: string): boolean | undefined {
    return this.transfers.findLast((t) => t.transfer === path)?.zeroCopy;
  }
}

/** A server with the transfer log captured, and the connections a test opens. */
function fixture(overrides: ConfigOverrides = {}, accounts: Parameters<typeof startServer>[1] = []) {
  const ctx = { server: null as unknown as TestServer, log: new TransferLog(), connections: new TestConnections() };
  before(async () => {
    ctx.server = await startServer({ log: { level: "info" }, ...overrides }, accounts, { logTo: ctx.log });
  });
  after(() => ctx.server.close());
  return ctx;
}

async function login(ctx: ReturnType<typeof fixture>, user = USER, password = PASSWORD): Promise<RawClient> {
  const c = await ctx.connections.open(ctx.server.port);
  await c.login(user, password);
  expectCode(await c.command("TYPE I"), 200, "TYPE I");
  return c;
}

/** STOR `content` over EPSV and RETR it back, from `offset` when given; returns what came back. */
async function roundTrip(ctx: ReturnType<typeof fixture>, c: RawClient, name: string, content: Buffer): Promise<Buffer> {
  const up = ctx.connections.track(await c.passive());
  expectCode(await c.command(`STOR ${name}`), 150, "STOR");
  up.end(content);
  expectCode(await c.reply(10_000), 226, "STOR done");
  const down = ctx.connections.track(await c.passive());
  expectCode(await c.command(`RETR ${name}`), 150, "RETR");
  const received = await readAll(down);
  expectCode(await c.reply(10_000), 226, "RETR done");
  return received;
}

describe("zero-copy transfers", { skip: !kernelCopyAvailable && "the zero-copy addon is not built here" }, () => {
  checkLeaks();

  describe("on a default node", () => {
    const ctx = fixture({ timeouts: { stall: 1 } }, [
      { name: "metered", password: "pw", bandwidthDown: 50 * MiB, bandwidthUp: 50 * MiB },
      { name: "quota", password: "pw", quotaBytes: 3 * MiB },
      { name: "roomy", password: "pw", quotaBytes: 200 * MiB },
    ]);
    const clean = async (body: () => Promise<void>) => {
      try {
        await body();
      } finally {
        await ctx.connections.closeAll(ctx.server);
      }
    };

    test("binary STOR and RETR in passive mode go through the kernel, byte for byte", () =>
      clean(async () => {
        const c = await login(ctx);
        const content = randomBytes(8 * MiB + 5);
        assert.equal(sha256(await roundTrip(ctx, c, "kernel.bin", content)), sha256(content));
        assert.equal(sha256(readFileSync(join(ctx.server.home(USER), "kernel.bin"))), sha256(content));
        const logged = ctx.log.transfers.filter((t) => t.transfer === "/kernel.bin");
        assert.deepEqual(
          logged.map((t) => [t.zeroCopy, t.bytesIn, t.bytesOut]),
          [
            [true, content.length, 0],
            [true, 0, content.length],
          ],
        );
      }));

    test("active mode (PORT) goes through the kernel too", () =>
      clean(async () => {
        const c = await login(ctx);
        const content = randomBytes(3 * MiB);
        for (const verb of ["STOR", "RETR"]) {
          const listener = await listenOnce("127.0.0.1");
          try {
            const p = listener.port;
            expectCode(await c.command(`PORT 127,0,0,1,${p >> 8},${p & 255}`), 200, "PORT");
            expectCode(await c.command(`${verb} active.bin`), 150, verb);
            const data = ctx.connections.track(await within(listener.accepted, 5000, "server connects"));
            if (verb === "STOR") data.end(content);
            else assert.equal(sha256(await readAll(data)), sha256(content));
            expectCode(await c.reply(10_000), 226, `${verb} done`);
            assert.equal(ctx.log.zeroCopyOf("/active.bin"), true, verb);
          } finally {
            listener.close();
          }
        }
      }));

    test("REST offsets: RETR sends from the offset, STOR writes at it, both through the kernel", () =>
      clean(async () => {
        const content = randomBytes(2 * MiB + 3);
        writeFileSync(join(ctx.server.home(USER), "rest.bin"), content);
        const c = await login(ctx);
        expectCode(await c.command("REST 1000001"), 350, "REST");
        const down = ctx.connections.track(await c.passive());
        expectCode(await c.command("RETR rest.bin"), 150, "RETR");
        assert.equal(sha256(await readAll(down)), sha256(content.subarray(1000001)));
        expectCode(await c.reply(10_000), 226, "RETR done");
        assert.equal(ctx.log.zeroCopyOf("/rest.bin"), true);

        const tail = randomBytes(MiB);
        expectCode(await c.command("REST 1000"), 350, "REST");
        const up = ctx.connections.track(await c.passive());
        expectCode(await c.command("STOR rest.bin"), 150, "STOR");
        up.end(tail);
        expectCode(await c.reply(10_000), 226, "STOR done");
        assert.equal(ctx.log.zeroCopyOf("/rest.bin"), true);
        const expected = Buffer.concat([content.subarray(0, 1000), tail, content.subarray(1000 + tail.length)]);
        assert.equal(sha256(readFileSync(join(ctx.server.home(USER), "rest.bin"))), sha256(expected));
      }));

    test("an account with a byte quota splices too, and is stopped exactly at its quota", () =>
      clean(async () => {
        const c = await login(ctx, "quota", "pw");
        const content = randomBytes(2 * MiB);
        assert.equal(sha256(await roundTrip(ctx, c, "within.bin", content)), sha256(content));
        assert.equal(ctx.log.zeroCopyOf("/within.bin"), true);
        const data = ctx.connections.track(await c.passive());
        expectCode(await c.command("STOR beyond.bin"), 150, "STOR");
        data.end(randomBytes(2 * MiB));
        const r = await c.reply(10_000);
        expectCode(r, 552, "STOR beyond the quota");
        assert.match(r.text, /^Quota exceeded/);
        // Not a byte beyond the quota was stored, and the stopped new file is removed (as Pure-FTPd does).
        assert.equal(existsSync(join(ctx.server.home("quota"), "beyond.bin")), false);

        // Past one step of reserved room (64 MiB), the upload goes on in further steps, every byte counted.
        const roomy = await login(ctx, "roomy", "pw");
        const large = Buffer.alloc(70 * MiB, 0x5a);
        assert.equal(sha256(await roundTrip(ctx, roomy, "steps.bin", large)), sha256(large));
        const logged = ctx.log.transfers.filter((t) => t.transfer === "/steps.bin");
        assert.deepEqual(
          logged.map((t) => [t.zeroCopy, t.bytesIn, t.bytesOut]),
          [
            [true, large.length, 0],
            [true, 0, large.length],
          ],
        );
      }));

    test("TYPE A and a throttled account go through streams (the bytes must be seen)", () =>
      clean(async () => {
        const c = await login(ctx);
        expectCode(await c.command("TYPE A"), 200, "TYPE A");
        assert.equal((await roundTrip(ctx, c, "text.txt", Buffer.from("one\r\ntwo\r\n"))).toString(), "one\r\ntwo\r\n");
        assert.equal(readFileSync(join(ctx.server.home(USER), "text.txt"), "utf8"), "one\ntwo\n");
        assert.equal(ctx.log.zeroCopyOf("/text.txt"), false);

        const metered = await login(ctx, "metered", "pw");
        const content = randomBytes(MiB);
        assert.equal(sha256(await roundTrip(ctx, metered, "metered.bin", content)), sha256(content));
        assert.equal(ctx.log.zeroCopyOf("/metered.bin"), false);
      }));

    test("ABOR of a kernel RETR the client does not read: 426 then 226, STAT showed the bytes, the session goes on", () =>
      clean(async () => {
        writeFileSync(join(ctx.server.home(USER), "huge.bin"), Buffer.alloc(256 * MiB, 7));
        const c = await login(ctx);
        const data = ctx.connections.track(await c.passive());
        data.pause(); // the kernel fills the socket buffers, then waits
        expectCode(await c.command("RETR huge.bin"), 150, "RETR");
        await sleep(200);
        const status = (await c.command("STAT")).lines.join("\n");
        const sent = Number(/(\d+) bytes so far/.exec(status)?.[1]);
        assert.ok(sent > 0 && sent < 256 * MiB, `STAT during the transfer: ${status}`);
        c.send("ABOR");
        expectCode(await c.reply(5000), 426, "the transfer answers 426");
        expectCode(await c.reply(5000), 226, "ABOR answers 226");
        await within(drainToClose(data), 5000, "the data connection is closed");
        expectCode(await c.command("NOOP"), 200, "NOOP after ABOR");
      }));

    test("a kernel RETR the client stops reading fails after the stall timeout with 426", () =>
      clean(async () => {
        writeFileSync(join(ctx.server.home(USER), "huge.bin"), Buffer.alloc(256 * MiB, 7));
        const c = await login(ctx);
        const data = ctx.connections.track(await c.passive());
        data.pause();
        expectCode(await c.command("RETR huge.bin"), 150, "RETR");
        expectCode(await c.reply(10_000), 426, "stalled transfer");
        expectCode(await c.command("NOOP"), 200, "NOOP after the stall");
      }));

    test("a client's reset during a kernel STOR is 426, never 226; the session stays usable", () =>
      clean(async () => {
        const c = await login(ctx);
        const data = ctx.connections.track(await c.passive());
        expectCode(await c.command("STOR reset.bin"), 150, "STOR");
        data.write(Buffer.alloc(2 * MiB, 1), () => setTimeout(() => data.resetAndDestroy(), 20));
        expectCode(await c.reply(10_000), 426, "a reset upload");
        expectCode(await c.command("NOOP"), 200, "NOOP after the reset");
      }));

    test("a kernel STOR whose client stops sending fails after the stall timeout with 426", () =>
      clean(async () => {
        const c = await login(ctx);
        const data = ctx.connections.track(await c.passive());
        expectCode(await c.command("STOR stalled.bin"), 150, "STOR");
        data.write(Buffer.alloc(5000, 1)); // then nothing, and no FIN
        expectCode(await c.reply(10_000), 426, "stalled upload");
        expectCode(await c.command("NOOP"), 200, "NOOP after the stall");
      }));
  });

  describe("with transfers.zeroCopy off", () => {
    const ctx = fixture({ transfers: { zeroCopy: false } });
    test("every transfer goes through user space, byte for byte, also from a REST offset", async () => {
      try {
        const c = await login(ctx);
        const content = randomBytes(4 * MiB + 1);
        assert.equal(sha256(await roundTrip(ctx, c, "streams.bin", content)), sha256(content));
        expectCode(await c.command("REST 3000000"), 350, "REST");
        const down = ctx.connections.track(await c.passive());
        expectCode(await c.command("RETR streams.bin"), 150, "RETR");
        assert.equal(sha256(await readAll(down)), sha256(content.subarray(3000000)));
        expectCode(await c.reply(10_000), 226, "RETR done");
        const logged = ctx.log.transfers.filter((t) => t.transfer === "/streams.bin");
        assert.deepEqual(
          logged.map((t) => [t.zeroCopy, t.bytesIn + t.bytesOut]),
          [
            [false, content.length],
            [false, content.length],
            [false, content.length - 3000000],
          ],
        );
      } finally {
        await ctx.connections.closeAll(ctx.server);
      }
    });

    test("a download the client does not read ends with its session, not at the stall timeout (120 s)", async () => {
      try {
        writeFileSync(join(ctx.server.home(USER), "unread.bin"), Buffer.alloc(64 * MiB, 3));
        const c = await login(ctx);
        const data = ctx.connections.track(await c.passive());
        data.pause();
        expectCode(await c.command("RETR unread.bin"), 150, "RETR");
        await sleep(200); // the socket buffers fill: the next write waits on the client
        const [live] = ctx.server.node.sessions;
        assert.ok(live.transfer, "the download waits on the client");
        c.socket.destroy();
        await waitFor(() => live.transfer === null, "the download to end with its session");
      } finally {
        await ctx.connections.closeAll(ctx.server);
      }
    });
  });
});
