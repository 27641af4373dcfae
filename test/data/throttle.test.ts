import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BURST_SECONDS, BucketRegistry, TokenBucket, Throttle } from "../../src/data/throttle.js";
import { checkLeaks } from "../helpers/leaks.js";

const KiB = 1024;
const MiB = 1024 * KiB;

/** `total` bytes in chunks of `chunk` bytes (one buffer, reused: the test measures the throttle, not allocation). */
function source(total: number, chunk: number): Readable {
  const buffer = Buffer.alloc(chunk, 0x61);
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < total; sent += chunk) yield sent + chunk <= total ? buffer : buffer.subarray(0, total - sent);
    })(),
    { objectMode: false },
  );
}

/** A sink that counts what it receives. */
function counter(): Writable & { bytes: number } {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      sink.bytes += chunk.length;
      done();
    },
  }) as Writable & { bytes: number };
  sink.bytes = 0;
  return sink;
}

/** Pipes `total` bytes through `throttle`; resolves with the seconds it took and the bytes received. */
async function timed(throttle: Throttle, total: number, chunk: number): Promise<{ seconds: number; bytes: number }> {
  const sink = counter();
  const started = performance.now();
  await pipeline(source(total, chunk), throttle, sink);
  return { seconds: (performance.now() - started) / 1000, bytes: sink.bytes };
}

/** Within `tolerance` (a fraction) of `expected`. */
/**
 * A throttle must never be faster than its rate: the lower bound is tight. A loaded machine only
 * ever makes a transfer slower, so the upper bound is loose: it catches a throttle stuck far below
 * its rate, not a busy scheduler (speed itself is the benchmark's business).
 */
function assertNear(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(
    actual >= expected * (1 - tolerance) && actual <= expected * 2,
    `${what}: ${actual.toFixed(3)} s, expected ${expected.toFixed(3)} s (at least ${(1 - tolerance) * 100} %, at most twice)`,
  );
}

describe("bandwidth throttle", () => {
  checkLeaks();

  test("meters a bounded transfer at the bucket's rate (within 10 %), every byte through", async () => {
    const rate = 4 * MiB;
    const total = 10 * MiB;
    const { seconds, bytes } = await timed(new Throttle(new TokenBucket(rate)), total, 64 * KiB);
    assert.equal(bytes, total);
    // The first BURST_SECONDS of bytes go at once; the rest at the rate.
    assertNear(seconds, total / rate - BURST_SECONDS, 0.1, "4 MiB/s × 10 MiB");
    assertNear(seconds, total / rate, 0.1, "against the nominal time");
  });

  test("chunks larger than a quarter second of the rate are passed on in pieces at the same rate", async () => {
    const rate = 512 * KiB;
    const total = 1280 * KiB;
    const bucket = new TokenBucket(rate);
    assert.equal(bucket.sliceBytes, 128 * KiB);
    const sizes: number[] = [];
    const throttle = new Throttle(bucket);
    throttle.on("data", (b: Buffer) => sizes.push(b.length));
    const { seconds, bytes } = await timed(throttle, total, 256 * KiB);
    assert.equal(bytes, total);
    assert.ok(sizes.every((n) => n <= 128 * KiB), `pieces: ${sizes.join(",")}`);
    assertNear(seconds, total / rate, 0.1, "512 KiB/s × 1.25 MiB in 256 KiB chunks");
  });

  test("transfers on one shared bucket share its rate, each getting its turn", async () => {
    const registry = new BucketRegistry();
    const rate = 4 * MiB;
    const each = 3 * MiB;
    const runs = await Promise.all([0, 1, 2].map(() => timed(registry.throttle("down:alice", rate), each, 64 * KiB)));
    const total = 3 * each;
    for (const run of runs) assert.equal(run.bytes, each);
    // Together they move at the shared rate, not at 3 × the rate…
    assertNear(Math.max(...runs.map((r) => r.seconds)), total / rate, 0.1, "three sharers of 4 MiB/s");
    // …and in turn: none finishes long before the others (the first one only had the burst to itself).
    for (const run of runs) assert.ok(run.seconds > 0.8 * (total / rate), `one sharer finished at ${run.seconds.toFixed(3)} s`);
    assert.equal(registry.size, 0, "the bucket is forgotten once its last transfer ends");
  });

  test("different accounts (keys) do not share a bucket", async () => {
    const registry = new BucketRegistry();
    const rate = 2 * MiB;
    const runs = await Promise.all(["down:a", "down:b"].map((key) => timed(registry.throttle(key, rate), 2 * MiB, 64 * KiB)));
    for (const run of runs) assertNear(run.seconds, 1, 0.15, "each at its own 2 MiB/s");
  });

  test("an abort in the middle releases the timer, the waiter and the bucket", async () => {
    const registry = new BucketRegistry();
    const throttle = registry.throttle("up:alice", 64 * KiB);
    const bucket = registry.get("up:alice")!;
    const controller = new AbortController();
    const sink = counter();
    const done = pipeline(source(4 * MiB, 64 * KiB), throttle, sink, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(bucket.armed, "waiting on the rate");
    controller.abort();
    await assert.rejects(done, { name: "AbortError" });
    assert.ok(throttle.destroyed);
    assert.equal(bucket.armed, false, "timer cleared");
    assert.equal(registry.size, 0, "bucket released");
    assert.ok(sink.bytes < 1 * MiB, `stopped early (${sink.bytes} bytes)`);
    // checkLeaks: no Timeout is left behind.
  });

  test("an error downstream releases the timer too, and the other sharer keeps going", async () => {
    const registry = new BucketRegistry();
    const rate = 1 * MiB;
    const failing = new Writable({
      write(_chunk, _enc, done) {
        setTimeout(() => done(new Error("disk on fire")), 50);
      },
    });
    const broken = pipeline(source(2 * MiB, 64 * KiB), registry.throttle("down:bob", rate), failing);
    const healthy = timed(registry.throttle("down:bob", rate), 512 * KiB, 64 * KiB);
    await assert.rejects(broken, /disk on fire/);
    const { bytes } = await healthy;
    assert.equal(bytes, 512 * KiB);
    assert.equal(registry.size, 0);
  });

  test("destroying a throttle that never got data leaves nothing behind", async () => {
    const registry = new BucketRegistry();
    const throttle = registry.throttle("down:carol", MiB);
    assert.equal(registry.size, 1);
    throttle.destroy();
    await new Promise((r) => setImmediate(r));
    assert.equal(registry.size, 0);
  });

  test("rejects a rate that is not a positive number", () => {
    assert.throws(() => new TokenBucket(0), RangeError);
    assert.throws(() => new TokenBucket(Number.NaN), RangeError);
  });
});
