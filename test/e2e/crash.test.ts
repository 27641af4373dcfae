/**
 * kill -9 during an overwrite: the real CLI server is killed while a large upload replaces a file.
 * The previous version must be intact byte for byte; the temporary file it leaves is never visible
 * to a client, and the restarted server removes it at the first login that serves that home.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { RESERVED_PREFIX } from "../../src/storage/local.js";
import { checkLeaks } from "../helpers/leaks.js";
import { RawClient, readAll } from "../helpers/raw-client.js";
import { waitFor } from "../helpers/wait.js";

/** The built CLI: this file runs as dist/test/e2e/crash.test.js. */
const CLI = fileURLToPath(new URL("../../src/cli.cjs", import.meta.url));
const USER = "alice";
const PASSWORD = "wonderland";

/** The environment without EDGEFTP_* variables, so only the flags apply. */
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("EDGEFTP_")));

interface RunningServer {
  child: ChildProcess;
  port: number;
  /** Its output so far (JSON log lines on stdout, anything on stderr), for failure messages. */
  output: string[];
  /** Settles with the exit signal (or code) once the process is gone and its pipes are closed. */
  exited: Promise<NodeJS.Signals | number | null>;
}

/**
 * Runs `edgeftp serve` on loopback with a kernel-chosen port, read back from its log line
 * `edgeftp listening on port N`. The process is killed when the test ends if it still runs.
 */
async function startCli(t: TestContext, dataDir: string): Promise<RunningServer> {
  const pasv = 20000 + Math.floor(Math.random() * 120) * 100;
  const child = spawn(
    process.execPath,
    [
      CLI,
      "serve",
      "--host", "127.0.0.1",
      "--port", "0",
      "--data-dir", dataDir,
      "--tls-implicit", "false",
      "--active-port", "0",
      "--pasv-ports", `${pasv}-${pasv + 99}`,
      "--log-level", "info",
    ],
    { env: ENV, stdio: ["ignore", "pipe", "pipe"] },
  );
  const output: string[] = [];
  servers.push(output);
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => output.push(chunk));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once("close", (code, signal) => resolve(signal ?? code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    lines.on("line", (line) => {
      output.push(line);
      const m = /edgeftp listening on port (\d+)/.exec(line);
      if (m) resolve(Number(m[1]));
    });
    void exited.then((how) => reject(new Error(`server exited (${how}) before listening: ${output.join("\n")}`)));
  });
  // The line listener keeps draining its log, so the pipe never fills.
  return { child, port, output, exited };
}

/** A data directory of its own for a test, removed when the test ends. */
function testDataDir(t: TestContext, prefix: string): string {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  return dataDir;
}

/** Runs an `edgeftp` command on `dataDir` (`user add …`) to its end; it must succeed. */
function edgeftpOn(dataDir: string, ...args: string[]): void {
  const run = spawnSync(process.execPath, [CLI, ...args, "--data-dir", dataDir], { env: ENV, encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
}

function tempFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith(RESERVED_PREFIX));
}

/** Output of every server this file started, shown when the test fails. */
const servers: string[][] = [];

checkLeaks();

/** `body`, with the output of every server this file started added to its failure's message. */
async function showingServerLogs(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const logs = servers.map((lines, i) => `--- server ${i + 1}:\n${lines.join("\n")}`).join("\n");
    throw Object.assign(err as Error, { message: `${(err as Error).message}\n${logs}` });
  }
}

test("kill -9 mid-overwrite: the old file is intact, the temporary file is invisible and removed at restart", (t) =>
  showingServerLogs(() => killDuringOverwrite(t)));

async function killDuringOverwrite(t: TestContext): Promise<void> {
  const dataDir = testDataDir(t, "edgeftp-crash-");
  edgeftpOn(dataDir, "user", "add", USER, "--password", PASSWORD);
  const home = join(dataDir, "homes", USER);

  // 1. A complete upload: the version that must survive.
  const original = randomBytes(3 * 1024 * 1024 + 11);
  const first = await startCli(t, dataDir);
  const c = await RawClient.binarySession(first.port, USER, PASSWORD);
  let data = await c.openData();
  c.send("STOR precious.bin");
  assert.equal((await c.reply()).code, 150);
  data.end(original);
  assert.equal((await c.reply()).code, 226);
  data.destroy();
  assert.ok(readFileSync(join(home, "precious.bin")).equals(original));

  // 2. An overwrite that never finishes: part of a much larger file, then the server is killed.
  data = await c.openData();
  const dataClosed = new Promise((resolve) => data.once("close", resolve));
  c.send("STOR precious.bin");
  assert.equal((await c.reply()).code, 150);
  data.write(randomBytes(2 * 1024 * 1024));
  await waitFor(() => tempFiles(home).some((name) => statSync(join(home, name)).size > 0), "the upload's bytes to reach its temporary file");
  first.child.kill("SIGKILL");
  assert.equal(await first.exited, "SIGKILL");
  data.destroy();
  await dataClosed;
  await c.close();

  assert.ok(readFileSync(join(home, "precious.bin")).equals(original), "the previous version is byte-identical");
  const leftovers = tempFiles(home);
  assert.equal(leftovers.length, 1, "the killed upload left its temporary file");

  // 3. Restart: the leftover is removed when the home is first served, and is never listed.
  const second = await startCli(t, dataDir);
  assert.deepEqual(tempFiles(home), leftovers, "nothing is touched before a login serves this home");
  const again = await RawClient.connect(second.port);
  await again.login(USER, PASSWORD);
  assert.deepEqual(tempFiles(home), [], "gone from disk after the first login");
  assert.equal((await again.command("TYPE I")).code, 200);
  data = await again.openData();
  again.send("LIST -a");
  const listing = (await readAll(data)).toString();
  assert.equal((await again.reply()).code, 150);
  assert.equal((await again.reply()).code, 226);
  assert.match(listing, /precious\.bin/);
  assert.ok(!listing.includes(RESERVED_PREFIX), listing);
  data = await again.openData();
  again.send("RETR precious.bin");
  const downloaded = await readAll(data);
  assert.equal((await again.reply()).code, 150);
  assert.equal((await again.reply()).code, 226);
  assert.ok(downloaded.equals(original));
  assert.equal((await again.command("QUIT")).code, 221);
  await again.closed();

  // A graceful stop this time.
  second.child.kill("SIGTERM");
  assert.equal(await second.exited, 0);
}

