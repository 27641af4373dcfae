import { Writable } from "node:stream";
import type { Client } from "basic-ftp";

/** Downloads `path` with a basic-ftp client into memory. */
export async function downloadToBuffer(client: Client, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  await client.downloadTo(sink, path);
  return Buffer.concat(chunks);
}
