/**
 * The TLS session-ID cache: real TLS 1.2 handshakes without tickets resume through it (and not
 * without it), and it stays within its capacity and lifetime.
 */
import assert from "node:assert/strict";
import { constants } from "node:crypto";
import { describe, test } from "node:test";
import { TlsSessionCache } from "../../src/tls/session-cache.js";
import { checkLeaks } from "../helpers/leaks.js";
import { selfSignedContext, tlsPair } from "../helpers/tls-pair.js";

describe("TLS session cache (resumption by session ID)", () => {
  checkLeaks();
  const context = selfSignedContext();

  /** One TLS 1.2 handshake without tickets against acceptTls; the client's session and whether it resumed `session`. */
  async function handshake(cache: TlsSessionCache | undefined, session?: Buffer): Promise<{ session: Buffer; reused: boolean }> {
    const pair = await tlsPair(context(), { maxVersion: "TLSv1.2", secureOptions: constants.SSL_OP_NO_TICKET, ...(session ? { session } : {}) }, cache?.host());
    try {
      const result = { session: pair.client.getSession()!, reused: pair.client.isSessionReused() };
      assert.equal(pair.server.isSessionReused(), result.reused);
      return result;
    } finally {
      pair.close();
    }
  }

  test("a TLS 1.2 client without tickets resumes its session by ID through the cache, and not without one", async () => {
    const cache = new TlsSessionCache(60_000);
    const first = await handshake(cache);
    assert.equal(first.reused, false);
    assert.equal(cache.size, 1);
    assert.equal((await handshake(cache, first.session)).reused, true);
    assert.equal((await handshake(undefined, first.session)).reused, false);
  });

  test("keeps no TLS 1.3 session (they resume by ticket only), and still reports them", async () => {
    const cache = new TlsSessionCache(60_000);
    const issued: Buffer[] = [];
    const pair = await tlsPair(context(), { minVersion: "TLSv1.3" }, cache.host((s) => issued.push(s)));
    await new Promise((resolve) => pair.client.once("session", resolve));
    pair.close();
    assert.ok(issued.length > 0, "the tickets' sessions were reported");
    assert.equal(cache.size, 0);
  });

  test("keeps at most its capacity (oldest dropped first) and resumes nothing past its lifetime", async () => {
    let now = 0;
    const cache = new TlsSessionCache(1_000, 2, () => now);
    const sessions = [];
    for (let i = 0; i < 3; i++) sessions.push((await handshake(cache)).session);
    assert.equal(cache.size, 2);
    assert.equal((await handshake(cache, sessions[0])).reused, false, "the oldest was dropped");
    assert.equal((await handshake(cache, sessions[2])).reused, true);
    now = 1_001;
    assert.equal((await handshake(cache, sessions[2])).reused, false, "expired");
  });

  test("a control connection's pinned sessions survive any flood of other handshakes and any age, until released", async () => {
    let now = 0;
    const cache = new TlsSessionCache(60_000, 2, () => now);
    const pins = new Set<string>();
    const pair = await tlsPair(context(), { maxVersion: "TLSv1.2", secureOptions: constants.SSL_OP_NO_TICKET }, cache.host(undefined, pins));
    const control = pair.client.getSession()!;
    pair.close();
    assert.equal(pins.size, 1);
    // Twenty strangers' handshakes through a cache of two: the unpinned ones evict each other only.
    for (let i = 0; i < 20; i++) await handshake(cache);
    assert.equal((await handshake(cache, control)).reused, true, "the control connection's session is still resumable");
    // A control connection older than the cache's lifetime (a long mirror): its data connections still resume it.
    now = 3 * 60_000;
    assert.equal((await handshake(cache, control)).reused, true, "past the lifetime, still resumable while pinned");
    cache.release(pins);
    for (let i = 0; i < 2; i++) await handshake(cache);
    assert.equal((await handshake(cache, control)).reused, false, "released with its connection");
  });

  test("an unknown session ID gets a full handshake", async () => {
    const cache = new TlsSessionCache(60_000);
    const other = new TlsSessionCache(60_000);
    const elsewhere = await handshake(other);
    assert.equal((await handshake(cache, elsewhere.session)).reused, false);
  });
});
