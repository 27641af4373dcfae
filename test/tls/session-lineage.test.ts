/**
 * The TLS sessions one client holds, over real handshakes (TLS 1.3 tickets, TLS 1.2 tickets, TLS
 * 1.2 session IDs): a connection that resumes one of them is recognised, one that resumes a session
 * the same node issued to someone else is not.
 */
import assert from "node:assert/strict";
import { constants, randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import type { ConnectionOptions } from "node:tls";
import { TlsSessionCache } from "../../src/tls/session-cache.js";
import { SessionLineage } from "../../src/tls/session-lineage.js";
import { parseSslSession } from "../../src/tls/ssl-session.js";
import type { Handshake } from "../../src/tls/upgrade.js";
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
        const pair = await tlsPair(context(), mode.options, cache.host((s) => lineage.addControl(s)));
        // TLS 1.3 delivers the client's session after the handshake.
        const session = await new Promise<Buffer>((resolve) => {
          const now = mode.options.minVersion === "TLSv1.3" ? undefined : pair.client.getSession();
          if (now) resolve(now);
          else pair.client.once("session", resolve);
        });
        lineage.adoptControl(pair.handshake);
        pair.close();
        return { lineage, session };
      };
      const mine = await control();
      const theirs = await control();
      const data = async (session: Buffer) => {
        const pair = await tlsPair(context(), { ...mode.options, session }, cache.host());
        try {
          assert.equal(pair.server.isSessionReused(), true, "the session resumed");
          return mine.lineage.resumedBy(pair.handshake);
        } finally {
          pair.close();
        }
      };
      assert.equal(await data(mine.session), true);
      assert.equal(await data(theirs.session), false);
      const fresh = await tlsPair(context(), mode.options, cache.host());
      assert.equal(mine.lineage.resumedBy(fresh.handshake), false, "a full handshake resumes nothing");
      fresh.close();
    });
  }

  /** A minimal DER SSL_SESSION (version, protocol, cipher, session ID, master key), as OpenSSL writes one. */
  function der(masterKey: Buffer, protocol = 0x0304): Buffer {
    const field = (tag: number, content: Buffer) => Buffer.concat([Buffer.from([tag, content.length]), content]);
    const body = Buffer.concat([
      field(0x02, Buffer.from([1])),
      field(0x02, Buffer.from([protocol >> 8, protocol & 0xff])),
      field(0x04, Buffer.from([0x13, 0x02])),
      field(0x04, Buffer.alloc(32, 7)),
      field(0x04, masterKey),
    ]);
    return Buffer.concat([Buffer.from([0x30, 0x81, body.length]), body]);
  }
  /** The handshake of a connection that resumed `session`. */
  const resumed = (session: Buffer): Handshake => ({ resumed: true, session });

  test("parses the protocol and master key of a session, and nothing from what is not one", () => {
    assert.deepEqual(parseSslSession(der(Buffer.alloc(48, 1), 0x0303)), { protocol: 0x0303, masterKey: Buffer.alloc(48, 1) });
    for (const bad of [Buffer.from("not a DER SSL_SESSION"), Buffer.alloc(0), Buffer.from([0x30, 0x82, 0xff, 0xff, 0x02]), der(Buffer.alloc(0))]) {
      assert.equal(parseSslSession(bad), null);
    }
  });

  test("keeps the control connection's sessions for good and the latest sessions issued on data connections", () => {
    const lineage = new SessionLineage();
    const control = der(randomBytes(48));
    lineage.addControl(control);
    const first = der(randomBytes(48));
    lineage.addData(first);
    assert.equal(lineage.resumedBy(resumed(first)), true);
    for (let i = 0; i < 100; i++) lineage.addData(der(randomBytes(48)));
    assert.equal(lineage.resumedBy(resumed(first)), false, "the oldest data session is forgotten");
    assert.equal(lineage.resumedBy(resumed(control)), true, "the control connection's is not");
    assert.equal(lineage.resumedBy(resumed(der(randomBytes(48)))), false);
    lineage.addControl(Buffer.from("garbage"));
    assert.equal(lineage.resumedBy(resumed(Buffer.from("garbage"))), false, "what does not parse never matches");
  });
});
