import { afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
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
