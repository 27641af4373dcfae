/** Admission order (conventions §8): a banned address first, then the node-wide and per-IP limits, then registration. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { admitConnection } from "../../src/guard/admission.js";
import { openGuard } from "../../src/guard/node-guard.js";
import { configSchema } from "../../src/config/schema.js";
import { createLogger } from "../../src/observe/logger.js";
import { checkLeaks } from "../helpers/leaks.js";

const logger = createLogger("silent");

function guardFor(limits: Record<string, number>, bans: Record<string, unknown> = {}) {
  return openGuard(configSchema.parse({ limits, bans: { allowList: "", ...bans } }), logger);
}

describe("admitConnection", () => {
  checkLeaks();

  test("a banned address is refused as banned even when a limit would also refuse it, and takes no slot", async () => {
    const guard = guardFor({ maxConnections: 1, maxConnectionsPerIp: 1 });
    await guard.bans.ban("192.0.2.1");
    const refused = await admitConnection("192.0.2.1", guard);
    assert.equal(refused.admitted, false);
    assert.equal(refused.admitted === false && refused.reason, "banned");
    assert.deepEqual(await guard.connections.counts(), { connections: 0, addresses: 0, sessions: 0, accounts: 0 });
    const ok = await admitConnection("192.0.2.2", guard);
    assert.ok(ok.admitted);
    const full = await admitConnection("192.0.2.1", guard);
    assert.equal(full.admitted === false && full.reason, "banned", "still banned first, not 'connections'");
    const other = await admitConnection("192.0.2.3", guard);
    assert.equal(other.admitted === false && other.reason, "connections");
    assert.match(other.admitted === false ? other.text : "", /Too many connections to this server/);
    await guard.close();
  });

  test("the per-IP refusal names its limit; a failed login score bans at the threshold", async () => {
    const guard = guardFor({ maxConnectionsPerIp: 2 }, { threshold: 2 });
    assert.ok((await admitConnection("192.0.2.9", guard)).admitted);
    assert.ok((await admitConnection("192.0.2.9", guard)).admitted);
    const third = await admitConnection("192.0.2.9", guard);
    assert.equal(third.admitted === false && third.reason, "connections-per-ip");
    assert.match(third.admitted === false ? third.text : "", /limit 2/);
    assert.equal(await guard.bans.loginFailed("192.0.2.9", "x"), false);
    assert.equal(await guard.bans.loginFailed("192.0.2.9", "x"), true);
    const banned = await admitConnection("192.0.2.9", guard);
    assert.equal(banned.admitted === false && banned.reason, "banned");
    await guard.close();
  });

  test("the default allow-list (loopback) is never banned", async () => {
    const guard = openGuard(configSchema.parse({ bans: { threshold: 1 } }), logger);
    assert.equal(await guard.bans.loginFailed("127.0.0.2", "x"), false);
    assert.equal(await guard.bans.loginFailed("::1", "x"), false);
    assert.ok((await admitConnection("127.0.0.2", guard)).admitted);
    assert.equal(await guard.bans.loginFailed("192.0.2.1", "x"), true);
    await guard.close();
  });

  test("an allow-list entry that is not a network fails at start, naming the key", () => {
    const parsed = configSchema.safeParse({ bans: { allowList: "10.0.0.0/40" } });
    assert.equal(parsed.success, false);
    assert.deepEqual(parsed.error?.issues.map((i) => i.path.join(".")), ["bans.allowList"]);
    assert.throws(() => openGuard({ ...configSchema.parse({}), bans: { ...configSchema.parse({}).bans, allowList: "10.0.0.0/40" } }, logger), /bans\.allowList/);
  });
});