test("kill -9 mid-upload of a new file: the restarted node measures the quota usage again, so the partial file counts", (t) =>
  showingServerLogs(() => killDuringNewUpload(t)));

async function killDuringNewUpload(t: TestContext): Promise<void> {
  const dataDir = testDataDir(t, "edgeftp-crash-quota-");
  edgeftpOn(dataDir, "user", "add", USER, "--password", PASSWORD);
  edgeftpOn(dataDir, "user", "set", USER, "--quota-bytes", "1000000");
  const home = join(dataDir, "homes", USER);
  const uncleanWarning = (s: RunningServer) => s.output.some((line) => line.includes("did not stop cleanly"));

  // 1. 600 kB of a new file arrive (its usage is recorded only when the upload ends), then the node is killed.
  const first = await startCli(t, dataDir);
  assert.ok(!uncleanWarning(first), "a first start finds nothing to complain of");
  const c = await RawClient.binarySession(first.port, USER, PASSWORD);
  let data = await c.openData();
  const dataClosed = new Promise((resolve) => data.once("close", resolve));
  c.send("STOR partial.bin");
  assert.equal((await c.reply()).code, 150);
  data.write(randomBytes(600_000));
  await waitFor(() => {
    try {
      return statSync(join(home, "partial.bin")).size === 600_000;
    } catch {
      return false;
    }
  }, "the upload's bytes to reach the file");
  first.child.kill("SIGKILL");
  assert.equal(await first.exited, "SIGKILL");
  data.destroy();
  await dataClosed;
  await c.close();

  // 2. Restarted, the node says so, and the kept partial file counts: another 600 kB no longer fit in 1 MB.
  const second = await startCli(t, dataDir);
  const reported = uncleanWarning(second);
  const again = await RawClient.binarySession(second.port, USER, PASSWORD);
  data = await again.openData();
  again.send("STOR more.bin");
  assert.equal((await again.reply()).code, 150);
  data.end(randomBytes(600_000));
  assert.equal((await again.reply()).code, 552, "over the quota once the partial file is counted");
  assert.ok(reported, "the unclean stop is reported");
  data.destroy();
  assert.equal((await again.command("QUIT")).code, 221);
  await again.closed();

  // 3. After a clean stop, the next start has nothing to report.
  second.child.kill("SIGTERM");
  assert.equal(await second.exited, 0);
  const third = await startCli(t, dataDir);
  assert.ok(!uncleanWarning(third), "a clean stop is not reported");
  third.child.kill("SIGTERM");
  assert.equal(await third.exited, 0);
}

test("SIGTERM drains: a download under way ends with its 226, a second SIGTERM aborts what is left, and the node exits 0", (t) =>
  showingServerLogs(() => drainOnSigterm(t)));

async function drainOnSigterm(t: TestContext): Promise<void> {
  const dataDir = testDataDir(t, "edgeftp-drain-");
  // Two accounts at 1 MiB/s each: a download of ~1.5 s, and one far longer.
  const sizes = { short: 1.5 * 1024 * 1024, long: 32 * 1024 * 1024 };
  for (const [name, size] of Object.entries(sizes)) {
    edgeftpOn(dataDir, "user", "add", name, "--password", PASSWORD, "--bandwidth-down", "1M");
    writeFileSync(join(dataDir, "homes", name, "file.bin"), randomBytes(size));
  }
  const server = await startCli(t, dataDir);
  const downloads = await Promise.all(
    Object.keys(sizes).map(async (name) => {
      const c = await RawClient.binarySession(server.port, name, PASSWORD);
      const data = await c.openData();
      c.send("RETR file.bin");
      const received = readAll(data);
      assert.equal((await c.reply()).code, 150);
      return { c, received };
    }),
  );
  const [short, long] = downloads;

  server.child.kill("SIGTERM");
  assert.equal((await short.c.reply(10_000)).code, 226, "the short download finishes");
  assert.equal((await short.received).length, sizes.short);
  assert.equal((await short.c.reply()).code, 421);
  assert.equal(server.child.exitCode, null, "the node still serves the long download");

  server.child.kill("SIGTERM");
  assert.equal((await long.c.reply(10_000)).code, 426, "the long download aborted by the second signal");
  assert.equal((await long.c.reply()).code, 421);
  assert.ok((await long.received).length < sizes.long);
  assert.equal(await server.exited, 0);
}
