import { afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, constants, existsSync, linkSync, lstatSync, openSync, readSync, realpathSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { LARGE_FILE_BYTES, MetadataCalls } from "../../src/storage/metadata-calls.js";

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
      await calls.mkdir(at("a", "b", "c"), true);
      await calls.mkdir(at("a", "b", "c"), true);
      assert.ok(existsSync(at("a", "b", "c")));
    });

    test("change the tree as fs does: mkdir, rename, chmod, utimes, access, unlink, rmdir", async () => {
      const calls = new MetadataCalls(options);
      await calls.mkdir(at("new"));
      await assert.rejects(calls.mkdir(at("new")), { code: "EEXIST" });
      await calls.rename(at("dir", "file"), at("new", "moved"));
      assert.equal(statSync(at("new", "moved")).size, 5);
      await calls.chmod(at("new", "moved"), 0o600);
      assert.equal(statSync(at("new", "moved")).mode & 0o777, 0o600);
      const mtime = new Date("2020-02-29T12:00:00Z");
      await calls.utimes(at("new", "moved"), mtime, mtime);
      assert.equal(statSync(at("new", "moved")).mtimeMs, mtime.getTime());
      await calls.access(at("new", "moved"), constants.R_OK);
      await assert.rejects(calls.access(at("nothing"), constants.R_OK), { code: "ENOENT" });
      await assert.rejects(calls.rmdir(at("new")), { code: "ENOTEMPTY" });
      await calls.unlink(at("new", "moved"));
      await assert.rejects(calls.unlink(at("new", "moved")), { code: "ENOENT" });
      await calls.rmdir(at("new"));
      assert.equal(existsSync(at("new")), false);
    });

    test("open a file for reading, fstat and close its descriptor", async () => {
      const calls = new MetadataCalls(options);
      const fd = await calls.open(at("link"), "r");
      assert.equal((await calls.fstat(fd)).size, 5);
      assert.equal(readSync(fd, Buffer.alloc(8), 0, 8, 0), 5);
      await calls.close(fd);
      const written = await calls.open(at("dir", "new"), "wx");
      await calls.fchmod(written, 0o640);
      await calls.close(written);
      assert.equal(statSync(at("dir", "new")).mode & 0o777, 0o640);
      await assert.rejects(calls.open(at("nothing"), "r"), { code: "ENOENT" });
      await assert.rejects(calls.open(at("dir", "file", "child"), "r"), { code: "ENOTDIR" });
    });

    test("report a missing name as null, and every other failure as fs's error", async () => {
      const calls = new MetadataCalls(options);
      assert.equal(await calls.lstat(at("nothing")), null);
      assert.equal(await calls.stat(at("dir", "nothing")), null);
      await assert.rejects(calls.realpath(at("nothing")), { code: "ENOENT" });
      await assert.rejects(calls.lstat(at("dir", "file", "child")), { code: "ENOTDIR" });
      await assert.rejects(calls.stat(at("dir", "file", "child")), { code: "ENOTDIR" });
      await assert.rejects(calls.mkdir(at("dir", "file", "sub"), true), { code: "ENOTDIR" });
    });
  });
}

