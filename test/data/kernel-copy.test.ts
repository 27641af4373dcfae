/**
 * The zero-copy addon over real loopback sockets and real files: exact bytes from and to a
 * position, cancellation, the stall timeout, peer resets, and which sockets qualify at all.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { constants as osConstants, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connect as tlsConnect, createServer as createTlsServer } from "node:tls";
import {
  KernelCopyError,
  kernelCopyAvailable,
  kernelCopyUnavailable,
  kernelCopiesInFlight,
  kernelSocketFd,
  receiveSocketToFile,
  sendFileToSocket,
  socketBytes,
} from "../../src/data/kernel-copy.js";
import { ensureSelfSigned } from "../../src/tls/self-signed.js";
import { checkLeaks } from "../helpers/leaks.js";
import { sha256 } from "../helpers/hash.js";

const MiB = 1024 * 1024;

/** A connected pair on loopback: `server` as the port pool accepts it (paused), `client` as a client has it. */
async function socketPair(): Promise<{ server: Socket; client: Socket; close(): void }> {
  const listener: Server = createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const accepted = new Promise<Socket>((resolve) => listener.once("connection", resolve));
  const client = connect((listener.address() as { port: number }).port, "127.0.0.1");
  client.pause();
  const server = await accepted;
  listener.close();
  for (const s of [server, client]) s.on("error", () => undefined);
  return { server, client, close: () => (server.destroy(), client.destroy()) };
}

/** Everything the socket receives until its peer's FIN. */
function drain(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  socket.resume();
  return new Promise((resolve, reject) => {
    socket.once("end", () => resolve(Buffer.concat(chunks)));
    socket.once("error", reject);
  });
}

