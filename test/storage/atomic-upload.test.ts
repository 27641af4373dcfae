/**
 * Atomic uploads, the partial-upload policy, reserved temporary names and the cleanup of leftovers,
 * on LocalStorage directly.
 */
import { afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmod as fsChmod, chown, lstat, mkdir, mkdtemp, readFile, readdir, readlink, realpath, rm, stat as fsStat, symlink, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import os from "node:os";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import {
  LocalStorageFactory,
  RESERVED_PREFIX,
  isReservedPath,
  removeLeftoverUploads,
} from "../../src/storage/local.js";
import { StorageError, type Storage, type StorageErrorCode } from "../../src/storage/types.js";
import { collect } from "../helpers/listing.js";

let base: string;
let rootDir: string;
let storage: Storage;

beforeEach(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), "edgeftp-atomic-"));
  rootDir = path.join(base, "root");
  storage = await new LocalStorageFactory().forRoot(rootDir);
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const inRoot = (...parts: string[]) => path.join(rootDir, ...parts);
const ATOMIC = { atomic: true, keepPartial: true } as const;

function isStorageError(code: StorageErrorCode) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof StorageError, `expected a StorageError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

function source(...chunks: (string | Buffer)[]): Readable {
  return Readable.from(chunks.map((c) => (typeof c === "string" ? Buffer.from(c) : c)));
}

/** A source that sends `chunks` and then fails, as a reset data connection does. */
function failingSource(...chunks: (string | Buffer)[]): Readable {
  const queue = chunks.map((c) => (typeof c === "string" ? Buffer.from(c) : c));
  return new Readable({
    read() {
      const next = queue.shift();
      if (next) this.push(next);
      else setImmediate(() => this.destroy(Object.assign(new Error("connection reset"), { code: "ECONNRESET" })));
    },
  });
}

/** Names in a real directory that carry the reserved prefix. */
async function tempsIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.startsWith(RESERVED_PREFIX));
}

/** Waits (by event-loop turns, no clock) until `dir` holds a temporary upload file with at least `bytes` bytes. */
async function waitForTemp(dir: string, bytes = 0): Promise<string> {
  for (let i = 0; i < 100_000; i++) {
    for (const name of await tempsIn(dir)) {
      const size = (await lstat(path.join(dir, name)).catch(() => null))?.size ?? -1;
      if (size >= bytes) return name;
    }
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`no temporary file of ${bytes} bytes appeared in ${dir}`);
}

/** File descriptors of this process currently open on `target` (Linux /proc; 0 elsewhere). */
async function openDescriptorsOn(target: string): Promise<number> {
  if (!existsSync("/proc/self/fd")) return 0;
  let count = 0;
  for (const fd of await readdir("/proc/self/fd")) {
    if ((await readlink(`/proc/self/fd/${fd}`).catch(() => "")).startsWith(target)) count++;
  }
  return count;
}

describe("atomic whole-file writes", () => {
  test("replace the file and leave no temporary file", async () => {
    await writeFile(inRoot("f"), "old version");
    assert.equal(await storage.write("/f", source("new ", "version!"), ATOMIC), 12);
    assert.equal(await readFile(inRoot("f"), "utf8"), "new version!");
    assert.deepEqual(await readdir(rootDir), ["f"]);
  });

  test("create a new file", async () => {
    await mkdir(inRoot("d"));
    assert.equal(await storage.write("/d/new", source("fresh"), ATOMIC), 5);
    assert.equal(await readFile(inRoot("d", "new"), "utf8"), "fresh");
    assert.deepEqual(await readdir(inRoot("d")), ["new"]);
  });

  test("the file keeps its previous version until the upload completes, then is replaced at once", async () => {
    await writeFile(inRoot("f"), "old version");
    const inode = (await fsStat(inRoot("f"))).ino;
    const upload = new PassThrough();
    const done = storage.write("/f", upload, ATOMIC);
    upload.write("new bytes ");
    const temp = await waitForTemp(rootDir, 10);
    assert.equal(await readFile(inRoot("f"), "utf8"), "old version", "not touched while uploading");
    assert.equal((await fsStat(inRoot("f"))).ino, inode);
    // The temporary file is the server's own: invisible and unreachable for the client.
    assert.deepEqual((await collect(storage.list("/"))).map((e) => e.name), ["f"]);
    await assert.rejects(storage.stat(`/${temp}`), isStorageError("not-found"));
    await assert.rejects(storage.read(`/${temp}`), isStorageError("invalid-path"));
    await assert.rejects(storage.delete(`/${temp}`), isStorageError("invalid-path"));
    upload.end("arrive");
    assert.equal(await done, 16);
    assert.equal(await readFile(inRoot("f"), "utf8"), "new bytes arrive");
    assert.notEqual((await fsStat(inRoot("f"))).ino, inode, "a new file was renamed into place");
    assert.deepEqual(await tempsIn(rootDir), []);
  });

  test("a failed overwrite leaves the previous version byte-identical and nothing else", async () => {
    const previous = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    await writeFile(inRoot("f"), previous);
    const failing = failingSource(Buffer.alloc(100_000, 1), Buffer.alloc(300_000, 2));
    await assert.rejects(storage.write("/f", failing, ATOMIC), isStorageError("io"));
    assert.ok(failing.destroyed);
    assert.ok((await readFile(inRoot("f"))).equals(previous));
    assert.deepEqual(await readdir(rootDir), ["f"]);
    assert.equal(await openDescriptorsOn(rootDir + path.sep), 0);
  });

  test("a failed overwrite keeps the previous version whatever the partial policy", async () => {
    await writeFile(inRoot("f"), "precious");
    await assert.rejects(storage.write("/f", failingSource("xx"), { atomic: true, keepPartial: false }), isStorageError("io"));
    await assert.rejects(storage.write("/f", failingSource("yy"), { atomic: true, keepPartial: true }), isStorageError("io"));
    assert.equal(await readFile(inRoot("f"), "utf8"), "precious");
    assert.deepEqual(await readdir(rootDir), ["f"]);
  });

  test("a source destroyed without an error also leaves the previous version", async () => {
    await writeFile(inRoot("f"), "before");
    const abandoned = new Readable({
      read() {
        this.push("some");
        setImmediate(() => this.destroy());
      },
    });
    await assert.rejects(storage.write("/f", abandoned, ATOMIC), isStorageError("io"));
    assert.equal(await readFile(inRoot("f"), "utf8"), "before");
    assert.deepEqual(await tempsIn(rootDir), []);
  });

  test("the new version keeps the previous one's permission bits", async () => {
    await writeFile(inRoot("f"), "x");
    await fsChmod(inRoot("f"), 0o640);
    await storage.write("/f", source("y"), ATOMIC);
    assert.equal((await fsStat(inRoot("f"))).mode & 0o777, 0o640);
    await fsChmod(inRoot("f"), 0o757);
    await storage.write("/f", source("z"), ATOMIC);
    assert.equal((await fsStat(inRoot("f"))).mode & 0o777, 0o757, "not narrowed by the umask");
  });

  test("the new version keeps the previous one's owner and group (as an overwrite in place does)", { skip: process.getuid?.() !== 0 && "needs root to chown" }, async () => {
    await writeFile(inRoot("f"), "x");
    await chown(inRoot("f"), 65534, 65534);
    await fsChmod(inRoot("f"), 0o664);
    await storage.write("/f", source("y"), ATOMIC);
    const after = await fsStat(inRoot("f"));
    assert.equal(await readFile(inRoot("f"), "utf8"), "y");
    assert.deepEqual([after.uid, after.gid, after.mode & 0o777], [65534, 65534, 0o664]);
  });

  test("a symlink inside the root is kept: its target is replaced", async () => {
    await mkdir(inRoot("d"));
    await writeFile(inRoot("d", "real"), "old");
    await symlink("d/real", inRoot("link"));
    await storage.write("/link", source("via link"), ATOMIC);
    assert.ok((await lstat(inRoot("link"))).isSymbolicLink());
    assert.equal(await readFile(inRoot("d", "real"), "utf8"), "via link");
    assert.deepEqual(await tempsIn(inRoot("d")), []);
    assert.deepEqual(await tempsIn(rootDir), []);
  });

  test("a dangling symlink inside the root creates its target", async () => {
    await symlink("later.txt", inRoot("dangling"));
    await storage.write("/dangling", source("created"), ATOMIC);
    assert.equal(await readFile(inRoot("later.txt"), "utf8"), "created");
    assert.ok((await lstat(inRoot("dangling"))).isSymbolicLink());
  });

  test("a symlink leading outside the root is refused before anything is written", async () => {
    await mkdir(path.join(base, "outside"));
    await writeFile(path.join(base, "outside", "secret"), "top secret");
    await symlink(path.join(base, "outside", "secret"), inRoot("evil"));
    const unused = source("pwned");
    await assert.rejects(storage.write("/evil", unused, ATOMIC), isStorageError("permission"));
    assert.ok(unused.destroyed);
    assert.equal(await readFile(path.join(base, "outside", "secret"), "utf8"), "top secret");
    assert.deepEqual(await tempsIn(path.join(base, "outside")), []);
  });

  test("what is in the way is reported before the upload starts, leaving nothing behind", async () => {
    await mkdir(inRoot("d"));
    await writeFile(inRoot("f"), "x");
    for (const [target, code] of [["/d", "is-dir"], ["/missing/f", "not-found"], ["/f/child", "not-dir"]] as const) {
      const unused = source("data");
      await assert.rejects(storage.write(target, unused, ATOMIC), isStorageError(code), target);
      assert.ok(unused.destroyed, target);
    }
    assert.deepEqual((await readdir(rootDir)).sort(), ["d", "f"]);
    assert.deepEqual(await readdir(inRoot("d")), []);
  });

  test("a name too long to share NAME_MAX with the prefix still uploads (the temporary name is shortened)", async () => {
    for (const name of ["a".repeat(250), "é".repeat(127), "😀".repeat(63)]) {
      assert.ok(Buffer.byteLength(name) <= 255);
      await writeFile(inRoot(name), "old");
      await storage.write(`/${name}`, source("new"), ATOMIC);
      assert.equal(await readFile(inRoot(name), "utf8"), "new");
    }
    assert.deepEqual(await tempsIn(rootDir), []);
  });

  test("concurrent uploads to one name each land whole: the last rename wins, nothing interleaves", async () => {
    await writeFile(inRoot("f"), "old");
    const a = Buffer.alloc(600_000, 0x61);
    const b = Buffer.alloc(500_000, 0x62);
    await Promise.all([storage.write("/f", source(a, a), ATOMIC), storage.write("/f", source(b, b), ATOMIC)]);
    const final = await readFile(inRoot("f"));
    assert.ok(final.equals(Buffer.concat([a, a])) || final.equals(Buffer.concat([b, b])));
    assert.deepEqual(await readdir(rootDir), ["f"]);
  });
});

describe("partial uploads of new files", () => {
  test("keepPartial keeps what arrived under the target name, for REST/APPE to resume", async () => {
    const first = Buffer.alloc(200_000, 7);
    await assert.rejects(storage.write("/new", failingSource(first), ATOMIC), isStorageError("io"));
    assert.ok((await readFile(inRoot("new"))).equals(first));
    assert.deepEqual(await readdir(rootDir), ["new"]);
    // The client resumes from the size it sees.
    const size = (await storage.stat("/new")).size;
    await storage.write("/new", source(Buffer.alloc(1000, 8)), { ...ATOMIC, offset: size });
    assert.equal((await fsStat(inRoot("new"))).size, 201_000);
  });

  test("the default, with no keepPartial option, is to keep", async () => {
    await assert.rejects(storage.write("/new", failingSource("part"), { atomic: true }), isStorageError("io"));
    assert.equal(await readFile(inRoot("new"), "utf8"), "part");
  });

  test("keepPartial false removes the failed new file", async () => {
    await assert.rejects(storage.write("/new", failingSource("part"), { atomic: true, keepPartial: false }), isStorageError("io"));
    assert.deepEqual(await readdir(rootDir), []);
  });

  test("a partial upload never replaces a file that another upload completed meanwhile", async () => {
    const slow = new PassThrough();
    const failing = storage.write("/race", slow, ATOMIC);
    slow.write("partial bytes");
    // A new file has no previous version to protect: it is written in place, under its name.
    for (let i = 0; i < 100_000 && ((await lstat(inRoot("race")).catch(() => null))?.size ?? 0) < 13; i++) {
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await tempsIn(rootDir), []);
    await storage.write("/race", source("complete upload"), ATOMIC);
    slow.destroy(new Error("connection reset"));
    await assert.rejects(failing, isStorageError("io"));
    assert.equal(await readFile(inRoot("race"), "utf8"), "complete upload");
    assert.deepEqual(await readdir(rootDir), ["race"]);
  });

  test("without atomic, the same policy applies to a new file; an existing one is overwritten in place", async () => {
    await assert.rejects(storage.write("/gone", failingSource("part"), { keepPartial: false }), isStorageError("io"));
    assert.ok(!existsSync(inRoot("gone")));
    await assert.rejects(storage.write("/kept", failingSource("part"), { keepPartial: true }), isStorageError("io"));
    assert.equal(await readFile(inRoot("kept"), "utf8"), "part");
    await writeFile(inRoot("old"), "previous content");
    await assert.rejects(storage.write("/old", failingSource("pa"), { keepPartial: false }), isStorageError("io"));
    assert.equal(await readFile(inRoot("old"), "utf8"), "pa", "non-atomic: truncated in place, kept as it is");
    assert.deepEqual(await tempsIn(rootDir), []);
  });
});

describe("offset and append writes act in place, atomic or not", () => {
  test("REST + STOR writes into the existing file", async () => {
    await writeFile(inRoot("f"), "0123456789");
    assert.equal(await storage.write("/f", source("XY"), { ...ATOMIC, offset: 3 }), 2);
    assert.equal(await readFile(inRoot("f"), "utf8"), "012XY56789");
    await assert.rejects(storage.write("/absent", source("x"), { ...ATOMIC, offset: 5 }), isStorageError("not-found"));
    assert.deepEqual(await readdir(rootDir), ["f"]);
  });

  test("APPE appends, and a failed append keeps what was there and what arrived", async () => {
    await storage.write("/log", source("abc"), { ...ATOMIC, append: true });
    await assert.rejects(storage.write("/log", failingSource("de"), { ...ATOMIC, append: true }), isStorageError("io"));
    assert.equal(await readFile(inRoot("log"), "utf8"), "abcde");
    assert.deepEqual(await readdir(rootDir), ["log"]);
  });

  test("a failed APPE that created the file follows the partial policy", async () => {
    await assert.rejects(storage.write("/a", failingSource("de"), { ...ATOMIC, append: true, keepPartial: false }), isStorageError("io"));
    assert.ok(!existsSync(inRoot("a")));
    await assert.rejects(storage.write("/b", failingSource("de"), { ...ATOMIC, append: true, keepPartial: true }), isStorageError("io"));
    assert.equal(await readFile(inRoot("b"), "utf8"), "de");
  });

  test("a failed resume never removes the file it resumes", async () => {
    await writeFile(inRoot("f"), "0123456789");
    await assert.rejects(storage.write("/f", failingSource("AB"), { atomic: true, keepPartial: false, offset: 10 }), isStorageError("io"));
    assert.equal(await readFile(inRoot("f"), "utf8"), "0123456789AB");
  });
});

describe("reserved names", () => {
  const reserved = `${RESERVED_PREFIX}abc-file`;

  test("isReservedPath looks at every segment, and only at name starts", () => {
    assert.ok(isReservedPath(`/${reserved}`));
    assert.ok(isReservedPath(`/d/${reserved}/x`));
    assert.ok(!isReservedPath(`/d/x${RESERVED_PREFIX}`));
    assert.ok(!isReservedPath("/.edgeftp-uploads"));
    assert.ok(!isReservedPath("/"));
  });

  test("are hidden from listings and stat, even when planted on disk", async () => {
    await mkdir(inRoot("d"));
    await writeFile(inRoot(reserved), "temp");
    await writeFile(inRoot("d", reserved), "temp");
    await mkdir(inRoot(`${RESERVED_PREFIX}dir`));
    await writeFile(inRoot("visible"), "v");
    assert.deepEqual((await collect(storage.list("/"))).map((e) => e.name).sort(), ["d", "visible"]);
    assert.deepEqual(await collect(storage.list("/d")), []);
    assert.deepEqual((await collect(storage.listNames("/"))).sort(), ["d", "visible"]);
    await assert.rejects(storage.stat(`/${reserved}`), isStorageError("not-found"));
    await assert.rejects(storage.stat(`/d/${reserved}`), isStorageError("not-found"));
    await assert.rejects(collect(storage.list(`/${RESERVED_PREFIX}dir`)), isStorageError("not-found"));
    await assert.rejects(collect(storage.listNames(`/${RESERVED_PREFIX}dir`)), isStorageError("not-found"));
  });

  test("cannot be created, read, changed, renamed to or from, or removed", async () => {
    await writeFile(inRoot("f"), "x");
    await writeFile(inRoot(reserved), "planted");
    const refused = isStorageError("invalid-path");
    for (const p of [`/${reserved}`, `/${RESERVED_PREFIX}new`, `/${RESERVED_PREFIX}dir/f`]) {
      const unused = source("x");
      await assert.rejects(storage.write(p, unused, ATOMIC), refused, p);
      assert.ok(unused.destroyed);
      await assert.rejects(storage.write(p, source("x"), { append: true }), refused, p);
      await assert.rejects(storage.write(p, source("x"), { offset: 1 }), refused, p);
      await assert.rejects(storage.read(p), refused, p);
      await assert.rejects(storage.mkdir(p), refused, p);
      await assert.rejects(storage.rmdir(p), refused, p);
      await assert.rejects(storage.delete(p), refused, p);
      await assert.rejects(storage.rename("/f", p), refused, p);
      await assert.rejects(storage.rename(p, "/stolen"), refused, p);
      await assert.rejects(storage.chmod(p, 0o600), refused, p);
      await assert.rejects(storage.setModifiedTime(p, new Date(0)), refused, p);
    }
    assert.equal(await readFile(inRoot(reserved), "utf8"), "planted");
    assert.deepEqual((await readdir(rootDir)).sort(), [reserved, "f"].sort());
  });
});

describe("cleanup of leftover temporary files", () => {
  /** A fresh root with leftovers at several depths, ordinary files, and an outside directory behind a symlink. */
  async function plant(root: string): Promise<void> {
    await mkdir(path.join(root, "a", "b", "c"), { recursive: true });
    await mkdir(path.join(base, "outside"), { recursive: true });
    await writeFile(path.join(root, `${RESERVED_PREFIX}1-top`), "left");
    await writeFile(path.join(root, "a", "b", "c", `${RESERVED_PREFIX}2-deep`), "left");
    await writeFile(path.join(root, "a", "keep.txt"), "keep");
    await writeFile(path.join(root, `x${RESERVED_PREFIX}`), "keep");
    await writeFile(path.join(base, "outside", `${RESERVED_PREFIX}3-outside`), "not ours to remove");
    await symlink(path.join(base, "outside"), path.join(root, "link-out"));
    await symlink("nowhere", path.join(root, `${RESERVED_PREFIX}4-link`)); // not a regular file: left alone
  }

  async function remaining(root: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string) => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const rel = path.relative(root, path.join(dir, entry.name));
        out.push(rel);
        if (entry.isDirectory()) await walk(path.join(dir, entry.name));
      }
    };
    await walk(root);
    return out.sort();
  }

  test("the factory removes them the first time it serves a root, before the storage is handed out", async () => {
    const root = path.join(base, "home");
    await mkdir(root);
    await plant(root);
    const logged: unknown[] = [];
    const logger = { info: (obj: unknown) => logged.push(obj), warn: (obj: unknown) => logged.push(obj) };
    const factory = new LocalStorageFactory({ logger: logger as never });
    await factory.forRoot(root);
    assert.deepEqual(await remaining(root), [`${RESERVED_PREFIX}4-link`, "a", "a/b", "a/b/c", "a/keep.txt", "link-out", `x${RESERVED_PREFIX}`].sort());
    assert.ok(existsSync(path.join(base, "outside", `${RESERVED_PREFIX}3-outside`)), "symlinks are not followed");
    assert.equal(logged.length, 1);
    assert.deepEqual(logged[0], { root: await realpath(root), removed: 2, scanned: 9, complete: true });

    // Once per root and factory: a later login does not walk again; a new process (factory) does.
    await writeFile(path.join(root, `${RESERVED_PREFIX}5-later`), "left");
    await factory.forRoot(root);
    assert.ok(existsSync(path.join(root, `${RESERVED_PREFIX}5-later`)));
    assert.deepEqual(await new LocalStorageFactory().cleanupOnce(await realpath(root)), {
      removed: 1,
      scanned: 8,
      complete: true,
    });
  });

  test("a temporary file another process holds the upload lock on (a node sharing the storage) is left alone", async (t) => {
    const root = path.join(base, "home");
    await mkdir(root);
    const live = path.join(root, `${RESERVED_PREFIX}6-live`);
    await writeFile(live, "being written elsewhere");
    await writeFile(path.join(root, `${RESERVED_PREFIX}7-dead`), "left");
    // Another process holds the lock, as the other node's writer would, until it is killed.
    const holder = spawn("python3", ["-c", "import fcntl, sys; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); print(flush=True); sys.stdin.read()", live]);
    t.after(() => holder.kill());
    await once(holder.stdout, "data");
    assert.deepEqual(await removeLeftoverUploads(root), { removed: 1, scanned: 2, complete: true });
    assert.deepEqual(await readdir(root), [`${RESERVED_PREFIX}6-live`]);
    // Its writer gone (the kernel drops a dead process's locks), the file is a leftover like any other.
    holder.kill();
    await once(holder, "exit");
    assert.deepEqual(await removeLeftoverUploads(root), { removed: 1, scanned: 1, complete: true });
  });

  test("an atomic upload in progress holds the upload lock on its temporary file until the rename", async () => {
    await mkdir(path.join(base, "home"));
    const root = await realpath(path.join(base, "home"));
    const storage = await new LocalStorageFactory().forRoot(root);
    await writeFile(path.join(root, "doc.txt"), "old version");
    const source = new PassThrough();
    const writing = storage.write("/doc.txt", source, { atomic: true });
    source.write("new ");
    const temp = await waitForTemp(root);
    // Another process sees the lock, so a cleanup there spares the file.
    assert.equal(spawnSync("flock", ["--exclusive", "--nonblock", path.join(root, temp), "true"]).status, 1);
    source.end("version");
    await writing;
    assert.equal(await readFile(path.join(root, "doc.txt"), "utf8"), "new version");
    assert.deepEqual(await readdir(root), ["doc.txt"]);
  });

  test("concurrent first logins share one cleanup", async () => {
    const root = path.join(base, "home");
    await mkdir(root);
    await writeFile(path.join(root, `${RESERVED_PREFIX}x`), "left");
    const factory = new LocalStorageFactory();
    const real = await realpath(root);
    const [first, second] = [factory.cleanupOnce(real), factory.cleanupOnce(real)];
    assert.equal(first, second);
    await Promise.all([factory.forRoot(root), factory.forRoot(root)]);
    assert.deepEqual(await first, { removed: 1, scanned: 1, complete: true });
  });

  test("cleanup can be disabled", async () => {
    const root = path.join(base, "home");
    await mkdir(root);
    await writeFile(path.join(root, `${RESERVED_PREFIX}x`), "left");
    await new LocalStorageFactory({ cleanup: false }).forRoot(root);
    assert.ok(existsSync(path.join(root, `${RESERVED_PREFIX}x`)));
  });

  test("an upload in progress in this process is never removed", async () => {
    await writeFile(inRoot("f"), "old");
    const upload = new PassThrough();
    const done = storage.write("/f", upload, ATOMIC);
    upload.write("new ");
    const temp = await waitForTemp(rootDir, 4);
    assert.deepEqual(await removeLeftoverUploads(rootDir), { removed: 0, scanned: 2, complete: true });
    assert.ok(existsSync(inRoot(temp)));
    upload.end("data");
    await done;
    assert.equal(await readFile(inRoot("f"), "utf8"), "new data");
  });

  test("the walk is bounded in entries and depth, and iterative", async () => {
    const root = path.join(base, "home");
    // 150 levels: deeper than the default depth limit, and far deeper than a recursive walk should go.
    let deep = root;
    for (let i = 0; i < 150; i++) deep = path.join(deep, "d");
    await mkdir(deep, { recursive: true });
    await writeFile(path.join(deep, `${RESERVED_PREFIX}bottom`), "left");
    await writeFile(path.join(root, "d", `${RESERVED_PREFIX}shallow`), "left");

    assert.deepEqual(await removeLeftoverUploads(root), { removed: 1, scanned: 66, complete: false });
    assert.ok(existsSync(path.join(deep, `${RESERVED_PREFIX}bottom`)), "beyond the default depth of 64");
    assert.deepEqual(await removeLeftoverUploads(root, { maxDepth: 200 }), { removed: 1, scanned: 151, complete: true });
    assert.ok(!existsSync(path.join(deep, `${RESERVED_PREFIX}bottom`)));

    const wide = path.join(base, "wide");
    await mkdir(wide);
    for (let i = 0; i < 50; i++) await writeFile(path.join(wide, `${RESERVED_PREFIX}${i}`), "");
    const limited = await removeLeftoverUploads(wide, { maxEntries: 20 });
    assert.deepEqual(limited, { removed: 20, scanned: 20, complete: false });
    assert.equal((await readdir(wide)).length, 30);
  });

  test("a missing root is nothing to clean", async () => {
    assert.deepEqual(await removeLeftoverUploads(path.join(base, "absent")), { removed: 0, scanned: 0, complete: true });
  });
});
