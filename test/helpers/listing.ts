/** Reading `Storage.list` in tests. */
import assert from "node:assert/strict";
import type { FileInfo } from "../../src/storage/types.js";

/** Every entry of a listing, checking the batch contract on the way: no batch is empty. */
export async function collect(batches: AsyncIterable<FileInfo[]>): Promise<FileInfo[]> {
  const out: FileInfo[] = [];
  for await (const batch of batches) {
    assert.ok(batch.length > 0, "a listing yields no empty batch");
    out.push(...batch);
  }
  return out;
}
