import assert from "node:assert/strict";
import { test } from "node:test";
import { RateLimiter } from "../../src/session/rate-limiter.js";

test("a burst passes at once, then callers wait at the configured rate", async () => {
  const limiter = new RateLimiter(50, 5);
  for (let i = 0; i < 5; i++) assert.equal(limiter.take(), undefined, `token ${i} of the burst is immediate`);
  const start = performance.now();
  for (let i = 0; i < 10; i++) await limiter.take();
  // 10 tokens at 50/s need at least 200 ms once the burst is spent (a lower bound cannot flake).
  assert.ok(performance.now() - start >= 180);
});

test("0 means unlimited", () => {
  const limiter = new RateLimiter(0, 0);
  for (let i = 0; i < 1000; i++) assert.equal(limiter.take(), undefined);
});
