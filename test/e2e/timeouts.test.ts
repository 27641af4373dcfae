import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { describe, test } from "node:test";
import { checkLeaks } from "../helpers/leaks.js";
import { RawClient, readAll } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER } from "../helpers/server.js";

/**
 * Connects and writes `next(i)` every `everyMs` (the i-th piece; null: nothing more) until the
 * server closes the connection; resolves with what it said and how many pieces went out.
 */
function dripUntilClosed(port: number, everyMs: number, next: (i: number) => string | Buffer | null): Promise<{ received: string; sent: number }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let received = "";
    let sent = 0;
    socket.setEncoding("utf8");
    socket.on("data", (d) => (received += d));
    const drip = setInterval(() => {
      const piece = next(sent);
      if (piece !== null && !socket.destroyed) {
        socket.write(piece);
        sent++;
      }
    }, everyMs);
    socket.on("close", () => {
      clearInterval(drip);
      resolve({ received, sent });
    });
  });
}

describe("timeouts and command rate", () => {
  checkLeaks();

  test("a slow-loris client (one byte every 200 ms) is cut off by the login timeout", async () => {
    const server = await startServer({ timeouts: { login: 1 } });
    try {
      const bytes = Buffer.from("USER alice\r\nPASS wonderland\r\n");
      const { received, sent } = await dripUntilClosed(server.port, 200, (i) => (i < bytes.length ? bytes.subarray(i, i + 1) : null));
      assert.ok(sent < bytes.length, "the server closed before the slow client finished logging in");
      assert.match(received, /^220 /);
      assert.match(received, /421 Timeout/);
    } finally {
      await server.close();
    }
  });

  test("REIN before any login does not push the login deadline back", async () => {
    const server = await startServer({ timeouts: { login: 1 } });
    try {
      // A REIN every 300 ms, 30 at most (9 s): each would restart a 1 s deadline, were it restarted.
      const { received, sent } = await dripUntilClosed(server.port, 300, (i) => (i < 30 ? "REIN\r\n" : null));
      assert.ok(sent < 30, `still open after ${sent} REINs`);
      assert.match(received, /421 Timeout/);
    } finally {
      await server.close();
    }
  });

  test("REIN after a login older than the login timeout gives a fresh login deadline, not an expired one", async () => {
    const server = await startServer({ timeouts: { login: 2 } });
    try {
      const c = await RawClient.connect(server.port);
      await c.login(USER, PASSWORD);
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal((await c.command("REIN")).code, 220);
      await new Promise((r) => setTimeout(r, 500));
      // Counted from the connect, the deadline would have passed before the REIN.
      await c.login(USER, PASSWORD);
      assert.equal((await c.command("NOOP")).code, 200);
      await c.close();
    } finally {
      await server.close();
    }
  });

  test("implicit FTPS: the login timeout counts from the connect, its handshake included", async () => {
    const server = await startServer({ timeouts: { login: 3 }, tls: { implicit: true, implicitPort: 0 } });
    try {
      const tcp = connect(server.node.implicitPort, "127.0.0.1");
      await new Promise((resolve) => tcp.once("connect", resolve));
      // The ClientHello waits 2.5 s of the 3 s: the session's own deadline must not start afresh after it.
      await new Promise((r) => setTimeout(r, 2500));
      const secure = tlsConnect({ socket: tcp, rejectUnauthorized: false });
      secure.on("error", () => {});
      await new Promise((resolve) => secure.once("secureConnect", resolve));
      const secured = Date.now();
      let received = "";
      secure.setEncoding("utf8");
      secure.on("data", (d: string) => (received += d));
      await new Promise((resolve) => secure.once("close", resolve));
      assert.match(received, /^220 [^]*421 Timeout/);
      // What is left of the 3 s, plus the wheel's tick (1 s): within ~1.5 s of the handshake; afresh
      // after it, the deadline would come 3 s and more after it.
      assert.ok(Date.now() - secured < 2700, `closed ${Date.now() - secured} ms after the handshake`);
    } finally {
      await server.close();
    }
  });

  test("a login timeout during AUTH TLS's handshake closes without a clear reply the TLS client would choke on", async () => {
    const server = await startServer({ timeouts: { login: 1, data: 10 } });
    try {
      const socket = connect(server.port, "127.0.0.1");
      let received = "";
      let asked = false;
      socket.setEncoding("utf8");
      socket.on("data", (d: string) => {
        received += d;
        if (!asked && received.endsWith("\r\n")) socket.write("AUTH TLS\r\n");
        asked = true;
      });
      // No ClientHello after the 234: the login deadline ends the connection.
      await new Promise((resolve) => socket.once("close", resolve));
      assert.match(received, /^220 [^\n]*\r\n234 [^\n]*\r\n$/, JSON.stringify(received));
    } finally {
      await server.close();
    }
  });

  test("an idle logged-in session is closed with 421", async () => {
    const server = await startServer({ timeouts: { idle: 1 } });
    try {
      const client = await RawClient.connect(server.port);
      await client.login(USER, PASSWORD);
      const reply = await client.reply(5000);
      assert.equal(reply.code, 421);
      await client.closed();
    } finally {
      await server.close();
    }
  });

  test("the idle timer does not run during a long transfer; a stalled one is aborted with 426", async () => {
    const server = await startServer({ timeouts: { idle: 1, stall: 1 } });
    writeFileSync(join(server.home(USER), "big.bin"), randomBytes(32 * 1024 * 1024));
    try {
      const client = await RawClient.connect(server.port);
      await client.login(USER, PASSWORD);
      await client.command("TYPE I");
      // A reader slower than the idle timeout, but never stalled for a whole second.
      let data = await client.passive();
      client.send("RETR big.bin");
      assert.equal((await client.reply()).code, 150);
      data.pause();
      const slowRead = (async () => {
        let total = 0;
        const until = Date.now() + 2500;
        while (Date.now() < until) {
          const chunk = data.read(256 * 1024);
          if (chunk) total += chunk.length;
          await new Promise((r) => setTimeout(r, 100));
        }
        data.resume();
        return total + (await readAll(data)).length;
      })();
      assert.equal(await slowRead, 32 * 1024 * 1024);
      assert.equal((await client.reply()).code, 226, "the control connection outlived the idle timeout during the transfer");

      // A reader that stops entirely: the stall timeout aborts the transfer, the session lives on.
      data = await client.passive();
      client.send("RETR big.bin");
      assert.equal((await client.reply()).code, 150);
      data.pause();
      const aborted = await client.reply(10_000);
      assert.equal(aborted.code, 426);
      assert.equal(aborted.text, "Transfer stalled (no progress for 1 s); aborted.", "the reply says why");
      data.destroy();
      assert.equal((await client.command("NOOP")).code, 200);
      await client.close();
    } finally {
      await server.close();
    }
  });

  test("a transfer whose data connection never comes gets 425 after timeouts.data", async () => {
    const server = await startServer({ timeouts: { data: 1 } });
    writeFileSync(join(server.home(USER), "a.txt"), "x");
    try {
      const client = await RawClient.connect(server.port);
      await client.login(USER, PASSWORD);
      assert.equal((await client.command("EPSV")).code, 229);
      client.send("RETR a.txt");
      assert.equal((await client.reply()).code, 150);
      assert.equal((await client.reply(5000)).code, 425);
      assert.equal(server.node.portPool.stats().pendingReservations, 0);
      await client.close();
    } finally {
      await server.close();
    }
  });

  test("a command flood is slowed to limits.commandsPerSecond, every command still answered in order", async () => {
    const server = await startServer({ limits: { commandsPerSecond: 20 } });
    try {
      const client = await RawClient.connect(server.port);
      const start = Date.now();
      client.socket.write("NOOP\r\n".repeat(80));
      for (let i = 0; i < 80; i++) assert.equal((await client.reply(10_000)).code, 200);
      // 80 commands with a burst of 40 at 20/s take at least 2 s: a lower bound, which cannot flake.
      assert.ok(Date.now() - start >= 1800, `took ${Date.now() - start} ms`);
      await client.close();
    } finally {
      await server.close();
    }
  });
});
