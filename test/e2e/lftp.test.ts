/**
 * The real lftp binary against a real node: put/get in passive (PASV, EPSV) and active (PORT) mode,
 * `mirror -R` of a generated 200-file tree (nested directories, empty files, spaces and UTF-8 in
 * names) and `mirror` back, and the file-management commands (mkdir -p, mv, rm -r, cls, ls).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sha256 } from "../helpers/hash.js";
import { checkLeaks } from "../helpers/leaks.js";
import { childEnv, lftpCommands, run, show } from "../helpers/run-client.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";

/** An lftp command argument in double quotes (our temp paths hold no quotes or backslashes). */
const q = (s: string) => {
  assert.doesNotMatch(s, /["\\]/);
  return `"${s}"`;
};

/** Every entry below `root`: relative path → "dir" or the file's sha256. */
function snapshotTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string, depth: number) => {
    assert.ok(depth < 20, "tree too deep");
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        out.set(path, "dir");
        walk(path, depth + 1);
      } else if (entry.isFile()) {
        out.set(path, sha256(readFileSync(join(root, path))));
      } else {
        out.set(path, "other");
      }
    }
  };
  walk("", 0);
  return out;
}

const sorted = (m: Map<string, string>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/** A fixed modification time for the generated tree, so that preserving it (MFMT / MLSD modify) is visible. */
const TREE_MTIME = new Date("2021-03-04T05:06:07Z");

/** Writes 200 files (nested dirs, empty files, spaces, UTF-8 names) plus an empty directory under `root`. */
function generateTree(root: string): { files: number; bytes: number } {
  const dirs = ["", "alpha", "alpha/beta", "alpha/beta/gamma deep", "dir with spaces", "dir with spaces/ñandú", "日本", "z/y/x/w"];
  for (const d of dirs) mkdirSync(join(root, d), { recursive: true });
  mkdirSync(join(root, "empty dir"), { recursive: true });
  const files: Array<[string, number]> = [["café ü.txt", 17]];
  for (let i = 1; i < 200; i++) {
    const dir = dirs[i % dirs.length];
    const kind = i % 10;
    const name =
      kind === 0 ? `café ü ${i}.txt` : kind === 1 ? `with space ${i}.bin` : kind === 2 ? `empty-${i}` : kind === 3 ? `日本語 ファイル-${i}.dat` : `file-${i}.bin`;
    const size = kind === 2 ? 0 : i % 37 === 5 ? 300_000 + i * 1000 : i % 7 === 0 ? 1 : (i * 7919) % 30_000;
    files.push([dir ? `${dir}/${name}` : name, size]);
  }
  let bytes = 0;
  for (const [rel, size] of files) {
    const path = join(root, rel);
    writeFileSync(path, randomBytes(size));
    utimesSync(path, TREE_MTIME, TREE_MTIME);
    bytes += size;
  }
  // Permission bits that lftp carries over with SITE CHMOD (up) and MLSD unix.mode (down).
  chmodSync(join(root, "alpha/file-17.bin"), 0o600);
  chmodSync(join(root, "alpha/file-25.bin"), 0o755);
  chmodSync(join(root, "alpha/file-9.bin"), 0o644);
  return { files: files.length, bytes };
}

describe("lftp client", () => {
  let server: TestServer;
  let local: string;
  let home: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    server = await startServer();
    home = server.home(USER);
    mkdirSync(home, { recursive: true });
    local = mkdtempSync(join(tmpdir(), "edgeftp-lftp-"));
    mkdirSync(join(local, "lftp-home"));
    // A private HOME keeps lftp's rc, bookmarks and history out of the test; UTF-8 so names are not recoded.
    env = childEnv(join(local, "lftp-home"));
  });
  after(async () => {
    await server.close();
    rmSync(local, { recursive: true, force: true });
  });
  checkLeaks();

  /** Runs `lftp -d` with bounded retries/timeouts; any failing command makes lftp exit non-zero. */
  const lftp = (commands: string[], settings: string[] = []) => {
    const script = [
      "set ftp:ssl-allow no",
      "set net:max-retries 1",
      "set net:timeout 10",
      "set net:reconnect-interval-base 1",
      "set cmd:fail-exit yes",
      "set xfer:clobber on",
      ...settings,
      ...commands,
      "quit",
    ].join("; ");
    return run("lftp", ["-d", "-u", `${USER},${PASSWORD}`, "-p", String(server.port), "-e", script, "127.0.0.1"], env, 25_000);
  };

  const modes: Array<{ name: string; settings: string[]; command: RegExp; not: RegExp }> = [
    { name: "passive (PASV)", settings: [], command: /^PASV$/, not: /^(PORT|EPRT|EPSV)\b/ },
    { name: "passive (EPSV)", settings: ["set ftp:prefer-epsv yes"], command: /^EPSV$/, not: /^(PORT|EPRT|PASV)\b/ },
    { name: "active (PORT)", settings: ["set ftp:passive-mode off"], command: /^PORT 127,0,0,1,\d+,\d+$/, not: /^(PASV|EPSV)\b/ },
  ];

  for (const [i, mode] of modes.entries()) {
    test(`put and get 3 MiB in ${mode.name} mode with matching sha256`, async () => {
      const data = randomBytes(3 * 1024 * 1024 + 7);
      const src = join(local, `put-${i}.bin`);
      const back = join(local, `get-${i}.bin`);
      writeFileSync(src, data);
      const r = await lftp([`put ${q(src)} -o ${q(`transfer-${i}.bin`)}`, `get ${q(`transfer-${i}.bin`)} -o ${q(back)}`], mode.settings);
      assert.equal(r.code, 0, show(r));
      const commands = lftpCommands(r.stderr);
      assert.ok(commands.includes(`STOR transfer-${i}.bin`), commands.join(" | "));
      assert.ok(commands.includes(`RETR transfer-${i}.bin`), commands.join(" | "));
      assert.ok(commands.filter((c) => mode.command.test(c)).length >= 2, commands.join(" | "));
      assert.deepEqual(commands.filter((c) => mode.not.test(c)), []);
      assert.equal(sha256(readFileSync(join(home, `transfer-${i}.bin`))), sha256(data));
      assert.equal(sha256(readFileSync(back)), sha256(data));
    });
  }

  test("put -c and get -c resume partial files (SIZE, REST+STOR / REST+RETR)", async () => {
    const data = randomBytes(2 * 1024 * 1024 + 3);
    const src = join(local, "resume-src.bin");
    const part = join(local, "resume-part.bin");
    writeFileSync(src, data);
    writeFileSync(join(home, "resume-up.bin"), data.subarray(0, 123_456));
    writeFileSync(join(home, "resume-down.bin"), data);
    writeFileSync(part, data.subarray(0, 654_321));
    const r = await lftp([`put -c ${q(src)} -o resume-up.bin`, `get -c resume-down.bin -o ${q(part)}`]);
    assert.equal(r.code, 0, show(r));
    const commands = lftpCommands(r.stderr);
    const at = (c: string) => commands.indexOf(c);
    assert.ok(at("REST 123456") >= 0 && at("STOR resume-up.bin") === at("REST 123456") + 1, commands.join(" | "));
    assert.ok(at("REST 654321") >= 0 && at("RETR resume-down.bin") === at("REST 654321") + 1, commands.join(" | "));
    const stored = readFileSync(join(home, "resume-up.bin"));
    assert.equal(stored.length, data.length);
    assert.equal(sha256(stored), sha256(data));
    const got = readFileSync(part);
    assert.equal(got.length, data.length);
    assert.equal(sha256(got), sha256(data));
  });

  test("mirror -R uploads a 200-file tree and mirror brings it back byte-identical", async () => {
    const source = join(local, "tree-source");
    const downloaded = join(local, "tree-downloaded");
    const { files } = generateTree(source);
    assert.equal(files, 200);
    const expected = snapshotTree(source);
    assert.equal([...expected.values()].filter((v) => v !== "dir").length, 200);

    const up = await lftp([`mirror -R --parallel=4 ${q(source)} tree`]);
    assert.equal(up.code, 0, show(up));
    const onServer = snapshotTree(join(home, "tree"));
    assert.deepEqual(sorted(onServer), sorted(expected));

    const down = await lftp([`mirror --parallel=4 tree ${q(downloaded)}`]);
    assert.equal(down.code, 0, show(down));
    assert.deepEqual(sorted(snapshotTree(downloaded)), sorted(expected));

    // The server kept the times lftp set with MFMT, and reported them back in MLSD (lftp applied them locally).
    const commands = lftpCommands(up.stderr);
    assert.ok(commands.some((c) => c.startsWith("MFMT 20210304050607 ")), "lftp did not send MFMT");
    for (const rel of ["café ü.txt", "alpha/beta/café ü 10.txt", "alpha/beta/empty-2", "dir with spaces/ñandú/日本語 ファイル-13.dat"]) {
      assert.ok(expected.has(rel), rel);
      assert.equal(statSync(join(home, "tree", rel)).mtime.toISOString(), TREE_MTIME.toISOString(), `server mtime of ${rel}`);
      assert.equal(statSync(join(downloaded, rel)).mtime.toISOString(), TREE_MTIME.toISOString(), `downloaded mtime of ${rel}`);
    }
    const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);
    for (const [rel, expectedMode] of [["alpha/file-17.bin", "600"], ["alpha/file-25.bin", "755"], ["alpha/file-9.bin", "644"]]) {
      assert.equal(mode(join(source, rel)), expectedMode, `source mode of ${rel}`);
      assert.equal(mode(join(home, "tree", rel)), expectedMode, `server mode of ${rel}`);
      assert.equal(mode(join(downloaded, rel)), expectedMode, `downloaded mode of ${rel}`);
    }
  });

  test("mkdir -p, mv, cls, ls and rm -r act on the server's files", async () => {
    const src = join(local, "note.txt");
    writeFileSync(src, "a note\n");
    const r = await lftp([
      "mkdir -p ops/a/b/c",
      `put ${q(src)} -o ${q("ops/a/b/c/note.txt")}`,
      `mv ${q("ops/a/b/c/note.txt")} ${q("ops/a/renamed note.txt")}`,
      "echo ==cls==",
      "cls -1 ops/a/",
      "echo ==ls==",
      "ls ops/a/b",
      "echo ==end==",
    ]);
    assert.equal(r.code, 0, show(r));
    const commands = lftpCommands(r.stderr);
    for (const dir of ["ops", "ops/a", "ops/a/b", "ops/a/b/c"]) assert.ok(commands.includes(`MKD ${dir}`), commands.join(" | "));
    assert.ok(commands.includes("RNFR ops/a/b/c/note.txt"), commands.join(" | "));
    assert.ok(commands.includes("RNTO ops/a/renamed note.txt"), commands.join(" | "));
    assert.equal(existsSync(join(home, "ops/a/b/c/note.txt")), false);
    assert.equal(readFileSync(join(home, "ops/a/renamed note.txt"), "utf8"), "a note\n");

    const m = /==cls==\n([\s\S]*)==ls==\n([\s\S]*)==end==/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.deepEqual(m[1].split("\n").filter(Boolean).sort(), ["ops/a/b/", "ops/a/renamed note.txt"]);
    const lsLines = m[2].split("\n").filter(Boolean);
    assert.equal(lsLines.length, 1, m[2]);
    assert.match(lsLines[0], /^d\S{9} +\d+ \S+ +\S+ +\d+ .* c$/);

    const rm = await lftp(["rm -r ops", "echo ==after==", "cls -1"]);
    assert.equal(rm.code, 0, show(rm));
    const rmCommands = lftpCommands(rm.stderr);
    assert.ok(rmCommands.some((c) => /^DELE .*renamed note\.txt$/.test(c)), rmCommands.join(" | "));
    assert.ok(rmCommands.some((c) => /^RMD /.test(c)), rmCommands.join(" | "));
    assert.equal(existsSync(join(home, "ops")), false);
    const afterNames = rm.stdout.split("==after==\n")[1]?.split("\n").filter(Boolean) ?? [];
    assert.ok(!afterNames.includes("ops/"), rm.stdout);
  });

  test("a wrong password fails the session: lftp exits non-zero after 530", async () => {
    const r = await run(
      "lftp",
      ["-d", "-u", `${USER},wrong`, "-p", String(server.port), "-e", "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 5; set cmd:fail-exit yes; cls -1; quit", "127.0.0.1"],
      env,
      25_000,
    );
    assert.notEqual(r.code, 0, show(r));
    assert.equal(r.signal, null, show(r));
    assert.match(r.stderr, /<--- 530 /);
  });
});
