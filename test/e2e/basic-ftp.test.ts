import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { Client } from "basic-ftp";
import { checkLeaks } from "../helpers/leaks.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function collect(client: Client, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  await client.downloadTo(sink, path);
  return Buffer.concat(chunks);
}

describe("basic-ftp client", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server.close();
  });
  checkLeaks();

  async function connected(): Promise<Client> {
    const client = new Client(10_000);
    await client.access({ host: server.host, port: server.port, user: USER, password: PASSWORD });
    return client;
  }

  test("uploads and downloads 5 MiB in passive mode with matching checksums", async () => {
    const client = await connected();
    try {
      const data = randomBytes(5 * 1024 * 1024);
      await client.uploadFrom(Readable.from([data]), "big.bin");
      assert.equal(sha(readFileSync(join(server.home(USER), "big.bin"))), sha(data));
      const back = await collect(client, "big.bin");
      assert.equal(sha(back), sha(data));
      assert.equal(await client.size("big.bin"), data.length);
    } finally {
      client.close();
    }
  });

  test("lists with MLSD facts, makes, renames and removes", async () => {
    const client = await connected();
    try {
      await client.ensureDir("/docs/sub");
      assert.equal(await client.pwd(), "/docs/sub");
      await client.cd("/");
      writeFileSync(join(server.home(USER), "docs", "a.txt"), "hello\n");
      const list = await client.list("/docs");
      const names = list.map((f) => f.name).sort();
      assert.deepEqual(names, ["a.txt", "sub"]);
      const file = list.find((f) => f.name === "a.txt")!;
      assert.equal(file.size, 6);
      assert.ok(file.isFile);
      await client.rename("/docs/a.txt", "/docs/b.txt");
      await client.remove("/docs/b.txt");
      await client.removeEmptyDir("/docs/sub");
      assert.deepEqual((await client.list("/docs")).map((f) => f.name), []);
    } finally {
      client.close();
    }
  });
});