describe("kernel copy (sendfile / splice)", { skip: !kernelCopyAvailable && "the zero-copy addon is not built here" }, () => {
  checkLeaks();
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "edgeftp-kcopy-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function withFile<T>(name: string, flags: string, fn: (h: FileHandle) => Promise<T>): Promise<T> {
    const handle = await open(join(dir, name), flags);
    try {
      return await fn(handle);
    } finally {
      await handle.close();
    }
  }

  test("sends a file from a position to its end, and counts the bytes as the socket's", async () => {
    const content = randomBytes(5 * MiB + 123);
    writeFileSync(join(dir, "down.bin"), content);
    const { server, client, close } = await socketPair();
    try {
      const received = drain(client);
      const sent = await withFile("down.bin", "r", (h) =>
        sendFileToSocket(server, { fd: h.fd, position: 1000 }, new AbortController().signal),
      );
      server.end();
      assert.equal(sent, content.length - 1000);
      assert.equal(sha256(await received), sha256(content.subarray(1000)));
      assert.equal(socketBytes(server).out, content.length - 1000);
    } finally {
      close();
    }
  });

  test("writes what the peer sends until its FIN into the file at a position, keeping the bytes before", async () => {
    writeFileSync(join(dir, "up.bin"), Buffer.alloc(10, 0x41));
    const upload = randomBytes(3 * MiB + 7);
    const { server, client, close } = await socketPair();
    try {
      client.end(upload);
      const written = await withFile("up.bin", "r+", (h) => receiveSocketToFile(server, { fd: h.fd, position: 4 }, new AbortController().signal));
      assert.deepEqual(written, { bytes: upload.length, full: false });
      const stored = readFileSync(join(dir, "up.bin"));
      assert.equal(stored.length, 4 + upload.length);
      assert.equal(stored.subarray(0, 4).toString(), "AAAA");
      assert.equal(sha256(stored.subarray(4)), sha256(upload));
      assert.equal(socketBytes(server).in, upload.length);
    } finally {
      close();
    }
  });

  test("with a limit, a receive writes that many bytes and says whether the peer has more", async () => {
    const upload = randomBytes(2 * MiB);
    for (const [limit, expected] of [
      [MiB + 1, { bytes: MiB + 1, full: true }],
      [2 * MiB, { bytes: 2 * MiB, full: false }], // exactly the limit, then FIN: not full
      [0, { bytes: 0, full: true }],
    ] as const) {
      const { server, client, close } = await socketPair();
      try {
        client.end(upload);
        const result = await withFile("limit.bin", "w", (h) =>
          receiveSocketToFile(server, { fd: h.fd, position: 0 }, new AbortController().signal, limit),
        );
        assert.deepEqual(result, expected, `limit ${limit}`);
        assert.equal(sha256(readFileSync(join(dir, "limit.bin"))), sha256(upload.subarray(0, expected.bytes)));
      } finally {
        close();
      }
    }
  });

  test("small copies (done at once on the event loop) move exact bytes, from and to a position", async () => {
    const content = randomBytes(4096 + 17);
    writeFileSync(join(dir, "small.bin"), content);
    const down = await socketPair();
    try {
      const received = drain(down.client);
      const sent = await withFile("small.bin", "r", (h) =>
        sendFileToSocket(down.server, { fd: h.fd, position: 17, size: content.length }, new AbortController().signal),
      );
      down.server.end();
      assert.equal(sent, 4096);
      assert.equal(sha256(await received), sha256(content.subarray(17)));
      assert.equal(socketBytes(down.server).out, 4096);
      assert.equal(kernelCopiesInFlight(), 0);
    } finally {
      down.close();
    }
    writeFileSync(join(dir, "small-up.bin"), Buffer.alloc(3, 0x41));
    const up = await socketPair();
    try {
      await new Promise<void>((resolve) => up.client.end(content, resolve));
      const written = await withFile("small-up.bin", "r+", (h) => receiveSocketToFile(up.server, { fd: h.fd, position: 3 }, new AbortController().signal));
      assert.deepEqual(written, { bytes: content.length, full: false });
      assert.equal(sha256(readFileSync(join(dir, "small-up.bin"))), sha256(Buffer.concat([Buffer.from("AAA"), content])));
      assert.equal(socketBytes(up.server).in, content.length);
    } finally {
      up.close();
    }
  });

  test("an upload partly there at once and partly later, or larger than one copy at once, arrives whole", async () => {
    for (const [first, later] of [
      [0, 5000],
      [3000, 200 * 1024],
      [300 * 1024, 0],
    ]) {
      const upload = randomBytes(first + later);
      const { server, client, close } = await socketPair();
      try {
        if (first > 0) await new Promise<void>((resolve) => client.write(upload.subarray(0, first), () => resolve()));
        const written = withFile("parts.bin", "w", (h) => receiveSocketToFile(server, { fd: h.fd, position: 0 }, new AbortController().signal));
        setTimeout(() => client.end(upload.subarray(first)), 20);
        assert.deepEqual(await written, { bytes: upload.length, full: false }, `${first} + ${later}`);
        assert.equal(sha256(readFileSync(join(dir, "parts.bin"))), sha256(upload));
      } finally {
        close();
      }
    }
  });

  test("a small upload at a limit says whether the peer has more, and a reset peer fails it", async () => {
    const upload = randomBytes(5000);
    for (const [limit, expected] of [
      [4000, { bytes: 4000, full: true }],
      [5000, { bytes: 5000, full: false }],
    ] as const) {
      const { server, client, close } = await socketPair();
      try {
        await new Promise<void>((resolve) => client.end(upload, resolve));
        const result = await withFile("small-limit.bin", "w", (h) =>
          receiveSocketToFile(server, { fd: h.fd, position: 0 }, new AbortController().signal, limit),
        );
        assert.deepEqual(result, expected, `limit ${limit}`);
        assert.equal(sha256(readFileSync(join(dir, "small-limit.bin"))), sha256(upload.subarray(0, expected.bytes)));
      } finally {
        close();
      }
    }
    const reset = await socketPair();
    try {
      reset.client.resetAndDestroy();
      await new Promise((r) => setTimeout(r, 20));
      await assert.rejects(
        withFile("reset-small.bin", "w", (h) => receiveSocketToFile(reset.server, { fd: h.fd, position: 0 }, new AbortController().signal)),
        (err: unknown) => err instanceof KernelCopyError && err.code === "ECONNRESET" && err.syscall === "splice",
      );
    } finally {
      reset.close();
    }
  });

  test("an abort while the peer reads nothing settles with ECANCELED, after the kernel let go", async () => {
    writeFileSync(join(dir, "big.bin"), Buffer.alloc(64 * MiB, 1));
    const { server, close } = await socketPair(); // the client never reads
    try {
      const controller = new AbortController();
      const settled = withFile("big.bin", "r", (h) => sendFileToSocket(server, { fd: h.fd, position: 0 }, controller.signal));
      setTimeout(() => controller.abort(), 50);
      await assert.rejects(settled, (err: unknown) => err instanceof KernelCopyError && err.code === "ECANCELED" && err.bytes > 0);
      assert.equal(kernelCopiesInFlight(), 0);
    } finally {
      close();
    }
  });

  test("a socket that makes no progress for its timeout fails with ETIMEDOUT, then gets its timeout back", async () => {
    writeFileSync(join(dir, "big2.bin"), Buffer.alloc(64 * MiB, 2));
    const { server, close } = await socketPair();
    try {
      server.setTimeout(300);
      await assert.rejects(
        withFile("big2.bin", "r", (h) => sendFileToSocket(server, { fd: h.fd, position: 0 }, new AbortController().signal)),
        (err: unknown) => err instanceof KernelCopyError && err.code === "ETIMEDOUT" && err.syscall === "sendfile",
      );
      assert.equal(server.timeout, 300);
      const idleUpload = withFile("idle.bin", "w", (h) => receiveSocketToFile(server, { fd: h.fd, position: 0 }, new AbortController().signal));
      await assert.rejects(idleUpload, (err: unknown) => err instanceof KernelCopyError && err.code === "ETIMEDOUT" && err.syscall === "splice");
    } finally {
      close();
    }
  });

  test("a trickling upload is taken as it comes and never mistaken for a stalled one", async () => {
    const { server, client, close } = await socketPair();
    try {
      server.setTimeout(300); // shorter than the whole upload, longer than any gap in it
      const piece = Buffer.alloc(1000, 0x74);
      let sent = 0;
      const trickle = setInterval(() => {
        if (sent++ < 12) client.write(piece);
        else {
          clearInterval(trickle);
          client.end();
        }
      }, 80);
      const result = await withFile("trickle.bin", "w", (h) => receiveSocketToFile(server, { fd: h.fd, position: 0 }, new AbortController().signal));
      assert.deepEqual(result, { bytes: 12 * piece.length, full: false });
      assert.equal(readFileSync(join(dir, "trickle.bin")).length, 12 * piece.length);
    } finally {
      close();
    }
  });

  test("a peer that resets the connection fails the send and the receive, with what was moved so far", async () => {
    writeFileSync(join(dir, "big3.bin"), Buffer.alloc(64 * MiB, 3));
    const down = await socketPair();
    try {
      const settled = withFile("big3.bin", "r", (h) => sendFileToSocket(down.server, { fd: h.fd, position: 0 }, new AbortController().signal));
      setTimeout(() => down.client.resetAndDestroy(), 50);
      await assert.rejects(settled, (err: unknown) => err instanceof KernelCopyError && ["ECONNRESET", "EPIPE"].includes(err.code));
    } finally {
      down.close();
    }
    const up = await socketPair();
    try {
      up.client.write(Buffer.alloc(MiB, 4), () => setTimeout(() => up.client.resetAndDestroy(), 50));
      await assert.rejects(
        withFile("reset.bin", "w", (h) => receiveSocketToFile(up.server, { fd: h.fd, position: 0 }, new AbortController().signal)),
        (err: unknown) => err instanceof KernelCopyError && err.code === "ECONNRESET",
      );
    } finally {
      up.close();
    }
  });

  test("the copy is cancelled when the socket is destroyed under it", async () => {
    writeFileSync(join(dir, "big4.bin"), Buffer.alloc(64 * MiB, 5));
    const { server, close } = await socketPair();
    try {
      const settled = withFile("big4.bin", "r", (h) => sendFileToSocket(server, { fd: h.fd, position: 0 }, new AbortController().signal));
      setTimeout(() => server.destroy(), 50);
      await assert.rejects(settled, (err: unknown) => err instanceof KernelCopyError && err.code === "ECANCELED");
    } finally {
      close();
    }
  });

  test("a copy that could not start for want of descriptors or support falls back; a failed transfer does not", () => {
    const { errno } = osConstants;
    assert.ok(kernelCopyUnavailable(new KernelCopyError(errno.EMFILE, "splice", 0)));
    assert.ok(kernelCopyUnavailable(new KernelCopyError(errno.EINVAL, "sendfile", 0)));
    assert.ok(!kernelCopyUnavailable(new KernelCopyError(errno.EINVAL, "sendfile", 4096)), "bytes already sent");
    assert.ok(!kernelCopyUnavailable(new KernelCopyError(errno.ECONNRESET, "sendfile", 0)), "the client's reset");
    assert.ok(!kernelCopyUnavailable(new KernelCopyError(errno.ECANCELED, "splice", 0)), "an ABOR");
    assert.ok(!kernelCopyUnavailable(new Error("EMFILE")));
  });

  test("only a plain socket whose bytes are all still in the kernel qualifies", async () => {
    const plain = await socketPair();
    try {
      assert.equal(typeof kernelSocketFd(plain.server), "number");
      plain.client.write("x");
      plain.server.resume(); // Node now reads: a splice would miss what it took
      await new Promise((r) => plain.server.once("data", r));
      assert.equal(kernelSocketFd(plain.server), null);
    } finally {
      plain.close();
    }
    const files = await ensureSelfSigned(join(dir, "tls"));
    const tlsServer = createTlsServer({ cert: readFileSync(files.cert), key: readFileSync(files.key) }, (s) => s.end());
    await new Promise<void>((resolve) => tlsServer.listen(0, "127.0.0.1", resolve));
    const secure = tlsConnect({ port: (tlsServer.address() as { port: number }).port, host: "127.0.0.1", rejectUnauthorized: false });
    try {
      await new Promise((r) => secure.once("secureConnect", r));
      assert.equal(kernelSocketFd(secure), null);
    } finally {
      secure.destroy();
      await new Promise((r) => tlsServer.close(r));
    }
  });
});
