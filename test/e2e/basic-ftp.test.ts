import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { Client } from "basic-ftp";
import { downloadToBuffer } from "../helpers/basic-ftp.js";
import { sha256 } from "../helpers/hash.js";
import { checkLeaks } from "../helpers/leaks.js";
import { PASSWORD, startServer, USER, type TestServer } from "../helpers/server.js";

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
      assert.equal(sha256(readFileSync(join(server.home(USER), "big.bin"))), sha256(data));
      const back = await downloadToBuffer(client, "big.bin");
      assert.equal(sha256(back), sha256(data));
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
