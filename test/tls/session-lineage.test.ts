/**
 * The TLS sessions one client holds, over real handshakes (TLS 1.3 tickets, TLS 1.2 tickets, TLS
 * 1.2 session IDs): a connection that resumes one of them is recognised, one that resumes a session
 * the same node issued to someone else is not.
 */
import assert from "node:assert/strict";
import { constants } from "node:crypto";
import { describe, test } from "node:test";
import type { ConnectionOptions } from "node:tls";
import { TlsSessionCache } from "../../src/tls/session-cache.js";
import { SessionLineage } from "../../src/tls/session-lineage.js";
import { checkLeaks } from "../helpers/leaks.js";
import { selfSignedContext, tlsPair } from "../helpers/tls-pair.js";

describe("TLS session lineage", () => {
  checkLeaks();
  const context = selfSignedContext();

  const modes: Array<{ name: string; options: ConnectionOptions }> = [
    { name: "TLS 1.3 (tickets)", options: { maxVersion: "TLSv1.3", minVersion: "TLSv1.3" } },
    { name: "TLS 1.2 with tickets", options: { maxVersion: "TLSv1.2" } },
    { name: "TLS 1.2 by session ID", options: { maxVersion: "TLSv1.2", secureOptions: constants.SSL_OP_NO_TICKET } },
  ];

  for (const mode of modes) {
    test(`${mode.name}: a data connection resuming the client's session is recognised, another client's is not`, async () => {
      const cache = new TlsSessionCache(60_000);
      /** A control connection: its lineage and the session its client keeps. */
      const control = async () => {
        const lineage = new SessionLineage();
        const pair = await tlsPair(context(), mode.options, cache.host((s) => lineage.add(s)));
        // TLS 1.3 delivers the client's session after the handshake.
        const session = await new Promise<Buffer>((resolve) => {
          const now = mode.options.minVersion === "TLSv1.3" ? undefined : pair.client.getSession();
          if (now) resolve(now);
          else pair.client.once("session", resolve);
        });
        lineage.adopt(pair.server);
        pair.close();
        return { lineage, session };
      };
      const mine = await control();
      const theirs = await control();
      const data = async (session: Buffer) => {
        const pair = await tlsPair(context(), { ...mode.options, session }, cache.host());
        try {
          assert.equal(pair.server.isSessionReused(), true, "the session resumed");
          return mine.lineage.resumedBy(pair.server);
        } finally {
          pair.close();
        }
      };
      assert.equal(await data(mine.session), true);
      assert.equal(await data(theirs.session), false);
      const fresh = await tlsPair(context(), mode.options, cache.host());
      assert.equal(mine.lineage.resumedBy(fresh.server), false, "a full handshake resumes nothing");
      fresh.close();
    });
  }

  test("a session that does not parse adds nothing", () => {
    const lineage = new SessionLineage();
    lineage.add(Buffer.from("not a DER SSL_SESSION"));
    lineage.add(Buffer.alloc(0));
    lineage.add(Buffer.from([0x30, 0x82, 0xff, 0xff, 0x02]));
    assert.equal((lineage as unknown as { digests: Set<string> }).digests.size, 0);
  });
});
