/**
 * Hostile and clumsy clients: over-long lines, random bytes, pipelining, byte-by-byte commands,
 * resets in the middle of an upload, and passive ports left behind. After each, the server must
 * still serve a fresh client, and hold no passive port for sessions that are gone.
 */
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { checkLeaks } from "../helpers/leaks.js";
import { prng } from "../helpers/prng.js";
import { expectCode, RawClient, readAll } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";
import { TestConnections } from "../helpers/test-connections.js";
import { eventually, sleep, within } from "../helpers/wait.js";

/**
 * A socket that collects the raw reply text, for inputs after which the reply stream itself is
 * under test (RawClient would throw on a malformed line).
 */
class RawSocket {
  text = "";
  closed = false;
  private readonly listeners: Array<() => void> = [];
  private constructor(readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (t: string) => {
      this.text += t;
      this.notify();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      this.notify();
    });
  }
  static open(port: number): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: "127.0.0.1" });
      s.once("connect", () => resolve(new RawSocket(s)));
      s.once("error", reject);
    });
  }
  private notify(): void {
    for (const l of this.listeners.splice(0)) l();
  }
  /** Waits until `cond` holds or the socket closes, for at most `ms`. */
  async waitFor(cond: () => boolean, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond() && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received so far: ${JSON.stringify(this.text.slice(-300))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.listeners.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
  /** The complete reply lines received so far. */
  lines(): string[] {
    const end = this.text.lastIndexOf("\r\n");
    return end < 0 ? [] : this.text.slice(0, end).split("\r\n");
  }
}

describe("bad input", () => {
  let server: TestServer;
  const connections = new TestConnections();
  const raws: RawSocket[] = [];

  before(async () => {
    // Several failed PASS on one connection are the point of one test: no cap, no delay worth waiting for.
    server = await startServer({ limits: { maxLoginAttempts: 0, loginFailureDelay: 0.01 } });
  });
  after(async () => {
    await server.close();
  });
  checkLeaks();

  async function cleanup(): Promise<void> {
    for (const r of raws.splice(0)) r.socket.destroy();
    await connections.closeAll(server);
  }
  /** Runs a test body and always closes what it opened, before the leak check looks. */
  async function clean(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } finally {
      await cleanup();
    }
  }
  const track = (s: Socket): Socket => connections.track(s);
  const open = (): Promise<RawClient> => connections.open(server.port);
  async function raw(): Promise<RawSocket> {
    const r = await RawSocket.open(server.port);
    raws.push(r);
    await r.waitFor(() => r.text.includes("\r\n"), 5000);
    assert.match(r.text, /^220 /);
    return r;
  }

  /** A brand-new client can log in, list over a passive connection, and leave. */
  async function assertServesNewClient(): Promise<void> {
    const c = await RawClient.connect(server.port);
    try {
      await c.login(USER, PASSWORD);
      const data = await c.passive();
      const start = await c.command("NLST");
      expectCode(start, 150, "NLST on a fresh connection");
      const [, end] = await Promise.all([readAll(data), c.reply()]);
      expectCode(end, 226, "NLST done");
      expectCode(await c.command("QUIT"), 221, "QUIT");
      await c.closed();
    } finally {
      c.socket.destroy();
    }
  }

  /** Every passive port is given back once the sessions are gone. */
  async function assertPoolIdle(): Promise<void> {
    await eventually(() => server.node.sessions.size === 0, 3000);
    await eventually(() => server.node.portPool.stats().pendingReservations === 0, 3000);
    const stats = server.node.portPool.stats();
    assert.equal(server.node.sessions.size, 0, "sessions left");
    assert.equal(stats.pendingReservations, 0, "pending reservations left");
    assert.equal(stats.idlePorts, stats.listeningPorts, "every listener left is idle, free for the next reservation");
  }

  test("a 100 KB line without CRLF gets one 500; the connection and the server keep working", () =>
    clean(async () => {
      const c = await open();
      c.socket.write("NOOP " + "A".repeat(100 * 1024));
      const r = await c.reply();
      expectCode(r, 500, "over-long line");
      // The rest of the over-long line is dropped up to its end; the next line is a command again.
      c.socket.write("B".repeat(50 * 1024) + "\r\nNOOP\r\n");
      const next = await c.reply();
      expectCode(next, 200, "the line after the over-long one");
      expectCode(await c.command("SYST"), 215, "and the one after");
      await assertServesNewClient();
    }));

  test("a 4 MB flood without any line end gets exactly one 500, then the next line works", () =>
    clean(async () => {
      const c = await open();
      const chunk = "Z".repeat(64 * 1024);
      for (let i = 0; i < 64; i++) c.socket.write(chunk);
      c.socket.write("\r\nPWD\r\n");
      expectCode(await c.reply(10_000), 500, "over-long line");
      expectCode(await c.reply(10_000), 530, "PWD before login: the very next reply");
      await c.login(USER, PASSWORD);
      expectCode(await c.command("PWD"), 257, "PWD");
    }));

  test("random bytes (seeded) get well-formed error replies or a clean close; then a new client is served", () =>
    clean(async () => {
      for (const seed of [1, 7, 42, 1234, 99991]) {
        const rand = prng(seed);
        const garbage = Buffer.alloc(1000);
        for (let i = 0; i < garbage.length; i++) garbage[i] = Math.floor(rand() * 256);
        const r = await raw();
        r.socket.write(garbage);
        // Whatever Telnet state the garbage left: end the line, end any sub-negotiation, then a sentinel.
        r.socket.write(Buffer.concat([Buffer.from("\r\n"), Buffer.from([0xff, 0xf0]), Buffer.from("\r\nNOOP\r\n")]));
        await r.waitFor(() => /(^|\r\n)200 [^\r\n]*\r\n/.test(r.text), 10_000);
        const lines = r.lines();
        assert.ok(lines.length >= 2, `seed ${seed}: some replies`);
        assert.match(lines[0], /^220 /);
        for (const line of lines.slice(1)) {
          assert.match(line, /^\d{3} /, `seed ${seed}: well-formed single-line reply: ${JSON.stringify(line)}`);
        }
        const codes = lines.slice(1).map((l) => Number(l.slice(0, 3)));
        if (r.closed && codes[codes.length - 1] !== 200) {
          // A clean close is acceptable; a half-written reply is not.
          assert.ok(r.text.endsWith("\r\n"), `seed ${seed}: closed mid-reply`);
        } else {
          assert.equal(codes[codes.length - 1], 200, `seed ${seed}: the sentinel NOOP is answered`);
          for (const code of codes.slice(0, -1)) {
            assert.ok([500, 501, 502, 503, 530].includes(code), `seed ${seed}: garbage answered ${code}`);
          }
        }
        r.socket.destroy();
      }
      await assertServesNewClient();
    }));

  test("random bytes after login are answered as errors and do not touch the files", () =>
    clean(async () => {
      const c = await open();
      await c.login(USER, PASSWORD);
      const home = server.home(USER);
      const before = readdirSync(home).sort();
      c.socket.destroy();
      const rand = prng(2024);
      const r = await raw();
      r.socket.write(`USER ${USER}\r\nPASS ${PASSWORD}\r\n`);
      await r.waitFor(() => /\r\n230 /.test(r.text), 5000);
      const garbage = Buffer.alloc(1000);
      // Printable garbage with line ends: many short lines that each reach the dispatcher.
      for (let i = 0; i < garbage.length; i++) garbage[i] = rand() < 0.1 ? 0x0a : 0x21 + Math.floor(rand() * 94);
      r.socket.write(garbage);
      r.socket.write("\r\nNOOP\r\n");
      await r.waitFor(() => /\r\n200 [^\r\n]*\r\n/.test(r.text), 10_000);
      const codes = r
        .lines()
        .slice(3)
        .map((l) => {
          assert.match(l, /^\d{3} /, JSON.stringify(l));
          return Number(l.slice(0, 3));
        });
      assert.ok(codes.length > 10, "many lines were answered");
      for (const code of codes.slice(0, -1)) assert.ok(code >= 500 && code < 600, `garbage answered ${code}`);
      assert.deepEqual(readdirSync(home).sort(), before);
      await assertServesNewClient();
    }));

  test("50 pipelined commands in one write get 50 replies, in order", () =>
    clean(async () => {
      const c = await open();
      await c.login(USER, PASSWORD);
      const expected: Array<{ code: number; includes: string }> = [];
      const commands: string[] = [];
      for (let i = 0; i < 10; i++) {
        commands.push(`MKD pipe${i}`, `CWD pipe${i}`, "PWD", "CDUP", `SIZE nothing${i}`);
        expected.push(
          { code: 257, includes: `"/pipe${i}"` },
          { code: 250, includes: `/pipe${i}` },
          { code: 257, includes: `"/pipe${i}"` },
          { code: 200, includes: "" },
          { code: 550, includes: `nothing${i}` },
        );
      }
      assert.equal(commands.length, 50);
      c.socket.write(commands.map((l) => l + "\r\n").join(""));
      for (let i = 0; i < 50; i++) {
        const r = await c.reply();
        expectCode(r, expected[i].code, `reply ${i} to ${commands[i]}`);
        assert.ok(r.text.includes(expected[i].includes), `reply ${i} to ${commands[i]}: ${r.text}`);
      }
      expectCode(await c.command("NOOP"), 200, "nothing more was queued");
    }));

  test("300 pipelined commands (past the queue limit) are all answered in order, multi-line replies included", () =>
    clean(async () => {
      const c = await open();
      await c.login(USER, PASSWORD);
      const commands: string[] = [];
      for (let i = 0; i < 300; i++) commands.push(i % 10 === 9 ? "FEAT" : `MKD many${i}`);
      c.socket.write(commands.map((l) => l + "\r\n").join(""));
      for (let i = 0; i < 300; i++) {
        const r = await c.reply();
        if (i % 10 === 9) {
          expectCode(r, 211, `FEAT at ${i}`);
          assert.ok(r.lines.length > 3);
        } else {
          expectCode(r, 257, `MKD many${i}`);
          assert.ok(r.text.startsWith(`"/many${i}"`), r.text);
        }
      }
      expectCode(await c.command("NOOP"), 200, "NOOP after the burst");
      assert.ok(statSync(join(server.home(USER), "many298")).isDirectory());
    }));

  test("commands sent byte by byte, in separate packets, are understood (UTF-8 included)", () =>
    clean(async () => {
      const c = await open();
      c.socket.setNoDelay(true);
      const bytes = Buffer.from(`USER ${USER}\r\nPASS ${PASSWORD}\r\nMKD bytewise-é☃\r\nCWD bytewise-é☃\r\nPWD\r\n`, "utf8");
      for (const b of bytes) {
        c.socket.write(Buffer.from([b]));
        await sleep(1);
      }
      expectCode(await c.reply(), 331, "USER");
      expectCode(await c.reply(), 230, "PASS");
      const mkd = await c.reply();
      expectCode(mkd, 257, "MKD");
      assert.ok(mkd.text.startsWith('"/bytewise-é☃"'), mkd.text);
      expectCode(await c.reply(), 250, "CWD");
      const pwd = await c.reply();
      assert.ok(pwd.text.startsWith('"/bytewise-é☃"'), pwd.text);
      assert.ok(statSync(join(server.home(USER), "bytewise-é☃")).isDirectory());
    }));

  test("a path that is not UTF-8 (Latin-1 from an old client) is refused with 553, never stored under a lossy name", () =>
    clean(async () => {
      const c = await open();
      await c.login(USER, PASSWORD);
      const before = readdirSync(server.home(USER)).sort();
      const latin1 = (line: string) => c.socket.write(Buffer.from(`${line}\r\n`, "latin1"));
      latin1("MKD caf\u00e9");
      expectCode(await c.reply(), 553, "MKD of a Latin-1 name");
      for (const verb of ["STOR", "RETR", "DELE", "SIZE", "RNFR"]) {
        latin1(`${verb} r\u00e9sum\u00e9.txt`);
        expectCode(await c.reply(), 553, `${verb} of a Latin-1 name`);
      }
      assert.deepEqual(readdirSync(server.home(USER)).sort(), before);
      expectCode(await c.command("MKD caf\u00e9"), 257, "the same name in UTF-8");
      // U+FFFD sent as UTF-8 is a character like any other: a name holding it can be made and removed.
      expectCode(await c.command("MKD caf\ufffd"), 257, "MKD with U+FFFD");
      expectCode(await c.command("RMD caf\ufffd"), 250, "RMD with U+FFFD");
    }));

  test("commands before login get 530, and garbage does not log anyone in", () =>
    clean(async () => {
      const c = await open();
      for (const line of ["LIST", "RETR /etc/passwd", "STOR x", "CWD /", "PASV", "DELE x", "MKD x", "SITE CHMOD 777 x"]) {
        expectCode(await c.command(line), 530, line);
      }
      expectCode(await c.command("USER"), 501, "USER without a name");
      expectCode(await c.command(`USER ${USER}`), 331, "USER");
      expectCode(await c.command("PASS"), 530, "PASS with no password");
      expectCode(await c.command(`USER ${USER}`), 331, "USER");
      expectCode(await c.command(`PASS ${PASSWORD}x`), 530, "PASS with a suffix");
      expectCode(await c.command(`USER ${USER}`), 331, "USER");
      expectCode(await c.command(`PASS ${PASSWORD.slice(0, -1)}`), 530, "PASS truncated");
      expectCode(await c.command(`USER ${USER}`), 331, "USER");
      expectCode(await c.command(`PASS ${PASSWORD.toUpperCase()}`), 530, "PASS in upper case");
      expectCode(await c.command(`USER ${USER} `), 331, "USER with a trailing space");
      expectCode(await c.command(`PASS ${PASSWORD}`), 530, "the user is 'alice ', not alice");
      expectCode(await c.command("LIST"), 530, "still not logged in");
    }));

  test("an abrupt reset of both connections during an upload leaves the server serving, with nothing held", () =>
    clean(async () => {
      const c = await open();
      await c.login(USER, PASSWORD);
      expectCode(await c.command("TYPE I"), 200, "TYPE I");
      const data = track(await c.passive());
      expectCode(await c.command("STOR reset-upload.bin"), 150, "STOR");
      const chunk = Buffer.alloc(256 * 1024, 0x61);
      for (let i = 0; i < 4; i++) data.write(chunk);
      await eventually(() => existsSync(join(server.home(USER), "reset-upload.bin")), 3000);
      await sleep(20);
      data.resetAndDestroy();
      c.socket.resetAndDestroy();
      await c.closed();
      await assertPoolIdle();
      await assertServesNewClient();
    }));

  test("a reset of the data connection alone during an upload fails the transfer; the session stays usable", () =>
    clean(async () => {
      const c = await open();
      await c.login(USER, PASSWORD);
      expectCode(await c.command("TYPE I"), 200, "TYPE I");
      const data = track(await c.passive());
      expectCode(await c.command("STOR reset-data.bin"), 150, "STOR");
      data.write(Buffer.alloc(128 * 1024, 0x62));
      await eventually(() => existsSync(join(server.home(USER), "reset-data.bin")), 3000);
      await sleep(20);
      data.resetAndDestroy();
      // 426 (connection closed; transfer aborted), never 226: the file is incomplete.
      expectCode(await c.reply(10_000), 426, "a reset upload");
      expectCode(await c.command("NOOP"), 200, "NOOP after the failed upload");
      const again = track(await c.passive());
      expectCode(await c.command("STOR reset-data.bin"), 150, "STOR again");
      again.end("complete");
      expectCode(await c.reply(), 226, "STOR again done");
      assert.equal(statSync(join(server.home(USER), "reset-data.bin")).size, "complete".length);
    }));

  test("a data connection reset before its STOR arrives: 426, never 226", () =>
    clean(async () => {
      const c = await open();
      await c.login(USER, PASSWORD);
      expectCode(await c.command("TYPE I"), 200, "TYPE I");
      const data = track(await c.passive());
      await eventually(() => server.node.portPool.stats().pendingReservations === 0); // accepted, held for the transfer command
      data.resetAndDestroy();
      await sleep(50);
      expectCode(await c.command("STOR early-reset.bin"), 150, "STOR");
      expectCode(await c.reply(10_000), 426, "the data connection is gone");
      expectCode(await c.command("NOOP"), 200, "NOOP after it");
    }));

  test("closing the control connection during an upload closes the data connection too (and crashes nothing)", () =>
    clean(async () => {
      // Repeated: the close can land at any point of the upload's start (file being opened,
      // pipeline running); each must end with the data connection closed by the server.
      for (let i = 0; i < 10; i++) {
        const c = await open();
        await c.login(USER, PASSWORD);
        expectCode(await c.command("TYPE I"), 200, "TYPE I");
        const data = track(await c.passive());
        expectCode(await c.command(`STOR orphan-${i}.bin`), 150, "STOR");
        data.write(Buffer.alloc(64 * 1024, 0x63));
        const dataClosed = new Promise<void>((resolve) => data.once("close", () => resolve()));
        data.resume();
        c.socket.destroy();
        await c.closed();
        await within(dataClosed, 5000, "the server closed the orphaned data connection");
      }
      await assertPoolIdle();
      await assertServesNewClient();
    }));

  test("500 PASV/EPSV across sessions, then QUIT: the passive port pool is back to zero", () =>
    clean(async () => {
      const sessions = await Promise.all(Array.from({ length: 5 }, () => open()));
      for (const c of sessions) await c.login(USER, PASSWORD);
      await Promise.all(
        sessions.map(async (c, n) => {
          for (let i = 0; i < 100; i++) {
            const verb = (i + n) % 2 ? "PASV" : "EPSV";
            const r = await c.command(verb);
            expectCode(r, verb === "PASV" ? 227 : 229, `${verb} ${i} of session ${n}`);
          }
        }),
      );
      // One reservation per session, however many PASV/EPSV it sent.
      assert.equal(server.node.portPool.stats().pendingReservations, 5);
      assert.equal(server.node.portPool.stats().refusals, 0);
      // A failed transfer command keeps it; QUIT gives it back.
      expectCode(await sessions[0].command("RETR no-such-file"), 550, "RETR missing");
      for (const c of sessions) {
        expectCode(await c.command("QUIT"), 221, "QUIT");
        await c.closed();
      }
      await assertPoolIdle();
    }));

  test("sessions that vanish (reset, REIN, a never-connected EPSV) give their passive ports back", () =>
    clean(async () => {
      const a = await open();
      await a.login(USER, PASSWORD);
      const b = await open();
      await b.login(USER, PASSWORD);
      const d = await open();
      await d.login(USER, PASSWORD);
      for (let i = 0; i < 50; i++) expectCode(await a.command("PASV"), 227, "PASV");
      for (let i = 0; i < 50; i++) expectCode(await b.command("EPSV"), 229, "EPSV");
      expectCode(await d.command("EPSV"), 229, "EPSV");
      assert.equal(server.node.portPool.stats().pendingReservations, 3);
      a.socket.resetAndDestroy();
      await a.closed();
      expectCode(await b.command("REIN"), 220, "REIN");
      await eventually(() => server.node.portPool.stats().pendingReservations === 1, 3000);
      assert.equal(server.node.portPool.stats().pendingReservations, 1, "reset and REIN released theirs");
      // A data connection made but never used: released when the session goes.
      const data = track(await d.passive());
      const closed = new Promise<void>((resolve) => data.once("close", () => resolve()));
      data.resume();
      d.socket.destroy();
      await d.closed();
      await within(closed, 5000, "held data connection closed with its session");
      await b.close();
      await assertPoolIdle();
      await assertServesNewClient();
    }));
});
