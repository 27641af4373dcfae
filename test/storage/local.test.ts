import { afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  chmod as fsChmod,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  readlink,
  realpath,
  rm,
  stat as fsStat,
  unlink,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { once } from "node:events";
import { existsSync, linkSync, realpathSync, renameSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { execFileSync, spawn } from "node:child_process";
import { LARGE_FILE_BYTES, MetadataCalls } from "../../src/storage/metadata-calls.js";
import { LocalStorage, LocalStorageFactory, RESERVED_PREFIX, toStorageError } from "../../src/storage/local.js";
import { StorageError, type FileInfo, type Storage, type StorageErrorCode } from "../../src/storage/types.js";
import { resolveVirtualPath } from "../../src/storage/virtual-path.js";
import { collect } from "../helpers/listing.js";

/** Per test: `base/root` is the account root, `base/outside` holds what must stay unreachable. */
let base: string;
let rootDir: string;
let outside: string;
let storage: Storage;

beforeEach(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), "edgeftp-storage-"));
  rootDir = path.join(base, "root");
  outside = path.join(base, "outside");
  await mkdir(outside);
  await writeFile(path.join(outside, "secret"), "top secret");
  storage = await new LocalStorageFactory().forRoot(rootDir);
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const inRoot = (...parts: string[]) => path.join(rootDir, ...parts);

