/** The ban policy: allow-list, threshold 0, and the log lines for bans and unbans. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { BanPolicy } from "../../src/guard/ban-policy.js";
import { IpAllowList } from "../../src/guard/ip-allow-list.js";
import { MemoryBanStore } from "../../src/guard/memory-ban-store.js";
import { createLogger } from "../../src/observe/logger.js";
import { checkLeaks } from "../helpers/leaks.js";

function policyWith(options: { threshold?: number; allowList?: string } = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger("info", sink);
  const clock = { now: 5_000_000 };
  const threshold = options.threshold ?? 2;
  let policy: BanPolicy | null = null;
  const store = new MemoryBanStore({
    threshold: Math.max(1, threshold),
    windowMs: 60_000,
    durationMs: 30_000,
    now: () => clock.now,
    onBanEnded: (ip, until, reason) => policy?.banEnded(ip, until, reason),
  });
  policy = new BanPolicy(store, IpAllowList.parse(options.allowList ?? "127.0.0.0/8"), logger, { threshold, durationMs: 30_000 });
  return { policy, lines, clock };
}

/** pino writes asynchronously to a plain stream; give it a turn. */
const flushed = () => new Promise((r) => setImmediate(r));

describe("BanPolicy", () => {
  checkLeaks();

  test("a ban is logged with the address and duration; its expiry is logged as an unban", async () => {
    const { policy, lines, clock } = policyWith();
    assert.equal(await policy.loginFailed("192.0.2.1", "mallory"), false);
    assert.equal(await policy.loginFailed("192.0.2.1", "alice"), true);
    assert.equal(await policy.isBanned("192.0.2.1"), true);
    clock.now += 30_000;
    assert.equal(await policy.isBanned("192.0.2.1"), false);
    await flushed();
    const ban = lines.find((l) => l.msg === "address banned after repeated failed logins");
    assert.ok(ban, JSON.stringify(lines));
    assert.equal(ban.ip, "192.0.2.1");
    assert.equal(ban.durationSeconds, 30);
    assert.equal(ban.level, 40, "a ban is a warning");
    const unban = lines.find((l) => l.msg === "ban expired: address unbanned");
    assert.ok(unban, JSON.stringify(lines));
    assert.equal(unban.ip, "192.0.2.1");
  });

  test("an allow-listed address is never banned, by failures or by hand", async () => {
    const { policy } = policyWith({ allowList: "127.0.0.0/8,::1/128" });
    for (let i = 0; i < 10; i++) assert.equal(await policy.loginFailed("127.0.0.2", "x"), false);
    assert.equal(await policy.isBanned("127.0.0.2"), false);
    assert.equal(await policy.ban("::1"), false);
    assert.equal(await policy.isBanned("::1"), false);
    assert.deepEqual(await policy.list(), []);
  });

  test("threshold 0 never bans", async () => {
    const { policy } = policyWith({ threshold: 0, allowList: "" });
    for (let i = 0; i < 50; i++) assert.equal(await policy.loginFailed("192.0.2.9", "x"), false);
    assert.equal(await policy.isBanned("192.0.2.9"), false);
  });

  test("a ban and an unban by hand are both logged", async () => {
    const { policy, lines } = policyWith({ allowList: "" });
    assert.equal(await policy.ban("192.0.2.5", 10_000), true);
    assert.equal(await policy.isBanned("192.0.2.5"), true);
    assert.equal(await policy.unban("192.0.2.5"), true);
    assert.equal(await policy.unban("192.0.2.5"), false);
    assert.equal(await policy.isBanned("192.0.2.5"), false);
    await flushed();
    assert.deepEqual(
      lines.filter((l) => l.ip === "192.0.2.5").map((l) => [l.msg, l.durationSeconds]),
      [
        ["address banned", 10],
        ["address unbanned", undefined],
      ],
    );
  });
});
