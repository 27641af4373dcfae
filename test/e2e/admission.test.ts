/**
 * Admission before the greeting and the login-failure defence, over real sockets on loopback,
 * with addresses in 127.0.0.0/8 standing for different clients: a banned address gets 421 before
 * any greeting (and a bare close on the implicit TLS port, with no handshake) while others are
 * served, until the ban runs out; per-IP, node-wide and per-account limits; the per-connection
 * cap on failed logins; the growing delay after each failed PASS, with replies still in order.
 *
 * bans.allowList defaults to loopback, so the ban tests set it to "" to make 127.0.0.x bannable.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { openAccountStore } from "../../src/accounts/open.js";
import type { AccountStore, NewAccount } from "../../src/accounts/types.js";
import { resolveDataPaths } from "../../src/config/load.js";
import { checkLeaks } from "../helpers/leaks.js";
import { expectCode, RawClient, type FtpReply } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";
import { sleep, waitFor, within } from "../helpers/wait.js";

/** What a bare connection got first: the first reply line, or "" when the server closed without a byte. */
interface FirstContact {
  line: string;
  socket: Socket;
  /** Resolves when the connection is gone (the server closed it, or we did). */
  closed: Promise<void>;
}

/**
 * Connects from `localAddress` and waits for the first reply line, or for the server to close the
 * connection without sending one. Never throws on a 421, unlike RawClient.connect.
 */
