import { afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { lstatSync, realpathSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { DirectoryReader, directoryReaderAvailable, type DirectoryBatch } from "../../src/storage/directory-reader.js";

let base: string;

beforeEach(async () => {
  base = realpathSync(await mkdtemp(path.join(os.tmpdir(), "edgeftp-reader-")));
  await mkdir(path.join(base, "sub"));
  for (let i = 0; i < 40; i++) await writeFile(path.join(base, `f${i}`), "x".repeat(i));
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const names = (batch: DirectoryBatch) => Array.from({ length: batch.length }, (_, i) => batch.latin1Name(i));

describe("DirectoryReader.readNow (a batch read at once)", { skip: !directoryReaderAvailable && "the addon is not built here" }, () => {
  test("reads a small directory in one batch, with each entry's lstat facts", () => {
    const reader = DirectoryReader.open(base)!;
    try {
      const batch = reader.readNow(64, true, 1000)!;
      assert.equal(batch.done, true);
      assert.deepEqual(names(batch).sort(), ["sub", ...Array.from({ length: 40 }, (_, i) => `f${i}`)].sort());
      for (let i = 0; i < batch.length; i++) {
        const st = lstatSync(path.join(base, batch.latin1Name(i)));
        assert.deepEqual([batch.mode(i), batch.size(i), batch.mtimeMs(i)], [st.mode, st.size, st.mtimeMs]);
      }
    } finally {
      reader.close();
    }
  });

  test("over its time budget it returns nothing, and the next read starts from the first entry", async () => {
    const reader = DirectoryReader.open(base)!;
    try {
      assert.equal(reader.readNow(64, true, 1e-9), null);
      const seen: string[] = [];
      for (let done = false; !done; ) {
        const batch = await reader.read(16, true);
        seen.push(...names(batch));
        done = batch.done;
      }
      assert.equal(seen.length, 41);
      assert.equal(new Set(seen).size, 41);
    } finally {
      reader.close();
    }
  });

  test("a batch of more than 256 entries, or a missing directory, is refused", () => {
    const reader = DirectoryReader.open(base)!;
    assert.throws(() => reader.readNow(257, true, 1000), RangeError);
    reader.close();
    const missing = DirectoryReader.open(path.join(base, "nothing"))!;
    assert.throws(() => missing.readNow(64, true, 1000), { code: "ENOENT" });
    missing.close();
  });
});

describe("the native reader and names longer than NAME_MAX", { skip: !directoryReaderAvailable && "the addon is not built here" }, () => {
  // readdir puts no bound on a name (FUSE allows 1024 bytes): a shim preloaded into a child node
  // makes one entry 1,000 bytes long, as such a file system would. The reader copied names into a
  // NAME_MAX buffer before its fstatat, and such a listing crashed the whole node.
  test("an entry whose name is too long to reach is left out; the others are listed and the process lives", async (t) => {
    const shim = path.join(base, "long-name-shim.so");
    const source = path.join(base, "shim.c");
    await writeFile(
      source,
      `#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>
static union { struct dirent64 entry; char bytes[sizeof(struct dirent64) + 2048]; } long_entry;
struct dirent64 *readdir64(DIR *dir) {
  static struct dirent64 *(*real)(DIR *);
  if (!real) real = (struct dirent64 *(*)(DIR *))dlsym(RTLD_NEXT, "readdir64");
  struct dirent64 *e = real(dir);
  if (e && strcmp(e->d_name, "victim") == 0) {
    memcpy(&long_entry.entry, e, sizeof *e);
    memset(long_entry.bytes + offsetof(struct dirent64, d_name), 'x', 1000);
    long_entry.bytes[offsetof(struct dirent64, d_name) + 1000] = 0;
    return &long_entry.entry;
  }
  return e;
}
`,
    );
    const cc = spawnSync("cc", ["-shared", "-fPIC", "-O2", "-o", shim, source, "-ldl"], { encoding: "utf8" });
    if (cc.error) return t.skip(`no C compiler: ${cc.error.message}`);
    assert.equal(cc.status, 0, cc.stderr);
    await writeFile(path.join(base, "sub", "victim"), "");
    await writeFile(path.join(base, "sub", "other"), "");
    const script = `
      import { DirectoryReader } from ${JSON.stringify(new URL("../../src/storage/directory-reader.js", import.meta.url).href)};
      const reader = DirectoryReader.open(${JSON.stringify(path.join(base, "sub"))});
      const batch = reader.readNow(64, true, 1000);
      reader.close();
      console.log(JSON.stringify(Array.from({ length: batch.length }, (_, i) => batch.latin1Name(i))));`;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, LD_PRELOAD: shim }, encoding: "utf8", timeout: 20_000 });
    assert.equal(child.signal, null, `the child died of ${child.signal}: ${child.stderr}`);
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), ["other"]);
  });
});
