/**
 * TLS uploads decrypted into reused buffers, over real loopback TLS (server side wrapped on an
 * accepted socket, as for PROT P) into real files: exact bytes at a position, bytes that arrived
 * before the switch, reading paused while the disk lags, the quota's room, and a client that
 * resets mid-upload.
 */
import assert from "node:assert/strict";
import { pbkdf2, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { TLSSocket } from "node:tls";
import { receiveTlsToFile, tlsReceiveAvailable } from "../../src/data/tls-receive.js";
import type { UploadAllowance } from "../../src/data/upload-allowance.js";
import { checkLeaks } from "../helpers/leaks.js";
import { selfSignedContext, tlsPair } from "../helpers/tls-pair.js";
import { sha256 } from "../helpers/hash.js";

const KiB = 1024;
const MiB = 1024 * KiB;

describe("TLS uploads into reused buffers", { skip: !tlsReceiveAvailable && "this Node has no onread for server-side TLS sockets" }, () => {
  checkLeaks();
  const context = selfSignedContext();
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "edgeftp-tlsrecv-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs receiveTlsToFile into a fresh file `name` (at `position`) while `send` drives the client. */
  async function receive(name: string, position: number, allowance: UploadAllowance | null, send: (client: TLSSocket, server: TLSSocket, tcp: Socket) => void) {
    const handle = await open(join(dir, name), "w+");
    const { server, client, tcp, close } = await tlsPair(context());
    try {
      send(client, server, tcp);
      const result = await receiveTlsToFile(server, { fd: handle.fd, position }, allowance).then(
        (bytes) => ({ bytes, error: null }),
        (error: Error) => ({ bytes: -1, error }),
      );
      return { ...result, server };
    } finally {
      close();
      await handle.close();
    }
  }

  test("writes every byte at the file's position, across many gathered writes", async () => {
    const content = randomBytes(5 * MiB + 321);
    const { bytes, error } = await receive("big.bin", 1000, null, (client) => client.end(content));
    assert.equal(error, null);
    assert.equal(bytes, content.length);
    const stored = readFileSync(join(dir, "big.bin"));
    assert.equal(stored.length, 1000 + content.length);
    assert.equal(sha256(stored.subarray(1000)), sha256(content));
  });

  test("an empty upload (the client closes right after the handshake) resolves 0 and writes nothing", async () => {
    const { bytes, error } = await receive("empty.bin", 0, null, (client) => client.end());
    assert.equal(error, null);
    assert.equal(bytes, 0);
    assert.equal(readFileSync(join(dir, "empty.bin")).length, 0);
  });

  test("keeps what the socket read before the switch, in order", async () => {
    const content = randomBytes(300 * KiB);
    const handle = await open(join(dir, "early.bin"), "w+");
    const { server, client, close } = await tlsPair(context());
    try {
      client.end(content);
      // Let the whole upload arrive and be decrypted into the stream's own buffer first.
      server.read(0);
      for (let i = 0; i < 200 && server.readableLength < server.readableHighWaterMark; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(server.readableLength > 0, "nothing was buffered before the switch");
      assert.equal(await receiveTlsToFile(server, { fd: handle.fd, position: 0 }, null), content.length);
      assert.equal(sha256(readFileSync(join(dir, "early.bin"))), sha256(content));
    } finally {
      close();
      await handle.close();
    }
  });

  test("pauses reading while both buffers wait for a busy disk, and loses nothing", async () => {
    const content = randomBytes(12 * MiB);
    let pauses = 0;
    // Keep the thread pool (where the file writes run) busy for a while.
    const busy = Array.from({ length: 8 }, () => new Promise((r) => pbkdf2("x", "y", 100_000, 32, "sha256", r)));
    const { bytes, error } = await receive("slow.bin", 0, null, (client, server) => {
      const pause = server.pause.bind(server);
      server.pause = () => (pauses++, pause());
      client.end(content);
    });
    await Promise.all(busy);
    assert.equal(error, null);
    assert.equal(bytes, content.length);
    assert.ok(pauses > 0, "reading never paused");
    assert.equal(sha256(readFileSync(join(dir, "slow.bin"))), sha256(content));
  });

  test("within a quota: writes exactly the room and refuses the rest", async () => {
    const room = 700 * KiB + 5;
    const refusal = new Error("quota exceeded");
    let reserved = 0;
    const allowance: UploadAllowance = {
      allow(max) {
        const fit = Math.min(max, room - reserved);
        reserved += fit;
        return fit;
      },
      refuse: () => refusal,
    };
    const content = randomBytes(2 * MiB);
    const { error } = await receive("quota.bin", 0, allowance, (client) => client.end(content));
    assert.equal(error, refusal);
    assert.equal(reserved, room);
    const stored = readFileSync(join(dir, "quota.bin"));
    assert.equal(stored.length, room);
    assert.equal(sha256(stored), sha256(content.subarray(0, room)));
  });

  test("a client that resets mid-upload rejects it, after the last write", async () => {
    const { error } = await receive("reset.bin", 0, null, (client, _server, tcp) => {
      client.write(randomBytes(1 * MiB), () => setTimeout(() => tcp.resetAndDestroy(), 20));
    });
    assert.ok(error instanceof Error, "the upload must not resolve as complete");
    assert.equal((error as NodeJS.ErrnoException).code, "ECONNRESET");
  });
});