function firstContact(port: number, localAddress: string): Promise<FirstContact> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1", localAddress });
    let text = "";
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no first contact from ${localAddress} within 5 s`));
    }, 5000);
    const done = (line: string) => {
      clearTimeout(timer);
      socket.off("data", onData);
      resolve({ line, socket, closed });
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8");
      const end = text.indexOf("\r\n");
      if (end >= 0) done(text.slice(0, end));
    };
    socket.on("data", onData);
    socket.on("error", () => {});
    void closed.then(() => done(text));
  });
}

/** Asserts a 421 before any greeting, and that the server then closes the connection. */
async function expectRefused(port: number, localAddress: string, pattern: RegExp): Promise<string> {
  const contact = await firstContact(port, localAddress);
  assert.match(contact.line, /^421 /, `${localAddress}: expected 421 before any greeting, got ${JSON.stringify(contact.line)}`);
  assert.match(contact.line, pattern);
  await within(contact.closed, 5000, `${localAddress}: the refused connection is closed by the server`);
  return contact.line;
}

async function failLogin(client: RawClient, user = USER): Promise<FtpReply> {
  expectCode(await client.command(`USER ${user}`), 331, "USER");
  return client.command("PASS not-the-password");
}

/** Waits until the node's guard counts nothing (every registration released), bounded. */
async function guardEmpties(server: TestServer): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const counts = await server.node.guard.connections.counts();
    if (counts.connections === 0 && counts.sessions === 0) return;
    if (Date.now() > deadline) assert.fail(`registrations left after every client closed: ${JSON.stringify(counts)}`);
    await sleep(10);
  }
}

async function closeAll(clients: RawClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.close()));
}

/**
 * A node that bans an address at its 4th failure, and 12 connections from `address` that have sent
 * USER: ready to send their guesses at once.
 */
async function guessers(loginFailureDelay: number, address: string): Promise<{ server: TestServer; clients: RawClient[] }> {
  const server = await startServer({ bans: { allowList: "", threshold: 4, window: 60, duration: 60 }, limits: { loginFailureDelay } });
  const clients: RawClient[] = [];
  for (let i = 0; i < 12; i++) clients.push(await RawClient.connect(server.port, { localAddress: address }));
  for (const client of clients) expectCode(await client.command(`USER ${USER}`), 331, "USER");
  return { server, clients };
}

describe("admission before the greeting, and the login-failure defence", () => {
  checkLeaks();

  test("an address that keeps failing is banned: 421 before any greeting (no TLS handshake on the implicit port), others unaffected, until the ban ends", async () => {
    const server = await startServer({
      bans: { allowList: "", threshold: 4, window: 60, duration: 1.5 },
      limits: { loginFailureDelay: 0.01, maxLoginAttempts: 10 },
    });
    const clients: RawClient[] = [];
    try {
      // Failures count per address, across connections; a good login in between resets nothing.
      const a = await RawClient.connect(server.port, { localAddress: "127.0.0.2" });
      const b = await RawClient.connect(server.port, { localAddress: "127.0.0.2" });
      clients.push(a, b);
      expectCode(await failLogin(a), 530, "failure 1");
      expectCode(await failLogin(a), 530, "failure 2");
      const good = await RawClient.connect(server.port, { localAddress: "127.0.0.2" });
      await good.login(USER, PASSWORD);
      await good.command("QUIT");
      await good.closed();
      expectCode(await failLogin(b), 530, "failure 3 (another connection; after a good login)");
      const banning = await failLogin(b);
      expectCode(banning, 421, "failure 4 bans the address");
      assert.match(banning.text, /failed logins from your address/);
      await b.closed();

      // The connection admitted before the ban gets no more guesses, even with the right password.
      expectCode(await a.command(`USER ${USER}`), 331, "USER on the older connection");
      const late = await a.command(`PASS ${PASSWORD}`);
      expectCode(late, 421, "PASS from a banned address");
      assert.match(late.text, /banned/);
      await a.closed();

      // New connections: 421 before any greeting on port 21; a bare close on the implicit port.
      await expectRefused(server.port, "127.0.0.2", /temporarily banned/);
      const implicit = await firstContact(server.node.implicitPort, "127.0.0.2");
      assert.equal(implicit.line, "", "the implicit TLS port closes a banned address without a byte");
      await implicit.closed;

      // Everyone else is served, on both ports.
      const other = await RawClient.connect(server.port, { localAddress: "127.0.0.1" });
      clients.push(other);
      await other.login(USER, PASSWORD);
      expectCode(await other.command("PWD"), 257, "PWD from an unaffected address");
      const secure = tlsConnect({ port: server.node.implicitPort, host: "127.0.0.1", rejectUnauthorized: false });
      secure.on("error", () => {});
      const greeting = await within(
        new Promise<string>((resolve) => secure.once("data", (d: Buffer) => resolve(d.toString("utf8")))),
        5000,
        "implicit TLS greeting",
      );
      assert.match(greeting, /^220 /);
      secure.destroy();
      assert.deepEqual(
        (await server.node.guard.bans.list()).map((ban) => ban.ip),
        ["127.0.0.2"],
      );

      // The ban runs out by itself (duration 1.5 s): poll with fresh connections, bounded.
      const started = Date.now();
      for (;;) {
        const contact = await firstContact(server.port, "127.0.0.2");
        if (contact.line.startsWith("220 ")) {
          contact.socket.destroy();
          await contact.closed;
          break;
        }
        assert.match(contact.line, /^421 .*banned/);
        await contact.closed;
        assert.ok(Date.now() - started < 6000, "the ban ended within its duration (plus slack)");
        await sleep(100);
      }
      const back = await RawClient.connect(server.port, { localAddress: "127.0.0.2" });
      clients.push(back);
      await back.login(USER, PASSWORD);
      await closeAll(clients);
      await guardEmpties(server);
    } finally {
      await closeAll(clients);
      await server.close();
    }
  });

  test("guesses sent at once on many connections: once they have banned the address, every answer still to come is 421", async () => {
    const { server, clients } = await guessers(0.001, "127.0.0.7");
    try {
      // Twelve different wrong passwords, all verified at once.
      const replies = await Promise.all(clients.map((client, i) => client.command(`PASS wrong-${i}`)));
      const codes = replies.map((reply) => reply.code);
      const answered = codes.filter((code) => code === 530).length;
      assert.ok(answered >= 1 && answered <= 3, `530 only below the threshold of 4: ${codes.join(" ")}`);
      assert.equal(codes.filter((code) => code === 421).length, 12 - answered, codes.join(" "));
      await Promise.all(clients.filter((_, i) => codes[i] === 421).map((client) => client.closed()));
    } finally {
      await closeAll(clients);
      await server.close();
    }
  });

  test("guesses sent at once: a right password verified after they banned the address gets the very reply of the wrong ones", async () => {
    const { server, clients } = await guessers(0.05, "127.0.0.9");
    try {
      // Eleven wrong passwords and, last, the right one: all sent before any is verified.
      const started = performance.now();
      const replies = await Promise.all(
        clients.map(async (client, i) => {
          const reply = await client.command(`PASS ${i === 11 ? PASSWORD : `wrong-${i}`}`);
          return { ...reply, ms: performance.now() - started };
        }),
      );
      const right = replies[11]!;
      const lateWrong = replies.slice(0, 11).filter((reply) => reply.code === 421);
      assert.ok(lateWrong.length > 0, replies.map((r) => r.code).join(" "));
      expectCode(right, 421, "the right password, verified once the address is banned");
      assert.equal(right.text, lateWrong[0]!.text, "no other text than the wrong guesses' 421");
      assert.ok(right.ms >= 50, `answered after the failure delay, as the wrong ones (${right.ms.toFixed(0)} ms)`);
      await Promise.all(clients.filter((_, i) => replies[i]!.code === 421).map((client) => client.closed()));
    } finally {
      await closeAll(clients);
      await server.close();
    }
  });

  test("per-IP limit: 3 connections from 127.0.0.3 are served, the 4th gets 421 before the greeting; other addresses are fine", async () => {
    const server = await startServer({ limits: { maxConnectionsPerIp: 3 } });
    const clients: RawClient[] = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await RawClient.connect(server.port, { localAddress: "127.0.0.3" }));
      const text = await expectRefused(server.port, "127.0.0.3", /Too many connections from your address/);
      assert.match(text, /limit 3/);
      for (let i = 0; i < 3; i++) clients.push(await RawClient.connect(server.port, { localAddress: "127.0.0.4" }));
      await clients[5].login(USER, PASSWORD);
      // A connection that leaves (QUIT) frees its slot.
      await clients[0].command("QUIT");
      await clients[0].closed();
      const again = await RawClient.connect(server.port, { localAddress: "127.0.0.3" });
      clients.push(again);
      await again.login(USER, PASSWORD);
      await expectRefused(server.port, "127.0.0.3", /Too many connections from your address/);
      await closeAll(clients);
      await guardEmpties(server);
    } finally {
      await closeAll(clients);
      await server.close();
    }
  });

  test("global limit: past limits.maxConnections every address gets 421 before the greeting, until one leaves", async () => {
    const server = await startServer({ limits: { maxConnections: 3 } });
    const clients: RawClient[] = [];
    try {
      for (const ip of ["127.0.0.5", "127.0.0.6", "127.0.0.7"]) clients.push(await RawClient.connect(server.port, { localAddress: ip }));
      await expectRefused(server.port, "127.0.0.8", /Too many connections to this server/);
      await expectRefused(server.port, "127.0.0.5", /Too many connections to this server/);
      // An abrupt disconnect (no QUIT) releases the slot too, once the server has seen it.
      await clients[1].close();
      const deadline = Date.now() + 5000;
      while ((await server.node.guard.connections.counts()).connections >= 3) {
        assert.ok(Date.now() < deadline, "the slot of a client that left comes back");
        await sleep(10);
      }
      const next = await RawClient.connect(server.port, { localAddress: "127.0.0.8" });
      clients.push(next);
      await next.login(USER, PASSWORD);
      await expectRefused(server.port, "127.0.0.9", /Too many connections to this server/);
      await closeAll(clients);
      await guardEmpties(server);
    } finally {
      await closeAll(clients);
      await server.close();
    }
  });

  test("sessions per account, checked after the password: the third login of an account limited to 2 gets 421; other accounts are fine; QUIT and REIN free a slot", async () => {
    const server = await startServer({ limits: { maxSessionsPerAccount: 1 } }, [
      { name: "bob", password: "builder", maxSessions: 2 },
      { name: "carol", password: "singer" },
      { name: "dave", password: "diver", maxSessions: 0 },
    ]);
    const clients: RawClient[] = [];
    const open = async () => {
      const c = await RawClient.connect(server.port);
      clients.push(c);
      return c;
    };
    try {
      const bob1 = await open();
      await bob1.login("bob", "builder");
      const bob2 = await open();
      await bob2.login("bob", "builder");
      // A wrong password is a plain failure: the limit is not revealed to a guesser.
      const guesser = await open();
      expectCode(await failLogin(guesser, "bob"), 530, "wrong password for a full account");
      const bob3 = await open();
      expectCode(await bob3.command("USER bob"), 331, "USER bob");
      const refused = await bob3.command("PASS builder");
      expectCode(refused, 421, "third session of bob");
      assert.match(refused.text, /Too many sessions for this account \(limit 2\)/);
      await bob3.closed();

      // The node-wide default (1) applies to an account without its own limit; 0 means unlimited.
      const carol1 = await open();
      await carol1.login("carol", "singer");
      const carol2 = await open();
      expectCode(await carol2.command("USER carol"), 331, "USER carol");
      expectCode(await carol2.command("PASS singer"), 421, "second session of carol (node default 1)");
      await carol2.closed();
      for (let i = 0; i < 3; i++) await (await open()).login("dave", "diver");
      const alice = await open();
      await alice.login(USER, PASSWORD);

      // QUIT frees bob's slot at once; so does REIN (logged out, connection kept).
      await bob1.command("QUIT");
      await bob1.closed();
      const bob4 = await open();
      await bob4.login("bob", "builder");
      expectCode(await bob2.command("REIN"), 220, "REIN");
      const bob5 = await open();
      await bob5.login("bob", "builder");
      expectCode(await bob2.command("USER bob"), 331, "USER bob after REIN");
      expectCode(await bob2.command("PASS builder"), 421, "bob2 logging in again is now the third");
      assert.deepEqual(await server.node.guard.connections.counts().then((c) => c.accounts), 4);
      await closeAll(clients);
      await guardEmpties(server);
    } finally {
      await closeAll(clients);
      await server.close();
    }
  });

  test("limits.maxLoginAttempts: the last allowed failure gets 421 and the connection is closed", async () => {
    const server = await startServer({ limits: { maxLoginAttempts: 2, loginFailureDelay: 0.01 } });
    const clients: RawClient[] = [];
    try {
      const c = await RawClient.connect(server.port);
      clients.push(c);
      expectCode(await failLogin(c), 530, "failure 1");
      const last = await failLogin(c);
      expectCode(last, 421, "failure 2");
      assert.match(last.text, /Too many failed logins/);
      await c.closed();
      // Loopback is allow-listed by default: a new connection is served and can log in.
      const next = await RawClient.connect(server.port);
      clients.push(next);
      await next.login(USER, PASSWORD);
      // REIN does not buy more guesses: the count is per connection.
      expectCode(await next.command("REIN"), 220, "REIN");
      expectCode(await failLogin(next), 530, "failure 1 after REIN");
      expectCode(await failLogin(next), 421, "failure 2 after REIN");
      await next.closed();
      await guardEmpties(server);
    } finally {
      await closeAll(clients);
      await server.close();
    }
  });

  test("the delay after a failed PASS grows with each failure, and pipelined commands are still answered in order", async () => {
    const delay = 0.15;
    const server = await startServer({ limits: { loginFailureDelay: delay, maxLoginAttempts: 5 } });
    const clients: RawClient[] = [];
    try {
      const c = await RawClient.connect(server.port);
      clients.push(c);
      const lines = [
        `USER ${USER}`,
        "PASS wrong-1",
        `USER ${USER}`,
        "PASS wrong-2",
        `USER ${USER}`,
        "PASS wrong-3",
        "NOOP",
        `USER ${USER}`,
        `PASS ${PASSWORD}`,
        "PWD",
      ];
      const sent = performance.now();
      c.socket.write(lines.map((l) => `${l}\r\n`).join(""));
      const got: Array<{ code: number; at: number }> = [];
      for (let i = 0; i < lines.length; i++) {
        const r = await c.reply(10_000);
        got.push({ code: r.code, at: performance.now() });
      }
      assert.deepEqual(
        got.map((g) => g.code),
        [331, 530, 331, 530, 331, 530, 200, 331, 230, 257],
        "one reply per command, in the order sent",
      );
      const failures = [got[1].at, got[3].at, got[5].at];
      const gaps = [failures[0] - sent, failures[1] - failures[0], failures[2] - failures[1]];
      // Each failure waits n × delay (timers never fire early; allow 1 ms of rounding).
      gaps.forEach((gap, i) => assert.ok(gap >= (i + 1) * delay * 1000 - 1, `failure ${i + 1} answered after ${gap.toFixed(0)} ms`));
      assert.ok(gaps[1] > gaps[0] && gaps[2] > gaps[1], `the delay grows: ${gaps.map((g) => g.toFixed(0)).join(", ")} ms`);
      assert.ok(got[9].at - sent < 10_000, "and it stays bounded");
      // A client that leaves during the delay leaves nothing behind (checkLeaks: no timer, no socket).
      expectCode(await c.command("REIN"), 220, "REIN");
      c.send(`USER ${USER}`);
      c.send("PASS wrong-4");
      expectCode(await c.reply(), 331, "USER");
      await sleep(20);
      await c.close();
      await guardEmpties(server);
    } finally {
      await closeAll(clients);
      await server.close();
    }
  });
});

describe("an account withdrawn while its sessions are logged in", () => {
  checkLeaks();

  /** A node with `accounts`, and a connection of its own to the node's account database, as the CLI has; both closed after `body`. */
  async function withCliStore(accounts: NewAccount[], body: (server: TestServer, cli: AccountStore) => Promise<void>): Promise<void> {
    const server = await startServer({}, accounts);
    const cli = openAccountStore({ driver: "sqlite", sqlitePath: resolveDataPaths(server.config).sqlitePath });
    try {
      await body(server, cli);
    } finally {
      await cli.close();
      await server.close();
    }
  }

  test("user set --disable and user remove (another connection to the store, as the CLI) end those sessions at their next command with 421", () =>
    withCliStore([{ name: "bob", password: "builder" }], async (server, cli) => {
      const alice = await RawClient.connect(server.port);
      await alice.login(USER, PASSWORD);
      const bob = await RawClient.connect(server.port);
      await bob.login("bob", "builder");
      expectCode(await alice.command("PWD"), 257, "before");

      // A change to another account does not touch this session.
      await cli.update("bob", { quotaBytes: 1000 });
      expectCode(await alice.command("PWD"), 257, "another account changed");

      await cli.update(USER, { enabled: false });
      expectCode(await alice.command("PWD"), 421, "disabled");
      await alice.closed();

      await cli.remove("bob");
      expectCode(await bob.command("PWD"), 421, "removed");
      await bob.closed();
      await waitFor(() => server.node.sessions.size === 0, "both sessions ended");
    }));

  test("a command that needs no login (NOOP, STAT path) does not keep a withdrawn account's session alive", () =>
    withCliStore([], async (server, cli) => {
      const alice = await RawClient.connect(server.port);
      await alice.login(USER, PASSWORD);
      await cli.update(USER, { enabled: false });
      // STAT with a path lists the account's files over the control connection: it must not.
      expectCode(await alice.command("STAT /"), 421, "STAT / after disable");
      await alice.closed();
      await waitFor(() => server.node.sessions.size === 0, "session ended");
    }));
});