test("calls whose cost is a large file's size are weighed just before and sent to the thread pool", async () => {
  // Only the weighing decides here: a call slowed by a busy machine must not send the next ones to the pool.
  const calls = new MetadataCalls({ slowCallMs: 60_000 });
  const large = Buffer.alloc(LARGE_FILE_BYTES + 1);
  /** Runs `call` and tells whether it went to the pool. */
  const way = async (call: () => Promise<unknown>) => {
    const before = calls.callsOnPool;
    await call();
    return calls.callsOnPool > before ? "pool" : "at once";
  };
  writeFileSync(at("small"), "12345");
  writeFileSync(at("large"), large);
  writeFileSync(at("large2"), large);

  // A close: the last descriptor of a large file unlinked meanwhile (it frees it) goes to the pool.
  const fd = openSync(at("large"), "r");
  unlinkSync(at("large"));
  assert.equal(await way(() => calls.close(fd)), "pool");
  assert.equal(await way(async () => calls.close(await calls.open(at("small"), "r"))), "at once");
  // A truncating open of a large file; of a small or a new one at once.
  writeFileSync(at("large"), large);
  assert.equal(await way(async () => closeSync(await calls.open(at("large"), "w"))), "pool");
  assert.equal(await way(async () => closeSync(await calls.open(at("small"), "w"))), "at once");
  assert.equal(await way(async () => closeSync(await calls.open(at("fresh"), "wx"))), "at once");
  // A rename over a large file; to a new name at once whatever the size; an unlink by size and links.
  writeFileSync(at("large"), large);
  assert.equal(await way(() => calls.rename(at("small"), at("large"))), "pool");
  assert.equal(await way(() => calls.rename(at("large2"), at("new-name"))), "at once");
  linkSync(at("new-name"), at("second-link"));
  assert.equal(await way(() => calls.unlink(at("second-link"))), "at once", "another link keeps the blocks");
  assert.equal(await way(() => calls.unlink(at("new-name"))), "pool");
  assert.equal(await way(() => calls.unlink(at("fresh"))), "at once");
  // A failing weigh is nothing at stake: the call reports its own error.
  await assert.rejects(calls.unlink(at("nothing")), { code: "ENOENT" });
  assert.equal(calls.synchronous, true, "a large file says nothing about the medium");
});

describe("the switch to the thread pool", () => {
  /** A clock for the calls: each synchronous call takes `cost` ms by it (two readings per call). */
  function fakeClock(): { clock: () => number; cost: number } {
    let now = 0;
    const state = {
      cost: 0,
      clock: () => (now += state.cost / 2),
    };
    return state;
  }

  /** Makes `n` lstat calls and reports, for each, whether it was made synchronously. */
  async function pattern(calls: MetadataCalls, n: number): Promise<string> {
    let out = "";
    for (let i = 0; i < n; i++) {
      out += calls.synchronous ? "s" : "p";
      await calls.lstat(at("dir"));
    }
    return out;
  }

  test("each slow synchronous try in a row sends twice as many calls to the pool, up to the cap", async () => {
    const time = fakeClock();
    time.cost = 5;
    const calls = new MetadataCalls({ slowCallMs: 1, maxPoolCalls: 4, clock: time.clock });
    assert.equal(await pattern(calls, 20), "sp" + "spp" + "spppp" + "spppp" + "spppp");
  });

  test("a fast synchronous call ends the backoff", async () => {
    const time = fakeClock();
    const calls = new MetadataCalls({ slowCallMs: 1, clock: time.clock });
    time.cost = 5;
    assert.equal(await pattern(calls, 4), "spsp");
    time.cost = 0.5;
    assert.equal(await pattern(calls, 3), "pss", "the pending pool calls, then synchronous again");
    time.cost = 5;
    assert.equal(await pattern(calls, 3), "sps", "a new slow call starts the backoff from one call again");
  });

  test("a slow call that fails counts too, and answers the same from the pool", async () => {
    const time = fakeClock();
    time.cost = 5;
    const calls = new MetadataCalls({ slowCallMs: 1, clock: time.clock });
    await assert.rejects(calls.realpath(at("nothing")), { code: "ENOENT" });
    assert.equal(calls.synchronous, false);
    await assert.rejects(calls.realpath(at("nothing")), { code: "ENOENT" });
    assert.equal(calls.synchronous, true);
    assert.equal(await calls.lstat(at("nothing")), null);
  });

  test("fast calls stay synchronous; threadPoolOnly never calls synchronously", async () => {
    const time = fakeClock();
    assert.equal(await pattern(new MetadataCalls({ clock: time.clock }), 50), "s".repeat(50));
    assert.equal(await pattern(new MetadataCalls({ threadPoolOnly: true }), 5), "ppppp");
  });
});