function isStorageError(code: StorageErrorCode) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof StorageError, `expected a StorageError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.ok(!err.message.includes(base), `message leaks the real path: ${err.message}`);
    return true;
  };
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

function source(...chunks: string[]): Readable {
  return Readable.from(chunks.map((c) => Buffer.from(c)));
}

/** File descriptors of this process currently open on `target` (Linux /proc; empty elsewhere). */
async function openDescriptorsOn(target: string): Promise<number> {
  if (!existsSync("/proc/self/fd")) return 0;
  let count = 0;
  for (const fd of await readdir("/proc/self/fd")) {
    const link = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
    if (link === target) count++;
  }
  return count;
}

describe("LocalStorageFactory", () => {
  test("creates a missing root recursively and resolves it to its real path", async () => {
    const deep = path.join(base, "a", "b", "c");
    const viaLink = path.join(base, "link-to-deep");
    await new LocalStorageFactory().forRoot(deep);
    await symlink(deep, viaLink);
    const linked = await new LocalStorageFactory().forRoot(viaLink);
    await linked.write("/f", source("x"));
    assert.equal(await readFile(path.join(deep, "f"), "utf8"), "x");
    assert.ok((await fsStat(deep)).isDirectory());
  });

  test("declares every capability", () => {
    assert.deepEqual(storage.capabilities, {
      writeAtOffset: true,
      append: true,
      setModifiedTime: true,
      chmod: true,
    });
  });

  test("refuses a relative root in the constructor", () => {
    assert.throws(() => new LocalStorage("relative/root"), TypeError);
  });
});

/**
 * Confinement and stat run twice: with the metadata calls made synchronously (the default on a fast
 * disk) and on the thread pool (a slow disk), which must decide exactly alike.
 */
const METADATA_MODES: Array<[label: string, metadata: () => MetadataCalls | undefined]> = [
  ["", () => undefined],
  [", metadata calls on the thread pool", () => new MetadataCalls({ threadPoolOnly: true })],
];

for (const [label, metadata] of METADATA_MODES) {
  describe(`confinement${label}`, () => {
    beforeEach(async () => {
      storage = await new LocalStorageFactory({ metadata: metadata() }).forRoot(rootDir);
    });

    test("traversal arguments resolve inside the root", async () => {
      const attempts = ["../../etc/passwd", "a/../../b", "../outside/secret", "%2e%2e/%2e%2e"];
      for (const arg of attempts) {
        const vpath = resolveVirtualPath("/", arg);
        await assert.rejects(storage.stat(vpath), isStorageError("not-found"), arg);
      }
      assert.equal((await storage.stat(resolveVirtualPath("/", "/../.."))).name, "/");
    });

    test("a backslash name is created inside the root, as a single name", async () => {
      const vpath = resolveVirtualPath("/", "..\\..\\windows");
      await storage.write(vpath, source("w"));
      assert.equal(await readFile(inRoot("..\\..\\windows"), "utf8"), "w");
      const names = (await collect(storage.list("/"))).map((e) => e.name);
      assert.deepEqual(names, ["..\\..\\windows"]);
    });

    test("a path that was not normalised by the caller is still kept inside the root", async () => {
      await assert.rejects(storage.stat("/../outside/secret"), isStorageError("not-found"));
      await assert.rejects(storage.read("../../outside/secret"), isStorageError("not-found"));
    });

    test("control characters are refused, TAB is an ordinary character", async () => {
      for (const bad of ["/a\0b", "/a\r\nb", "/a\nb", "/a\x1bb", "/a\x7fb"]) {
        await assert.rejects(storage.stat(bad), isStorageError("invalid-path"));
        await assert.rejects(storage.write(bad, source("x")), isStorageError("invalid-path"));
      }
      await storage.write("/tab\tname", source("x"));
      assert.equal(await readFile(inRoot("tab\tname"), "utf8"), "x");
      assert.deepEqual((await collect(storage.list("/"))).map((e) => e.name).filter((n) => n.startsWith("tab")), ["tab\tname"]);
    });

    test("a symlink that stays inside the root works normally", async () => {
      await mkdir(inRoot("dir"));
      await writeFile(inRoot("dir", "real.txt"), "inside");
      await symlink("dir/real.txt", inRoot("file-link"));
      await symlink(inRoot("dir"), inRoot("dir-link"));

      assert.equal((await storage.stat("/file-link")).type, "file");
      assert.equal(await readAll(await storage.read("/file-link")), "inside");
      assert.equal((await storage.stat("/dir-link")).type, "dir");
      assert.deepEqual((await collect(storage.list("/dir-link"))).map((e) => e.name), ["real.txt"]);
      await storage.write("/dir-link/new.txt", source("via link"));
      assert.equal(await readFile(inRoot("dir", "new.txt"), "utf8"), "via link");

      const listed = await collect(storage.list("/"));
      const byName = new Map(listed.map((e) => [e.name, e]));
      assert.equal(byName.get("file-link")?.type, "file");
      assert.equal(byName.get("file-link")?.size, 6);
      assert.equal(byName.get("dir-link")?.type, "dir");
    });

    test("a symlink to a file outside the root is refused for every use of its target", async () => {
      const secret = path.join(outside, "secret");
      await symlink(secret, inRoot("evil"));
      await assert.rejects(storage.stat("/evil"), isStorageError("permission"));
      await assert.rejects(storage.read("/evil"), isStorageError("permission"));
      await assert.rejects(storage.write("/evil", source("pwned")), isStorageError("permission"));
      await assert.rejects(
        storage.write("/evil", source("pwned"), { append: true }),
        isStorageError("permission"),
      );
      await assert.rejects(storage.chmod("/evil", 0o777), isStorageError("permission"));
      await assert.rejects(storage.setModifiedTime("/evil", new Date(0)), isStorageError("permission"));
      await assert.rejects(collect(storage.list("/evil")), isStorageError("permission"));
      assert.equal(await readFile(secret, "utf8"), "top secret");
      assert.notEqual((await fsStat(secret)).mtimeMs, 0);
    });

    test("a relative symlink climbing out of the root is refused", async () => {
      await symlink("../outside/secret", inRoot("climb"));
      await assert.rejects(storage.read("/climb"), isStorageError("permission"));
    });

    test("a symlinked directory escaping the root is refused, cd-style stat included", async () => {
      await symlink(outside, inRoot("escape"));
      await writeFile(inRoot("mine"), "mine");
      await assert.rejects(storage.stat("/escape"), isStorageError("permission"));
      await assert.rejects(collect(storage.list("/escape")), isStorageError("permission"));
      await assert.rejects(storage.stat("/escape/secret"), isStorageError("permission"));
      await assert.rejects(storage.read("/escape/secret"), isStorageError("permission"));
      await assert.rejects(storage.write("/escape/new", source("x")), isStorageError("permission"));
      await assert.rejects(storage.mkdir("/escape/sub"), isStorageError("permission"));
      await assert.rejects(storage.delete("/escape/secret"), isStorageError("permission"));
      await assert.rejects(storage.rmdir("/escape/sub"), isStorageError("permission"));
      await assert.rejects(storage.rename("/escape/secret", "/stolen"), isStorageError("permission"));
      await assert.rejects(storage.rename("/mine", "/escape/mine"), isStorageError("permission"));
      assert.deepEqual((await readdir(outside)).sort(), ["secret"]);
      assert.ok(existsSync(inRoot("mine")));
    });

    test("a dangling symlink is followed for writes only when its target is inside the root", async () => {
      await symlink(path.join(outside, "planted"), inRoot("dangling-out"));
      await assert.rejects(storage.write("/dangling-out", source("x")), isStorageError("permission"));
      assert.ok(!existsSync(path.join(outside, "planted")));

      await symlink("later.txt", inRoot("dangling-in"));
      await storage.write("/dangling-in", source("created"));
      assert.equal(await readFile(inRoot("later.txt"), "utf8"), "created");
    });

    test("a dangling link whose target climbs out of another link is resolved as the kernel resolves it", async () => {
      // `here` leads to the root itself, so `here/..` is the root's parent: the kernel's
      // `climb` ends outside, where a textual resolve would stop at `root/outside/planted`.
      await symlink(".", inRoot("here"));
      await symlink("here/../outside/planted", inRoot("climb"));
      for (const atomic of [false, true]) {
        await assert.rejects(storage.write("/climb", source("x"), { atomic }), isStorageError("permission"));
      }
      await assert.rejects(storage.stat("/climb"), isStorageError("permission"));
      assert.ok(!existsSync(path.join(outside, "planted")));

      // Inside the root the same walk decides where the file lands: `sub/..` is `dir`, not the root.
      await mkdir(inRoot("dir", "sub"), { recursive: true });
      await symlink("dir/sub", inRoot("sub"));
      await symlink("sub/../made.txt", inRoot("made"));
      await storage.write("/made", source("beside sub"));
      assert.equal(await readFile(inRoot("dir", "made.txt"), "utf8"), "beside sub");
      assert.ok(!existsSync(inRoot("made.txt")));
    });

    test("a chain of symlinks ending outside is refused", async () => {
      await symlink(path.join(outside, "missing-dir", "x"), inRoot("hop2"));
      await symlink("hop2", inRoot("hop1"));
      await assert.rejects(storage.write("/hop1", source("x")), isStorageError("permission"));
      await assert.rejects(storage.stat("/hop1"), isStorageError("permission"));
    });

    test("a file used as a directory, a missing directory and a looping link get the same answers everywhere", async () => {
      await writeFile(inRoot("f"), "x");
      await symlink("loop", inRoot("loop"));
      for (const atomic of [false, true]) {
        await assert.rejects(storage.write("/f/child", source("x"), { atomic }), isStorageError("not-dir"));
        await assert.rejects(storage.write("/missing/child", source("x"), { atomic }), isStorageError("not-found"));
        // A loop is no file (550), not a local error a client should retry (451).
        await assert.rejects(storage.write("/loop", source("x"), { atomic }), isStorageError("not-found"));
        await assert.rejects(storage.write("/loop/child", source("x"), { atomic }), isStorageError("not-found"));
      }
      await assert.rejects(storage.stat("/loop"), isStorageError("not-found"));
      await assert.rejects(storage.read("/loop"), isStorageError("not-found"));
      await assert.rejects(storage.stat("/missing/child"), isStorageError("not-found"));
      await assert.rejects(storage.read("/f/child"), isStorageError("not-dir"));
      await assert.rejects(storage.read("/missing"), isStorageError("not-found"));
      assert.deepEqual((await readdir(rootDir)).sort(), ["f", "loop"]);
    });

    test("a new file written through an in-root directory link and a dangling in-root link, with partial uploads removed", async () => {
      await mkdir(inRoot("dir"));
      await symlink("dir", inRoot("dir-link"));
      await symlink("dir/later.txt", inRoot("dangling"));
      await storage.write("/dir-link/new.txt", source("via dir link"), { atomic: true, keepPartial: false });
      assert.equal(await readFile(inRoot("dir", "new.txt"), "utf8"), "via dir link");
      const failing = new Readable({ read() { this.destroy(new Error("client went away")); } });
      await assert.rejects(storage.write("/dangling", failing, { atomic: true, keepPartial: false }));
      assert.ok(!existsSync(inRoot("dir", "later.txt")), "the failed new file behind the dangling link is removed");
      await storage.write("/dangling", source("created"), { atomic: true, keepPartial: false });
      assert.equal(await readFile(inRoot("dir", "later.txt"), "utf8"), "created");
      assert.equal((await storage.stat("/dangling")).size, 7);
    });

    test("links deep in the tree are met at any depth: escaping ones refused, in-root ones followed", async () => {
      await mkdir(inRoot("a", "b", "c"), { recursive: true });
      await mkdir(inRoot("dir"));
      await writeFile(inRoot("dir", "inside.txt"), "inside");
      await symlink(outside, inRoot("a", "b", "escape"));
      await symlink("../../../dir", inRoot("a", "b", "c", "back"));
      for (const vpath of ["/a/b/escape", "/a/b/escape/secret", "/a/b/escape/missing/deeper"]) {
        await assert.rejects(storage.stat(vpath), isStorageError("permission"), vpath);
        await assert.rejects(storage.write(vpath, source("x")), isStorageError("permission"), vpath);
      }
      await assert.rejects(storage.read("/a/b/escape/secret"), isStorageError("permission"));
      await assert.rejects(storage.mkdir("/a/b/escape/new"), isStorageError("permission"));
      await assert.rejects(storage.delete("/a/b/escape/secret"), isStorageError("permission"));
      await assert.rejects(collect(storage.list("/a/b/escape")), isStorageError("permission"));
      assert.deepEqual((await readdir(outside)).sort(), ["secret"]);

      assert.equal(await readAll(await storage.read("/a/b/c/back/inside.txt")), "inside");
      assert.equal((await storage.stat("/a/b/c/back")).type, "dir");
      await storage.write("/a/b/c/back/new.txt", source("deep"));
      assert.equal(await readFile(inRoot("dir", "new.txt"), "utf8"), "deep");
      await storage.mkdir("/a/b/c/back/sub");
      assert.ok((await fsStat(inRoot("dir", "sub"))).isDirectory());
      await assert.rejects(storage.stat("/a/b/c/missing/x"), isStorageError("not-found"));
      await assert.rejects(storage.stat("/dir/inside.txt/x"), isStorageError("not-dir"));
    });

    test("the escaping link itself can be removed or renamed without touching its target", async () => {
      await symlink(path.join(outside, "secret"), inRoot("evil"));
      await storage.rename("/evil", "/evil2");
      await storage.delete("/evil2");
      assert.ok(!existsSync(inRoot("evil2")));
      assert.equal(await readFile(path.join(outside, "secret"), "utf8"), "top secret");
    });

    test("the root itself cannot be removed or moved", async () => {
      await writeFile(inRoot("f"), "x");
      await assert.rejects(storage.rmdir("/"), isStorageError("permission"));
      await assert.rejects(storage.delete("/"), isStorageError("permission"));
      await assert.rejects(storage.rename("/", "/moved"), isStorageError("permission"));
      await assert.rejects(storage.rename("/f", "/"), isStorageError("permission"));
      await assert.rejects(storage.rmdir("/.."), isStorageError("permission"));
      assert.ok((await fsStat(rootDir)).isDirectory());
    });
  });

  describe(`stat${label}`, () => {
    beforeEach(async () => {
      storage = await new LocalStorageFactory({ metadata: metadata() }).forRoot(rootDir);
    });

    test("describes files, directories and the root", async () => {
      await writeFile(inRoot("f.txt"), "12345", { mode: 0o640 });
      await fsChmod(inRoot("f.txt"), 0o640);
      await mkdir(inRoot("d"));
      const when = new Date("2020-01-02T03:04:05Z");
      await utimes(inRoot("f.txt"), when, when);

      const file = await storage.stat("/f.txt");
      assert.equal(file.name, "f.txt");
      assert.equal(file.type, "file");
      assert.equal(file.size, 5);
      assert.equal(file.mtime.getTime(), when.getTime());
      assert.equal(file.mode, 0o640);
      assert.equal((await storage.stat("/d")).type, "dir");
      const root = await storage.stat("/");
      assert.equal(root.name, "/");
      assert.equal(root.type, "dir");
    });

    test("missing paths and files used as directories", async () => {
      await writeFile(inRoot("f"), "x");
      await assert.rejects(storage.stat("/nope"), isStorageError("not-found"));
      await assert.rejects(storage.stat("/nope/deeper"), isStorageError("not-found"));
      await assert.rejects(storage.stat("/f/child"), isStorageError("not-dir"));
    });

    test("find answers null where stat throws not-found, and the same as stat otherwise", async () => {
      await writeFile(inRoot("f"), "abc");
      await mkdir(inRoot("d"));
      await symlink(inRoot("f"), inRoot("d/link"));
      await symlink("/etc/passwd", inRoot("escape"));
      for (const p of ["/nope", "/nope/deeper", "/d/nope"]) {
        assert.equal(await storage.find(p), null, p);
      }
      assert.equal(await storage.find(`/${RESERVED_PREFIX}upload`), null);
      for (const p of ["/f", "/d", "/d/link", "/"]) assert.deepEqual(await storage.find(p), await storage.stat(p), p);
      for (const p of ["/f/child", "/d/link/x"]) await assert.rejects(storage.find(p), isStorageError("not-dir"), p);
      await assert.rejects(storage.find("/escape"), isStorageError("permission"));
    });

    test("findEntry names the entry itself: a link (0 bytes) wherever it points; null where there is none", async () => {
      await writeFile(inRoot("f"), "abc");
      await mkdir(inRoot("d"));
      await symlink("/etc/passwd", inRoot("escape"));
      await symlink("nowhere", inRoot("dangling"));
      await symlink(outside, inRoot("out-dir"));
      assert.deepEqual(await storage.findEntry("/f"), await storage.stat("/f"));
      assert.equal((await storage.findEntry("/d"))?.type, "dir");
      for (const p of ["/escape", "/dangling", "/out-dir"]) {
        const entry = await storage.findEntry(p);
        assert.deepEqual([entry?.type, entry?.size], ["link", 0], p);
      }
      for (const p of ["/nope", "/d/nope", `/${RESERVED_PREFIX}upload`]) assert.equal(await storage.findEntry(p), null, p);
      // Through a directory link that leads outside, the entry is outside: refused like any other use.
      await assert.rejects(storage.findEntry("/out-dir/secret"), isStorageError("permission"));
    });
  });
}

describe("list", () => {
  test("lists files, directories and odd links without failing", async () => {
    await writeFile(inRoot("a.txt"), "abc");
    await mkdir(inRoot("sub"));
    await symlink(path.join(outside, "secret"), inRoot("escaping"));
    await symlink("nowhere", inRoot("dangling"));
    await symlink("loop", inRoot("loop"));

    const byName = new Map((await collect(storage.list("/"))).map((e) => [e.name, e]));
    assert.deepEqual([...byName.keys()].sort(), ["a.txt", "dangling", "escaping", "loop", "sub"]);
    assert.equal(byName.get("a.txt")?.type, "file");
    assert.equal(byName.get("a.txt")?.size, 3);
    assert.equal(byName.get("sub")?.type, "dir");
    for (const odd of ["escaping", "dangling", "loop"]) {
      assert.equal(byName.get(odd)?.type, "link", odd);
      assert.equal(byName.get(odd)?.size, 0, odd);
    }
  });

  test("a name that is not valid UTF-8 is listed with replacement characters", async () => {
    const rawName = Buffer.from([0x66, 0xff, 0x6f]);
    await writeFile(Buffer.concat([Buffer.from(rootDir + path.sep), rawName]), "raw!");
    await writeFile(inRoot("plain"), "p");

    const byName = new Map((await collect(storage.list("/"))).map((e) => [e.name, e]));
    assert.deepEqual([...byName.keys()].sort(), ["f\uFFFDo", "plain"]);
    assert.equal(byName.get("f\uFFFDo")?.type, "file");
    assert.equal(byName.get("f\uFFFDo")?.size, 4);
  });

  test("a name in UTF-8 beyond ASCII is listed as itself, with its metadata", async () => {
    await writeFile(inRoot("café ü.txt"), "12345");
    await mkdir(inRoot("目录"));
    await writeFile(inRoot("plain"), "p");

    const byName = new Map((await collect(storage.list("/"))).map((e) => [e.name, e]));
    assert.deepEqual([...byName.keys()].sort(), ["café ü.txt", "plain", "目录"]);
    assert.equal(byName.get("café ü.txt")?.size, 5);
    assert.equal(byName.get("目录")?.type, "dir");
  });

  test("streams a directory of 20,000 entries in bounded batches", async () => {
    const count = 20_000;
    await mkdir(inRoot("big"));
    await writeFile(inRoot("big", "f0"), "");
    // Hard links add directory entries without allocating inodes: ten times faster than creating files.
    for (let i = 1; i < count; i++) linkSync(inRoot("big", "f0"), inRoot("big", `f${i}`));
    let seen = 0;
    let largest = 0;
    const names = new Set<string>();
    for await (const batch of storage.list("/big")) {
      assert.ok(batch.length > 0);
      largest = Math.max(largest, batch.length);
      for (const entry of batch) {
        seen++;
        names.add(entry.name);
        assert.equal(entry.type, "file");
      }
    }
    assert.equal(seen, count);
    assert.equal(names.size, count);
    assert.ok(largest <= 1024, `batches of at most 1,024 entries (largest: ${largest})`);
  });

  test("the native reader (first batch at once or on the pool), Node's synchronous calls and the thread-pool path (a slow medium) list the same entries", async () => {
    await mkdir(inRoot("d"));
    await writeFile(inRoot("d", "f0"), "12345");
    for (let i = 1; i < 1500; i++) linkSync(inRoot("d", "f0"), inRoot("d", `f${i}`));
    await mkdir(inRoot("d", "sub"));
    await writeFile(inRoot("d", "ünïcode"), "");
    await writeFile(Buffer.concat([Buffer.from(inRoot("d", "latin1-")), Buffer.from([0xe9])]), "");
    await writeFile(inRoot("d", `${RESERVED_PREFIX}0123456789ab-f0`), "in progress");
    await symlink("f0", inRoot("d", "link-in"));
    await symlink(path.join(outside, "secret"), inRoot("d", "link-out"));
    const describe = (entries: FileInfo[]) =>
      entries.map((e) => `${e.name} ${e.type} ${e.size} ${e.mtime.getTime()} ${e.mode}`).sort();

    const real = await realpath(rootDir);
    const viaNode = new LocalStorage(real, { nativeListing: false });
    // A zero budget: a few entries of each synchronous attempt, everything else through the pool.
    const slow = new LocalStorage(real, { syncBudgetMs: 0, nativeListing: false });
    // The native reader with every batch on the pool (its first one is otherwise read at once).
    const nativeOnPool = new LocalStorage(real, { metadata: new MetadataCalls({ threadPoolOnly: true }) });
    const expected = describe(await collect(viaNode.list("/d")));
    assert.equal(expected.length, 1505);
    for (const other of [storage, slow, nativeOnPool]) {
      assert.deepEqual(describe(await collect(other.list("/d"))), expected);
      assert.deepEqual((await collect(other.listNames("/d"))).sort(), (await collect(viaNode.listNames("/d"))).sort());
    }
    assert.ok(expected.some((l) => l.startsWith("link-in file 5 ")));
    assert.ok(expected.some((l) => l.startsWith("link-out link 0 ")));
    assert.ok(expected.some((l) => l.startsWith("latin1-\ufffd file 0 ")), "a name that is not UTF-8 is decoded lossily");
    assert.ok(!expected.some((l) => l.startsWith(RESERVED_PREFIX)), "uploads in progress are hidden");
  });

  test("entries removed while a directory is listed are left out, the others keep their facts", async () => {
    // Deletions race the listing's readdir and fstatat calls (in the native reader, an entry gone
    // between the two is dropped from its batch): whatever the timing, no listed entry may be a
    // phantom or carry another entry's facts.
    await mkdir(inRoot("d"));
    const count = 3000;
    await writeFile(inRoot("d", "f0"), "12345");
    for (let i = 1; i < count; i++) linkSync(inRoot("d", "f0"), inRoot("d", `f${i}`));
    let removed = 0;
    const remover = (async () => {
      for (let i = count - 1; i > 0; i--, removed++) await unlink(inRoot("d", `f${i}`));
    })();
    for (let round = 0; round < 50 && removed < count - 1; round++) {
      const entries = await collect(storage.list("/d"));
      const names = new Set(entries.map((e) => e.name));
      assert.equal(names.size, entries.length, "no entry twice");
      for (const e of entries) {
        assert.match(e.name, /^f\d+$/);
        assert.equal(e.type, "file");
        assert.equal(e.size, 5);
      }
      assert.ok(names.has("f0"));
    }
    await remover;
    assert.deepEqual((await collect(storage.list("/d"))).map((e) => e.name), ["f0"]);
  });

  test("stopping early closes the directory handle", async () => {
    await mkdir(inRoot("d"));
    await writeFile(inRoot("d", "f0"), "");
    for (let i = 1; i < 600; i++) linkSync(inRoot("d", "f0"), inRoot("d", `f${i}`));
    for await (const batch of storage.list("/d")) {
      assert.equal(batch[0].type, "file");
      // The directory read, and the reference that pins it (see pinned-paths.ts).
      assert.equal(await openDescriptorsOn(inRoot("d")), existsSync("/proc/self/fd") ? 2 : 0);
      break;
    }
    assert.equal(await openDescriptorsOn(inRoot("d")), 0);
  });

  test("missing directory and plain file", async () => {
    await writeFile(inRoot("f"), "x");
    await assert.rejects(collect(storage.list("/nope")), isStorageError("not-found"));
    await assert.rejects(collect(storage.list("/f")), isStorageError("not-dir"));
    await assert.rejects(collect(storage.listNames("/nope")), isStorageError("not-found"));
    await assert.rejects(collect(storage.listNames("/f")), isStorageError("not-dir"));
  });

  test("names only: the names list gives, odd links and non-UTF-8 names included", async () => {
    await writeFile(inRoot("a.txt"), "abc");
    await mkdir(inRoot("sub"));
    await writeFile(inRoot("sub", "inner"), "not listed");
    await symlink(path.join(outside, "secret"), inRoot("escaping"));
    await symlink("nowhere", inRoot("dangling"));
    await writeFile(inRoot("café"), "");
    await writeFile(Buffer.concat([Buffer.from(rootDir + path.sep), Buffer.from([0x66, 0xff, 0x6f])]), "raw!");

    const names = (await collect(storage.listNames("/"))).sort();
    assert.deepEqual(names, ["a.txt", "café", "dangling", "escaping", "f\uFFFDo", "sub"]);
    assert.deepEqual(names, (await collect(storage.list("/"))).map((e) => e.name).sort());
  });
});

describe("read", () => {
  test("reads the whole file or from an offset", async () => {
    await writeFile(inRoot("digits"), "0123456789");
    assert.equal(await readAll(await storage.read("/digits")), "0123456789");
    assert.equal(await readAll(await storage.read("/digits", 4)), "456789");
    assert.equal(await readAll(await storage.read("/digits", 10)), "");
    assert.equal(await readAll(await storage.read("/digits", 50)), "");
    assert.equal(await openDescriptorsOn(inRoot("digits")), 0);
  });

  test("tells the whole file's size", async () => {
    await writeFile(inRoot("digits"), "0123456789");
    const stream = await storage.read("/digits", 4);
    assert.equal(stream.size, 10);
    stream.destroy();
  });

  test("open errors reject the promise and leave nothing open", async () => {
    await mkdir(inRoot("d"));
    await assert.rejects(storage.read("/missing"), isStorageError("not-found"));
    await assert.rejects(storage.read("/d"), isStorageError("is-dir"));
    assert.equal(await openDescriptorsOn(inRoot("d")), 0);
  });

  test("a reader destroyed early releases the file", async () => {
    await writeFile(inRoot("big"), Buffer.alloc(2 * 1024 * 1024));
    const stream = await storage.read("/big");
    await new Promise<void>((resolve) => stream.once("readable", () => resolve()));
    stream.destroy();
    await new Promise<void>((resolve) => stream.once("close", () => resolve()));
    assert.equal(await openDescriptorsOn(inRoot("big")), 0);
  });
});

describe("write", () => {
  test("truncates an existing file by default", async () => {
    await writeFile(inRoot("f"), "hello world");
    assert.equal(await storage.write("/f", source("bye")), 3);
    assert.equal(await readFile(inRoot("f"), "utf8"), "bye");
  });

  test("appends, creating the file when missing", async () => {
    assert.equal(await storage.write("/log", source("abc"), { append: true }), 3);
    assert.equal(await storage.write("/log", source("de", "f"), { append: true }), 3);
    assert.equal(await readFile(inRoot("log"), "utf8"), "abcdef");
  });

  test("writes at an offset, keeping the bytes around the written range", async () => {
    await writeFile(inRoot("f"), "0123456789");
    assert.equal(await storage.write("/f", source("XY"), { offset: 3 }), 2);
    assert.equal(await readFile(inRoot("f"), "utf8"), "012XY56789");
    assert.equal(await storage.write("/f", source("tail!"), { offset: 8 }), 5);
    assert.equal(await readFile(inRoot("f"), "utf8"), "012XY567tail!");
  });

  test("offset 0 is a plain write; a positive offset needs an existing file", async () => {
    await writeFile(inRoot("f"), "0123456789");
    await storage.write("/f", source("ab"), { offset: 0 });
    assert.equal(await readFile(inRoot("f"), "utf8"), "ab");
    await storage.write("/new", source("n"), { offset: 0 });
    assert.equal(await readFile(inRoot("new"), "utf8"), "n");
    await assert.rejects(storage.write("/absent", source("x"), { offset: 5 }), isStorageError("not-found"));
  });

  test("counts every byte of a multi-chunk upload", async () => {
    const payload = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    const chunks = Array.from({ length: Math.ceil(payload.length / 65536) }, (_, i) =>
      payload.subarray(i * 65536, (i + 1) * 65536),
    );
    assert.equal(await storage.write("/big", Readable.from(chunks)), payload.length);
    assert.ok((await readFile(inRoot("big"))).equals(payload));
  });

  test("a source that errors mid-way rejects and leaves no open handle", async () => {
    let pushed = 0;
    const failing = new Readable({
      read() {
        if (pushed++ < 3) this.push(Buffer.alloc(1024, 1));
        else this.destroy(new Error("connection reset"));
      },
    });
    await assert.rejects(storage.write("/partial", failing), isStorageError("io"));
    assert.ok(failing.destroyed);
    assert.equal(await openDescriptorsOn(inRoot("partial")), 0);
  });

  test("a source destroyed without an error also rejects", async () => {
    const abandoned = new Readable({
      read() {
        this.push("some");
        setImmediate(() => this.destroy());
      },
    });
    await assert.rejects(storage.write("/abandoned", abandoned), isStorageError("io"));
    assert.equal(await openDescriptorsOn(inRoot("abandoned")), 0);
  });

  test("a failure before writing destroys the source", async () => {
    const unused = source("x");
    await assert.rejects(storage.write("/no/such/dir/f", unused), isStorageError("not-found"));
    assert.ok(unused.destroyed);
  });

  test("a source that moves its bytes itself gets the open file at the write's position; one that declines is read", async () => {
    await writeFile(inRoot("f"), "0123456789");
    const given: Array<{ position: number; fd: number }> = [];
    const copying = Object.assign(source("never read"), {
      copyInto: async (file: { fd: number; position: number }) => {
        given.push(file);
        await writeFile(inRoot("side"), "moved by the source itself"); // stands for the kernel's copy
        return 26;
      },
    });
    assert.equal(await storage.write("/f", copying, { offset: 4 }), 26);
    assert.equal(given.length, 1);
    assert.equal(given[0].position, 4);
    assert.ok(given[0].fd >= 0);
    assert.equal(await readFile(inRoot("f"), "utf8"), "0123456789", "the stream was not read");
    // Declining (no descriptor to spare for the kernel's copy…): the stream is read as usual.
    const declining = Object.assign(source("streamed"), { copyInto: async () => null });
    assert.equal(await storage.write("/g", declining), 8);
    assert.equal(await readFile(inRoot("g"), "utf8"), "streamed");
    // An append has no position to give: always streamed.
    const appended = Object.assign(source("+more"), { copyInto: async () => assert.fail("append offered a position") });
    assert.equal(await storage.write("/g", appended, { append: true }), 5);
    assert.equal(await readFile(inRoot("g"), "utf8"), "streamed+more");
  });

  test("missing parent, directory target and file parent", async () => {
    await mkdir(inRoot("d"));
    await writeFile(inRoot("f"), "x");
    await assert.rejects(storage.write("/missing/f", source("x")), isStorageError("not-found"));
    await assert.rejects(storage.write("/d", source("x")), isStorageError("is-dir"));
    await assert.rejects(storage.write("/d", source("x"), { append: true }), isStorageError("is-dir"));
    await assert.rejects(storage.write("/f/child", source("x")), isStorageError("not-dir"));
  });
});

describe("calls that may free a large file go to the thread pool", () => {
  const large = Buffer.alloc(LARGE_FILE_BYTES + 1);

  test("a download's close, when another session deleted the file meanwhile", async () => {
    const calls = new MetadataCalls();
    const local = new LocalStorage(await realpath(rootDir), { metadata: calls });
    await writeFile(inRoot("big"), large);
    const stream = await local.read("/big");
    await unlink(inRoot("big"));
    const before = calls.callsOnPool;
    stream.destroy();
    await new Promise((resolve) => stream.once("close", resolve));
    assert.equal(calls.callsOnPool, before + 1);
  });

  test("a DELE, an RNTO over a file and an atomic replace of a large file", async () => {
    const calls = new MetadataCalls();
    const local = new LocalStorage(await realpath(rootDir), { metadata: calls });
    const onPool = async (action: () => Promise<unknown>) => {
      const before = calls.callsOnPool;
      await action();
      return calls.callsOnPool - before;
    };
    await writeFile(inRoot("a"), large);
    assert.equal(await onPool(() => local.delete("/a")), 1);
    await writeFile(inRoot("a"), large);
    await writeFile(inRoot("b"), "small");
    assert.equal(await onPool(() => local.rename("/b", "/a")), 1);
    // The replaced file grew since the upload began: what counts is its size at the rename.
    await writeFile(inRoot("c"), "tiny");
    const upload = Object.assign(Readable.from([]), {
      copyInto: async () => {
        await writeFile(inRoot("c"), large);
        return 0;
      },
    });
    assert.equal(await onPool(() => local.write("/c", upload, { atomic: true })), 1);
  });
});

describe("mkdir, rmdir, delete", () => {
  test("mkdir creates one level and reports what is in the way", async () => {
    await storage.mkdir("/a");
    assert.ok((await fsStat(inRoot("a"))).isDirectory());
    await assert.rejects(storage.mkdir("/a"), isStorageError("exists"));
    await assert.rejects(storage.mkdir("/"), isStorageError("exists"));
    await assert.rejects(storage.mkdir("/x/y"), isStorageError("not-found"));
  });

  test("rmdir removes only empty directories", async () => {
    await mkdir(inRoot("full"));
    await writeFile(inRoot("full", "f"), "x");
    await mkdir(inRoot("empty"));
    await assert.rejects(storage.rmdir("/full"), isStorageError("not-empty"));
    await assert.rejects(storage.rmdir("/full/f"), isStorageError("not-dir"));
    await assert.rejects(storage.rmdir("/missing"), isStorageError("not-found"));
    await storage.rmdir("/empty");
    assert.ok(!existsSync(inRoot("empty")));
  });

  test("delete removes files but not directories", async () => {
    await mkdir(inRoot("d"));
    await writeFile(inRoot("f"), "x");
    await assert.rejects(storage.delete("/d"), isStorageError("is-dir"));
    await assert.rejects(storage.delete("/missing"), isStorageError("not-found"));
    await storage.delete("/f");
    assert.ok(!existsSync(inRoot("f")));
    assert.ok(existsSync(inRoot("d")));
  });
});

describe("rename", () => {
  test("replaces an existing file at the target", async () => {
    await writeFile(inRoot("src"), "new");
    await writeFile(inRoot("dst"), "old content");
    await storage.rename("/src", "/dst");
    assert.equal(await readFile(inRoot("dst"), "utf8"), "new");
    assert.ok(!existsSync(inRoot("src")));
  });

  test("moves directories and reports missing sources and parents", async () => {
    await mkdir(inRoot("d"));
    await writeFile(inRoot("d", "f"), "x");
    await storage.rename("/d", "/e");
    assert.equal(await readFile(inRoot("e", "f"), "utf8"), "x");
    await assert.rejects(storage.rename("/missing", "/z"), isStorageError("not-found"));
    await assert.rejects(storage.rename("/e/f", "/no/parent/f"), isStorageError("not-found"));
  });

  test("a file cannot replace a directory", async () => {
    await mkdir(inRoot("d"));
    await writeFile(inRoot("f"), "x");
    await assert.rejects(storage.rename("/f", "/d"), isStorageError("is-dir"));
  });
});

describe("setModifiedTime and chmod", () => {
  test("setModifiedTime changes mtime and keeps atime", async () => {
    await writeFile(inRoot("f"), "x");
    const atime = new Date("2001-02-03T04:05:06Z");
    await utimes(inRoot("f"), atime, new Date());
    const mtime = new Date("2010-06-07T08:09:10Z");
    await storage.setModifiedTime("/f", mtime);
    const st = await fsStat(inRoot("f"));
    assert.equal(st.mtime.getTime(), mtime.getTime());
    assert.equal(st.atime.getTime(), atime.getTime());
    await assert.rejects(storage.setModifiedTime("/missing", mtime), isStorageError("not-found"));
  });

  test("chmod applies only the permission bits", async () => {
    await writeFile(inRoot("f"), "x");
    await storage.chmod("/f", 0o4750);
    assert.equal((await fsStat(inRoot("f"))).mode & 0o7777, 0o750);
    assert.equal((await storage.stat("/f")).mode, 0o750);
    await assert.rejects(storage.chmod("/missing", 0o644), isStorageError("not-found"));
  });

  test("a directory without permission is reported as permission", { skip: process.getuid?.() === 0 }, async () => {
    await mkdir(inRoot("locked"));
    await fsChmod(inRoot("locked"), 0o000);
    try {
      await assert.rejects(collect(storage.list("/locked")), isStorageError("permission"));
      await assert.rejects(storage.write("/locked/f", source("x")), isStorageError("permission"));
    } finally {
      await fsChmod(inRoot("locked"), 0o755);
    }
  });
});

describe("toStorageError", () => {
  const cases: [string, StorageErrorCode][] = [
    ["ENOENT", "not-found"],
    ["EEXIST", "exists"],
    ["ENOTDIR", "not-dir"],
    ["EISDIR", "is-dir"],
    ["ENOTEMPTY", "not-empty"],
    ["EACCES", "permission"],
    ["EPERM", "permission"],
    ["ENOSPC", "no-space"],
    ["EDQUOT", "no-space"],
    ["EXDEV", "unsupported"],
    ["EBUSY", "permission"],
    ["EIO", "io"],
    ["ECONNRESET", "io"],
    ["constructor", "io"],
  ];
  for (const [errno, code] of cases) {
    test(`${errno} becomes ${code}`, () => {
      const cause = Object.assign(new Error(`${errno}: open '/srv/real/secret/path'`), { code: errno });
      const mapped = toStorageError(cause, "/virtual/path");
      assert.equal(mapped.code, code);
      assert.match(mapped.message, /\/virtual\/path/);
      assert.ok(!mapped.message.includes("/srv/real"));
      assert.equal(mapped.cause, cause);
    });
  }

  test("errors without a code become io; StorageErrors pass through", () => {
    assert.equal(toStorageError(new Error("boom"), "/p").code, "io");
    assert.equal(toStorageError("not even an error", "/p").code, "io");
    const original = new StorageError("exists", "File exists: /p");
    assert.equal(toStorageError(original, "/other"), original);
  });
});

/**
 * Metadata calls that rename a checked directory away and a symlink leading outside into its place
 * just before the first call that uses a path (after the confinement check's lstat and realpath):
 * what another session's RNFR/RNTO could do between a check and its use.
 */
class SwapBeforeUse extends MetadataCalls {
  armed = false;
  /** Calls to let through, once armed, before the swap. */
  passing = 0;

  constructor(private readonly swap: () => void) {
    super();
  }

  private fire(): void {
    if (!this.armed) return;
    if (this.passing-- > 0) return;
    this.armed = false;
    this.swap();
  }

  override open(p: string, flags: string) { this.fire(); return super.open(p, flags); }
  override openWith(p: string, flags: number) { this.fire(); return super.openWith(p, flags); }
  override openNoSymlinks(p: string, flags: number) { this.fire(); return super.openNoSymlinks(p, flags); }
  override stat(p: string) { this.fire(); return super.stat(p); }
  override mkdir(p: string, recursive?: boolean) { this.fire(); return super.mkdir(p, recursive); }
  override unlink(p: string) { this.fire(); return super.unlink(p); }
  override rename(from: string, to: string) { this.fire(); return super.rename(from, to); }
  override chmod(p: string, mode: number) { this.fire(); return super.chmod(p, mode); }
  override utimes(p: string, atime: Date, mtime: Date) { this.fire(); return super.utimes(p, atime, mtime); }
}

describe("a directory swapped for a symlink leading outside between the check and the use", { skip: !existsSync("/proc/self/fd") && "no /proc" }, () => {
  const outsideFile = () => path.join(outside, "secret");

  /** `d` (a real directory with its own `secret`), and `link` leading outside; the swap puts `link` at `d`. */
  async function swapping(): Promise<{ local: LocalStorage; calls: SwapBeforeUse }> {
    await mkdir(inRoot("d"));
    await writeFile(inRoot("d", "secret"), "inside");
    await symlink(outside, inRoot("link"));
    const calls = new SwapBeforeUse(() => {
      renameSync(inRoot("d"), inRoot("d-moved"));
      renameSync(inRoot("link"), inRoot("d"));
    });
    return { local: new LocalStorage(await realpath(rootDir), { metadata: calls }), calls };
  }

  const cases: Array<[string, (local: LocalStorage) => Promise<unknown>]> = [
    ["read", async (local) => readAll(await local.read("/d/secret"))],
    ["stat", (local) => local.stat("/d/secret")],
    ["findEntry", (local) => local.findEntry("/d/secret")],
    ["chmod", (local) => local.chmod("/d/secret", 0o666)],
    ["setModifiedTime", (local) => local.setModifiedTime("/d/secret", new Date(0))],
    ["mkdir", (local) => local.mkdir("/d/made")],
    ["delete", (local) => local.delete("/d/secret")],
    ["rename", (local) => local.rename("/d/secret", "/taken")],
    ["list", (local) => collect(local.list("/d"))],
    ["write", (local) => local.write("/d/secret", source("overwritten"), { atomic: true })],
    ["write in place", (local) => local.write("/d/secret", source("overwritten"))],
  ];
  for (const [name, call] of cases) {
    test(`${name} is refused, and nothing outside is read or changed`, async () => {
      const { local, calls } = await swapping();
      const before = await fsStat(outsideFile());
      calls.armed = true;
      await assert.rejects(call(local), isStorageError("permission"));
      assert.equal(calls.armed, false, "the swap happened");
      const after = await fsStat(outsideFile());
      assert.equal(await readFile(outsideFile(), "utf8"), "top secret");
      assert.deepEqual([after.mode, after.mtimeMs], [before.mode, before.mtimeMs]);
      assert.deepEqual(await readdir(outside), ["secret"]);
      assert.equal(existsSync(inRoot("taken")), false);
    });
  }
});

describe("what is not a plain file, and renames during an upload", { skip: !existsSync("/proc/self/fd") && "no /proc" }, () => {
  test("a FIFO is refused at once, not opened blocking: inside the root, or behind a symlink leading outside", async () => {
    execFileSync("mkfifo", [inRoot("pipe")]);
    execFileSync("mkfifo", [path.join(outside, "pipe")]);
    await mkdir(inRoot("d"));
    await symlink(path.join(outside, "pipe"), inRoot("out-pipe"));
    await symlink(path.join(outside, "pipe"), inRoot("d", "out-pipe"));
    for (const [vpath, code] of [["/pipe", "permission"], ["/out-pipe", "permission"], ["/d/out-pipe", "permission"]] as const) {
      const started = Date.now();
      await assert.rejects(storage.read(vpath), isStorageError(code));
      assert.ok(Date.now() - started < 1000, `${vpath} answered at once`);
    }
  });

  test("a FIFO and a socket are listed and stat'ed as what they are (ls's p and s), not as files", async () => {
    execFileSync("mkfifo", [inRoot("pipe")]);
    const server = net.createServer().listen(inRoot("sock"));
    await once(server, "listening");
    try {
      // The native batch reader and Node's own listing alike.
      for (const lister of [storage, new LocalStorage(realpathSync(rootDir), { nativeListing: false })]) {
        const listed = new Map((await collect(lister.list("/"))).map((e) => [e.name, e]));
        assert.deepEqual([listed.get("pipe")?.type, listed.get("pipe")?.special], ["other", "p"]);
        assert.deepEqual([listed.get("sock")?.type, listed.get("sock")?.special], ["other", "s"]);
      }
      assert.equal((await storage.stat("/pipe")).special, "p");
    } finally {
      server.close();
    }
  });

  test("an upload onto a FIFO (append, offset, plain replace) is refused at once, not opened blocking", async () => {
    execFileSync("mkfifo", [inRoot("pipe")]);
    // Should the open block the event loop, a reader comes after 3 s and unblocks it (so the test ends, failing).
    const rescuer = spawn("sh", ["-c", `sleep 3; exec timeout 2 cat ${JSON.stringify(inRoot("pipe"))} >/dev/null`], { stdio: "ignore" });
    try {
      for (const options of [{ append: true }, { offset: 1 }, {}, { atomic: false }]) {
        const started = Date.now();
        await assert.rejects(storage.write("/pipe", source("x"), options), isStorageError("permission"));
        assert.ok(Date.now() - started < 1000, `${JSON.stringify(options)} answered at once`);
      }
    } finally {
      rescuer.kill();
    }
  });

  test("an upload through a symlink name whose directory moves meanwhile writes where the link led when checked", async () => {
    // a/d/t -> ../../victim leads to <root>/victim; moved to /d, the same link would lead outside.
    await mkdir(inRoot("a", "d"), { recursive: true });
    await symlink("../../victim", inRoot("a", "d", "t"));
    await writeFile(path.join(base, "victim"), "outside, untouched");
    const calls = new SwapBeforeUse(() => renameSync(inRoot("a", "d"), inRoot("d")));
    const local = new LocalStorage(await realpath(rootDir), { metadata: calls });
    // After the check (its pin of a/d), before the file is opened.
    calls.passing = 1;
    calls.armed = true;
    await local.write("/a/d/t", source("written"));
    assert.equal(calls.armed, false, "the move happened");
    assert.equal(await readFile(path.join(base, "victim"), "utf8"), "outside, untouched");
    assert.equal(await readFile(inRoot("victim"), "utf8"), "written");
  });

  test("a failed new upload whose directory was swapped for a link leading outside removes its own partial file, not the outside one", async () => {
    await mkdir(inRoot("a", "d"), { recursive: true });
    await writeFile(path.join(outside, "new.bin"), "outside, untouched");
    const local = new LocalStorage(await realpath(rootDir));
    const upload = new PassThrough();
    const writing = local.write("/a/d/new.bin", upload, { keepPartial: false });
    upload.write("partial");
    for (let i = 0; i < 200 && !existsSync(inRoot("a", "d", "new.bin")); i++) await new Promise((resolve) => setTimeout(resolve, 5));
    renameSync(inRoot("a", "d"), inRoot("a", "moved"));
    await symlink(outside, inRoot("a", "d"));
    upload.destroy(new Error("the client went away"));
    await assert.rejects(writing);
    assert.equal(await readFile(path.join(outside, "new.bin"), "utf8"), "outside, untouched");
    assert.equal(existsSync(inRoot("a", "moved", "new.bin")), false, "the partial file is removed where it is");
  });
});
