/** Reading `Storage.list` and `Storage.listNames` in tests. */
import assert from "node:assert/strict";

/** Every item of a listing, checking the batch contract on the way: no batch is empty. */
export async function collect<T>(batches: AsyncIterable<T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const batch of batches) {
    assert.ok(batch.length > 0, "a listing yields no empty batch");
    out.push(...batch);
  }
  return out;
}
