/** The in-memory ban store: fixed failure windows, bans with a TTL, pruning without timers, bounded memory. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryBanStore, type MemoryBanStoreOptions } from "../../src/guard/memory-ban-store.js";
import { checkLeaks } from "../helpers/leaks.js";

/** A store on a fake clock; `ended` collects the bans it reports as ended. */
function storeAt(options: Partial<MemoryBanStoreOptions> = {}) {
  const clock = { now: 1_000_000 };
  const ended: Array<{ ip: string; until: number; reason: string }> = [];
  const store = new MemoryBanStore({
    threshold: 3,
    windowMs: 10_000,
    durationMs: 60_000,
    now: () => clock.now,
    onBanEnded: (ip, until, reason) => ended.push({ ip, until: until.getTime(), reason }),
    ...options,
  });
  return { store, clock, ended };
}

describe("MemoryBanStore", () => {
  checkLeaks();

  test("the failure that reaches the threshold within the window bans, and only that one says so", async () => {
    const { store } = storeAt();
    assert.deepEqual(await store.recordFailure("10.0.0.1"), { failures: 1, banned: false });
    assert.deepEqual(await store.recordFailure("10.0.0.1"), { failures: 2, banned: false });
    assert.equal(await store.isBanned("10.0.0.1"), false);
    assert.deepEqual(await store.recordFailure("10.0.0.1"), { failures: 0, banned: true });
    assert.equal(await store.isBanned("10.0.0.1"), true);
    // Failures while banned (connections admitted before the ban) neither re-ban nor count.
    assert.deepEqual(await store.recordFailure("10.0.0.1"), { failures: 0, banned: false });
    assert.equal(await store.isBanned("10.0.0.2"), false, "other addresses are unaffected");
  });

  test("the window is fixed from the first failure: failures spread wider than it never ban", async () => {
    const { store, clock } = storeAt();
    await store.recordFailure("10.0.0.1");
    clock.now += 6_000;
    await store.recordFailure("10.0.0.1");
    clock.now += 4_000; // the first window ends exactly now
    assert.deepEqual(await store.recordFailure("10.0.0.1"), { failures: 1, banned: false }, "a new window starts");
    clock.now += 9_999;
    assert.deepEqual(await store.recordFailure("10.0.0.1"), { failures: 2, banned: false });
    assert.deepEqual(await store.recordFailure("10.0.0.1"), { failures: 0, banned: true });
  });

  test("a ban lasts its duration, then ends by itself (reported once), and the score starts from zero", async () => {
    const { store, clock, ended } = storeAt();
    for (let i = 0; i < 3; i++) await store.recordFailure("10.0.0.1");
    const bannedAt = clock.now;
    clock.now += 59_999;
    assert.equal(await store.isBanned("10.0.0.1"), true);
    assert.deepEqual(
      (await store.list()).map((b) => [b.ip, b.until.getTime()]),
      [["10.0.0.1", bannedAt + 60_000]],
    );
    clock.now += 1;
    assert.equal(await store.isBanned("10.0.0.1"), false);
    assert.deepEqual(ended, [{ ip: "10.0.0.1", until: bannedAt + 60_000, reason: "expired" }]);
    assert.equal(await store.isBanned("10.0.0.1"), false);
    assert.equal(ended.length, 1, "an expiry is reported once");
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(await store.recordFailure("10.0.0.1"), { failures: 1, banned: false }, "the score was cleared by the ban");
  });

  test("expired scores and bans are pruned by any later call, without a timer", async () => {
    const { store, clock, ended } = storeAt();
    for (let i = 0; i < 1000; i++) await store.recordFailure(`10.1.${i >> 8}.${i & 255}`);
    for (let i = 0; i < 3; i++) await store.recordFailure("10.9.9.9");
    assert.deepEqual(store.size, { scores: 1000, bans: 1 });
    clock.now += 10_000;
    await store.isBanned("192.0.2.1"); // an unrelated call prunes every expired score
    assert.deepEqual(store.size, { scores: 0, bans: 1 });
    clock.now += 50_000;
    await store.recordFailure("192.0.2.1");
    assert.deepEqual(store.size, { scores: 1, bans: 0 }, "the ban ended and is gone");
    assert.deepEqual(
      ended.map((e) => e.ip),
      ["10.9.9.9"],
    );
  });

  test("a shorter ban set by hand behind a longer one is still pruned (periodic full sweep)", async () => {
    const { store, clock, ended } = storeAt({ sweepIntervalMs: 1_000 });
    await store.ban("10.0.0.1", 600_000);
    await store.ban("10.0.0.2", 5_000);
    clock.now += 5_000;
    assert.deepEqual(store.size.bans, 2, "not yet swept: the head of the map is still in force");
    clock.now += 1_000;
    await store.list();
    assert.deepEqual(store.size.bans, 1);
    assert.deepEqual(ended.map((e) => e.ip), ["10.0.0.2"]);
    assert.deepEqual((await store.list()).map((b) => b.ip), ["10.0.0.1"]);
  });

  test("memory is bounded: past maxEntries the oldest score, or the oldest ban, is dropped", async () => {
    const { store, ended } = storeAt({ maxEntries: 100, threshold: 2 });
    for (let i = 0; i < 250; i++) await store.recordFailure(`10.2.0.${i}`);
    assert.equal(store.size.scores, 100);
    // The most recent addresses keep their score: their second failure bans.
    assert.deepEqual(await store.recordFailure("10.2.0.249"), { failures: 0, banned: true });
    // The oldest were forgotten: a second failure starts a new score.
    assert.deepEqual(await store.recordFailure("10.2.0.0"), { failures: 1, banned: false });
    for (let i = 0; i < 150; i++) await store.ban(`10.3.0.${i}`);
    assert.equal(store.size.bans, 100);
    assert.equal(await store.isBanned("10.2.0.249"), false, "the oldest ban was dropped");
    assert.equal(await store.isBanned("10.3.0.149"), true);
    assert.ok(ended.length > 0 && ended.every((e) => e.reason === "evicted"));
  });

  test("ban by hand replaces the end; unban lifts it and clears the score", async () => {
    const { store, clock } = storeAt();
    await store.ban("10.0.0.1");
    assert.equal(await store.isBanned("10.0.0.1"), true);
    await store.ban("10.0.0.1", 1_000);
    clock.now += 1_000;
    assert.equal(await store.isBanned("10.0.0.1"), false, "the second ban replaced the first");
    await store.recordFailure("10.0.0.2");
    await store.recordFailure("10.0.0.2");
    await store.ban("10.0.0.2");
    assert.equal(await store.unban("10.0.0.2"), true);
    assert.equal(await store.isBanned("10.0.0.2"), false);
    assert.equal(await store.unban("10.0.0.2"), false, "nothing left to lift");
    assert.deepEqual(await store.recordFailure("10.0.0.2"), { failures: 1, banned: false }, "unban cleared the score");
  });

  test("a threshold below 1 is refused (the policy disables banning, not the store)", () => {
    assert.throws(() => storeAt({ threshold: 0 }), RangeError);
  });
});
