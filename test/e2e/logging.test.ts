/**
 * What a session logs (conventions §9): at debug, one line per command with its reply code (the
 * password masked); at info, one line per transfer and none per command.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect as connectTcp, type Socket } from "node:net";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { connect as connectTls } from "node:tls";
import { openAccountStore } from "../../src/accounts/open.js";
import { resolveDataPaths } from "../../src/config/load.js";
import { FaultyStorageFactory } from "../helpers/faulty-storage.js";
import { checkLeaks } from "../helpers/leaks.js";
import { expectCode, RawClient, readAll } from "../helpers/raw-client.js";
import { PASSWORD, startServer, USER } from "../helpers/server.js";
import { eventually, sleep } from "../helpers/wait.js";

/** A log destination that keeps the parsed JSON lines. */
function captureLog(): { stream: Writable; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString("utf8").split("\n")) if (text.trim()) lines.push(JSON.parse(text) as Record<string, unknown>);
      done();
    },
  });
  return { stream, lines };
}

/** Logs in, downloads one file and quits; resolves once the server has closed the session. */
async function oneDownload(port: number): Promise<void> {
  const client = await RawClient.connect(port);
  await client.login(USER, PASSWORD);
  assert.equal((await client.command("TYPE I")).code, 200);
  const data = await client.passive();
  const received = readAll(data);
  assert.equal((await client.command("RETR hello.txt")).code, 150);
  assert.equal((await client.reply()).code, 226);
  assert.equal((await received).toString(), "hello");
  assert.equal((await client.command("QUIT")).code, 221);
  await client.closed();
  await client.close();
}

