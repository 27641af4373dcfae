/** The in-memory connection guard: node-wide, per-IP and per-account counts, leases released once. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Lease, Registration } from "../../src/guard/connection-guard.js";
import { MemoryConnectionGuard } from "../../src/guard/memory-connection-guard.js";
import { checkLeaks } from "../helpers/leaks.js";

function leaseOf(r: Registration): Lease {
  assert.ok(r.admitted, `refused: ${JSON.stringify(r)}`);
  return r.lease;
}

describe("MemoryConnectionGuard", () => {
  checkLeaks();

  test("per-IP limit: the (n+1)th connection from one address is refused, others are not", async () => {
    const guard = new MemoryConnectionGuard({ maxConnections: 0, maxConnectionsPerIp: 3 });
    const leases = [];
    for (let i = 0; i < 3; i++) leases.push(leaseOf(await guard.registerConnection("10.0.0.3")));
    assert.deepEqual(await guard.registerConnection("10.0.0.3"), { admitted: false, limit: "connections-per-ip", max: 3 });
    leaseOf(await guard.registerConnection("10.0.0.4")).release();
    leases[0].release();
    leases.push(leaseOf(await guard.registerConnection("10.0.0.3")));
    assert.deepEqual(await guard.counts(), { connections: 3, addresses: 1, sessions: 0, accounts: 0 });
  });

  test("global limit applies across addresses, and comes first", async () => {
    const guard = new MemoryConnectionGuard({ maxConnections: 2, maxConnectionsPerIp: 1 });
    const a = leaseOf(await guard.registerConnection("10.0.0.1"));
    leaseOf(await guard.registerConnection("10.0.0.2"));
    assert.deepEqual(await guard.registerConnection("10.0.0.1"), { admitted: false, limit: "connections", max: 2 });
    assert.deepEqual(await guard.registerConnection("10.0.0.3"), { admitted: false, limit: "connections", max: 2 });
    a.release();
    leaseOf(await guard.registerConnection("10.0.0.3"));
  });

  test("a lease releases once, however often it is called; counters drop their keys at zero", async () => {
    const guard = new MemoryConnectionGuard({ maxConnections: 10, maxConnectionsPerIp: 10 });
    const a = leaseOf(await guard.registerConnection("10.0.0.1"));
    const b = leaseOf(await guard.registerConnection("10.0.0.1"));
    a.release();
    a.release();
    a.release();
    assert.deepEqual(await guard.counts(), { connections: 1, addresses: 1, sessions: 0, accounts: 0 });
    b.release();
    assert.deepEqual(await guard.counts(), { connections: 0, addresses: 0, sessions: 0, accounts: 0 });
  });

  test("sessions per account: limit per call (account override), 0 is unlimited", async () => {
    const guard = new MemoryConnectionGuard({ maxConnections: 0, maxConnectionsPerIp: 0 });
    const first = leaseOf(await guard.registerSession("bob", 2));
    leaseOf(await guard.registerSession("bob", 2));
    assert.deepEqual(await guard.registerSession("bob", 2), { admitted: false, limit: "sessions-per-account", max: 2 });
    leaseOf(await guard.registerSession("carol", 2));
    for (let i = 0; i < 50; i++) leaseOf(await guard.registerSession("dave", 0));
    first.release();
    leaseOf(await guard.registerSession("bob", 2));
    assert.deepEqual(await guard.counts(), { connections: 0, addresses: 0, sessions: 53, accounts: 3 });
  });

  test("limits of 0 mean no limit", async () => {
    const guard = new MemoryConnectionGuard({ maxConnections: 0, maxConnectionsPerIp: 0 });
    for (let i = 0; i < 500; i++) leaseOf(await guard.registerConnection("10.0.0.1"));
    assert.equal((await guard.counts()).connections, 500);
  });
});
