import { afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, lstatSync, realpathSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { MetadataCalls } from "../../src/storage/metadata-calls.js";

let base: string;

beforeEach(async () => {
  base = realpathSync(await mkdtemp(path.join(os.tmpdir(), "edgeftp-metadata-")));
  await mkdir(path.join(base, "dir"));
  await writeFile(path.join(base, "dir", "file"), "12345");
  await symlink("dir/file", path.join(base, "link"));
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const at = (...parts: string[]) => path.join(base, ...parts);

for (const [mode, options] of [
  ["synchronously", {}],
  ["on the thread pool", { threadPoolOnly: true }],
] as const) {
  describe(`metadata calls made ${mode}`, () => {
    test("answer what fs answers", async () => {
      const calls = new MetadataCalls(options);
      assert.equal(calls.synchronous, mode === "synchronously");
      assert.equal(await calls.realpath(at("link")), at("dir", "file"));
      assert.ok((await calls.lstat(at("link")))?.isSymbolicLink());
      assert.equal((await calls.stat(at("link")))?.size, 5);
      assert.equal((await calls.lstat(at("dir")))?.ino, lstatSync(at("dir")).ino);
      assert.equal((await calls.stat(at("dir", "file")))?.mtimeMs, statSync(at("dir", "file")).mtimeMs);
      await calls.mkdirRecursive(at("a", "b", "c"));
      await calls.mkdirRecursive(at("a", "b", "c"));
      assert.ok(existsSync(at("a", "b", "c")));
    });

    test("report a missing name as null, and every other failure as fs's error", async () => {
      const calls = new MetadataCalls(options);
      assert.equal(await calls.lstat(at("nothing")), null);
      assert.equal(await calls.stat(at("dir", "nothing")), null);
      await assert.rejects(calls.realpath(at("nothing")), { code: "ENOENT" });
      await assert.rejects(calls.lstat(at("dir", "file", "child")), { code: "ENOTDIR" });
      await assert.rejects(calls.stat(at("dir", "file", "child")), { code: "ENOTDIR" });
      await assert.rejects(calls.mkdirRecursive(at("dir", "file", "sub")), { code: "ENOTDIR" });
    });
  });
}

describe("the switch to the thread pool", () => {
  test("a slow synchronous call sends the next calls to the thread pool until the backoff ends", async () => {
    // Every call counts as slow (longer than -1 ms); the backoff never ends.
    const calls = new MetadataCalls({ slowCallMs: -1, backoffMs: Number.MAX_SAFE_INTEGER });
    assert.equal(calls.synchronous, true);
    await calls.lstat(at("dir"));
    assert.equal(calls.synchronous, false);
    assert.equal(await calls.lstat(at("nothing")), null, "the same answers from the pool");
  });

  test("a slow call that fails counts too, and calls are synchronous again once the backoff is over", async () => {
    const calls = new MetadataCalls({ slowCallMs: -1, backoffMs: 0 });
    await assert.rejects(calls.realpath(at("nothing")), { code: "ENOENT" });
    assert.equal(calls.synchronous, true, "a backoff of 0 is over at once");
    const stays = new MetadataCalls({ slowCallMs: -1, backoffMs: Number.MAX_SAFE_INTEGER });
    await assert.rejects(stays.realpath(at("nothing")), { code: "ENOENT" });
    assert.equal(stays.synchronous, false);
  });

  test("fast calls stay synchronous", async () => {
    const calls = new MetadataCalls({ slowCallMs: Number.MAX_SAFE_INTEGER });
    for (let i = 0; i < 100; i++) await calls.stat(at("dir", "file"));
    assert.equal(calls.synchronous, true);
  });
});
