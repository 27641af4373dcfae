import { test } from "node:test";
import assert from "node:assert/strict";
import { parseOptions } from "@node-rs/argon2";
import {
  DUMMY_HASH,
  hashPassword,
  MAX_CONCURRENT_VERIFICATIONS,
  rememberedSuccesses,
  verificationsInProgress,
  verificationsRun,
  verifyPassword,
} from "../../src/accounts/password.js";

test("hashPassword produces a salted argon2id PHC string that verifyPassword accepts", async () => {
  const first = await hashPassword("correct horse");
  const second = await hashPassword("correct horse");
  assert.match(first, /^\$argon2id\$v=19\$/);
  assert.ok(!first.includes("correct horse"));
  assert.notEqual(first, second, "each hash has its own salt");
  assert.equal(await verifyPassword(first, "correct horse"), true);
  assert.equal(await verifyPassword(first, "correct horsE"), false);
  assert.equal(await verifyPassword(first, ""), false);
});

test("DUMMY_HASH has the parameters of a fresh hash, so verifying against it costs the same", async () => {
  const { saltLen: _dummySalt, ...dummy } = parseOptions(DUMMY_HASH);
  const { saltLen: _freshSalt, ...fresh } = parseOptions(await hashPassword("x"));
  assert.deepEqual(dummy, fresh);
  assert.equal(await verifyPassword(DUMMY_HASH, ""), false);
});

test("verifyPassword rejects a malformed stored hash rather than reporting a mismatch", async () => {
  await assert.rejects(verifyPassword("not-a-hash", "pw"));
});

test("a remembered success never outlives a password change", async () => {
  const { SqliteAccountStore } = await import("../../src/accounts/sqlite.js");
  const store = SqliteAccountStore.open(":memory:");
  try {
    await store.create({ name: "cam", password: "old" });
    assert.ok(await store.authenticate("cam", "old"));
    assert.ok(await store.authenticate("cam", "old"), "remembered");
    await store.setPassword("cam", "new");
    assert.equal(await store.authenticate("cam", "old"), null);
    assert.ok(await store.authenticate("cam", "new"));
    assert.equal(await store.authenticate("cam", "wrong"), null);
  } finally {
    await store.close();
  }
});

test("a disabled account's right password is checked in full every time: never remembered, never answered fast", async () => {
  const { SqliteAccountStore } = await import("../../src/accounts/sqlite.js");
  const store = SqliteAccountStore.open(":memory:");
  try {
    await store.create({ name: "off", password: "right" });
    await store.update("off", { enabled: false });
    const before = rememberedSuccesses();
    assert.equal(await store.authenticate("off", "right"), null);
    assert.equal(await store.authenticate("off", "right"), null);
    assert.equal(rememberedSuccesses(), before, "nothing remembered for a disabled account");
    await store.update("off", { enabled: true });
    assert.ok(await store.authenticate("off", "right"));
    assert.equal(rememberedSuccesses(), before + 1, "an enabled account's success is");
  } finally {
    await store.close();
  }
});

test("attempts made together share one run whether the name exists, is unknown (the dummy hash) or disabled: their timing tells them apart no more", async () => {
  const stored = await hashPassword("right");
  for (const [hash, remembered] of [[stored, true], [DUMMY_HASH, false], [stored, false]] as const) {
    const before = verificationsRun();
    const answers = await Promise.all(Array.from({ length: 10 }, () => verifyPassword(hash, "a guess", remembered)));
    assert.deepEqual(answers, Array(10).fill(false));
    assert.equal(verificationsRun() - before, 1, `one run for ten attempts (remembered: ${remembered})`);
  }
});

test("attempts at different names do not share a run, so unknown names (one dummy hash) cost as much together as real ones", async () => {
  const before = verificationsRun();
  const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => verifyPassword(DUMMY_HASH, "a guess", false, `nobody${i}`)));
  assert.deepEqual(answers, Array(6).fill(false));
  assert.equal(verificationsRun() - before, 6, "one run per name");
  const sameName = verificationsRun();
  await Promise.all(Array.from({ length: 6 }, () => verifyPassword(DUMMY_HASH, "a guess", false, "nobody")));
  assert.equal(verificationsRun() - sameName, 1, "attempts at one name still share");
});

test("concurrent verifications of the same credentials agree, and a failure is not remembered", async () => {
  const stored = await hashPassword("burst");
  const [right, wrong] = await Promise.all([
    Promise.all(Array.from({ length: 8 }, () => verifyPassword(stored, "burst"))),
    Promise.all(Array.from({ length: 8 }, () => verifyPassword(stored, "bursT"))),
  ]);
  assert.deepEqual(right, Array(8).fill(true));
  assert.deepEqual(wrong, Array(8).fill(false));
  assert.equal(await verifyPassword(stored, "bursT"), false);
  await assert.rejects(Promise.all([verifyPassword("not-a-hash", "pw"), verifyPassword("not-a-hash", "pw")]));
  await assert.rejects(verifyPassword("not-a-hash", "pw"), "a rejection is not remembered either");
});

test("a burst of wrong passwords hands at most a few argon2id runs to the thread pool at once, leaving it to file operations", async () => {
  const { stat } = await import("node:fs/promises");
  let most = 0;
  let done = false;
  const burst = Promise.all(Array.from({ length: 24 }, (_, i) => verifyPassword(DUMMY_HASH, `guess ${i}`, false, `guesser${i}`))).finally(() => {
    done = true;
  });
  let statsDuringBurst = 0;
  while (!done) {
    most = Math.max(most, verificationsInProgress());
    await stat(".");
    if (!done) statsDuringBurst++;
  }
  assert.deepEqual(await burst, Array(24).fill(false));
  assert.ok(most <= 4 && most <= MAX_CONCURRENT_VERIFICATIONS, `${most} runs at once, at most ${MAX_CONCURRENT_VERIFICATIONS} expected`);
  assert.ok(statsDuringBurst > 24, `file operations kept running during the burst (${statsDuringBurst})`);
  assert.equal(verificationsInProgress(), 0);
});