describe("session logging", () => {
  checkLeaks();

  for (const level of ["debug", "info"] as const) {
    test(`at ${level}: ${level === "debug" ? "one line per command with its reply, the password masked" : "a line per transfer, none per command"}`, async () => {
      const log = captureLog();
      const server = await startServer({ log: { level } }, [], { logTo: log.stream });
      try {
        writeFileSync(join(server.home(USER), "hello.txt"), "hello");
        await oneDownload(server.port);
        await server.node.close();
        const commands = log.lines.filter((l) => l.msg === "command");
        const transfers = log.lines.filter((l) => l.msg === "transfer complete");
        assert.equal(transfers.length, 1);
        assert.equal(transfers[0].bytesOut, 5);
        assert.deepEqual([transfers[0].user, transfers[0].command, transfers[0].transfer], [USER, "RETR", "/hello.txt"]);
        if (level === "info") {
          assert.equal(commands.length, 0);
        } else {
          assert.deepEqual(
            commands.map((l) => [l.verb, l.reply]),
            [["USER", 331], ["PASS", 230], ["TYPE", 200], ["EPSV", 229], ["RETR", 226], ["QUIT", 221]],
          );
          assert.equal(commands[1].arg, "****");
          assert.ok(commands.every((l) => typeof l.ms === "number"));
        }
        assert.ok(!JSON.stringify(log.lines).includes(PASSWORD), "the password is never logged");
      } finally {
        await server.close();
      }
    });
  }

  test("at debug, a secret is masked however the client spells the command (leading space, tab, lower case, ACCT)", async () => {
    const log = captureLog();
    const server = await startServer({ log: { level: "debug" } }, [], { logTo: log.stream });
    try {
      const c = await RawClient.connect(server.port);
      const replies: string[] = [];
      // PA\u00df and PA\u017f\u017f: toUpperCase() makes them PASS, which the node must not run nor log;
      // \x7f and a zero-width space before PASS: no command, and no argument logged.
      for (const line of [" PASS LeakA1", "PASS\tLeakB2", "pass LeakC3", "USER x", "ACCT LeakD4", "\u001bPASS LeakE5", "PA\u00df LeakF6", "PA\u017f\u017f LeakG7", "\u007fPASS LeakH8", "\u200bPASS LeakI9"]) {
        replies.push(JSON.stringify(await c.command(line)));
      }
      await c.close();
      await server.node.close();
      const text = JSON.stringify(log.lines);
      for (const secret of ["LeakA1", "LEAKB2", "LeakB2", "LeakC3", "LeakD4", "LeakE5", "LeakF6", "LeakG7", "LeakH8", "LeakI9"]) {
        assert.ok(!text.includes(secret) && !text.includes(secret.toUpperCase()), `${secret} logged`);
        assert.ok(!replies.join("").toUpperCase().includes(secret.toUpperCase()), `${secret} quoted back in a reply`);
      }
      assert.ok(log.lines.some((l) => l.msg === "command" && l.verb === "USER"), "commands are logged at debug");
    } finally {
      await server.close();
    }
  });

  test("an unexpected storage error (EIO) is 451 for the client and logged for the operator, MFMT and SITE CHMOD's too", async () => {
    const log = captureLog();
    const faults = new FaultyStorageFactory();
    const server = await startServer({ log: { level: "warn" } }, [], { logTo: log.stream, storage: faults });
    writeFileSync(join(server.home(USER), "f.txt"), "x");
    faults.plan.inject({ op: "delete", error: "io" }).inject({ op: "setModifiedTime", error: "io" }).inject({ op: "chmod", error: "io" });
    try {
      const c = await RawClient.connect(server.port);
      await c.login(USER, PASSWORD);
      for (const line of ["DELE f.txt", "MFMT 20200102030405 f.txt", "SITE CHMOD 600 f.txt"]) expectCode(await c.command(line), 451, line);
      await c.close();
      await server.node.close();
      const logged = log.lines.filter((l) => l.msg === "storage error").map((l) => l.verb);
      assert.deepEqual(logged, ["DELE", "MFMT", "SITE"], JSON.stringify(log.lines));
    } finally {
      await server.close();
    }
  });

  test("a password typed at the USER prompt is not logged at info: only what could be an account's name is", async () => {
    const log = captureLog();
    const server = await startServer({ log: { level: "info" }, limits: { loginFailureDelay: 0.01 } }, [], { logTo: log.stream });
    try {
      const c = await RawClient.connect(server.port);
      expectCode(await c.command("USER MyS3cret Pass!"), 331, "USER");
      expectCode(await c.command("PASS whatever"), 530, "PASS");
      await c.close();
      await server.node.close();
      const failed = log.lines.find((l) => l.msg === "login failed");
      assert.equal(failed?.user, "(not an account name)", JSON.stringify(log.lines));
      assert.ok(!JSON.stringify(log.lines).includes("S3cret"));
    } finally {
      await server.close();
    }
  });

  test("a login whose home cannot be used gets 530, never its password quoted back, and the operator's log says why", async () => {
    const log = captureLog();
    const server = await startServer({ log: { level: "warn" } }, [], { logTo: log.stream });
    const homeless = join(server.dataDir, "not-a-directory");
    writeFileSync(homeless, "a file where the home should be");
    try {
      const store = openAccountStore({ driver: "sqlite", sqlitePath: resolveDataPaths(server.config).sqlitePath });
      await store.create({ name: "homeless", password: "Sekr3tPass!", home: homeless });
      await store.close();
      const c = await RawClient.connect(server.port);
      assert.equal((await c.command("USER homeless")).code, 331);
      const reply = await c.command("PASS Sekr3tPass!");
      assert.equal(reply.code, 530, reply.text);
      assert.ok(!reply.text.includes("Sekr3t"), reply.text);
      await c.close();
      await server.node.close();
      assert.ok(log.lines.some((l) => l.msg === "login refused: the account's home cannot be used" && l.user === "homeless"), JSON.stringify(log.lines));
      assert.ok(!JSON.stringify(log.lines).includes("Sekr3t"));
    } finally {
      await server.close();
    }
  });
});

describe("implicit FTPS handshake failures in the log", () => {
  checkLeaks();

  test("a client refused by TLS is logged at info with the error and its address; a connect-and-leave probe is not", async () => {
    const log = captureLog();
    // TLS 1.2 at most: a TLS 1.3-only client is refused (protocol_version).
    const server = await startServer({ log: { level: "info" }, tls: { maxVersion: "TLSv1.2" } }, [], { logTo: log.stream });
    try {
      const failures = () => log.lines.filter((l) => l.msg === "implicit TLS handshake failed");
      await closedBy(connectTcp(server.node.implicitPort, "127.0.0.1", function (this: Socket) {
        this.end();
      }));
      await sleep(200);
      assert.equal(failures().length, 0, JSON.stringify(log.lines));
      await closedBy(connectTls({ host: "127.0.0.1", port: server.node.implicitPort, rejectUnauthorized: false, minVersion: "TLSv1.3" }));
      assert.ok(await eventually(() => failures().length > 0), "the failed handshake is logged at info");
      const [line] = failures();
      assert.equal(line.level, 30);
      assert.equal(line.peer, "127.0.0.1");
      assert.match(String(line.err), /unsupported protocol/);
    } finally {
      await server.close();
    }
  });
});

/** Resolves once `socket` has failed or closed. */
function closedBy(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.on("error", () => resolve());
    socket.on("close", () => resolve());
  });
}

